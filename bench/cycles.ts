// bench/cycles: does closing a configuration free everything? One plugin process per role
// (the built executable over its real gRPC services, test/support/host.ts), BENCH_CYCLES
// (10,000) create/use/close cycles, each with its own multiplex id, as a multiplexing Vault
// mounts and unmounts:
//   - secrets role: Setup (a new broker listener serving Storage, as Vault gives each mount)
//     → one request that writes storage (even cycles transit `keys/k`, odd cycles PKI
//     `roles/r`) → Cleanup;
//   - database role: Initialize (verify_connection true: the pool connects to an embedded
//     PostgreSQL) → Close.
// Every BENCH_SAMPLE_EVERY (1000) cycles the plugin writes a heap snapshot (started with
// --heapsnapshot-signal; V8 collects garbage fully before it writes one): the live JS heap is
// the snapshot's total, RSS and Anonymous come from smaps_rollup right after. Growth per cycle
// is the least-squares slope over the samples after the first; the object kinds whose count
// grew most between the first and last sample are listed (where a leak would show).
// Run: npm run bench:cycles
import * as fs from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { call, launchPlugin, mountBackend, type LaunchedPlugin } from '../test/support/host';
import { startPostgres, type PgServer } from '../test/support/postgres';
import { MemoryStorage } from '../src/storage/storage';
import { toStruct } from '../src/goplugin/wellknown';

const EXE = process.env.BENCH_EXE ?? path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts');
const CYCLES = Number(process.env.BENCH_CYCLES ?? 10_000);
const EVERY = Number(process.env.BENCH_SAMPLE_EVERY ?? 1000);
const ROLES = (process.env.BENCH_ROLES ?? 'secrets,database').split(',');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  cycle: number;
  rssKiB: number;
  anonKiB: number;
  heapKiB: number;
  kinds: Map<string, number>;
}

/** The plugin writes a heap snapshot (after a full GC) into dir; its total and per-kind counts, then smaps. */
async function sample(p: LaunchedPlugin, dir: string, cycle: number): Promise<Sample> {
  const pid = p.proc.pid!;
  process.kill(pid, 'SIGUSR2');
  let file = '';
  let snap: { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] } | undefined;
  let lastSize = -1;
  for (const end = Date.now() + 120_000; !snap && Date.now() < end; await sleep(300)) {
    file ||= fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot')) ?? '';
    if (!file) continue;
    const size = fs.statSync(path.join(dir, file)).size;
    if (size !== lastSize) {
      lastSize = size; // still being written
      continue;
    }
    try {
      snap = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    } catch {
      /* not complete yet */
    }
  }
  if (!snap) throw new Error('no complete heap snapshot from the plugin in 120 s');
  fs.rmSync(path.join(dir, file));
  const fields = snap.snapshot.meta.node_fields;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const types = snap.snapshot.meta.node_types[0];
  let heap = 0;
  const kinds = new Map<string, number>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    heap += snap.nodes[i + sizeAt];
    const kind = `${types[snap.nodes[i + typeAt]]}:${snap.strings[snap.nodes[i + nameAt]].slice(0, 60)}`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const smaps = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const k = (n: string) => Number(new RegExp(`^${n}:\\s+(\\d+) kB`, 'm').exec(smaps)![1]);
  return { cycle, rssKiB: k('Rss'), anonKiB: k('Anonymous'), heapKiB: heap / 1024, kinds };
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}

