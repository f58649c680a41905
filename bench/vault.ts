// bench/vault: our plugin side by side with Vault's own engines through ONE real Vault
// (VAULT_BIN, default /work/shared/vault/vault: Vault 1.8.0-dev) over keep-alive HTTP:
//   ours      — dist/vault-plugin-ts as an external plugin (transit; PKI with engine=pki; database)
//   external  — Vault's own Go plugins built as external plugins (vault-transit-plugin,
//               vault-pki-plugin, vault-postgresql-database-plugin)
//   built-in  — Vault's in-process transit, pki and postgresql-database-plugin
// plus, for database/creds, raw CREATE ROLE through a pg pool on the same PostgreSQL.
// Each cell: a warm-up, then BENCH_SECONDS of closed-loop load from 1, 8 and 32 clients;
// only successful requests count, errors are reported. Engines run in rotating order
// within each cell row so background load on the shared machine hits all of them alike.
//
//   npm run bench:vault                              # the full run (about 7 minutes on 2 cores)
//   BENCH_SECONDS=1 BENCH_ONLY=encrypt,db-creds npm run bench:vault
//   BENCH_PROFILE=sign-p256 npm run bench:vault      # ours only, 8 clients, under node --cpu-prof
// Other settings: BENCH_WARM_SECONDS (0.5), BENCH_CLIENTS (1,8,32), BENCH_TLS_MODE
// (legacy, Vault 1.8's default; or automtls), BENCH_JSON (write raw results to this file),
// BENCH_PROFILE_SECONDS (15), BENCH_PERF=1 (with BENCH_PROFILE: Linux perf record of the plugin, the bundle
// run by node --perf-basic-prof, to read with perf report), BENCH_BASELINE (another build of the plugin, e.g. main's, run as a
// fourth side "baseline" in the same Vault and rounds: before/after in one run), BENCH_BASELINE_ENV
// (NAME=value pairs for the baseline's catalog env, e.g. the same build with VAULT_PLUGIN_TS_LISTEN=tcp).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from 'pg';
import { startPostgres, type PgServer } from '../test/support/postgres';
import { PLUGIN_NAME, pluginProcesses, sleep, startDevVault, waitFor, type TlsMode, type VaultNode } from '../test/support/vault';
import { drive, VaultHttp, type CellResult } from './load';
import { summarise, summaryMarkdown } from './cpuprofile';
import { cpuSnapshot, cpuSpent } from './proccpu';

process.env.VAULT_BIN ??= '/work/shared/vault/vault';
const GO_PLUGINS = path.join(path.dirname(process.env.VAULT_BIN), 'plugins');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARM_SECONDS = Number(process.env.BENCH_WARM_SECONDS ?? 0.5);
const CLIENTS = (process.env.BENCH_CLIENTS ?? '1,8,32').split(',').map(Number);
const MODE = (process.env.BENCH_TLS_MODE ?? 'legacy') as TlsMode;
const PROFILE = process.env.BENCH_PROFILE;
const PROFILE_SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 15);
/** With BENCH_PROFILE: sample the plugin with Linux perf (native code, the kernel, V8's GC) instead of --cpu-prof. */
const PERF = process.env.BENCH_PERF === '1';
const ONLY = process.env.BENCH_ONLY?.split(',');
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
/** Connections to PostgreSQL on every side: the three plugins' max_open_connections and the raw pool. */
const DB_POOL = 8;

