// From a ConnectionConfig to live connections: connection_url templating, libpq-style
// sslmode semantics (node-postgres has no allow/prefer fallback or verify-ca), inline or
// file PEMs, and a pool that applies max_open / max_idle / max_connection_lifetime.
import type * as tls from 'node:tls';
import type { ClientConfig, Pool as PgPool, PoolClient, Client as PgClient } from 'pg';
import type { ConnectionConfig, SslMode } from './config';
import { SSL_MODES } from './config';
import { invalid } from './errors';
import { FileReadError, readBoundedFile } from '../util/files';

export interface Target {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  sslmode: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  applicationName?: string;
}

/** libpq key=value connection strings: host=h port=5432 user='a b' */
function parseKeywordDsn(dsn: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|[^\s]*)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < dsn.trim().length && (m = re.exec(dsn))) {
    out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
    pos = re.lastIndex;
  }
  if (dsn.slice(pos).trim()) throw invalid('connection_url: cannot parse the key=value connection string');
  return out;
}

function fillUrlTemplate(url: string, c: ConnectionConfig, urlForm: boolean): string {
  const enc = (v: string) => (c.disableEscaping || !urlForm ? v : encodeURIComponent(v));
  const kvQuote = (v: string) => (urlForm ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
  return url
    .replace(/\{\{\s*username\s*\}\}/g, () => kvQuote(enc(c.username ?? '')))
    .replace(/\{\{\s*password\s*\}\}/g, () => kvQuote(enc(c.password ?? '')));
}

export function resolveTarget(c: ConnectionConfig): Target {
  let t: Partial<Target> & { params: Record<string, string> } = { params: {} };
  if (c.connectionUrl) {
    const urlForm = /^[a-z][a-z0-9+.-]*:\/\//i.test(c.connectionUrl.trim());
    const filled = fillUrlTemplate(c.connectionUrl.trim(), c, urlForm);
    if (urlForm) {
      let u: URL;
      try {
        u = new URL(filled);
      } catch {
        throw invalid('connection_url is not a valid URL (multi-host URLs are not supported; a literal "%" or "@" in a password must come from {{password}})');
      }
      if (!/^postgres(ql)?:$/.test(u.protocol)) throw invalid(`connection_url: unsupported scheme ${u.protocol.replace(/:$/, '')} (use postgres:// or postgresql://)`);
      const dec = (s: string) => { try { return decodeURIComponent(s); } catch { throw invalid('connection_url: malformed %-escape'); } };
      const params: Record<string, string> = {};
      u.searchParams.forEach((v, k) => { params[k] = v; });
      t = {
        params,
        host: params.host ?? (u.hostname.replace(/^\[|\]$/g, '') || undefined),
        port: u.port ? Number(u.port) : params.port ? Number(params.port) : undefined,
        database: u.pathname.length > 1 ? dec(u.pathname.slice(1)) : params.dbname,
        user: u.username ? dec(u.username) : params.user,
        password: u.password ? dec(u.password) : params.password,
      };
    } else {
      const kv = parseKeywordDsn(filled);
      t = { params: kv, host: kv.host, port: kv.port ? Number(kv.port) : undefined, database: kv.dbname, user: kv.user, password: kv.password };
    }
  } else {
    t.host = c.host;
    t.port = c.port;
    t.database = c.db;
    t.user = c.username;
    t.password = c.password;
  }
  const p = t.params;
  // Separate fields complement (and for TLS settings, override) the URL.
  const sslmode = (c.sslmode ?? p.sslmode ?? 'prefer').toLowerCase();
  if (!(SSL_MODES as readonly string[]).includes(sslmode)) throw invalid(`sslmode must be one of ${SSL_MODES.join(', ')}`);
  if (t.port !== undefined && (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)) throw invalid('port must be 1-65535');
  if (!t.user) throw invalid('no username: set username, or put one in connection_url');
  return {
    host: t.host || 'localhost',
    port: t.port ?? 5432,
    database: t.database || t.user,
    user: t.user,
    password: t.password,
    sslmode: sslmode as SslMode,
    sslrootcert: c.sslrootcert ?? p.sslrootcert,
    sslcert: c.sslcert ?? p.sslcert,
    sslkey: c.sslkey ?? p.sslkey,
    applicationName: p.application_name ?? 'vault-plugin-ts',
  };
}

const TLS_FILE_FIELDS = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * The target with each of sslrootcert/sslcert/sslkey that names a file replaced by the
 * file's contents (inline PEM is kept). Read once, asynchronously, as a bounded regular
 * file: these paths come from the API, and /dev/zero, a FIFO or /proc/self/fd/1 must
 * neither exhaust memory nor block the process. Not read at all with sslmode=disable.
 */
export async function loadTlsFiles(t: Target): Promise<Target> {
  if (t.sslmode === 'disable') return t;
  const out: Target = { ...t };
  for (const field of TLS_FILE_FIELDS) {
    const v = t[field];
    if (!v || v.includes('-----BEGIN')) continue;
    try {
      out[field] = (await readBoundedFile(v, field)).toString('utf8');
    } catch (e) {
      if (e instanceof FileReadError) throw invalid(e.message);
      throw e;
    }
  }
  return out;
}

/**
 * The TLS options for one connection attempt. `false` = plaintext. libpq semantics:
 * require with a root cert behaves like verify-ca; verify-ca checks the chain only;
 * verify-full checks chain and host name.
 */
export function tlsOptions(t: Target, wantTls: boolean): false | tls.ConnectionOptions {
  if (!wantTls) return false;
  // Contents, not paths: loadTlsFiles has read any file already.
  const ca = t.sslrootcert || undefined;
  const cert = t.sslcert || undefined;
  const key = t.sslkey || undefined;
  if ((cert && !key) || (key && !cert)) throw invalid('sslcert and sslkey must be given together');
  const base: tls.ConnectionOptions = { cert, key };
  let mode = t.sslmode;
  if (mode === 'require' && ca) mode = 'verify-ca';
  switch (mode) {
    case 'verify-full':
      if (!ca) throw invalid('sslmode=verify-full needs sslrootcert');
      return { ...base, ca, rejectUnauthorized: true, servername: /^[\d.:]+$/.test(t.host) ? undefined : t.host };
    case 'verify-ca':
      if (!ca) throw invalid('sslmode=verify-ca needs sslrootcert');
      return { ...base, ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    default:
      return { ...base, rejectUnauthorized: false };
  }
}

/** TLS first or plaintext first, per sslmode; the second entry is the fallback, if any. */
export function tlsAttempts(mode: SslMode): boolean[] {
  switch (mode) {
    case 'disable': return [false];
    case 'allow': return [false, true];
    case 'prefer': return [true, false];
    default: return [true];
  }
}

export function clientConfig(t: Target, c: ConnectionConfig, useTls: boolean, database?: string): ClientConfig {
  return {
    host: t.host,
    port: t.port,
    database: database ?? t.database,
    user: t.user,
    password: t.password,
    ssl: tlsOptions(t, useTls),
    application_name: t.applicationName,
    connectionTimeoutMillis: c.connectTimeoutMs,
    keepAlive: true,
  };
}

type Driver = { Pool: new (cfg: object) => PgPool; Client: new (cfg: object) => PgClient };

/** node-postgres, or YugabyteDB's smart driver (same API) when load balancing is asked for. */
export function driverFor(c: ConnectionConfig): Driver {
  if (c.loadBalance && c.loadBalance !== 'false') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@yugabytedb/pg') as Driver;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('pg') as Driver;
}

// @yugabytedb/pg keeps its view of the cluster (control connection, server lists,
// topology, per-host connection counts) in static fields shared by the whole process.
// Two configs for different clusters or topologies in one plugin process would route
// each other's connections, so one smart-driver setting is served at a time.
let smartOwner: { key: string; refs: number } | undefined;

function resetSmartDriverState(): void {
  const C = (require('@yugabytedb/pg') as { Client: Record<string, unknown> }).Client;
  const ctl = C.controlClient as { end?: () => Promise<void> } | undefined;
  void ctl?.end?.().catch(() => undefined);
  C.controlClient = undefined;
  C.controlClientHost = '';
  C.lastTimeMetaDataFetched = 0;
  C.usePublic = false;
  for (const k of ['connectionMap', 'failedHosts', 'failedHostsTime', 'hostServerInfoPrimary', 'hostServerInfoRR', 'topologyKeyMap']) {
    (C[k] as Map<unknown, unknown> | undefined)?.clear();
  }
}

/** Reserve the process's smart driver for this cluster setting; returns the release function. */
export function claimSmartDriver(c: ConnectionConfig, t: Target): () => void {
  if (!c.loadBalance || c.loadBalance === 'false') return () => undefined;
  const key = JSON.stringify([t.host, t.port, c.loadBalance, c.topologyKeys ?? '', c.ybServersRefreshInterval ?? 300]);
  if (smartOwner && smartOwner.refs > 0 && smartOwner.key !== key) {
    throw invalid(
      'YugabyteDB smart-driver mode keeps cluster state per process, and this plugin process already serves another ' +
      'load_balance/topology_keys setting. Register the plugin a second time under another name for the second cluster.',
    );
  }
  if (!smartOwner || smartOwner.key !== key) {
    resetSmartDriverState();
    smartOwner = { key, refs: 0 };
  }
  const owner = smartOwner;
  owner.refs++;
  let released = false;
  return () => {
    if (!released) { released = true; owner.refs--; }
  };
}

function smartDriverOptions(c: ConnectionConfig): Record<string, unknown> {
  if (!c.loadBalance || c.loadBalance === 'false') return {};
  return {
    loadBalance: c.loadBalance,
    ybServersRefreshInterval: c.ybServersRefreshInterval ?? 300,
    topologyKeys: c.topologyKeys ?? '',
  };
}

/** Session-level pin of how the server lexes '...': run when a connection opens and after each transaction (see transactionSetup in database.ts). */
export const PIN_SESSION = 'SET standard_conforming_strings = on';

/** A pool that keeps at most maxIdle idle connections (node-postgres has no such knob). */
export class ConnectionPool {
  readonly pool: PgPool;
  private closed = false;

  constructor(private readonly base: ClientConfig, private readonly c: ConnectionConfig) {
    const { Pool } = driverFor(c);
    this.pool = new Pool({
      ...base,
      ...smartDriverOptions(c),
      max: c.maxOpen,
      idleTimeoutMillis: 30_000,
      maxLifetimeSeconds: c.maxLifetimeSec > 0 ? Math.max(1, Math.round(c.maxLifetimeSec)) : 0,
    });
    // An idle client whose server went away must not crash the process.
    this.pool.on('error', () => undefined);
    // Every connection lexes with standard_conforming_strings on, whatever the role or
    // database says (see transactionSetup in database.ts). Queued before any other query;
    // a connection that cannot be pinned is closed, failing the query queued behind it.
    this.pool.on('connect', (client) => {
      client.query(PIN_SESSION).catch(() => { void client.end().catch(() => undefined); });
    });
  }

  get totalCount(): number { return this.pool.totalCount; }
  get idleCount(): number { return this.pool.idleCount; }

  async connect(): Promise<PoolClient> {
    if (this.closed) throw new Error('connection pool is closed');
    return this.pool.connect();
  }

  release(client: PoolClient, err?: Error): void {
    const discard = !!err || this.pool.idleCount >= this.c.maxIdle;
    client.release(discard ? (err ?? true) : undefined);
  }

  /** Run fn on a pooled connection. A connection that errored is discarded, not reused. */
  async with<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    // pg-pool listens for errors only on idle clients: a server ending the connection of a
    // checked-out one (a shutdown, transaction_timeout) would otherwise be an uncaught
    // 'error' event. The failing query reports it to fn.
    const onError = () => undefined;
    client.on('error', onError);
    try {
      const r = await fn(client);
      client.removeListener('error', onError);
      this.release(client);
      return r;
    } catch (e) {
      client.removeListener('error', onError);
      // discardConnection: a statement may still be running on it (a call that ended early).
      const broken = (e as { discardConnection?: boolean }).discardConnection || (e as { code?: string }).code === undefined || /terminat|ECONN|EPIPE/i.test(String((e as Error).message));
      this.release(client, broken ? (e as Error) : undefined);
      throw e;
    }
  }

  /** A connection outside the pool, e.g. to another database for per-database cleanup. */
  async single(database?: string): Promise<PgClient> {
    const { Client } = driverFor(this.c);
    const cl = new Client({ ...this.base, database: database ?? this.base.database });
    cl.on('error', () => undefined);
    await cl.connect();
    return cl;
  }

  async end(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
