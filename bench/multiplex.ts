// bench/multiplex: cost per configuration and isolation between configurations when one
// plugin process serves every mount (a multiplexing Vault: database plugins from 1.10,
// secrets plugins from 1.12). Driven over the plugin's real gRPC services (the built
// executable, mTLS, Storage served back over the broker; test/support/host.ts).
//
// Memory: the process's smaps_rollup (Rss, Pss, Anonymous) before and after, per idle
// configuration = growth ÷ count, after BENCH_IDLE_MS of idle:
//   - database role: BENCH_DB_CONFIGS (1000) configurations (Initialize, one multiplex id
//     each) on one embedded PostgreSQL, verify_connection as BENCH_VERIFY (default true,
//     as Vault sends it);
//   - secrets role: BENCH_MOUNTS (200) mounts, half transit (one aes256 key each), half PKI
//     (an EC P-256 root and a role each).
// Isolation: p50/p99 of a trivial call on one mount, alone and while, on another mount of
// the same process,
//   - transit: BENCH_HEAVY_CLIENTS (2) clients loop large batches (encrypt, batch of
//     BENCH_BATCH=5000; sign rsa-2048, batch of 200);
//   - database: another configuration's database is slow (a TCP listener that accepts and
//     never answers) and BENCH_HEAVY_CLIENTS clients keep calling NewUser on it.
// The trivial call: transit `read keys/<name>` on its own mount; database `Type` on a healthy
// configuration (answered without its database). The transit batches are sent by a separate
// process (bench/multiplex-load.ts, its own connection to the plugin) so that encoding and
// parsing 5000-item requests does not delay the probe in this process; BENCH_LOAD_IN_PROCESS=1
// sends them from here instead (as before 2026-12-01), to show what that costs the probe.
// BENCH_ROLES (database,secrets) picks the roles; BENCH_EXE the executable (dist's); BENCH_PRIME_MOUNTS
// (0) secrets mounts made before the first measurement (the marginal cost of more).
// Run: npx tsx bench/multiplex.ts
import * as fs from 'node:fs';
import * as net from 'node:net';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { startPostgres, type PgServer } from '../test/support/postgres';
import { call, handleRequest, launchPlugin, mountBackend, type LaunchedPlugin } from '../test/support/host';
import type { LoadResult, LoadSpec } from './multiplex-load';
import { forkLoadProcess } from './load-process';
import { MemoryStorage } from '../src/storage/storage';
import { toStruct } from '../src/goplugin/wellknown';

const EXE = path.resolve(process.env.BENCH_EXE ?? path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts'));
const LOAD_IN_PROCESS = process.env.BENCH_LOAD_IN_PROCESS === '1';
const DB_CONFIGS = Number(process.env.BENCH_DB_CONFIGS ?? 1000);
const MOUNTS = Number(process.env.BENCH_MOUNTS ?? 200);
const PRIME_MOUNTS = Number(process.env.BENCH_PRIME_MOUNTS ?? 0);
const VERIFY = (process.env.BENCH_VERIFY ?? 'true') === 'true';
// Idle long enough for V8's memory reducer (5–8 s after the last activity) and for idle broker
// connections to close: VAULT_PLUGIN_TS_BROKER_IDLE_MS (30 s; builds before 2026-12-01's grpc-client.ts
// also waited for grpc-js's subchannel sweep, ≤ 10 s more).
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 45_000);
const PROBE_MS = Number(process.env.BENCH_PROBE_MS ?? 5000);
const HEAVY = Number(process.env.BENCH_HEAVY_CLIENTS ?? 2);
const BATCH = Number(process.env.BENCH_BATCH ?? 5000);
// BENCH_ROLES=secrets (or database) runs one role; BENCH_MEMORY_ONLY=1 skips the isolation probes.
const ROLES = (process.env.BENCH_ROLES ?? 'database,secrets').split(',');
const MEMORY_ONLY = process.env.BENCH_MEMORY_ONLY === '1';