type Engine = 'ours' | 'baseline' | 'external' | 'builtin';
const BASELINE = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : undefined;
/** Space-separated NAME=value pairs for the baseline's catalog entry: one build with two settings, side by side. */
const BASELINE_ENV = Object.fromEntries(
  (process.env.BENCH_BASELINE_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
// Not prefixed by PLUGIN_NAME, so pluginProcesses() tells the two builds' processes apart.
const BASELINE_NAME = 'vpt-baseline';
const ENGINES: Engine[] = BASELINE ? ['ours', 'baseline', 'external', 'builtin'] : ['ours', 'external', 'builtin'];
const ENGINE_LABEL: Record<Engine, string> = { ours: 'ours', baseline: 'baseline', external: 'Vault Go, external', builtin: 'Vault built-in' };
/** The catalog name of an engine's plugin (builtin: Vault's own type name, given). */
const pluginType = (e: Engine, ours: string, goName: string, builtin: string) =>
  e === 'ours' ? ours : e === 'baseline' ? BASELINE_NAME : e === 'external' ? goName : builtin;
const PROFILED_NAME = `${PLUGIN_NAME}-prof`;

interface SecretsCase {
  id: string;
  label: string;
  kind: 'transit' | 'pki';
  method: 'GET' | 'POST';
  path: string;
  body?: () => object;
  /** What one good answer looks like (checked once per engine before the cells). */
  check: (answer: Buffer) => boolean;
}

const input = randomBytes(64).toString('base64');
const data = (b: Buffer) => JSON.parse(b.toString('utf8')).data;
const isVaultValue = (v: unknown) => typeof v === 'string' && v.startsWith('vault:v1:');
const isCert = (v: unknown) => typeof v === 'string' && v.startsWith('-----BEGIN CERTIFICATE-----');
let csrPem = '';

const SECRETS_CASES: SecretsCase[] = [
  {
    id: 'encrypt',
    label: 'transit encrypt (aes256-gcm96, 64 B)',
    kind: 'transit',
    method: 'POST',
    path: 'encrypt/aes',
    body: () => ({ plaintext: input }),
    check: (b) => isVaultValue(data(b).ciphertext),
  },
  {
    id: 'encrypt-batch',
    label: 'transit encrypt, batch of 100 (req/s)',
    kind: 'transit',
    method: 'POST',
    path: 'encrypt/aes',
    body: () => ({ batch_input: Array.from({ length: 100 }, () => ({ plaintext: input })) }),
    check: (b) => data(b).batch_results?.length === 100 && data(b).batch_results.every((r: { ciphertext: string }) => isVaultValue(r.ciphertext)),
  },
  {
    id: 'sign-ed25519',
    label: 'transit sign ed25519',
    kind: 'transit',
    method: 'POST',
    path: 'sign/ed',
    body: () => ({ input }),
    check: (b) => isVaultValue(data(b).signature),
  },
  {
    id: 'sign-p256',
    label: 'transit sign ecdsa-p256',
    kind: 'transit',
    method: 'POST',
    path: 'sign/p256',
    body: () => ({ input }),
    check: (b) => isVaultValue(data(b).signature),
  },
  {
    id: 'hmac',
    label: 'transit hmac (aes256 key, sha2-256)',
    kind: 'transit',
    method: 'POST',
    path: 'hmac/aes',
    body: () => ({ input }),
    check: (b) => isVaultValue(data(b).hmac),
  },
  {
    id: 'read-key',
    label: 'transit read keys/aes (plugin hop)',
    kind: 'transit',
    method: 'GET',
    path: 'keys/aes',
    check: (b) => data(b).type === 'aes256-gcm96',
  },
  {
    id: 'issue-ec',
    label: 'pki issue, ec P-256 role',
    kind: 'pki',
    method: 'POST',
    path: 'issue/ec',
    body: () => ({ common_name: 'svc.bench.example', ttl: '1h' }),
    check: (b) => isCert(data(b).certificate) && /PRIVATE KEY/.test(data(b).private_key),
  },
  {
    id: 'issue-rsa',
    label: 'pki issue, rsa-2048 role',
    kind: 'pki',
    method: 'POST',
    path: 'issue/rsa',
    body: () => ({ common_name: 'svc.bench.example', ttl: '1h' }),
    check: (b) => isCert(data(b).certificate) && /PRIVATE KEY/.test(data(b).private_key),
  },
  {
    id: 'sign-csr',
    label: 'pki sign CSR (ec P-256)',
    kind: 'pki',
    method: 'POST',
    path: 'sign/ec',
    body: () => ({ csr: csrPem, common_name: 'csr.bench.example', ttl: '1h' }),
    check: (b) => isCert(data(b).certificate),
  },
  { id: 'ca-pem', label: 'pki read ca/pem (plugin hop)', kind: 'pki', method: 'GET', path: 'ca/pem', check: (b) => isCert(b.toString('utf8')) },
];
const DB_CASE = { id: 'db-creds', label: 'database/creds/<role>' };
const selected = (id: string) => (PROFILE ? PROFILE === id : !ONLY || ONLY.includes(id));

const mountOf = (kind: 'transit' | 'pki', e: Engine) => `${kind}-${e}`;
const rotate = <T>(xs: T[], by: number) => xs.map((_, i) => xs[(i + by) % xs.length]);
const say = (s: string) => process.stderr.write(s + '\n');

/** Vault API writes for setup (JSON bodies: no CLI quoting); throws with Vault's message. */
async function api(v: VaultNode, method: string, p: string, body?: object): Promise<any> {
  const r = await v.http(method, p, { body, timeoutMs: 300_000 });
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.text.slice(0, 400)}`);
  return r.text ? r.json() : undefined;
}

function makeCsr(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-bench-csr-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=csr.bench.example',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        path.join(dir, 'r.pem'),
      ],
      { stdio: 'pipe' },
    );
    return fs.readFileSync(path.join(dir, 'r.pem'), 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function setupTransit(v: VaultNode, e: Engine, ours: string): Promise<void> {
  const m = mountOf('transit', e);
  await api(v, 'POST', `sys/mounts/${m}`, { type: pluginType(e, ours, 'vault-transit-plugin', 'transit') });
  for (const [name, type] of [
    ['aes', 'aes256-gcm96'],
    ['ed', 'ed25519'],
    ['p256', 'ecdsa-p256'],
  ])
    await api(v, 'POST', `${m}/keys/${name}`, { type });
}

async function setupPki(v: VaultNode, e: Engine, ours: string): Promise<void> {
  const m = mountOf('pki', e);
  await api(v, 'POST', `sys/mounts/${m}`, {
    type: pluginType(e, ours, 'vault-pki-plugin', 'pki'),
    config: { max_lease_ttl: '87600h' },
    ...(e === 'ours' || e === 'baseline' ? { options: { engine: 'pki' } } : {}),
  });
  // The same CA (an EC P-256 key) and roles on every engine; issued certificates are stored (Vault's default).
  await api(v, 'POST', `${m}/root/generate/internal`, { common_name: 'bench root', key_type: 'ec', key_bits: 256, ttl: '8760h' });
  await api(v, 'POST', `${m}/roles/ec`, { allow_any_name: true, key_type: 'ec', key_bits: 256, max_ttl: '24h' });
  await api(v, 'POST', `${m}/roles/rsa`, { allow_any_name: true, key_type: 'rsa', key_bits: 2048, max_ttl: '24h' });
}

const CREATION = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;
const REVOCATION = 'DROP ROLE IF EXISTS "{{name}}";';

async function setupDatabase(v: VaultNode, pg: PgServer, engines: Engine[], ours: string): Promise<void> {
  await api(v, 'POST', 'sys/mounts/database', { type: 'database' });
  for (const e of engines) {
    await api(v, 'POST', `database/config/${e}`, {
      plugin_name: pluginType(e, ours, 'vault-postgresql-database-plugin', 'postgresql-database-plugin'),
      connection_url: `postgres://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`,
      username: pg.user,
      password: pg.password,
      max_open_connections: DB_POOL,
      max_idle_connections: DB_POOL,
      allowed_roles: e,
    });
    // Revocation by one DROP ROLE on every side: the same cheap cleanup for all three.
    await api(v, 'POST', `database/roles/${e}`, {
      db_name: e,
      creation_statements: [CREATION],
      revocation_statements: [REVOCATION],
      default_ttl: '1h',
      max_ttl: '2h',
    });
  }
}

