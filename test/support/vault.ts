// A real Vault for tests and benchmarks: the binary named by VAULT_BIN (Vault 1.8.0-dev from
// /work/shared/vault, see its README), run on loopback ports with our single executable in
// its plugin directory. Three shapes: a dev server (in memory), a server on file storage that
// can be stopped and started again on the same data, and a three-node Raft cluster.
// Every wait is bounded; stop() kills Vault and every plugin process started from its plugin
// directory, and removes the temporary directories (HOME included).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './postgres';

export const PLUGIN_NAME = 'vault-plugin-ts';
export const PLUGIN_EXE = path.resolve(__dirname, '..', '..', 'dist', PLUGIN_NAME);

/** VAULT_BIN when it names an executable file, else undefined (suites then skip). */
export function vaultBin(): string | undefined {
  const b = process.env.VAULT_BIN;
  if (!b) return undefined;
  try {
    fs.accessSync(b, fs.constants.X_OK);
    return fs.statSync(b).isFile() ? path.resolve(b) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How Vault runs secrets plugins. 'legacy': Vault 1.8's own way (VAULT_UNWRAP_TOKEN, the
 * plugin unwraps its TLS material over Vault's API). 'automtls': Vault started with
 * VAULT_BACKEND_PLUGIN_AUTOMTLS=true, as Vault 1.12+ runs protocol-5 plugins. The database
 * role is on AutoMTLS in both.
 */
export type TlsMode = 'legacy' | 'automtls';
export const TLS_MODES: TlsMode[] = ['legacy', 'automtls'];
const modeEnv = (mode: TlsMode): Record<string, string> => (mode === 'automtls' ? { VAULT_BACKEND_PLUGIN_AUTOMTLS: 'true' } : {});

/** Build dist/vault-plugin-ts when it is missing (scripts/test.sh builds it first). */
export function ensurePluginBuilt(): void {
  if (fs.existsSync(PLUGIN_EXE)) return;
  execFileSync(process.execPath, [path.resolve(__dirname, '..', '..', 'scripts', 'build.mjs'), '--quiet'], { stdio: 'inherit' });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll fn until it returns a value other than undefined/false, at most timeoutMs. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message ?? last}` : ''}`);
    await sleep(everyMs);
  }
}

export class VaultCliError extends Error {
  constructor(
    readonly args: string[],
    readonly code: number | string | null,
    readonly stderr: string,
    readonly stdout: string,
  ) {
    super(`vault ${args.join(' ')} failed (${code}): ${stderr.trim() || stdout.trim()}`);
  }
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
  json(): any;
}

/** The `vault` CLI and raw HTTP against one server address. */
export class VaultClient {
  constructor(
    readonly bin: string,
    readonly addr: string,
    public token: string,
    readonly home: string,
  ) {}

