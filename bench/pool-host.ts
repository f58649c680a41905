// bench/pool-host: #17 goal 4 as the issue sets it for a multiplexing host: CPU-bound
// throughput of one plugin process with its CPU pool at 1 thread against N threads
// (VAULT_PLUGIN_TS_WORKERS), driven over the plugin's own gRPC services by a go-plugin
// client (test/support/host.ts: AutoMTLS, Setup with a multiplex id, Storage served back
// over the broker), with no Vault in the loop. bench/pool.ts measures the same two cases
// through Vault 1.8, where Vault's own CPU shares the machine's cores with the plugin.
//
// Two processes of the same executable, one per side, each with a transit mount (an
// rsa-2048 key) and a PKI mount (an EC root, an rsa-2048 role). Cases, each closed-loop from
// BENCH_CLIENTS (4) clients in a separate load process (bench/multiplex-load.ts, so that the
// client's work is not on this process's loop), in BENCH_SECONDS (6) windows of 1 s per side,
// alternating:
//   - transit sign, batch of BENCH_BATCH (100) inputs, pkcs1v15 / sha2-256;
//   - PKI issue from the rsa-2048 role (the leaf key generated in the plugin).
// Before the windows, results are checked on both sides: a batch equals, item by item and in
// order, the same inputs signed one request at a time, and verifies; an issued certificate
// carries an RSA-2048 key matching its private key. Prints req/s per side, the ratio pool ÷ 1
// thread, and the cores busy in the plugin and in the load process.
// BENCH_POOL (default: the cores), BENCH_EXE (default dist's), BENCH_ONLY=sign-rsa-batch,issue-rsa,
// BENCH_PLUGIN_NODE_OPTIONS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": the executable honours NODE_OPTIONS).
// Run: npx tsx bench/pool-host.ts
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { handleRequest, launchPlugin, mountBackend, type LaunchedPlugin } from '../test/support/host';
import { MemoryStorage } from '../src/storage/storage';
import type { LoadResult, LoadSpec } from './multiplex-load';
import { forkLoadProcess } from './load-process';
import { cpuSnapshot, cpuSpent } from './proccpu';

