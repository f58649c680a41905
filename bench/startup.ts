// bench/startup: exec-to-handshake time and idle RSS of the single executable, side by
// side with the floor of any Node program: `node -e 0` (time to exit) and an idle
// `node -e "setInterval(...)"` (RSS). Run: npx tsx bench/startup.ts
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateIdentity } from '../src/goplugin/autotls';
import { DATABASE_COOKIE, BACKEND_COOKIE } from '../src/goplugin/env';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const exe = path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts');

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ms from spawn until the first stdout line; RSS after idling `idleMs`. */
async function handshake(env: Record<string, string>, idleMs: number): Promise<{ ms: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  const p = spawn(exe, [], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((res, rej) => {
    p.stdout.once('data', () => res());
    p.once('exit', (c) => rej(new Error(`exited ${c}`)));
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await sleep(idleMs);
  const rss = rssMiB(p.pid!);
  p.kill('SIGTERM');
  await new Promise((r) => p.once('exit', r));
  return { ms, rss };
}

async function nodeFloor(): Promise<{ ms: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  await new Promise((r) => spawn(process.execPath, ['-e', '0'], { stdio: 'ignore', env: {} }).once('exit', r));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', env: {} });
  await sleep(500);
  const rss = rssMiB(idle.pid!);
  idle.kill();
  await new Promise((r) => idle.once('exit', r));
  return { ms, rss };
}

async function main(): Promise<void> {
  const id = await generateIdentity();
  const base = { PLUGIN_CLIENT_CERT: id.certPem, PLUGIN_MIN_PORT: '10000', PLUGIN_MAX_PORT: '25000', VAULT_VERSION: '1.15.0' };
  const roles = {
    database: { ...base, [DATABASE_COOKIE.key]: DATABASE_COOKIE.value, PLUGIN_PROTOCOL_VERSIONS: '5,6' },
    backend: { ...base, [BACKEND_COOKIE.key]: BACKEND_COOKIE.value, PLUGIN_PROTOCOL_VERSIONS: '4,5' },
  };
  const floor = { ms: [] as number[], rss: [] as number[] };
  const res: Record<string, { ms: number[]; rss: number[] }> = { database: { ms: [], rss: [] }, backend: { ms: [], rss: [] } };
  for (let i = 0; i < RUNS; i++) {
    // Interleaved so machine noise hits every column alike.
    const f = await nodeFloor();
    floor.ms.push(f.ms); floor.rss.push(f.rss);
    for (const [role, env] of Object.entries(roles)) {
      const r = await handshake(env, 500);
      res[role].ms.push(r.ms); res[role].rss.push(r.rss);
    }
  }
  const size = (fs.statSync(exe).size / 1048576).toFixed(1);
  console.log(`# bench/startup ${new Date().toISOString().slice(0, 10)}: ${RUNS} interleaved runs, dist/vault-plugin-ts ${size} MiB, ${process.version}`);
  console.log('| what | median ms | p90 ms | ms vs node -e 0 | idle RSS MiB | RSS vs idle node |');
  console.log('|---|---:|---:|---:|---:|---:|');
  const fm = median(floor.ms), fr = median(floor.rss);
  console.log(`| node -e 0 (floor) | ${fm.toFixed(1)} | ${p90(floor.ms).toFixed(1)} | 1.00 | ${fr.toFixed(1)} | 1.00 |`);
  for (const [role, r] of Object.entries(res)) {
    const m = median(r.ms), rss = median(r.rss);
    console.log(`| ${role} role: exec → handshake line | ${m.toFixed(1)} | ${p90(r.ms).toFixed(1)} | ${(m / fm).toFixed(2)} | ${rss.toFixed(1)} | ${(rss / fr).toFixed(2)} |`);
  }
  console.log('targets: handshake < 150 ms, idle RSS < 80 MiB');
}

void main().catch((e) => { console.error(e); process.exit(1); });
