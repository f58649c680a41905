// bench/rpc: the plugin's own CPU per gRPC call (/proc utime+stime of the plugin process), for
// two builds side by side, without Vault: each build launched with Vault's environment and
// mounted with its Storage served back over the broker (test/support/host.ts), then driven
// in alternating rounds with the same calls. CPU per call moves far less with a shared
// machine's load than a rate does, so this is where small per-call changes show.
//
//   BENCH_A=dist/vault-plugin-ts BENCH_B=/tmp/old-build npx tsx bench/rpc.ts
// Settings: BENCH_ROUNDS (6), BENCH_MS per round and side (1500), BENCH_INFLIGHT (8),
// BENCH_ONLY (comma-separated case ids: read-key, encrypt, exists-encrypt, encrypt-batch, sign-rsa-batch, sign-ed25519,
// sign-p256, hmac,
// issue-ec, issue-ec-nostore, sign-csr), BENCH_PLUGIN_NODE_OPTIONS (given to both builds, e.g. "--cpu-prof
// --cpu-prof-dir=/tmp/prof": the executable honours NODE_OPTIONS), BENCH_A_NODE_OPTIONS and
// BENCH_B_NODE_OPTIONS (one side's, after those: one build with two V8 settings, side by side),
// BENCH_A_ENV and BENCH_B_ENV (space-separated NAME=value pairs for one side's plugin, e.g.
// BENCH_A_ENV=VAULT_PLUGIN_TS_HTTP2=js: one build with two settings, side by side).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { call, launchPlugin, mountBackend, type LaunchedPlugin } from '../test/support/host';
import { MemoryStorage } from '../src/storage/storage';
import { cpuSnapshot, cpuSpent } from './proccpu';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const MS = Number(process.env.BENCH_MS ?? 1500);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 8);
const ONLY = process.env.BENCH_ONLY?.split(',');

interface Side {
  label: string;
  plugin: LaunchedPlugin;
  transit: Mounted;
  pki: Mounted;
}
interface Mounted {
  req: (op: string, p: string, data?: object) => Promise<unknown>;
  exists: (p: string) => Promise<unknown>;
  close(): void;
}

async function mounted(plugin: LaunchedPlugin, engine: 'transit' | 'pki'): Promise<Mounted> {
  const m = await mountBackend(plugin, new MemoryStorage(), engine, { engine });
  const req = async (op: string, p: string, data: object = {}) => {
    const r = await call<{ response?: { data?: string }; err?: { err_msg: string } }>(
      m.backend,
      'HandleRequest',
      { request: { operation: op, path: p, data: JSON.stringify(data) } },
      m.md,
    );
    if (r.err?.err_msg) throw new Error(r.err.err_msg);
    const d = JSON.parse(r.response?.data || '{}');
    if (d?.error) throw new Error(d.error);
    return d;
  };
  const exists = (p: string) => call(m.backend, 'HandleExistenceCheck', { request: { operation: 'update', path: p } }, m.md);
  return { req, exists, close: m.close };
}

async function launch(label: string, exe: string): Promise<Side> {
  const nodeOptions = [process.env.BENCH_PLUGIN_NODE_OPTIONS, process.env[`BENCH_${label}_NODE_OPTIONS`]].filter(Boolean).join(' ');
  const env: Record<string, string> = nodeOptions ? { NODE_OPTIONS: nodeOptions } : {};
  for (const kv of (process.env[`BENCH_${label}_ENV`] ?? '').split(/\s+/).filter((p) => p.includes('=')))
    env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
  const plugin = await launchPlugin(path.resolve(exe), 'backend', { env });
  const transit = await mounted(plugin, 'transit');
  await transit.req('create', 'keys/aes', { type: 'aes256-gcm96' });
  await transit.req('create', 'keys/rsa', { type: 'rsa-2048' });
  await transit.req('create', 'keys/ed', { type: 'ed25519' });
  await transit.req('create', 'keys/p256', { type: 'ecdsa-p256' });
  const pki = await mounted(plugin, 'pki');
  await pki.req('update', 'root/generate/internal', { common_name: 'bench root', key_type: 'ec', key_bits: 256, ttl: '8760h' });
  await pki.req('update', 'roles/ec', { allow_any_name: true, key_type: 'ec', key_bits: 256, max_ttl: '24h' });
  await pki.req('update', 'roles/ec-nostore', { allow_any_name: true, key_type: 'ec', key_bits: 256, max_ttl: '24h', no_store: true });
  return { label, plugin, transit, pki };
}