const EXE = path.resolve(process.env.BENCH_EXE ?? path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts'));
const POOL = Number(process.env.BENCH_POOL ?? availableParallelism());
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
const PLUGIN_NODE_OPTIONS = process.env.BENCH_PLUGIN_NODE_OPTIONS;

type Side = 'one' | 'pool';
const SIDES: Side[] = ['one', 'pool'];
const label = (s: Side) => (s === 'one' ? '1 thread' : `pool of ${POOL}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Mount {
  backend: grpc.Client;
  md: Record<string, string>;
}
interface Plugin {
  proc: LaunchedPlugin;
  transit: Mount & { close(): void };
  pki: Mount & { close(): void };
}

const req = handleRequest;

const inputs = Array.from({ length: BATCH }, (_, i) => ({ input: randomBytes(64).toString('base64'), reference: String(i) }));
const signData = { batch_input: inputs, hash_algorithm: 'sha2-256', signature_algorithm: 'pkcs1v15' };
const issueData = { common_name: 'leaf.bench.example', ttl: '1h' };

interface Case {
  id: string;
  label: string;
  mount: 'transit' | 'pki';
  request: LoadSpec['request'];
  expect: string;
}
const CASES: Case[] = [
  {
    id: 'sign-rsa-batch',
    label: `transit sign, batch of ${BATCH}, rsa-2048 pkcs1v15`,
    mount: 'transit',
    request: { operation: 'update', path: 'sign/rsa', data: signData },
    expect: '{"batch_results":[',
  },
  {
    id: 'issue-rsa',
    label: 'pki issue, rsa-2048 role',
    mount: 'pki',
    request: { operation: 'update', path: 'issue/rsa', data: issueData },
    expect: '{"',
  },
].filter((c) => !ONLY.length || ONLY.includes(c.id)) as Case[];

async function start(side: Side): Promise<Plugin> {
  const proc = await launchPlugin(EXE, 'backend', {
    versions: '5',
    env: { VAULT_PLUGIN_TS_WORKERS: String(side === 'one' ? 1 : POOL), ...(PLUGIN_NODE_OPTIONS ? { NODE_OPTIONS: PLUGIN_NODE_OPTIONS } : {}) },
  });
  const transit = await mountBackend(proc, new MemoryStorage(), `t-${side}`, { engine: 'transit' });
  await req(transit, 'create', 'keys/rsa', { type: 'rsa-2048' });
  const pki = await mountBackend(proc, new MemoryStorage(), `p-${side}`, { engine: 'pki' });
  await req(pki, 'update', 'root/generate/internal', { common_name: 'bench root', key_type: 'ec', key_bits: 256, ttl: '8760h' });
  await req(pki, 'update', 'roles/rsa', { allow_any_name: true, key_type: 'rsa', key_bits: 2048, max_ttl: '24h' });
  return { proc, transit, pki };
}

/** Each side gives the same signatures, in the same order, as one request per input, and they verify. */
async function checkResults(side: Side, p: Plugin): Promise<void> {
  const batch = (await req(p.transit, 'update', 'sign/rsa', signData)).batch_results as Array<{ signature: string; reference: string }>;
  if (batch.length !== BATCH) throw new Error(`${side}: ${batch.length} batch results for ${BATCH} inputs`);
  for (const i of [0, 1, Math.floor(BATCH / 2), BATCH - 1]) {
    const single = (await req(p.transit, 'update', 'sign/rsa', { input: inputs[i].input, hash_algorithm: 'sha2-256', signature_algorithm: 'pkcs1v15' }))
      .signature;
    if (batch[i].signature !== single || batch[i].reference !== String(i)) throw new Error(`${side}: batch item ${i} differs from the same input signed alone`);
  }
  const verify = (
    await req(p.transit, 'update', 'verify/rsa', {
      batch_input: inputs.map((x, i) => ({ input: x.input, signature: batch[i].signature })),
      hash_algorithm: 'sha2-256',
      signature_algorithm: 'pkcs1v15',
    })
  ).batch_results as Array<{ valid: boolean }>;
  if (verify.length !== BATCH || !verify.every((r) => r.valid)) throw new Error(`${side}: a batch signature does not verify`);
  const issued = await req(p.pki, 'update', 'issue/rsa', issueData);
  const pub = new X509Certificate(issued.certificate).publicKey;
  if (pub.asymmetricKeyType !== 'rsa' || pub.asymmetricKeyDetails?.modulusLength !== 2048) throw new Error(`${side}: issued key is not RSA-2048`);
  const fromPriv = createPublicKey(createPrivateKey(issued.private_key)).export({ format: 'der', type: 'spki' });
  if (!fromPriv.equals(pub.export({ format: 'der', type: 'spki' }))) throw new Error(`${side}: issued private key does not match the certificate`);
}

interface Window {
  done: number;
  errors: number;
  secs: number;
  pluginMs: number;
  loadMs: number;
  firstError?: string;
}

/** One window: a fresh load process, its steady state reached, then `ms` timed between two marks. */
async function window(p: Plugin, c: Case, ms: number): Promise<Window> {
  const { child, next } = forkLoadProcess();
  const m = c.mount === 'transit' ? p.transit : p.pki;
  const ready = next<boolean>('ready');
  child.send({ handshake: p.proc.handshake, identity: p.proc.identity, md: m.md, clients: CLIENTS, request: c.request, expect: c.expect } satisfies LoadSpec);
  await ready;
  await sleep(300); // every client in its loop
  const pids = [p.proc.proc.pid!, child.pid!];
  let mark = next<LoadResult>('mark');
  child.send('mark');
  const a = await mark;
  const cpu0 = cpuSnapshot(pids);
  const t0 = performance.now();
  await sleep(ms);
  mark = next<LoadResult>('mark');
  child.send('mark');
  const b = await mark;
  const t1 = performance.now();
  const cpu1 = cpuSnapshot(pids);
  const result = next<LoadResult>('result');
  child.send('stop');
  const end = await result;
  return {
    done: b.done - a.done,
    errors: b.errors - a.errors,
    secs: (t1 - t0) / 1000,
    pluginMs: cpuSpent(new Map([[pids[0], cpu0.get(pids[0])!]]), new Map([[pids[0], cpu1.get(pids[0])!]])),
    loadMs: cpuSpent(new Map([[pids[1], cpu0.get(pids[1])!]]), new Map([[pids[1], cpu1.get(pids[1])!]])),
    firstError: end.firstError,
  };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const load = [loadavg()[0]];
  const plugins = {} as Record<Side, Plugin>;
  try {
    for (const s of SIDES) plugins[s] = await start(s);
    for (const s of SIDES) await checkResults(s, plugins[s]);
    const rows: string[] = [];
    for (const c of CASES) {
      for (const s of SIDES) await window(plugins[s], c, 500); // warm-up
      const acc: Record<Side, Window> = {
        one: { done: 0, errors: 0, secs: 0, pluginMs: 0, loadMs: 0 },
        pool: { done: 0, errors: 0, secs: 0, pluginMs: 0, loadMs: 0 },
      };
      for (let r = 0; r < SECONDS; r++) {
        for (const s of r % 2 ? [...SIDES].reverse() : SIDES) {
          const w = await window(plugins[s], c, 1000);
          const a = acc[s];
          a.done += w.done;
          a.errors += w.errors;
          a.secs += w.secs;
          a.pluginMs += w.pluginMs;
          a.loadMs += w.loadMs;
          a.firstError ??= w.firstError;
        }
        load.push(loadavg()[0]);
      }
      const rate = (s: Side) => acc[s].done / acc[s].secs;
      const cores = (s: Side, k: 'pluginMs' | 'loadMs') => (acc[s][k] / 1000 / acc[s].secs).toFixed(2);
      const err = acc.one.errors + acc.pool.errors;
      const first = acc.one.firstError ?? acc.pool.firstError;
      rows.push(
        `| ${c.label} | ${rate('one').toFixed(1)} | ${rate('pool').toFixed(1)} | **${(rate('pool') / rate('one')).toFixed(2)}** | ${cores('one', 'pluginMs')} → ${cores('pool', 'pluginMs')} | ${cores('one', 'loadMs')} → ${cores('pool', 'loadMs')} | ${err}${first ? ` (${first.slice(0, 80)})` : ''} |`,
      );
    }
    console.log(
      `# bench/pool-host ${new Date().toISOString().slice(0, 16)}Z: go-plugin client, no Vault; ${CLIENTS} clients, ${SECONDS} × 1 s windows per side alternating, ${availableParallelism()} cores, ${process.version}`,
    );
    console.log(`executable: ${EXE}`);
    console.log(
      `load average (1 min) during the run: ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}; total ${((Date.now() - t0) / 1000).toFixed(0)} s; results checked on both sides (batch = singles, in order; signatures verify; issued keys match)`,
    );
    console.log('');
    console.log(`| case | ${label('one')} req/s | ${label('pool')} req/s | ratio | plugin cores busy, 1 thread → pool | load process cores | errors |`);
    console.log('|---|---:|---:|---:|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    for (const s of SIDES) {
      plugins[s]?.transit.close();
      plugins[s]?.pki.close();
      await plugins[s]?.proc.kill().catch(() => undefined);
    }
  }
}

// The Storage servers and gRPC channels of test/support/host.ts would keep the process alive.
void main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
