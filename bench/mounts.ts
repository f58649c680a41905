// bench/mounts: the cost of one plugin process per configuration, as Vault 1.8 runs database
// plugins (no multiplexing: one process per database/config entry). Through the real Vault
// (VAULT_BIN, default /work/shared/vault/vault) and one embedded PostgreSQL, it writes
// BENCH_CONFIGS (50) database configs with ours and with Vault's Go PostgreSQL plugin
// (shared/vault/plugins), each side on its own `database` mount, sides alternating over
// BENCH_ROUNDS rounds so the shared machine's background load falls on both, and prints:
//   - time to write all configs (sequentially, as an operator's script would), per-config median/p90;
//   - after BENCH_IDLE_MS of idle: plugin processes, and over them the sum and median of
//     Rss, Pss (a page shared by N processes counts 1/N: the executable's pages are shared
//     by every process of the same file), Private (Private_Clean + Private_Dirty) and Anonymous,
//     from /proc/<pid>/smaps_rollup;
//   - ratios ours ÷ Go.
// Run: npx tsx bench/mounts.ts (BENCH_CONFIGS=50 BENCH_ROUNDS=2 BENCH_IDLE_MS=10000).
// BENCH_PLUGIN_ENV='NAME=value,...' sets our plugin's environment in the catalog (e.g. NODE_OPTIONS).
// BENCH_BASELINE_EXE=<file> adds a third side: another build of ours (e.g. an older commit's).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startPostgres, type PgServer } from '../test/support/postgres';
import { PLUGIN_NAME, pluginProcesses, sleep, startDevVault, waitFor, type VaultNode } from '../test/support/vault';

process.env.VAULT_BIN ??= '/work/shared/vault/vault';
const GO_PLUGINS = path.join(path.dirname(process.env.VAULT_BIN), 'plugins');
const GO_NAME = 'vault-postgresql-database-plugin';
const CONFIGS = Number(process.env.BENCH_CONFIGS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
// 10 s: V8's memory reducer shrinks an idle heap about 5–8 s after the last activity.
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);
const PLUGIN_ENV: Record<string, string> = Object.fromEntries(
  (process.env.BENCH_PLUGIN_ENV ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
);

const BASELINE = process.env.BENCH_BASELINE_EXE;
type Side = 'ours' | 'go' | 'baseline';
const SIDES: Side[] = BASELINE ? ['ours', 'baseline', 'go'] : ['ours', 'go'];
const LABEL: Record<Side, string> = { ours: 'vault-plugin-ts', go: `Go ${GO_NAME}`, baseline: `vault-plugin-ts baseline (${BASELINE})` };
// A name that does not start with ours (processes are found by file-name prefix).
const FILE: Record<Side, string> = { ours: PLUGIN_NAME, go: GO_NAME, baseline: `baseline-${PLUGIN_NAME}` };

interface Mem {
  rss: number;
  pss: number;
  priv: number;
  anon: number;
}
interface Round {
  totalMs: number;
  perConfigMs: number[];
  procs: Mem[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))];
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mib = (kib: number) => kib / 1024;

/** smaps_rollup of one process, in KiB. */
function memOf(pid: number): Mem | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return undefined;
  }
  const k = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: k('Rss'), pss: k('Pss'), priv: k('Private_Clean') + k('Private_Dirty'), anon: k('Anonymous') };
}

async function api(v: VaultNode, method: string, p: string, body?: object): Promise<any> {
  const r = await v.http(method, p, { body, timeoutMs: 120_000 });
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.text.slice(0, 400)}`);
  return r.text ? r.json() : undefined;
}

async function round(v: VaultNode, pg: PgServer, side: Side, n: number): Promise<Round> {
  const mount = `db-${side}-${n}`;
  const plugin = FILE[side];
  await api(v, 'POST', `sys/mounts/${mount}`, { type: 'database' });
  const perConfigMs: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < CONFIGS; i++) {
    const t = process.hrtime.bigint();
    await api(v, 'POST', `${mount}/config/c${i}`, {
      plugin_name: plugin,
      connection_url: `postgres://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`,
      username: pg.user,
      password: pg.password,
      allowed_roles: '*',
    });
    perConfigMs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await sleep(IDLE_MS);
  const pids = pluginProcesses(v.pluginDir, plugin).map((p) => p.pid);
  const procs = pids.map(memOf).filter((m): m is Mem => !!m);
  // Unmounting closes every configuration: Vault stops their processes before the next round.
  await api(v, 'DELETE', `sys/mounts/${mount}`);
  await waitFor(`${side}'s plugin processes to exit`, () => pluginProcesses(v.pluginDir, plugin).length === 0, 60_000, 200);
  return { totalMs, perConfigMs, procs };
}