  /** Run the vault CLI; stdout parsed as JSON when it is JSON, else the text. Throws with stderr. */
  async vault(args: string[], opts: { token?: string | null; timeoutMs?: number } = {}): Promise<any> {
    const token = opts.token === undefined ? this.token : opts.token;
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.home, VAULT_ADDR: this.addr };
    if (token) env.VAULT_TOKEN = token;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(this.bin, args, { env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new VaultCliError(args, (err as NodeJS.ErrnoException).code ?? err.signal ?? null, stderr, stdout));
        else resolve(stdout);
      });
    });
    const t = out.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        return JSON.parse(t);
      } catch {
        /* not JSON after all */
      }
    }
    return out;
  }

  /**
   * A raw HTTP request to /v1/<p>, as `curl -L` would make it; token null sends none. Redirects
   * are followed as the vault CLI follows them: a standby answers 307 to the active node until
   * its request forwarding is up (seen just after a Raft failover).
   */
  async http(
    method: string,
    p: string,
    opts: { token?: string | null; body?: unknown; timeoutMs?: number; redirect?: 'follow' | 'manual' } = {},
  ): Promise<HttpResult> {
    const token = opts.token === undefined ? this.token : opts.token;
    const headers: Record<string, string> = {};
    if (token) headers['X-Vault-Token'] = token;
    const r = await fetch(`${this.addr}/v1/${p.replace(/^\//, '')}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      redirect: opts.redirect ?? 'follow',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
    const body = Buffer.from(await r.arrayBuffer());
    const text = body.toString('utf8');
    return { status: r.status, headers: r.headers, body, text, json: () => JSON.parse(text) };
  }

  /** sys/health status: 200 active, 429 standby, 501 not initialised, 503 sealed (0: no answer). */
  async health(): Promise<number> {
    try {
      return (await this.http('GET', 'sys/health', { token: null, timeoutMs: 3000 })).status;
    } catch {
      return 0;
    }
  }
}

export interface PluginProcess {
  pid: number;
  ppid: number;
  args: string;
}

/**
 * Processes running an executable from this plugin directory (ps, as an operator would look):
 * ours by default, every one with name '' (a benchmark may put Vault's own plugins beside it).
 */
export function pluginProcesses(pluginDir: string, name = PLUGIN_NAME): PluginProcess[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  const prefix = path.join(pluginDir, name);
  return out
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => !!m && m[3].startsWith(prefix))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] }));
}

/** The inodes of a process's sockets (its /proc/<pid>/fd links). */
export function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  return inodes;
}

/**
 * The rows of a /proc/<pid>/net table (unix, tcp, tcp6) split into fields, header left out.
 * unix: Num RefCount Protocol Flags Type St Inode [Path] (St 03 connected; flag 0x10000 listening);
 * tcp: sl local remote st ... with the inode the tenth field (st 0A listening, 01 established).
 */
export function procNet(pid: number, table: 'unix' | 'tcp' | 'tcp6'): string[][] {
  return fs
    .readFileSync(`/proc/${pid}/net/${table}`, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/));
}

/** The sockets a process listens on, from /proc: unix socket paths and TCP ports. */
export function listeningSockets(pid: number): { unix: string[]; tcp: number[] } {
  const inodes = socketInodes(pid);
  const unix = procNet(pid, 'unix')
    .filter((f) => f.length >= 8 && inodes.has(f[6]) && (Number.parseInt(f[3], 16) & 0x10000) !== 0)
    .map((f) => f[7]);
  const tcp = [...procNet(pid, 'tcp'), ...procNet(pid, 'tcp6')]
    .filter((f) => f.length >= 10 && f[3] === '0A' && inodes.has(f[9]))
    .map((f) => Number.parseInt(f[1].split(':')[1], 16));
  return { unix, tcp };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function tempDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `vpt-vault-${tag}-`));
  fs.chmodSync(d, 0o755);
  return d;
}

/** VPT_TEST_PLUGIN_ENV: space-separated NAME=value pairs every registration of our plugin adds (e.g. VAULT_PLUGIN_TS_HTTP2=js). */
function extraPluginEnv(): Record<string, string> {
  const pairs = (process.env.VPT_TEST_PLUGIN_ENV ?? '').split(/\s+/).filter((kv) => kv.includes('='));
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

/** Vault's environment: ours without any VAULT_* (no stray address/token), HOME in a temp dir. */
function serverEnv(home: string, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('VAULT_')) env[k] = v;
  return { ...env, HOME: home, ...extra };
}

/** Every Vault this process started and has not stopped: killed on exit if afterAll never ran. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** One Vault server process with its own plugin directory and HOME. */
export class VaultNode extends VaultClient {
  private proc?: ChildProcess;
  private exited?: Promise<void>;
  private readonly logLines: string[] = [];
  readonly pluginDir: string;

  constructor(
    bin: string,
    readonly port: number,
    token: string,
    readonly dir: string,
    private readonly args: () => string[],
    private readonly env: Record<string, string>,
  ) {
    super(bin, `http://127.0.0.1:${port}`, token, path.join(dir, 'home'));
    this.pluginDir = path.join(dir, 'plugins');
    fs.mkdirSync(this.home, { recursive: true });
    fs.mkdirSync(this.pluginDir, { recursive: true });
    // A copy, not a link: Vault checks the file's SHA256 and resolves it inside plugin_directory.
    fs.copyFileSync(PLUGIN_EXE, path.join(this.pluginDir, PLUGIN_NAME));
    fs.chmodSync(path.join(this.pluginDir, PLUGIN_NAME), 0o755);
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }
  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** As VaultClient.vault; a failure also carries the end of Vault's log (the plugin's errors are there). */
  override async vault(args: string[], opts: { token?: string | null; timeoutMs?: number } = {}): Promise<any> {
    try {
      return await super.vault(args, opts);
    } catch (e) {
      if (e instanceof VaultCliError) e.message += `\n--- Vault log (${this.addr}):\n${this.logs(15)}`;
      throw e;
    }
  }

  /** The last lines of Vault's own log (plugins' stderr lands here too). */
  logs(lines = 200): string {
    return this.logLines.slice(-lines).join('\n');
  }

  /** Start the process and wait until its listener answers (any HTTP status). */
  async start(): Promise<void> {
    if (this.running) return;
    const p = spawn(this.bin, this.args(), { env: serverEnv(this.home, this.env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    live.add(p);
    this.exited = new Promise((r) =>
      p.once('exit', () => {
        live.delete(p);
        r();
      }),
    );
    const take = (d: Buffer) => {
      for (const l of d.toString('utf8').split('\n')) if (l) this.logLines.push(l);
      if (this.logLines.length > 4000) this.logLines.splice(0, this.logLines.length - 2000);
    };
    p.stdout!.on('data', take);
    p.stderr!.on('data', take);
    const died = this.exited.then(() => {
      throw new Error(`Vault exited (${p.exitCode ?? p.signalCode}):\n${this.logs(40)}`);
    });
    died.catch(() => undefined);
    await Promise.race([died, waitFor(`Vault on ${this.addr} to listen`, async () => this.running && (await this.health()) !== 0, 30_000, 100)]);
  }

  /** Stop Vault (signal, then SIGKILL after graceMs) and wait for it; plugins it leaves (any in its plugin directory) are killed. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
    const p = this.proc;
    if (p && this.running) {
      p.kill(signal);
      await Promise.race([this.exited, sleep(graceMs)]);
      if (this.running) {
        p.kill('SIGKILL');
        await Promise.race([this.exited, sleep(5000)]);
      }
    }
    this.killPlugins('SIGKILL', '');
  }

  /** Kill our plugin's processes (every plugin's with name '') from this node's plugin directory, by pid. */
  killPlugins(signal: NodeJS.Signals = 'SIGKILL', name = PLUGIN_NAME): number[] {
    const pids = pluginProcesses(this.pluginDir, name).map((p) => p.pid);
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
    return pids;
  }

  plugins(): PluginProcess[] {
    return pluginProcesses(this.pluginDir);
  }

  /** Wait until none of these pids is still running (Vault has reaped them). */
  async waitGone(pids: number[], timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `plugin processes ${pids.join(',')} to exit`,
      () => pids.every((pid) => !alive(pid) || !pluginProcesses(this.pluginDir).some((p) => p.pid === pid)),
      timeoutMs,
      100,
    );
  }

  pluginSha256(): string {
    return createHash('sha256')
      .update(fs.readFileSync(path.join(this.pluginDir, PLUGIN_NAME)))
      .digest('hex');
  }

  /** Register our executable in the catalog by SHA256 for both roles (secret and database). */
  async registerPlugin(pluginEnv: Record<string, string> = {}): Promise<string> {
    const sha = this.pluginSha256();
    const env = Object.entries({ ...extraPluginEnv(), ...pluginEnv }).map(([k, v]) => `env=${k}=${v}`);
    for (const type of ['secret', 'database']) {
      await this.vault(['write', `sys/plugins/catalog/${type}/${PLUGIN_NAME}`, `sha256=${sha}`, `command=${PLUGIN_NAME}`, ...env]);
    }
    return sha;
  }

  /**
   * Copy another plugin executable into the plugin directory (e.g. one of Vault's own Go
   * plugins, or a wrapper script) and register it by SHA256 under `name`.
   */
  async installPlugin(file: string, type: 'secret' | 'database' | 'auth', name = path.basename(file), pluginEnv: Record<string, string> = {}): Promise<void> {
    const dest = path.join(this.pluginDir, name);
    fs.copyFileSync(file, dest);
    fs.chmodSync(dest, 0o755);
    const sha = createHash('sha256').update(fs.readFileSync(dest)).digest('hex');
    const env = Object.entries(pluginEnv).map(([k, v]) => `env=${k}=${v}`);
    await this.vault(['write', `sys/plugins/catalog/${type}/${name}`, `sha256=${sha}`, `command=${name}`, ...env]);
  }

  async waitActive(timeoutMs = 30_000): Promise<void> {
    await waitFor(`${this.addr} to be active`, async () => (await this.health()) === 200, timeoutMs);
  }

  /** Stop and remove this node's directories. */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL', 5000);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A dev server: in memory, unsealed, root token "root". */
export async function startDevVault(opts: { mode?: TlsMode; env?: Record<string, string> } = {}): Promise<VaultNode> {
  const bin = requireVault();
  ensurePluginBuilt();
  const port = await freePort();
  const dir = tempDir('dev');
  const node = new VaultNode(
    bin,
    port,
    'root',
    dir,
    () => ['server', '-dev', '-dev-root-token-id=root', `-dev-listen-address=127.0.0.1:${port}`, `-dev-plugin-dir=${path.join(dir, 'plugins')}`],
    { ...modeEnv(opts.mode ?? 'legacy'), ...opts.env },
  );
  try {
    await node.start();
    await node.waitActive();
  } catch (e) {
    await node.destroy();
    throw e;
  }
  return node;
}

function serverConfig(o: { port: number; clusterPort: number; pluginDir: string; storage: string }): string {
  return `${o.storage}
listener "tcp" {
  address         = "127.0.0.1:${o.port}"
  cluster_address = "127.0.0.1:${o.clusterPort}"
  tls_disable     = true
}
api_addr         = "http://127.0.0.1:${o.port}"
cluster_addr     = "https://127.0.0.1:${o.clusterPort}"
disable_mlock    = true
plugin_directory = "${o.pluginDir}"
`;
}

async function configuredNode(bin: string, tag: string, mode: TlsMode, storage: (dir: string) => string, env: Record<string, string> = {}): Promise<VaultNode> {
  const [port, clusterPort] = [await freePort(), await freePort()];
  const dir = tempDir(tag);
  const cfg = path.join(dir, 'vault.hcl');
  const node = new VaultNode(bin, port, '', dir, () => ['server', `-config=${cfg}`], { ...modeEnv(mode), ...env });
  fs.writeFileSync(cfg, serverConfig({ port, clusterPort, pluginDir: node.pluginDir, storage: storage(dir) }));
  return node;
}

async function initialise(node: VaultNode): Promise<{ key: string; token: string }> {
  const init = await node.vault(['operator', 'init', '-key-shares=1', '-key-threshold=1', '-format=json'], { token: null });
  return { key: init.unseal_keys_b64[0], token: init.root_token };
}

/** A non-dev server on `storage "file"`: restart() stops it and starts it on the same data, unsealed. */
export interface FileVault {
  node: VaultNode;
  unsealKey: string;
  restart(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export async function startFileVault(opts: { mode?: TlsMode; env?: Record<string, string> } = {}): Promise<FileVault> {
  const bin = requireVault();
  ensurePluginBuilt();
  const node = await configuredNode(bin, 'file', opts.mode ?? 'legacy', (dir) => `storage "file" {\n  path = "${path.join(dir, 'data')}"\n}`, opts.env);
  try {
    await node.start();
    const { key, token } = await initialise(node);
    node.token = token;
    const unseal = async () => {
      await node.vault(['operator', 'unseal', '-format=json', key], { token: null });
      await node.waitActive();
    };
    await unseal();
    return {
      node,
      unsealKey: key,
      async restart(signal: NodeJS.Signals = 'SIGTERM') {
        await node.stop(signal);
        await node.start();
        await unseal();
      },
      stop: () => node.destroy(),
    };
  } catch (e) {
    await node.destroy();
    throw e;
  }
}

/** Three Raft nodes on loopback, initialised on node 0, all unsealed and voters. */
export interface RaftCluster {
  nodes: VaultNode[];
  unsealKey: string;
  rootToken: string;
  /** The running node that reports itself active (bounded wait). */
  waitForActive(timeoutMs?: number): Promise<VaultNode>;
  /** `operator raft list-peers` through a running node. */
  peers(): Promise<Array<{ node_id: string; address: string; leader: boolean; voter: boolean }>>;
  stop(): Promise<void>;
}

export async function startRaftCluster(opts: { mode?: TlsMode; size?: number; env?: Record<string, string> } = {}): Promise<RaftCluster> {
  const bin = requireVault();
  ensurePluginBuilt();
  const mode = opts.mode ?? 'legacy';
  const nodes: VaultNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.destroy()));
  };
  try {
    for (let i = 1; i <= (opts.size ?? 3); i++) {
      // performance_multiplier 1: one-second Raft timeouts instead of five (quicker elections and failover).
      nodes.push(
        await configuredNode(
          bin,
          `raft${i}`,
          mode,
          (dir) => `storage "raft" {\n  path    = "${raftDir(dir)}"\n  node_id = "node${i}"\n  performance_multiplier = 1\n}`,
          opts.env,
        ),
      );
    }
    await Promise.all(nodes.map((n) => n.start()));
    const [first, ...rest] = nodes;
    const { key, token } = await initialise(first);
    for (const n of nodes) n.token = token;
    await first.vault(['operator', 'unseal', '-format=json', key], { token: null });
    await first.waitActive(60_000);
    // Autopilot promotes a joined non-voter once it has been healthy this long (default 10 s).
    await first.vault(['operator', 'raft', 'autopilot', 'set-config', '-server-stabilization-time=2s']);
    for (const n of rest) {
      await n.vault(['operator', 'raft', 'join', '-format=json', first.addr], { token: null });
      await n.vault(['operator', 'unseal', '-format=json', key], { token: null });
    }
    const peers = async () => {
      for (const n of nodes) {
        if (!n.running) continue;
        try {
          return (await n.vault(['operator', 'raft', 'list-peers', '-format=json'])).data.config.servers;
        } catch {
          /* try the next */
        }
      }
      throw new Error('no running node answered list-peers');
    };
    await waitFor(
      `${nodes.length} Raft voters`,
      async () => {
        const s = await peers();
        return s.length === nodes.length && s.every((p: { voter: boolean }) => p.voter);
      },
      60_000,
      500,
    );
    await Promise.all(rest.map((n) => waitFor(`${n.addr} to be a standby`, async () => (await n.health()) === 429, 30_000)));
    return {
      nodes,
      unsealKey: key,
      rootToken: token,
      peers,
      async waitForActive(timeoutMs = 60_000) {
        return waitFor(
          'an active node',
          async () => {
            for (const n of nodes) if (n.running && (await n.health()) === 200) return n;
            return undefined;
          },
          timeoutMs,
          250,
        );
      },
      stop,
    };
  } catch (e) {
    const logs = nodes.map((n, i) => `--- node${i + 1}\n${n.logs(30)}`).join('\n');
    await stop();
    throw new Error(`${(e as Error).message}\n${logs}`);
  }
}

/** Raft wants its data directory to exist. */
function raftDir(dir: string): string {
  fs.mkdirSync(path.join(dir, 'raft'), { recursive: true });
  return path.join(dir, 'raft');
}

function requireVault(): string {
  const bin = vaultBin();
  if (!bin) throw new Error('VAULT_BIN does not name an executable Vault binary');
  return bin;
}