/** Revoke every lease of a database role between cells (outside the timing); leftovers are dropped and counted. */
async function revokeCreds(v: VaultNode, raw: Pool, e: Engine): Promise<{ seconds: number; left: number }> {
  const t0 = Date.now();
  await api(v, 'PUT', `sys/leases/revoke-prefix/database/creds/${e}`);
  const seconds = (Date.now() - t0) / 1000;
  const left = Number((await raw.query(`SELECT count(*) AS n FROM pg_roles WHERE rolname LIKE 'v-%'`)).rows[0].n);
  if (left) await dropRoles(raw, 'v-%');
  await raw.query('VACUUM pg_authid, pg_auth_members');
  return { seconds, left };
}

async function dropRoles(raw: Pool, like: string): Promise<void> {
  await raw.query(
    `DO $$DECLARE r text; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE '${like}' LOOP EXECUTE format('DROP ROLE %I', r); END LOOP; END$$`,
  );
}

type Side = Engine | 'raw';
/** A cell's result with the CPU that Vault and the plugin process spent per successful request. */
interface Measured extends CellResult {
  vaultMs?: number;
  pluginMs?: number;
  /** The rate in each round (the sides' rounds interleave: round r of two sides ran back to back). */
  roundRates?: number[];
}
interface Cell {
  case: string;
  side: Side;
  result: Measured;
}
interface SideSpec {
  side: Side;
  op: (h: VaultHttp) => Promise<void>;
  pluginPids: () => number[];
  vault: boolean;
  cleanup?: (r: CellResult) => Promise<void>;
}

/** Several cells' worth of one side summed: rates from the totals; p50 the median of the rounds', p99 the worst. */
function combine(parts: CellResult[]): CellResult {
  const ok = parts.reduce((a, p) => a + p.ok, 0);
  const seconds = parts.reduce((a, p) => a + p.seconds, 0);
  const p50s = parts.map((p) => p.p50).sort((a, b) => a - b);
  return {
    clients: parts[0].clients,
    ok,
    errors: parts.reduce((a, p) => a + p.errors, 0),
    seconds,
    rate: ok / seconds,
    p50: p50s[Math.floor(p50s.length / 2)],
    p99: Math.max(...parts.map((p) => p.p99)),
    firstError: parts.find((p) => p.firstError)?.firstError,
  };
}

