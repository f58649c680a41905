// bench/pool: CPU-bound throughput of one plugin process with its CPU pool at 1 thread
// against N threads (VAULT_PLUGIN_TS_WORKERS, see src/util/workers.ts), the same build, in
// one run through the real Vault (VAULT_BIN, default /work/shared/vault/vault).
// Our executable is registered twice: `vault-plugin-ts` with VAULT_PLUGIN_TS_WORKERS=1 and
// `vault-plugin-ts-pool` with VAULT_PLUGIN_TS_WORKERS=BENCH_POOL (default: the cores), each
// mounted as transit and as PKI (Vault 1.8 runs each secrets mount in its own process).
// Cases, each closed-loop from BENCH_CLIENTS (4) clients, rounds of 1 s alternating between
// the two sides over BENCH_SECONDS (6) s per cell:
//   - transit sign, batch of BENCH_BATCH (100) inputs, RSA-2048 key, pkcs1v15 / sha2-256;
//   - PKI issue from an rsa-2048 role (the leaf key generated in the plugin).
// BENCH_EXE runs another build (default dist's); BENCH_ONLY=sign-rsa-batch,issue-rsa picks cases.
// Before the cells, results are checked: a batch signed by the pool side equals, item by
// item and in order, the same inputs signed one request at a time (PKCS#1 v1.5 signatures
// are deterministic), and verifies; an issued certificate carries an RSA-2048 key that
// matches its private key. Prints req/s per side and the ratio pool ÷ 1 thread.
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import * as path from 'node:path';
import { PLUGIN_EXE, PLUGIN_NAME, pluginProcesses, startDevVault, type VaultNode } from '../test/support/vault';
import { drive, VaultHttp, type CellResult } from './load';
import { cpuSnapshot, cpuSpent } from './proccpu';

process.env.VAULT_BIN ??= '/work/shared/vault/vault';
const POOL = Number(process.env.BENCH_POOL ?? availableParallelism());
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
const EXE = process.env.BENCH_EXE ? path.resolve(process.env.BENCH_EXE) : PLUGIN_EXE; // another build, e.g. the one before a change

type Side = 'one' | 'pool';
const SIDES: Side[] = ['one', 'pool'];
const NAME: Record<Side, string> = { one: PLUGIN_NAME, pool: `${PLUGIN_NAME}-pool` };
const label = (s: Side) => (s === 'one' ? '1 thread' : `pool of ${POOL}`);

