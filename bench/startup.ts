// bench/startup: what each plugin launch costs Vault, for the single executable and, side
// by side in the same run, Vault's own Go plugins (shared/vault/plugins):
//   - file size, and the SHA256 of the whole file, which Vault computes at every launch
//     before it execs the plugin (node:crypto streaming read, and sha256sum);
//   - exec → handshake line (AutoMTLS: the plugin generates its certificate first);
//   - idle RSS after the handshake;
// plus the floor of any Node program: `node -e 0` (time to exit) and an idle node (RSS).
// Run: npx tsx bench/startup.ts (BENCH_RUNS=15 by default).
//
// The Go plugins get the environment Vault 1.8 gives them, except for secrets plugins:
// Vault 1.8 passes those a VAULT_UNWRAP_TOKEN and the plugin calls back into Vault's HTTP
// API for its TLS certificate, which cannot be timed without a running Vault. They are run
// with VAULT_PLUGIN_AUTOMTLS_ENABLED=true instead (what Vault 1.12+ does, and what ours
// does), so every row measures the same work: AutoMTLS certificate, listener, handshake.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateIdentity } from '../src/goplugin/autotls';
import { DATABASE_COOKIE, BACKEND_COOKIE } from '../src/goplugin/env';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const exe = path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts');
/** shared/vault/plugins beside the checkout or one of its parents (worktrees sit deeper). */
function findGoPlugins(): string {
  if (process.env.VAULT_PLUGINS_DIR) return process.env.VAULT_PLUGINS_DIR;
  for (let dir = path.resolve(__dirname, '..', '..'); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'shared', 'vault', 'plugins');
    if (fs.existsSync(candidate) || dir === path.dirname(dir)) return candidate;
  }
}
const GO_PLUGINS = findGoPlugins();

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** ms from spawn until the first stdout line; RSS after idling `idleMs`. */
async function handshake(file: string, env: Record<string, string>, idleMs: number): Promise<{ ms: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  const p = spawn(file, [], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  const line = await new Promise<string>((res, rej) => {
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) res(buf.slice(0, buf.indexOf('\n')));
    });
    p.once('exit', (c) => rej(new Error(`${path.basename(file)} exited ${c} before its handshake`)));
  });
  const ms = msSince(t0);
  await sleep(idleMs);
  const rss = rssMiB(p.pid!);
  p.kill('SIGTERM');
  await new Promise((r) => p.once('exit', r));
  // go-plugin's Go servers listen on a unix socket in TMPDIR and leave it behind when killed.
  const [, , network, address] = line.split('|');
  if (network === 'unix') fs.rmSync(address, { force: true });
  return { ms, rss };
}

/** What Vault does before each exec: SHA256 of the whole file (read + hash). */
async function hashMs(file: string): Promise<{ node: number; sha256sum: number }> {
  let t0 = process.hrtime.bigint();
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  h.digest();
  const node = msSince(t0);
  t0 = process.hrtime.bigint();
  spawnSync('sha256sum', [file], { stdio: 'ignore' });
  return { node, sha256sum: msSince(t0) };
}

async function nodeFloor(): Promise<{ ms: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  await new Promise((r) => spawn(process.execPath, ['-e', '0'], { stdio: 'ignore', env: {} }).once('exit', r));
  const ms = msSince(t0);
  const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', env: {} });
  await sleep(500);
  const rss = rssMiB(idle.pid!);
  idle.kill();
  await new Promise((r) => idle.once('exit', r));
  return { ms, rss };
}

interface Subject {
  label: string;
  file: string;
  env: Record<string, string>;
  compareTo?: string;
}
interface Samples {
  ms: number[];
  rss: number[];
  hashNode: number[];
  hashCli: number[];
}