/**
 * One row of cells at one concurrency: each side warmed up, then ROUNDS rounds in which every
 * side runs SECONDS/ROUNDS in rotating order, so a change in the machine's background load
 * falls on all sides alike. A side's cleanup (lease revocation) runs after each of its turns, untimed.
 */
async function measureRow(v: VaultNode, clients: number, specs: SideSpec[], shift: number): Promise<Map<Side, Measured>> {
  const hs = new Map(specs.map((s) => [s.side, new VaultHttp(v.addr, 'root', clients)]));
  const parts = new Map<Side, { res: CellResult[]; vaultMs: number; pluginMs: number }>(specs.map((s) => [s.side, { res: [], vaultMs: 0, pluginMs: 0 }]));
  try {
    for (const s of specs) {
      if (WARM_SECONDS <= 0) continue;
      const w = await drive(clients, WARM_SECONDS * 1000, () => s.op(hs.get(s.side)!));
      await s.cleanup?.(w);
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const s of rotate(specs, shift + r)) {
        const vaultPid = v.pid!;
        const pids = s.pluginPids();
        const [v0, p0] = [cpuSnapshot([vaultPid]), cpuSnapshot(pids)];
        const res = await drive(clients, (SECONDS * 1000) / ROUNDS, () => s.op(hs.get(s.side)!));
        const [v1, p1] = [cpuSnapshot([vaultPid]), cpuSnapshot(pids)];
        const acc = parts.get(s.side)!;
        acc.res.push(res);
        acc.vaultMs += cpuSpent(v0, v1);
        acc.pluginMs += cpuSpent(p0, p1);
        await s.cleanup?.(res);
      }
    }
  } finally {
    for (const h of hs.values()) h.close();
  }
  const out = new Map<Side, Measured>();
  for (const s of specs) {
    const acc = parts.get(s.side)!;
    const c = combine(acc.res);
    out.set(s.side, {
      ...c,
      roundRates: acc.res.map((r) => r.rate),
      ...(s.vault && c.ok ? { vaultMs: acc.vaultMs / c.ok, pluginMs: s.side === 'builtin' ? 0 : acc.pluginMs / c.ok } : {}),
    });
  }
  return out;
}

const fmtRate = (r?: CellResult) => (r ? (r.rate >= 100 ? r.rate.toFixed(0) : r.rate.toFixed(1)) : '—');
const ratio = (a?: CellResult, b?: CellResult) => (a && b && b.rate > 0 ? (a.rate / b.rate).toFixed(2) : '—');

/** Write the profiled wrapper: the bundle under node --cpu-prof (the executable refuses --cpu-prof in NODE_OPTIONS). */
function profilingWrapper(dir: string, profDir: string): string {
  const main = path.resolve(__dirname, '..', 'dist', 'main.js');
  const f = path.join(dir, PROFILED_NAME);
  // BENCH_PERF: the same flags as the executable's execArgv, plus a map of JIT code for perf; the
  // directory argument marks the process for profiledPids either way.
  const flags = PERF ? `--perf-basic-prof --max-semi-space-size=1 --diagnostic-dir=${profDir}` : `--cpu-prof --cpu-prof-dir=${profDir}`;
  fs.writeFileSync(f, `#!/bin/sh\nexec ${process.execPath} ${flags} ${main} "$@"\n`, { mode: 0o755 });
  return f;
}

function profiledPids(profDir: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => !!m && (m[2].includes(`--cpu-prof-dir=${profDir} `) || m[2].includes(`--diagnostic-dir=${profDir} `)))
    .map((m) => Number(m[1]));
}