async function api(v: VaultNode, method: string, p: string, body?: object): Promise<any> {
  const r = await v.http(method, p, { body, timeoutMs: 300_000 });
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.text.slice(0, 400)}`);
  return r.text ? r.json() : undefined;
}

const inputs = Array.from({ length: BATCH }, (_, i) => ({ input: randomBytes(64).toString('base64'), reference: String(i) }));
const signBody = Buffer.from(JSON.stringify({ batch_input: inputs, hash_algorithm: 'sha2-256', signature_algorithm: 'pkcs1v15' }));
const issueBody = Buffer.from(JSON.stringify({ common_name: 'leaf.bench.example', ttl: '1h' }));

interface Case {
  id: string;
  label: string;
  op: (h: VaultHttp, s: Side) => Promise<void>;
}
const CASES: Case[] = [
  {
    id: 'sign-rsa-batch',
    label: `transit sign, batch of ${BATCH}, rsa-2048 pkcs1v15`,
    op: async (h, s) => {
      await h.ok('POST', `t-${s}/sign/rsa`, signBody);
    },
  },
  {
    id: 'issue-rsa',
    label: 'pki issue, rsa-2048 role',
    op: async (h, s) => {
      await h.ok('POST', `p-${s}/issue/rsa`, issueBody);
    },
  },
].filter((c) => !ONLY.length || ONLY.includes(c.id));

/** The pool side gives the same signatures, in the same order, as one request per input. */
async function checkResults(v: VaultNode): Promise<void> {
  for (const s of SIDES) {
    const batch = (await api(v, 'POST', `t-${s}/sign/rsa`, JSON.parse(signBody.toString()))).data.batch_results as Array<{
      signature: string;
      reference: string;
    }>;
    if (batch.length !== BATCH) throw new Error(`${s}: ${batch.length} batch results for ${BATCH} inputs`);
    for (const i of [0, 1, Math.floor(BATCH / 2), BATCH - 1]) {
      const single = (await api(v, 'POST', `t-${s}/sign/rsa`, { input: inputs[i].input, hash_algorithm: 'sha2-256', signature_algorithm: 'pkcs1v15' })).data
        .signature;
      if (batch[i].signature !== single || batch[i].reference !== String(i)) throw new Error(`${s}: batch item ${i} differs from the same input signed alone`);
    }
    const verify = (
      await api(v, 'POST', `t-${s}/verify/rsa`, {
        batch_input: inputs.map((x, i) => ({ input: x.input, signature: batch[i].signature })),
        hash_algorithm: 'sha2-256',
        signature_algorithm: 'pkcs1v15',
      })
    ).data.batch_results as Array<{ valid: boolean }>;
    if (!verify.every((r) => r.valid)) throw new Error(`${s}: a batch signature does not verify`);
    const issued = (await api(v, 'POST', `p-${s}/issue/rsa`, JSON.parse(issueBody.toString()))).data;
    const cert = new X509Certificate(issued.certificate);
    const pub = cert.publicKey;
    if (pub.asymmetricKeyType !== 'rsa' || pub.asymmetricKeyDetails?.modulusLength !== 2048) throw new Error(`${s}: issued key is not RSA-2048`);
    const fromPriv = createPublicKey(createPrivateKey(issued.private_key)).export({ format: 'der', type: 'spki' });
    if (!fromPriv.equals(pub.export({ format: 'der', type: 'spki' }))) throw new Error(`${s}: issued private key does not match the certificate`);
  }
}

async function main(): Promise<void> {
  const vault = await startDevVault();
  const load = [loadavg()[0]];
  const t0 = Date.now();
  try {
    if (EXE === PLUGIN_EXE) await vault.registerPlugin({ VAULT_PLUGIN_TS_WORKERS: '1' });
    else await vault.installPlugin(EXE, 'secret', NAME.one, { VAULT_PLUGIN_TS_WORKERS: '1' });
    await vault.installPlugin(EXE, 'secret', NAME.pool, { VAULT_PLUGIN_TS_WORKERS: String(POOL) });
    for (const s of SIDES) {
      await api(vault, 'POST', `sys/mounts/t-${s}`, { type: NAME[s] });
      await api(vault, 'POST', `t-${s}/keys/rsa`, { type: 'rsa-2048' });
      await api(vault, 'POST', `sys/mounts/p-${s}`, { type: NAME[s], options: { engine: 'pki' }, config: { max_lease_ttl: '87600h' } });
      await api(vault, 'POST', `p-${s}/root/generate/internal`, { common_name: 'bench root', key_type: 'ec', key_bits: 256, ttl: '8760h' });
      await api(vault, 'POST', `p-${s}/roles/rsa`, { allow_any_name: true, key_type: 'rsa', key_bits: 2048, max_ttl: '24h' });
    }
    await checkResults(vault);
    // pluginProcesses matches by prefix: `vault-plugin-ts` also names the pool side's file.
    const pids = (s: Side) =>
      pluginProcesses(vault.pluginDir, NAME[s])
        .filter((p) => s === 'pool' || !p.args.startsWith(path.join(vault.pluginDir, NAME.pool)))
        .map((p) => p.pid);
    const h = new VaultHttp(vault.addr, vault.token, CLIENTS);
    const rows: string[] = [];
    for (const c of CASES) {
      for (const s of SIDES) await drive(CLIENTS, 500, () => c.op(h, s)); // warm-up
      const acc: Record<Side, { ok: number; secs: number; errors: number; cpu: number; first?: string; p99: number[] }> = {
        one: { ok: 0, secs: 0, errors: 0, cpu: 0, p99: [] },
        pool: { ok: 0, secs: 0, errors: 0, cpu: 0, p99: [] },
      };
      for (let r = 0; r < SECONDS; r++) {
        for (const s of r % 2 ? [...SIDES].reverse() : SIDES) {
          const ps = pids(s);
          const before = cpuSnapshot(ps);
          const res: CellResult = await drive(CLIENTS, 1000, () => c.op(h, s));
          const a = acc[s];
          a.cpu += cpuSpent(before, cpuSnapshot(ps));
          a.ok += res.ok;
          a.secs += res.seconds;
          a.errors += res.errors;
          a.first ??= res.firstError;
          a.p99.push(res.p99);
        }
        load.push(loadavg()[0]);
      }
      const rate = (s: Side) => acc[s].ok / acc[s].secs;
      const cores = (s: Side) => acc[s].cpu / 1000 / acc[s].secs;
      rows.push(
        `| ${c.label} | ${rate('one').toFixed(1)} | ${rate('pool').toFixed(1)} | **${(rate('pool') / rate('one')).toFixed(2)}** | ${cores('one').toFixed(2)} | ${cores('pool').toFixed(2)} | ${acc.one.errors + acc.pool.errors}${(acc.one.first ?? acc.pool.first) ? ` (${(acc.one.first ?? acc.pool.first)!.slice(0, 80)})` : ''} |`,
      );
    }
    h.close();
    console.log(
      `# bench/pool ${new Date().toISOString().slice(0, 16)}Z: ${CLIENTS} clients, ${SECONDS} × 1 s rounds per side alternating, ${availableParallelism()} cores, ${process.version}`,
    );
    if (EXE !== PLUGIN_EXE) console.log(`executable: ${EXE}`);
    console.log(
      `load average (1 min) during the run: ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}; total ${((Date.now() - t0) / 1000).toFixed(0)} s; results checked identical (batch = singles, in order; signatures verify; issued keys match)`,
    );
    console.log('');
    console.log(`| case | ${label('one')} req/s | ${label('pool')} req/s | ratio | plugin cores busy, 1 thread | plugin cores busy, pool | errors |`);
    console.log('|---|---:|---:|---:|---:|---:|---|');
    for (const r of rows) console.log(r);
  } finally {
    await vault.destroy().catch(() => undefined);
  }
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