async function main(): Promise<void> {
  const id = await generateIdentity();
  const base = { PLUGIN_CLIENT_CERT: id.certPem, PLUGIN_MIN_PORT: '10000', PLUGIN_MAX_PORT: '25000', VAULT_VERSION: '1.15.0' };
  const dbEnv = { ...base, [DATABASE_COOKIE.key]: DATABASE_COOKIE.value, PLUGIN_PROTOCOL_VERSIONS: '5,6' };
  const backendEnv = { ...base, [BACKEND_COOKIE.key]: BACKEND_COOKIE.value, PLUGIN_PROTOCOL_VERSIONS: '4,5' };
  const goEnv = { VAULT_PLUGIN_AUTOMTLS_ENABLED: 'true', VAULT_VERSION: '1.8.0-dev' };
  const go = (f: string) => path.join(GO_PLUGINS, f);
  const subjects: Subject[] = [
    { label: 'vault-plugin-ts, database role', file: exe, env: dbEnv, compareTo: 'Go postgresql-database-plugin' },
    { label: 'vault-plugin-ts, backend role', file: exe, env: backendEnv, compareTo: 'Go transit-plugin' },
  ];
  const goSubjects: Subject[] = [
    { label: 'Go postgresql-database-plugin', file: go('vault-postgresql-database-plugin'), env: { ...dbEnv, ...goEnv, PLUGIN_PROTOCOL_VERSIONS: '5' } },
    { label: 'Go transit-plugin', file: go('vault-transit-plugin'), env: { ...backendEnv, ...goEnv } },
    { label: 'Go pki-plugin', file: go('vault-pki-plugin'), env: { ...backendEnv, ...goEnv } },
  ].filter((s) => fs.existsSync(s.file));
  if (!goSubjects.length) console.error(`(no Go plugins in ${GO_PLUGINS}: set VAULT_PLUGINS_DIR; only ours is measured)`);
  const all = [...subjects, ...goSubjects];

  const floor = { ms: [] as number[], rss: [] as number[] };
  const res = new Map<string, Samples>(all.map((s) => [s.label, { ms: [], rss: [], hashNode: [], hashCli: [] }]));
  for (let i = 0; i < RUNS; i++) {
    // Interleaved so machine noise hits every column alike.
    const f = await nodeFloor();
    floor.ms.push(f.ms);
    floor.rss.push(f.rss);
    for (const s of all) {
      const r = res.get(s.label)!;
      const h = await hashMs(s.file);
      r.hashNode.push(h.node);
      r.hashCli.push(h.sha256sum);
      const x = await handshake(s.file, s.env, 500);
      r.ms.push(x.ms);
      r.rss.push(x.rss);
    }
  }

  const mib = (f: string) => fs.statSync(f).size / 1048576;
  console.log(
    `# bench/startup ${new Date().toISOString().slice(0, 10)}: ${RUNS} interleaved runs, dist/vault-plugin-ts ${mib(exe).toFixed(1)} MiB, ${process.version}`,
  );
  console.log('| what | median ms | p90 ms | ms vs node -e 0 | idle RSS MiB | RSS vs idle node |');
  console.log('|---|---:|---:|---:|---:|---:|');
  const fm = median(floor.ms),
    fr = median(floor.rss);
  console.log(`| node -e 0 (floor) | ${fm.toFixed(1)} | ${p90(floor.ms).toFixed(1)} | 1.00 | ${fr.toFixed(1)} | 1.00 |`);
  for (const s of subjects) {
    const r = res.get(s.label)!;
    const m = median(r.ms),
      rss = median(r.rss);
    console.log(
      `| ${s.label}: exec → handshake line | ${m.toFixed(1)} | ${p90(r.ms).toFixed(1)} | ${(m / fm).toFixed(2)} | ${rss.toFixed(1)} | ${(rss / fr).toFixed(2)} |`,
    );
  }
  console.log('targets: handshake < 150 ms, idle RSS < 80 MiB');
  console.log('');

  console.log("Per launch, side by side with Vault's Go plugins (AutoMTLS; medians):");
  console.log('| plugin | file MiB | sha256 ms (node:crypto) | sha256sum ms | exec → handshake ms | hash + handshake ms | idle RSS MiB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const s of all) {
    const r = res.get(s.label)!;
    const h = median(r.hashNode),
      m = median(r.ms);
    console.log(
      `| ${s.label} | ${mib(s.file).toFixed(1)} | ${h.toFixed(1)} | ${median(r.hashCli).toFixed(1)} | ${m.toFixed(1)} | ${(h + m).toFixed(1)} | ${median(r.rss).toFixed(1)} |`,
    );
  }
  console.log('');
  console.log('| ratio, ours ÷ Go | file size | sha256 | exec → handshake | hash + handshake | idle RSS |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const s of subjects) {
    const peer = goSubjects.find((g) => g.label === s.compareTo);
    if (!peer) continue;
    const a = res.get(s.label)!,
      b = res.get(peer.label)!;
    const ratio = (x: number, y: number) => (x / y).toFixed(2);
    const ah = median(a.hashNode),
      bh = median(b.hashNode),
      am = median(a.ms),
      bm = median(b.ms);
    console.log(
      `| ${s.label} ÷ ${peer.label} | ${ratio(mib(s.file), mib(peer.file))} | ${ratio(ah, bh)} | ${ratio(am, bm)} | ${ratio(ah + am, bh + bm)} | ${ratio(median(a.rss), median(b.rss))} |`,
    );
  }
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