async function main(): Promise<void> {
  let pg: PgServer | undefined;
  let vault: VaultNode | undefined;
  const load: number[] = [os.loadavg()[0]];
  const t0 = Date.now();
  try {
    pg = await startPostgres();
    vault = await startDevVault();
    await vault.registerPlugin(PLUGIN_ENV);
    await vault.installPlugin(path.join(GO_PLUGINS, GO_NAME), 'database');
    if (BASELINE) await vault.installPlugin(BASELINE, 'database', FILE.baseline);
    const results: Record<Side, Round[]> = { ours: [], go: [], baseline: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which side goes first.
      for (const side of r % 2 ? [...SIDES].reverse() : SIDES) {
        results[side].push(await round(vault, pg, side, r));
        load.push(os.loadavg()[0]);
      }
    }
    const size = (s: Side) => fs.statSync(path.join(vault!.pluginDir, FILE[s])).size / 1048576;
    const lines: string[] = [];
    lines.push(
      `# bench/mounts ${new Date().toISOString().slice(0, 16)}Z: ${CONFIGS} database configs per side through Vault 1.8.0-dev, ${ROUNDS} rounds alternating, idle ${IDLE_MS} ms before memory, ${process.version}`,
    );
    lines.push(
      `load average (1 min) during the run: ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}; ${os.cpus().length} cores; total ${((Date.now() - t0) / 1000).toFixed(0)} s${Object.keys(PLUGIN_ENV).length ? `; our plugin's env: ${JSON.stringify(PLUGIN_ENV)}` : ''}`,
    );
    lines.push('');
    lines.push(
      '| side | file MiB | write all configs s (median of rounds) | per config ms median | p90 | processes | total RSS MiB | total PSS MiB | total Private MiB | RSS/process MiB | PSS/process | Private/process | Anonymous/process |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const agg = (s: Side) => {
      const rs = results[s];
      const all = rs.flatMap((r) => r.procs);
      const pick = (f: (m: Mem) => number) => median(rs.map((r) => sum(r.procs.map(f))));
      return {
        total: median(rs.map((r) => r.totalMs)) / 1000,
        per: rs.flatMap((r) => r.perConfigMs),
        procs: median(rs.map((r) => r.procs.length)),
        rss: mib(pick((m) => m.rss)),
        pss: mib(pick((m) => m.pss)),
        priv: mib(pick((m) => m.priv)),
        rssEach: mib(median(all.map((m) => m.rss))),
        pssEach: mib(median(all.map((m) => m.pss))),
        privEach: mib(median(all.map((m) => m.priv))),
        anonEach: mib(median(all.map((m) => m.anon))),
      };
    };
    const a = Object.fromEntries(SIDES.map((s) => [s, agg(s)])) as Record<Side, ReturnType<typeof agg>>;
    for (const s of SIDES) {
      const x = a[s];
      lines.push(
        `| ${LABEL[s]} | ${size(s).toFixed(1)} | ${x.total.toFixed(2)} | ${median(x.per).toFixed(0)} | ${p90(x.per).toFixed(0)} | ${x.procs} | ${x.rss.toFixed(0)} | ${x.pss.toFixed(0)} | ${x.priv.toFixed(0)} | ${x.rssEach.toFixed(1)} | ${x.pssEach.toFixed(1)} | ${x.privEach.toFixed(1)} | ${x.anonEach.toFixed(1)} |`,
      );
    }
    for (const s of SIDES.filter((x) => x !== 'go')) {
      const r = (k: keyof typeof a.ours) => ((a[s][k] as number) / (a.go[k] as number)).toFixed(2);
      lines.push(
        `| ratio ${s === 'ours' ? 'ours' : 'baseline'} ÷ Go | ${(size(s) / size('go')).toFixed(2)} | **${r('total')}** | ${(median(a[s].per) / median(a.go.per)).toFixed(2)} | | | ${r('rss')} | ${r('pss')} | ${r('priv')} | **${r('rssEach')}** | ${r('pssEach')} | ${r('privEach')} | ${r('anonEach')} |`,
      );
    }
    lines.push('');
    lines.push(`rounds (s to write all configs): ${SIDES.map((s) => `${s} ${results[s].map((x) => (x.totalMs / 1000).toFixed(2)).join(', ')}`).join('; ')}`);
    console.log(lines.join('\n'));
  } finally {
    if (vault) await vault.destroy().catch(() => undefined);
    if (pg) await pg.stop().catch(() => undefined);
  }
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