async function run(role: string, cycle: (i: number) => Promise<void>, p: LaunchedPlugin, dir: string): Promise<string[]> {
  const t0 = Date.now();
  // Warm-up: code compiled, caches and pools at their working size, before the first sample.
  for (let i = 0; i < Math.min(EVERY, 500); i++) await cycle(-1 - i);
  const samples = [await sample(p, dir, 0)];
  for (let i = 0; i < CYCLES; i++) {
    await cycle(i);
    if ((i + 1) % EVERY === 0) samples.push(await sample(p, dir, i + 1));
  }
  const secs = (Date.now() - t0) / 1000;
  const tail = samples.slice(1);
  // A leak grows linearly; JIT code and feedback grow towards a ceiling: compare the whole run with its second half.
  const half = samples.slice(Math.floor(samples.length / 2));
  const per = (f: (s: Sample) => number, over = tail) =>
    slope(
      over.map((s) => s.cycle),
      over.map((s) => f(s) * 1024),
    );
  const first = samples[0];
  const last = samples[samples.length - 1];
  const grown = [...last.kinds]
    .map(([kind, n]) => [kind, n - (first.kinds.get(kind) ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8);
  const out = [
    `### ${role}: ${CYCLES} cycles in ${secs.toFixed(0)} s (${((secs * 1000) / CYCLES).toFixed(1)} ms per cycle)`,
    '',
    '| cycles | RSS MiB | Anonymous MiB | live JS heap MiB (after full GC) |',
    '|---:|---:|---:|---:|',
    ...samples.map((s) => `| ${s.cycle} | ${(s.rssKiB / 1024).toFixed(1)} | ${(s.anonKiB / 1024).toFixed(1)} | ${(s.heapKiB / 1024).toFixed(2)} |`),
    '',
    `Growth per cycle (slope over cycles ${tail[0].cycle}–${last.cycle}): RSS **${per((s) => s.rssKiB).toFixed(1)} B**, Anonymous ${per((s) => s.anonKiB).toFixed(1)} B, live JS heap **${per((s) => s.heapKiB).toFixed(1)} B**; over the second half (${half[0].cycle}–${last.cycle}): RSS ${per((s) => s.rssKiB, half).toFixed(1)} B, live JS heap ${per((s) => s.heapKiB, half).toFixed(1)} B.`,
    `Object kinds grown most from cycle 0 to ${last.cycle}: ${grown.length ? grown.map(([k, d]) => `${k} +${d}`).join(', ') : 'none'}.`,
    '',
  ];
  return out;
}

async function secrets(): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'bench-cycles-'));
  const p = await launchPlugin(EXE, 'backend', { versions: '5', env: { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}` } });
  try {
    const cycle = async (i: number) => {
      const id = `c${i}`;
      const engine = i % 2 ? 'pki' : 'transit';
      const m = await mountBackend(p, new MemoryStorage(), id, { engine });
      try {
        const [op, at, data] =
          engine === 'transit'
            ? ['update', 'keys/k', { type: 'aes256-gcm96' }]
            : ['update', 'roles/r', { allow_any_name: true, key_type: 'ec', key_bits: 256 }];
        const r = await call<{ response?: { data?: string }; err?: { err_msg: string } }>(
          m.backend,
          'HandleRequest',
          { request: { operation: op, path: at, data: JSON.stringify(data) } },
          m.md,
        );
        if (r.err?.err_msg || JSON.parse(r.response?.data || '{}').error) throw new Error(`${engine} ${at}: ${r.err?.err_msg ?? r.response?.data}`);
        await call(m.backend, 'Cleanup', {}, m.md);
      } finally {
        m.close();
      }
    };
    return await run('secrets role: Setup → one storage-writing request → Cleanup', cycle, p, dir);
  } finally {
    await p.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function database(pg: PgServer): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'bench-cycles-'));
  const p = await launchPlugin(EXE, 'database', { env: { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}` } });
  try {
    const db = p.client<grpc.Client>('dbplugin.v5.Database');
    const url = `postgres://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`;
    const cycle = async (i: number) => {
      const md = { multiplex_id: `c${i}` };
      await call(db, 'Initialize', { config_data: toStruct({ connection_url: url, username: pg.user, password: pg.password }), verify_connection: true }, md);
      await call(db, 'Close', {}, md);
    };
    return await run('database role: Initialize (verify_connection true) → Close', cycle, p, dir);
  } finally {
    await p.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const load = [loadavg()[0]];
  const out: string[] = [];
  if (ROLES.includes('secrets')) out.push(...(await secrets()));
  load.push(loadavg()[0]);
  if (ROLES.includes('database')) {
    const pg = await startPostgres();
    try {
      out.push(...(await database(pg)));
    } finally {
      await pg.stop();
    }
  }
  load.push(loadavg()[0]);
  console.log(
    `# bench/cycles ${new Date().toISOString().slice(0, 16)}Z: ${path.basename(EXE)}, ${process.version}; load average (1 min) ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} on 2 cores`,
  );
  console.log('');
  for (const l of out) console.log(l);
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