interface Mem {
  rss: number;
  pss: number;
  anon: number;
}
function mem(pid: number): Mem {
  const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const k = (n: string) => Number(new RegExp(`^${n}:\\s+(\\d+) kB`, 'm').exec(t)![1]);
  return { rss: k('Rss'), pss: k('Pss'), anon: k('Anonymous') };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

/** A background load: started before the probe, stopped after it. */
interface Load {
  start(): Promise<void>;
  stop(): Promise<LoadResult>;
}

/** HEAVY closed loops of `op` in this process. */
function loadHere(op: () => Promise<unknown>): Load {
  let stop = false;
  const out: LoadResult = { done: 0, errors: 0 };
  let loops: Array<Promise<void>> = [];
  return {
    async start() {
      loops = Array.from({ length: HEAVY }, async () => {
        while (!stop) {
          try {
            await op();
            out.done++;
          } catch (e) {
            out.errors++;
            out.firstError ??= (e as Error).message;
          }
        }
      });
      await sleep(300); // let the load start
    },
    async stop() {
      stop = true;
      await Promise.all(loops);
      return out;
    },
  };
}

/** HEAVY closed loops of one HandleRequest, in a child process (bench/multiplex-load.ts). */
function loadInChild(spec: Omit<LoadSpec, 'clients'>): Load {
  const { child, next } = forkLoadProcess();
  return {
    async start() {
      const ready = next<boolean>('ready');
      child.send({ ...spec, clients: HEAVY } satisfies LoadSpec);
      await ready;
      await sleep(300); // let the load reach its steady state
    },
    async stop() {
      const result = next<LoadResult>('result');
      child.send('stop');
      return result;
    },
  };
}

/** Latencies of `op` in a closed loop (one caller) for `ms`, while `background` runs (if any). */
async function probe(
  ms: number,
  op: () => Promise<unknown>,
  background?: Load,
): Promise<{ p50: number; p99: number; max: number; n: number; bg?: LoadResult }> {
  await background?.start();
  const lat: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const t = process.hrtime.bigint();
    await op();
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    await sleep(2); // a steady trickle, not a second load
  }
  const bg = await background?.stop();
  return { p50: q(lat, 0.5), p99: q(lat, 0.99), max: Math.max(...lat), n: lat.length, bg };
}

const perItem = (before: Mem, after: Mem, n: number) => ({
  rss: (after.rss - before.rss) / n,
  pss: (after.pss - before.pss) / n,
  anon: (after.anon - before.anon) / n,
});

async function databaseRole(pg: PgServer, out: string[], iso: string[]): Promise<void> {
  const plugin = await launchPlugin(EXE, 'database');
  const slow = net.createServer(() => undefined); // accepts, never answers: a database that hangs
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  const slowPort = (slow.address() as net.AddressInfo).port;
  try {
    const db = plugin.client<grpc.Client>('dbplugin.v5.Database');
    const url = (port: number) => `postgres://{{username}}:{{password}}@${pg.host}:${port}/${pg.database}?sslmode=disable`;
    const init = (id: string, port: number, verify: boolean) =>
      call(
        db,
        'Initialize',
        { config_data: toStruct({ connection_url: url(port), username: pg.user, password: pg.password }), verify_connection: verify },
        { multiplex_id: id },
      );
    await init('warm', pg.port, true);
    await call(db, 'Type', {}, { multiplex_id: 'warm' });
    await sleep(IDLE_MS);
    const before = mem(plugin.proc.pid!);
    const t0 = Date.now();
    for (let i = 0; i < DB_CONFIGS; i++) await init(`c${i}`, pg.port, VERIFY);
    const initMs = Date.now() - t0;
    await sleep(IDLE_MS);
    const after = mem(plugin.proc.pid!);
    const per = perItem(before, after, DB_CONFIGS);
    out.push(
      `| database role: ${DB_CONFIGS} configs (verify_connection ${VERIFY}) | ${(before.rss / 1024).toFixed(1)} → ${(after.rss / 1024).toFixed(1)} | ${(before.anon / 1024).toFixed(1)} → ${(after.anon / 1024).toFixed(1)} | **${per.rss.toFixed(1)}** | ${per.pss.toFixed(1)} | ${per.anon.toFixed(1)} | ${(initMs / DB_CONFIGS).toFixed(1)} ms per Initialize |`,
    );
    if (MEMORY_ONLY) return;

    // Isolation: Type on a healthy config while others hammer NewUser on a hanging database.
    await init('slow', slowPort, false);
    const exp = { seconds: String(Math.floor(Date.now() / 1000) + 3600), nanos: 0 };
    const stmt = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;
    const trivial = () => call(db, 'Type', {}, { multiplex_id: 'c0' });
    const hang = () =>
      call(
        db,
        'NewUser',
        {
          username_config: { display_name: 'b', role_name: 'r' },
          password: 'Pw-' + randomBytes(9).toString('hex'),
          expiration: exp,
          statements: { Commands: [stmt] },
        },
        { multiplex_id: 'slow' },
      );
    // Light (the calls hang): sent from this process.
    await isolation('database: Type on a healthy config', trivial, 'NewUser on a config whose database hangs', loadHere(hang), iso);
  } finally {
    slow.close();
    await plugin.kill();
  }
}