const plaintext = randomBytes(64).toString('base64');
const batch = Array.from({ length: 100 }, () => ({ plaintext }));
const signBatch = Array.from({ length: 100 }, (_, i) => ({ input: randomBytes(64).toString('base64'), reference: String(i) }));
const csr = execFileSync(
  'openssl',
  ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=csr.bench.example'],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
);
const CASES: Array<{ id: string; run: (s: Side) => Promise<unknown> }> = [
  { id: 'read-key', run: (s) => s.transit.req('read', 'keys/aes') },
  // Vault asks HandleExistenceCheck before an encrypt; this drives HandleRequest only.
  { id: 'encrypt', run: (s) => s.transit.req('update', 'encrypt/aes', { plaintext }) },
  // What Vault sends for one encrypt: the existence check, then the update.
  {
    id: 'exists-encrypt',
    run: async (s) => {
      await s.transit.exists('encrypt/aes');
      return s.transit.req('update', 'encrypt/aes', { plaintext });
    },
  },
  { id: 'encrypt-batch', run: (s) => s.transit.req('update', 'encrypt/aes', { batch_input: batch }) },
  // bench/pool's transit case: its CPU per call is what bounds the pool's throughput.
  {
    id: 'sign-rsa-batch',
    run: (s) => s.transit.req('update', 'sign/rsa', { batch_input: signBatch, hash_algorithm: 'sha2-256', signature_algorithm: 'pkcs1v15' }),
  },
  { id: 'sign-ed25519', run: (s) => s.transit.req('update', 'sign/ed', { input: plaintext }) },
  { id: 'sign-p256', run: (s) => s.transit.req('update', 'sign/p256', { input: plaintext }) },
  { id: 'hmac', run: (s) => s.transit.req('update', 'hmac/aes', { input: plaintext }) },
  { id: 'issue-ec', run: (s) => s.pki.req('update', 'issue/ec', { common_name: 'svc.bench.example', ttl: '1h' }) },
  // The same without the certificate's storage write (a Storage.Put over the broker).
  { id: 'issue-ec-nostore', run: (s) => s.pki.req('update', 'issue/ec-nostore', { common_name: 'svc.bench.example', ttl: '1h' }) },
  { id: 'sign-csr', run: (s) => s.pki.req('update', 'sign/ec', { csr, common_name: 'csr.bench.example', ttl: '1h' }) },
];

async function drive(side: Side, op: (s: Side) => Promise<unknown>): Promise<{ calls: number; cpuMs: number; wallMs: number }> {
  const pid = side.plugin.proc.pid!;
  let calls = 0;
  const before = cpuSnapshot([pid]);
  const t0 = Date.now();
  const end = t0 + MS;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (Date.now() < end) {
        await op(side);
        calls++;
      }
    }),
  );
  return { calls, cpuMs: cpuSpent(before, cpuSnapshot([pid])), wallMs: Date.now() - t0 };
}

async function main(): Promise<void> {
  const sides = [await launch('A', process.env.BENCH_A ?? 'dist/vault-plugin-ts'), ...(process.env.BENCH_B ? [await launch('B', process.env.BENCH_B)] : [])];
  console.log(
    `# bench/rpc ${new Date().toISOString()}: A=${process.env.BENCH_A ?? 'dist/vault-plugin-ts'}${process.env.BENCH_A_ENV ? ` (${process.env.BENCH_A_ENV})` : ''}${process.env.BENCH_B ? ` B=${process.env.BENCH_B}` : ''}${process.env.BENCH_B_ENV ? ` (${process.env.BENCH_B_ENV})` : ''}; ${ROUNDS} rounds × ${MS} ms per side, ${INFLIGHT} in flight`,
  );
  console.log(
    `| case | ${sides.map((s) => `${s.label} µs CPU/call | ${s.label} calls/s`).join(' | ')} |${sides.length > 1 ? ' A/B CPU per call | A/B CPU per call, by round (min–max) |' : ''}`,
  );
  console.log(`|---|${sides.map(() => '---:|---:').join('|')}|${sides.length > 1 ? '---:|---|' : ''}`);
  for (const c of CASES.filter((x) => !ONLY || ONLY.includes(x.id))) {
    for (const s of sides) for (let i = 0; i < 20; i++) await c.run(s); // warm-up
    const acc = sides.map(() => ({ calls: 0, cpuMs: 0, wallMs: 0 }));
    const perRound: number[][] = sides.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate who goes first, so a change in background load falls on both alike.
      const order = r % 2 ? [...sides.keys()].reverse() : [...sides.keys()];
      for (const i of order) {
        const d = await drive(sides[i], c.run);
        acc[i].calls += d.calls;
        acc[i].cpuMs += d.cpuMs;
        acc[i].wallMs += d.wallMs;
        perRound[i].push((1000 * d.cpuMs) / d.calls);
      }
    }
    const us = acc.map((a) => (1000 * a.cpuMs) / a.calls);
    const cells = sides.map((_, i) => `${us[i].toFixed(0)} | ${((1000 * acc[i].calls) / acc[i].wallMs).toFixed(0)}`);
    const ratios = perRound[0].map((a, r) => a / perRound[1]?.[r]);
    console.log(
      `| ${c.id} | ${cells.join(' | ')} |${sides.length > 1 ? ` ${(us[0] / us[1]).toFixed(2)} | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} |` : ''}`,
    );
  }
  for (const s of sides) {
    s.transit.close();
    s.pki.close();
    await s.plugin.kill();
  }
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