async function main(): Promise<void> {
  const started = Date.now();
  const load0 = os.loadavg();
  const wantDb = selected(DB_CASE.id);
  const cases = SECRETS_CASES.filter((c) => selected(c.id));
  if (!wantDb && !cases.length)
    throw new Error(`nothing selected (BENCH_ONLY/BENCH_PROFILE ids: ${[DB_CASE.id, ...SECRETS_CASES.map((c) => c.id)].join(', ')})`);
  const engines: Engine[] = PROFILE ? ['ours'] : ENGINES;
  const profDir = PROFILE ? fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-bench-prof-')) : '';
  if (profDir) fs.chmodSync(profDir, 0o777);
  let vault: VaultNode | undefined;
  let pg: PgServer | undefined;
  let raw: Pool | undefined;
  const stopAll = async () => {
    if (profDir)
      for (const pid of profiledPids(profDir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    await raw?.end().catch(() => undefined);
    raw = undefined;
    if (vault) {
      await vault.stop('SIGTERM', 10_000).catch(() => undefined);
      await vault.destroy().catch(() => undefined);
      vault = undefined;
    }
    if (pg) {
      await pg.stop().catch(() => undefined);
      pg = undefined;
    }
  };
  const onSignal = () => {
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const cells: Cell[] = [];
  const notes: string[] = [];
  try {
    if (wantDb) {
      pg = await startPostgres();
      raw = new Pool({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, max: DB_POOL });
    }
    vault = await startDevVault({ mode: MODE });
    const v = vault;
    await v.registerPlugin();
    let ours = PLUGIN_NAME;
    if (PROFILE) {
      const wrapper = profilingWrapper(profDir, profDir);
      for (const type of ['secret', 'database'] as const) await v.installPlugin(wrapper, type, PROFILED_NAME);
      ours = PROFILED_NAME;
    } else {
      await v.installPlugin(path.join(GO_PLUGINS, 'vault-transit-plugin'), 'secret');
      await v.installPlugin(path.join(GO_PLUGINS, 'vault-pki-plugin'), 'secret');
      await v.installPlugin(path.join(GO_PLUGINS, 'vault-postgresql-database-plugin'), 'database');
      if (BASELINE) for (const type of ['secret', 'database'] as const) await v.installPlugin(BASELINE, type, BASELINE_NAME, BASELINE_ENV);
    }
    csrPem = makeCsr();
    const kinds = new Set(cases.map((c) => c.kind));
    for (const e of engines) {
      if (kinds.has('transit')) await setupTransit(v, e, ours);
      if (kinds.has('pki')) await setupPki(v, e, ours);
    }
    if (wantDb) await setupDatabase(v, pg!, engines, ours);

    // One checked answer from every engine for every case: all of them do the same work.
    const once = new VaultHttp(v.addr, 'root', 1);
    try {
      for (const c of cases) {
        for (const e of engines) {
          const b = await once.ok(c.method, `${mountOf(c.kind, e)}/${c.path}`, c.body ? Buffer.from(JSON.stringify(c.body())) : undefined);
          if (!c.check(b)) throw new Error(`${c.id} on ${e}: unexpected answer ${b.toString('utf8').slice(0, 300)}`);
        }
      }
      if (wantDb) {
        for (const e of engines) {
          const d = data(await once.ok('GET', `database/creds/${e}`));
          const n = (await raw!.query('SELECT count(*) AS n FROM pg_roles WHERE rolname = $1', [d.username])).rows[0].n;
          if (Number(n) !== 1) throw new Error(`database/creds/${e}: role ${d.username} not in PostgreSQL`);
          await revokeCreds(v, raw!, e);
        }
      }
    } finally {
      once.close();
    }
    say(`# setup done in ${((Date.now() - started) / 1000).toFixed(1)} s; ${SECONDS}s per cell after ${WARM_SECONDS}s warm-up`);

    if (PROFILE) {
      await profileRun(v, cases[0], wantDb, profDir, raw);
      return;
    }

    const pidsOf = (file: string) => () => pluginProcesses(v.pluginDir, file).map((p) => p.pid);
    const pluginPids = (e: Engine, goFile: string) =>
      e === 'ours' ? pidsOf(PLUGIN_NAME) : e === 'baseline' ? pidsOf(BASELINE_NAME) : e === 'external' ? pidsOf(goFile) : () => [];
    const show = (id: string, n: number, side: Side, r: Measured) =>
      say(
        `${id} ${n} ${side}: ${fmtRate(r)} req/s` +
          (r.vaultMs !== undefined ? `, CPU ms/req Vault ${r.vaultMs.toFixed(2)} plugin ${r.pluginMs!.toFixed(2)}` : '') +
          (r.errors ? `, ${r.errors} errors: ${r.firstError}` : ''),
      );
    let row = 0;
    for (const c of cases) {
      const goFile = c.kind === 'transit' ? 'vault-transit-plugin' : 'vault-pki-plugin';
      const specs: SideSpec[] = engines.map((e) => {
        const p = `${mountOf(c.kind, e)}/${c.path}`;
        return {
          side: e,
          vault: true,
          pluginPids: pluginPids(e, goFile),
          op: (h) => h.ok(c.method, p, c.body ? Buffer.from(JSON.stringify(c.body())) : undefined).then(() => undefined),
        };
      });
      for (const n of CLIENTS) {
        for (const [side, result] of await measureRow(v, n, specs, row++)) {
          cells.push({ case: c.id, side, result });
          show(c.id, n, side, result);
        }
      }
    }
    if (wantDb) {
      let i = 0;
      const rawOp = async () => {
        const exp = new Date(Date.now() + 3600_000).toISOString();
        await raw!.query(
          `CREATE ROLE "raw-${i++}-${randomBytes(4).toString('hex')}" WITH LOGIN PASSWORD 'A1a-${randomBytes(15).toString('base64url')}' VALID UNTIL '${exp}'`,
        );
      };
      const revokeSeconds = new Map<Side, number>();
      const specs: SideSpec[] = [
        ...engines.map(
          (e): SideSpec => ({
            side: e,
            vault: true,
            pluginPids: pluginPids(e, 'vault-postgresql-database-plugin'),
            op: (h) => h.ok('GET', `database/creds/${e}`).then(() => undefined),
            cleanup: async () => {
              const r = await revokeCreds(v, raw!, e);
              revokeSeconds.set(e, (revokeSeconds.get(e) ?? 0) + r.seconds);
              if (r.left) notes.push(`db-creds ${e}: ${r.left} roles left behind after revoke-prefix (dropped)`);
            },
          }),
        ),
        {
          side: 'raw',
          vault: false,
          pluginPids: () => [],
          op: rawOp,
          cleanup: async () => {
            await dropRoles(raw!, 'raw-%');
            await raw!.query('VACUUM pg_authid, pg_auth_members');
          },
        },
      ];
      for (const n of CLIENTS) {
        revokeSeconds.clear();
        for (const [side, result] of await measureRow(v, n, specs, row++)) {
          cells.push({ case: DB_CASE.id, side, result });
          show(DB_CASE.id, n, side, result);
          if (side !== 'raw')
            notes.push(
              `db-creds ${n} clients ${side}: ${result.ok + result.errors} leases in the timed rounds, revoke-prefix ${revokeSeconds.get(side)!.toFixed(1)} s in all (warm-up included)`,
            );
        }
      }
    }
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (PROFILE) return;
  report(cells, notes, started, load0, cases);
}

function report(cells: Cell[], notes: string[], started: number, load0: number[], cases: SecretsCase[]): void {
  const get = (c: string, side: Side, n: number) => cells.find((x) => x.case === c && x.side === side && x.result.clients === n)?.result;
  const date = new Date().toISOString().slice(0, 10);
  const out: string[] = [];
  out.push(
    `# bench/vault ${date}: one Vault 1.8.0-dev dev server (secrets plugins in the ${MODE === 'legacy' ? 'default, wrapping-token (VAULT_UNWRAP_TOKEN)' : 'AutoMTLS'} TLS mode), ` +
      `keep-alive HTTP; per cell ${SECONDS}s of load in ${ROUNDS} rounds interleaved with the other sides, after ${WARM_SECONDS}s warm-up; successful requests/s`,
  );
  if (cases.length) {
    const bh = BASELINE ? [' baseline |', ' ours/baseline |', ' baseline/external |'] : ['', '', ''];
    out.push(
      '',
      `| case | clients | ours |${bh[0]} ${ENGINE_LABEL.external} | ${ENGINE_LABEL.builtin} | ours/external | ours/built-in |${bh[1]}${bh[2]} errors |`,
      `|---|---:|---:|${BASELINE ? '---:|' : ''}---:|---:|---:|---:|${BASELINE ? '---:|---:|' : ''}---|`,
    );
    for (const c of cases) {
      for (const n of CLIENTS) {
        const [o, x, b, base] = (['ours', 'external', 'builtin', 'baseline'] as Engine[]).map((e) => get(c.id, e, n));
        const errs =
          ENGINES.map((e) => [e, get(c.id, e, n)?.errors ?? 0] as const)
            .filter(([, k]) => k)
            .map(([e, k]) => `${e} ${k}`)
            .join(', ') || '0';
        const bc = BASELINE ? [` ${fmtRate(base)} |`, ` ${ratio(o, base)} | ${ratio(base, x)} |`] : ['', ''];
        out.push(`| ${c.label} | ${n} | ${fmtRate(o)} |${bc[0]} ${fmtRate(x)} | ${fmtRate(b)} | ${ratio(o, x)} | ${ratio(o, b)} |${bc[1]} ${errs} |`);
      }
    }
  }
  const db = cells.some((x) => x.case === DB_CASE.id);
  if (db) {
    out.push(
      '',
      `database/creds/<role> on an embedded PostgreSQL (SCRAM, fsync on), ${DB_POOL} connections on every side; creation statement \`${CREATION}\`; leases revoked between cells.`,
      '',
      `| clients | ours |${BASELINE ? ' baseline |' : ''} ${ENGINE_LABEL.external} | ${ENGINE_LABEL.builtin} | raw CREATE ROLE (pg) | ours/external |${BASELINE ? ' baseline/external |' : ''} ours/built-in | ours/raw | external/raw | errors |`,
      `|---:|---:|${BASELINE ? '---:|' : ''}---:|---:|---:|---:|${BASELINE ? '---:|' : ''}---:|---:|---:|---|`,
    );
    for (const n of CLIENTS) {
      const [o, x, b, r, base] = (['ours', 'external', 'builtin', 'raw', 'baseline'] as Side[]).map((s) => get(DB_CASE.id, s, n));
      const errs =
        ([...ENGINES, 'raw'] as Side[])
          .map((s) => [s, get(DB_CASE.id, s, n)?.errors ?? 0] as const)
          .filter(([, k]) => k)
          .map(([s, k]) => `${s} ${k}`)
          .join(', ') || '0';
      out.push(
        `| ${n} | ${fmtRate(o)} |${BASELINE ? ` ${fmtRate(base)} |` : ''} ${fmtRate(x)} | ${fmtRate(b)} | ${fmtRate(r)} | ${ratio(o, x)} |${BASELINE ? ` ${ratio(base, x)} |` : ''} ${ratio(o, b)} | ${ratio(o, r)} | ${ratio(x, r)} | ${errs} |`,
      );
    }
  }
  // CPU per request: what each side costs the machine, less sensitive to others' load than a rate.
  const cpuAt = CLIENTS.includes(8) ? 8 : CLIENTS[0];
  const cpu = (r?: Measured) => (r?.vaultMs === undefined ? '—' : `${r.vaultMs.toFixed(2)} + ${r.pluginMs!.toFixed(2)}`);
  const cpuTotal = (r?: Measured) => (r?.vaultMs === undefined ? undefined : r.vaultMs + r.pluginMs!);
  const cpuRatio = (a?: Measured, b?: Measured) => {
    const x = cpuTotal(a);
    const y = cpuTotal(b);
    return x !== undefined && y ? (x / y).toFixed(2) : '—';
  };
  out.push(
    '',
    `CPU ms per successful request at ${cpuAt} clients, Vault's process + the plugin's process(es) (/proc utime+stime):`,
    '',
    `| case | ours |${BASELINE ? ' baseline |' : ''} ${ENGINE_LABEL.external} | ${ENGINE_LABEL.builtin} | ours/external (total CPU) |`,
    `|---|---:|${BASELINE ? '---:|' : ''}---:|---:|---:|`,
  );
  for (const c of [...cases.map((x) => ({ id: x.id, label: x.label })), ...(db ? [DB_CASE] : [])]) {
    const [o, x, b, base] = (['ours', 'external', 'builtin', 'baseline'] as Engine[]).map((e) => get(c.id, e, cpuAt) as Measured | undefined);
    out.push(`| ${c.label} | ${cpu(o)} |${BASELINE ? ` ${cpu(base)} |` : ''} ${cpu(x)} | ${cpu(b)} | ${cpuRatio(o, x)} |`);
  }
  // The goals of the issue "Secrets role at least as fast as Vault's own Go plugins".
  // Each cell: the ratio over the whole cell, then the lowest and highest ratio of one round's rates
  // (the sides' rounds ran back to back): how far the machine's noise moves it.
  out.push('', '| goal | case | 1 client | 8 clients | 32 clients | met |', '|---|---|---:|---:|---:|---|');
  const goal = (title: string, c: string, label: string, vs: Engine, min: number, only?: number) => {
    const rs = CLIENTS.map((n) => {
      const a = get(c, 'ours', n);
      const b = get(c, vs, n);
      return a && b && b.rate > 0 ? a.rate / b.rate : undefined;
    });
    const spread = (n: number) => {
      const [a, b] = [get(c, 'ours', n) as Measured | undefined, get(c, vs, n) as Measured | undefined];
      const byRound = (a?.roundRates ?? []).map((r, i) => r / (b?.roundRates?.[i] ?? 0)).filter((x) => Number.isFinite(x));
      return byRound.length > 1 ? ` (${Math.min(...byRound).toFixed(2)}–${Math.max(...byRound).toFixed(2)})` : '';
    };
    const judged = CLIENTS.map((n, i) => (only === undefined || n === only ? rs[i] : undefined)).filter((r): r is number => r !== undefined);
    const cellsTxt = [1, 8, 32].map((n) => {
      const i = CLIENTS.indexOf(n);
      const r = i < 0 ? undefined : rs[i];
      return r === undefined ? '—' : only !== undefined && n !== only ? `(${r.toFixed(2)})` : r.toFixed(2) + spread(n);
    });
    out.push(`| ${title} | ${label} | ${cellsTxt.join(' | ')} | ${judged.length ? (judged.every((r) => r >= min) ? 'yes' : 'NO') : '—'} |`);
  };
  for (const c of cases) goal('≥ 1.0× external', c.id, c.label, 'external', 1.0);
  for (const c of cases.filter((x) => x.id.startsWith('issue-'))) goal('≥ 0.5× built-in', c.id, c.label, 'builtin', 0.5);
  if (db) goal('≥ 1.8× external at 8 clients', DB_CASE.id, DB_CASE.label, 'external', 1.8, 8);
  const errored = cells.filter((x) => x.result.errors);
  for (const x of errored) notes.push(`errors: ${x.case} ${x.result.clients} clients ${x.side}: ${x.result.errors}, first: ${x.result.firstError}`);
  const load1 = os.loadavg();
  notes.push(`load average (1 min) ${load0[0].toFixed(1)} at start, ${load1[0].toFixed(1)} at end, ${os.cpus().length} cores`);
  notes.push(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  out.push('', ...notes.map((n) => `- ${n}`));
  process.stdout.write(out.join('\n') + '\n');
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ date, mode: MODE, seconds: SECONDS, cells }, null, 1));
}

/** Ours only, 8 clients, for PROFILE_SECONDS under --cpu-prof; then a graceful stop writes the profile. */
async function profileRun(v: VaultNode, c: SecretsCase | undefined, db: boolean, profDir: string, raw?: Pool): Promise<void> {
  const p = db ? 'database/creds/ours' : `${mountOf(c!.kind, 'ours')}/${c!.path}`;
  const body = c?.body ? () => Buffer.from(JSON.stringify(c.body!())) : () => undefined;
  const h = new VaultHttp(v.addr, 'root', 8);
  let result: CellResult;
  try {
    await drive(8, 2000, () => h.ok(db ? 'GET' : c!.method, p, body()).then(() => undefined));
    // The plugin's processes, and Vault's (their parent) in a file of its own.
    const perf = PERF
      ? Promise.all([
          perfRecord(profiledPids(profDir), path.join(os.tmpdir(), `vpt-bench-${PROFILE}.perf.data`)),
          perfRecord([v.pid!], path.join(os.tmpdir(), `vpt-bench-${PROFILE}.vault.perf.data`)),
        ])
      : undefined;
    result = await drive(8, PROFILE_SECONDS * 1000, () => h.ok(db ? 'GET' : c!.method, p, body()).then(() => undefined));
    if (perf) {
      await perf;
      say(
        `# perf: ${fmtRate(result)} req/s while sampled (${result.ok} requests, ${result.errors} errors); data in ${os.tmpdir()}/vpt-bench-${PROFILE}.perf.data (Vault: .vault.perf.data)`,
      );
    }
  } finally {
    h.close();
  }
  if (PERF) {
    for (const pid of profiledPids(profDir)) process.kill(pid, 'SIGKILL');
    return;
  }
  if (db && raw) await revokeCreds(v, raw, 'ours');
  const pids = profiledPids(profDir);
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  await waitFor('profiled plugin processes to exit', () => profiledPids(profDir).length === 0, 30_000, 200);
  await sleep(200);
  const files = fs
    .readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(profDir, f));
  if (!files.length) throw new Error(`no .cpuprofile written in ${profDir}`);
  // The mount's metadata-mode process writes a short profile too: report the busiest.
  const summaries = files.map((f) => summarise(f, 25)).sort((a, b) => b.busyMs - a.busyMs);
  const s = summaries[0];
  const keep = path.join(os.tmpdir(), `vpt-bench-${PROFILE}.cpuprofile`);
  fs.copyFileSync(s.file, keep);
  process.stdout.write(
    `# bench/vault profile ${new Date().toISOString().slice(0, 10)}: ${PROFILE}, ours only, 8 clients, ${PROFILE_SECONDS}s: ` +
      `${fmtRate(result)} req/s under the profiler (${result.errors} errors); ${(s.busyMs / result.ok).toFixed(2)} ms of plugin CPU per request; profile kept at ${keep}\n\n`,
  );
  process.stdout.write(summaryMarkdown({ ...s, file: keep }) + '\n');
  fs.rmSync(profDir, { recursive: true, force: true });
}

/** `perf record` of the given processes' threads for PROFILE_SECONDS, call graphs by frame pointer. */
function perfRecord(pids: number[], out: string): Promise<void> {
  if (!pids.length) throw new Error('no plugin process to sample');
  const args = ['record', '-q', '-F', '999', '-g', '-o', out, '-p', pids.join(','), '--', 'sleep', String(PROFILE_SECONDS)];
  return new Promise((resolve, reject) => {
    const p = spawn('perf', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`perf record exited with ${code}`))));
  });
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