async function isolation(what: string, trivial: () => Promise<unknown>, loadLabel: string, load: Load, out: string[]): Promise<void> {
  const alone = await probe(PROBE_MS, trivial);
  const loaded = await probe(PROBE_MS, trivial, load);
  const bg = loaded.bg!;
  out.push(
    `| ${what} | ${loadLabel} | ${alone.p50.toFixed(1)} / ${alone.p99.toFixed(1)} | ${loaded.p50.toFixed(1)} / **${loaded.p99.toFixed(1)}** | ${loaded.max.toFixed(0)} | ${loaded.n} | ${bg.done} done, ${bg.errors} failed${bg.firstError ? ` (${bg.firstError.slice(0, 80)})` : ''} |`,
  );
}

async function secretsRole(out: string[], iso: string[]): Promise<void> {
  // BENCH_BROKER_IDLE_MS, BENCH_BROKER_CONNECTIONS: the plugin's VAULT_PLUGIN_TS_BROKER_IDLE_MS and
  // VAULT_PLUGIN_TS_BROKER_CONNECTIONS (unset: its defaults).
  const idleEnv: Record<string, string> = {
    ...(process.env.BENCH_BROKER_IDLE_MS ? { VAULT_PLUGIN_TS_BROKER_IDLE_MS: process.env.BENCH_BROKER_IDLE_MS } : {}),
    ...(process.env.BENCH_BROKER_CONNECTIONS ? { VAULT_PLUGIN_TS_BROKER_CONNECTIONS: process.env.BENCH_BROKER_CONNECTIONS } : {}),
  };
  const plugin: LaunchedPlugin = await launchPlugin(EXE, 'backend', { versions: '5', env: idleEnv });
  const closers: Array<() => void> = [];
  try {
    const req = handleRequest;
    const mount = async (id: string, engine: 'transit' | 'pki') => {
      const m = await mountBackend(plugin, new MemoryStorage(), id, { engine });
      closers.push(m.close);
      if (engine === 'transit') {
        await req(m, 'create', 'keys/aes', { type: 'aes256-gcm96' });
      } else {
        await req(m, 'update', 'root/generate/internal', { common_name: `${id} root`, key_type: 'ec', key_bits: 256, ttl: '8760h' });
        await req(m, 'update', 'roles/ec', { allow_any_name: true, key_type: 'ec', key_bits: 256, max_ttl: '24h' });
      }
      return m;
    };
    const warmT = await mount('warm-t', 'transit');
    const warmP = await mount('warm-p', 'pki');
    await req(warmT, 'read', 'keys/aes', {});
    await req(warmP, 'update', 'issue/ec', { common_name: 'x.example' });
    // BENCH_PRIME_MOUNTS set up (and left idle) before the first measurement: the growth measured
    // is then the marginal cost of more mounts, without what the process pays once (pages of
    // the executable and of V8's optimising compiler read in, heap reservations).
    for (let i = 0; i < PRIME_MOUNTS; i++) await mount(`p${i}`, i % 2 ? 'pki' : 'transit');
    await sleep(IDLE_MS);
    const before = mem(plugin.proc.pid!);
    const t0 = Date.now();
    for (let i = 0; i < MOUNTS; i++) await mount(`m${i}`, i % 2 ? 'pki' : 'transit');
    const setupMs = Date.now() - t0;
    await sleep(IDLE_MS);
    const after = mem(plugin.proc.pid!);
    const per = perItem(before, after, MOUNTS);
    out.push(
      `| secrets role: ${MOUNTS} mounts (½ transit + key, ½ PKI + root + role)${PRIME_MOUNTS ? `, after ${PRIME_MOUNTS} idle ones` : ''} | ${(before.rss / 1024).toFixed(1)} → ${(after.rss / 1024).toFixed(1)} | ${(before.anon / 1024).toFixed(1)} → ${(after.anon / 1024).toFixed(1)} | **${per.rss.toFixed(1)}** | ${per.pss.toFixed(1)} | ${per.anon.toFixed(1)} | ${(setupMs / MOUNTS).toFixed(1)} ms per mount set-up |`,
    );
    if (MEMORY_ONLY) return;

    // Isolation: read a key on one mount while another mount runs large batches.
    const heavy = await mount('heavy', 'transit');
    await req(heavy, 'create', 'keys/rsa', { type: 'rsa-2048' });
    const plaintext = randomBytes(64).toString('base64');
    const encBatch = Array.from({ length: BATCH }, () => ({ plaintext }));
    const signBatch = Array.from({ length: 200 }, () => ({ input: plaintext }));
    const trivial = () => req(warmT, 'read', 'keys/aes', {});
    const heavyLoad = (request: LoadSpec['request']) =>
      LOAD_IN_PROCESS
        ? loadHere(() => req(heavy, request.operation, request.path, request.data))
        : loadInChild({ handshake: plugin.handshake, identity: plugin.identity, md: heavy.md, request });
    const where = LOAD_IN_PROCESS ? ' (load sent from the probe process)' : '';
    await isolation(
      'transit: read keys/aes on its mount',
      trivial,
      `encrypt batch of ${BATCH} on another mount${where}`,
      heavyLoad({ operation: 'update', path: 'encrypt/aes', data: { batch_input: encBatch } }),
      iso,
    );
    await isolation(
      'transit: read keys/aes on its mount',
      trivial,
      `sign batch of 200, rsa-2048, on another mount${where}`,
      heavyLoad({ operation: 'update', path: 'sign/rsa', data: { batch_input: signBatch } }),
      iso,
    );
  } finally {
    for (const c of closers) c();
    await plugin.kill();
  }
}

async function main(): Promise<void> {
  const load = [loadavg()[0]];
  const t0 = Date.now();
  const memRows: string[] = [];
  const isoRows: string[] = [];
  if (ROLES.includes('database')) {
    const pg = await startPostgres();
    try {
      await databaseRole(pg, memRows, isoRows);
      load.push(loadavg()[0]);
    } finally {
      await pg.stop();
    }
  }
  if (ROLES.includes('secrets')) {
    await secretsRole(memRows, isoRows);
    load.push(loadavg()[0]);
  }
  console.log(
    `# bench/multiplex ${new Date().toISOString().slice(0, 16)}Z: one process per role, ${process.version}; load average (1 min) ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} on 2 cores; total ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  console.log('');
  console.log(
    '| what | process RSS MiB before → after | Anonymous MiB before → after | RSS KiB per config | PSS KiB per config | Anonymous KiB per config | set-up |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const r of memRows) console.log(r);
  console.log('');
  console.log(
    `| trivial call | meanwhile, on another configuration (${HEAVY} clients) | alone p50 / p99 ms | under load p50 / p99 ms | max ms | calls | load |`,
  );
  console.log('|---|---|---:|---:|---:|---:|---|');
  for (const r of isoRows) console.log(r);
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
