// One configured database connection (one `database/config/<name>` in Vault) and the
// credential operations on it. No state lives only here: Vault re-sends the stored
// config after a plugin restart and everything is rebuilt from it.
import type { PoolClient, Client as PgClient } from 'pg';
import { parseConfig, configSecrets, type ConnectionConfig } from './config';
import { ConnectionPool, PIN_SESSION, claimSmartDriver, clientConfig, loadTlsFiles, resolveTarget, tlsAttempts, tlsOptions, type Target } from './connection';
import { detectDialect, type Dialect } from './dialects';
import { PluginError, deadlineExceeded, invalid, unavailable, withSecrets } from './errors';
import { endedEarly, onEndedEarly, type CallBounds } from './bounds';
import { quoteIdent } from './quote';
import { withRetry } from './retry';
import { scramSecrets, scramVerifier } from './scram';
import { assertNoTransactionControl, renderVerified, splitAll, type Values } from './statements';
import { loadPgLexer } from './pglexer';
import type { Logger } from '../goplugin/log';

export interface NewUserInput extends CallBounds {
  displayName: string;
  roleName: string;
  password: string;
  expiration?: Date;
  statements: string[];
  credentialType: number;
}

export interface UpdateUserInput extends CallBounds {
  username: string;
  password?: { newPassword: string; statements: string[] };
  expiration?: { newExpiration?: Date; statements: string[] };
  publicKey?: boolean;
  credentialType?: number;
  selfManagedPassword?: string;
}

type Queryable = Pick<PoolClient | PgClient, 'query'> & { processID?: number | null };

interface TxOptions {
  /** The server has transaction_timeout (PostgreSQL 17+). */
  transactionTimeout: boolean;
  /** Cancel what a backend is running, from another connection. */
  cancelBackend?: (pid: number) => Promise<void>;
}

/** How long a statement cancelled at the deadline may take to come back before its connection is dropped. */
const CANCEL_GRACE_MS = 1000;

/**
 * What every transaction starts with. standard_conforming_strings decides how the server
 * LEXES a query string, and a whole string is lexed before any of it runs, so a SET in
 * the same string comes too late for it: each connection is pinned to on when it is
 * opened (a role or database may have it off: ALTER ROLE ... SET), and again after every
 * transaction (PIN_SESSION). The SET LOCAL here covers what is lexed while it runs
 * (dynamic SQL in DO blocks and functions).
 */
function transactionSetup(left: number | undefined, o: TxOptions): string[] {
  const parts = ['BEGIN', 'SET LOCAL standard_conforming_strings = on'];
  if (left !== undefined) {
    parts.push(`SET LOCAL statement_timeout = ${left}`);
    // The server's own bound on the whole transaction, should the cancel at the deadline not
    // land; later than it and statement_timeout, which keep the connection (this one ends it).
    if (o.transactionTimeout) parts.push(`SET LOCAL transaction_timeout = ${left + CANCEL_GRACE_MS}`);
  }
  return parts;
}

const DEADLINE_MARK = 'vault-plugin-ts: the call deadline passed';

/**
 * The last statement before COMMIT: fails the transaction when it has run longer than the
 * time the caller had left, by the server's own clock (no clock skew), so a transaction
 * whose statements each stayed under statement_timeout still never commits late.
 */
function deadlineGuard(left: number): string {
  // The cast applies to the CASE's result: a cast of the constant itself would be folded (and fail) at plan time.
  return `SELECT (CASE WHEN clock_timestamp() - transaction_timestamp() > interval '${left} milliseconds' THEN '${DEADLINE_MARK}' END)::int`;
}

/**
 * Run statements atomically, in ONE round trip: BEGIN and the pinned settings, the
 * statements, a deadline guard, COMMIT. When the call's deadline passes or the caller
 * cancels it while this runs, the running statement is cancelled on the server (the rest,
 * COMMIT included, is skipped) and the transaction rolled back, or its connection dropped,
 * which rolls it back too: a credential Vault never learned of is not committed. Should
 * the end come so late that COMMIT already ran, the error says so (`committed`).
 */
async function inTransaction(client: Queryable, stmts: readonly string[], b: CallBounds, o: TxOptions): Promise<void> {
  if (stmts.length === 0) return;
  const before = endedEarly(b);
  if (before) throw before;
  const left = b.deadline === undefined ? undefined : Math.floor(b.deadline - Date.now() - 50);
  if (left !== undefined && left <= 0) throw deadlineExceeded('the call\'s deadline passed before the statements were sent');
  const text = [...transactionSetup(left, o), ...stmts, ...(left !== undefined ? [deadlineGuard(left)] : []), 'COMMIT', PIN_SESSION].join('\n;\n');

  let reason: PluginError | undefined;
  let wake = () => undefined as void;
  const ended = new Promise<'ended'>((res) => { wake = () => res('ended'); });
  const stop = onEndedEarly(b, () => {
    reason = endedEarly(b) ?? deadlineExceeded('the call\'s deadline passed; nothing was committed');
    const pid = client.processID;
    if (pid && o.cancelBackend) void o.cancelBackend(pid).catch(() => undefined);
    wake();
  });
  try {
    const settled = client.query(text).then(() => ({ ok: true as const }), (e: unknown) => ({ ok: false as const, e }));
    let r: { ok: true } | { ok: false; e: unknown } | 'ended' | 'stuck' = await Promise.race([settled, ended]);
    if (r === 'ended') {
      r = await Promise.race([settled, new Promise<'stuck'>((res) => setTimeout(() => res('stuck'), CANCEL_GRACE_MS))]);
      if (r === 'stuck') throw Object.assign(reason!, { discardConnection: true });
    }
    if (r.ok) {
      if (reason) throw Object.assign(new PluginError(reason.code, 'the call ended while its transaction committed'), { committed: true });
      return;
    }
    // A statement failed (or was cancelled): the rest was skipped and the transaction is aborted.
    await client.query(`ROLLBACK; ${PIN_SESSION}`).catch(() => undefined);
    if (reason) throw reason;
    if (String((r.e as Error)?.message ?? '').includes(DEADLINE_MARK)) throw deadlineExceeded('the call\'s deadline passed; nothing was committed');
    throw r.e;
  } finally {
    stop();
  }
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export class SqlDatabase {
  private pool?: ConnectionPool;
  private dialect?: Dialect;
  /** PostgreSQL major version from version() (0 when not PostgreSQL). */
  private serverMajor = 0;
  private ready?: Promise<void>;
  /** Whether connections use TLS: decided once per sslmode by the first successful connect. */
  private useTls = false;
  private closed = false;
  private readonly releaseSmartDriver: () => void;

  private constructor(
    private config: ConnectionConfig,
    private target: Target,
    private readonly log: Logger,
  ) {
    this.releaseSmartDriver = claimSmartDriver(config, target);
  }

  /** Parse and validate a config; with verify, connect now and fail clearly if that is impossible. */
  static async open(raw: Record<string, unknown>, verify: boolean, log: Logger): Promise<SqlDatabase> {
    const { config, unknownKeys } = parseConfig(raw);
    if (unknownKeys.length) log.warn('ignoring unknown configuration keys', { keys: unknownKeys.join(',') });
    const target = await loadTlsFiles(resolveTarget(config));
    void loadPgLexer().catch(() => undefined); // warm up for the first call; render() awaits it
    tlsOptions(target, target.sslmode !== 'disable'); // surfaces inconsistent TLS settings now
    const db = new SqlDatabase(config, target, log);
    if (verify) {
      try {
        await db.ensureReady();
      } catch (e) {
        await db.close();
        throw e;
      }
    }
    return db;
  }

  /** Secrets of this connection, for redaction of anything said about it. */
  secrets(): string[] {
    return [...configSecrets(this.config), this.target.password, this.target.sslkey].filter((s): s is string => !!s);
  }

  get dialectName(): string | undefined {
    return this.dialect?.name;
  }

  /** For tests and metrics: the live pool. */
  get poolStats(): { total: number; idle: number; max: number } {
    return { total: this.pool?.totalCount ?? 0, idle: this.pool?.idleCount ?? 0, max: this.config.maxOpen };
  }

  /** Connect once (TLS choice per sslmode, dialect detection), then build the pool. Retried on later calls if it fails. */
  private ensureReady(): Promise<void> {
    if (this.closed) return Promise.reject(unavailable('this database connection was closed'));
    if (!this.ready) {
      this.ready = this.connectAndDetect().catch((e) => {
        this.ready = undefined;
        throw e;
      });
    }
    return this.ready;
  }

  private async connectAndDetect(): Promise<void> {
    const { Client } = await import('pg');
    let lastErr: unknown;
    for (const useTls of tlsAttempts(this.target.sslmode)) {
      const cfg = clientConfig(this.target, this.config, useTls);
      const probe = new Client(cfg);
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        const { rows } = await probe.query<{ version: string }>('SELECT version() AS version');
        this.dialect = detectDialect(rows[0]?.version ?? '');
        this.serverMajor = Number(/^PostgreSQL (\d+)/.exec(rows[0]?.version ?? '')?.[1] ?? 0);
        await probe.end().catch(() => undefined);
        this.useTls = useTls;
        this.pool = new ConnectionPool(cfg, this.config);
        this.log.debug('connected', { dialect: this.dialect.name, tls: useTls });
        return;
      } catch (e) {
        lastErr = e;
        await probe.end().catch(() => undefined);
      }
    }
    const err = lastErr as Error | undefined;
    throw unavailable(`cannot connect to ${this.target.host}:${this.target.port}/${this.target.database} as ${this.target.user}: ${err?.message ?? err}`);
  }

  private async ctx(): Promise<{ pool: ConnectionPool; dialect: Dialect }> {
    await this.ensureReady();
    return { pool: this.pool!, dialect: this.dialect! };
  }

  /** Render every statement with the call's values, checked by PostgreSQL's lexer; reject transaction control. */
  private async render(commands: readonly string[], values: Values): Promise<string[]> {
    const stmts = splitAll(commands);
    assertNoTransactionControl(stmts);
    await loadPgLexer();
    return stmts.map((s) => renderVerified(s, values));
  }

  private txOptions(pool: ConnectionPool, dialect: Dialect): TxOptions {
    const q = dialect.cancelBackendQuery;
    return {
      transactionTimeout: dialect.name === 'postgresql' && this.serverMajor >= 17,
      cancelBackend: q ? async (pid) => {
        const c = await pool.single();
        try { await c.query(q, [pid]); } finally { await c.end().catch(() => undefined); }
      } : undefined,
    };
  }

  /** The password as sent to the server; a SCRAM verifier (and its parts) joins the call's secrets. */
  private async passwordValue(clear: string, secrets: string[]): Promise<string> {
    if (!this.config.scram) return clear;
    const v = await scramVerifier(clear);
    secrets.push(...scramSecrets(v));
    return v;
  }

  async newUser(input: NewUserInput): Promise<string> {
    const secrets: string[] = [];
    try {
      return await this.createUser(input, secrets);
    } catch (e) {
      throw withSecrets(e, secrets);
    }
  }

  async updateUser(input: UpdateUserInput): Promise<void> {
    const secrets: string[] = [];
    try {
      await this.changeUser(input, secrets);
    } catch (e) {
      throw withSecrets(e, secrets);
    }
  }

  private async createUser(input: NewUserInput, secrets: string[]): Promise<string> {
    if (input.credentialType !== 0) throw invalid(`credential_type ${input.credentialType} is not supported: this plugin issues password credentials only`);
    if (!input.password) throw invalid('password is required');
    if (!input.statements.some((s) => s.trim())) throw invalid('creation statements are required (set creation_statements on the role)');
    const { pool, dialect } = await this.ctx();
    const username = dialect.normalizeUsername(this.config.usernameTemplate.render({ DisplayName: input.displayName, RoleName: input.roleName }));
    if (!username) throw invalid('username_template produced an empty username');
    if (CONTROL_CHARS.test(username)) throw invalid('generated username contains control characters');
    const bytes = Buffer.byteLength(username);
    if (bytes > dialect.maxUsernameBytes) {
      throw invalid(`generated username is ${bytes} bytes; ${dialect.name} keeps at most ${dialect.maxUsernameBytes} (end username_template with "| truncate ${dialect.maxUsernameBytes}")`);
    }
    const stmts = await this.render(input.statements, {
      name: username,
      username,
      password: await this.passwordValue(input.password, secrets),
      expiration: input.expiration ? dialect.formatExpiration(input.expiration) : 'infinity',
    });

    if (dialect.transactionalDdl) {
      try {
        await withRetry(() => pool.with((c) => inTransaction(c, stmts, input, this.txOptions(pool, dialect))), this.retryLog('NewUser'));
      } catch (e) {
        // Committed just as the caller gave up: Vault will never learn this user, so remove it.
        if ((e as { committed?: boolean }).committed) await this.dropRoleQuietly(username);
        throw e;
      }
    } else {
      try {
        await pool.with(async (c) => {
          // Statement by statement, each lexed on arrival; re-pin in case an earlier call's statements changed it.
          await c.query(PIN_SESSION);
          for (const s of stmts) {
            const early = endedEarly(input);
            if (early) throw early;
            await withRetry(() => c.query(s), this.retryLog('NewUser'));
          }
        });
      } catch (e) {
        // No transactional DDL: undo what did run, so a failed call leaves no role.
        await this.dropRoleQuietly(username);
        throw e;
      }
    }
    return username;
  }

  private async changeUser(input: UpdateUserInput, secrets: string[]): Promise<void> {
    if (!input.username) throw invalid('username is required');
    if (input.publicKey) throw invalid('public key credentials are not supported: this plugin manages password credentials only');
    if (!input.password && !input.expiration) throw invalid('no changes requested: neither a new password nor a new expiration was given');
    if (input.password && !input.password.newPassword) throw invalid('new password is empty');
    const { pool, dialect } = await this.ctx();
    const stmts: string[] = [];
    if (input.password) {
      const cmds = input.password.statements.some((s) => s.trim()) ? input.password.statements : [dialect.defaultRotation];
      stmts.push(...await this.render(cmds, { name: input.username, username: input.username, password: await this.passwordValue(input.password.newPassword, secrets) }));
    }
    if (input.expiration) {
      const cmds = input.expiration.statements.some((s) => s.trim()) ? input.expiration.statements : [dialect.defaultRenew];
      const exp = input.expiration.newExpiration ? dialect.formatExpiration(input.expiration.newExpiration) : 'infinity';
      stmts.push(...await this.render(cmds, { name: input.username, username: input.username, expiration: exp }));
    }

    const isRoot = !!input.password && input.username === this.target.user;
    if (isRoot && this.config.connectionUrl && !/\{\{\s*password\s*\}\}/.test(this.config.connectionUrl) && !this.config.password) {
      throw invalid('cannot rotate the root password: connection_url has the password written in; use {{password}} and the password field');
    }

    if (input.selfManagedPassword && input.password) {
      // Self-managed static roles: the user changes its own password with the one it has.
      const { Client } = await import('pg');
      const own = new Client(clientConfig({ ...this.target, user: input.username, password: input.selfManagedPassword }, this.config, this.useTls));
      own.on('error', () => undefined);
      try {
        await own.connect();
        await own.query(PIN_SESSION);
        await withRetry(() => inTransaction(own, stmts, input, this.txOptions(pool, dialect)), this.retryLog('UpdateUser'));
      } finally {
        await own.end().catch(() => undefined);
      }
      return;
    }

    await withRetry(() => pool.with((c) => inTransaction(c, stmts, input, this.txOptions(pool, dialect))), this.retryLog('UpdateUser'));
    if (isRoot) await this.swapRootPassword(input.password!.newPassword);
  }

  /** After rotating the connection's own password: new connections use it; in-flight calls finish on the old pool. */
  private async swapRootPassword(newPassword: string): Promise<void> {
    const old = this.pool!;
    this.config = { ...this.config, password: newPassword };
    this.target = { ...this.target, password: newPassword };
    this.pool = new ConnectionPool(clientConfig(this.target, this.config, this.useTls), this.config);
    void old.end().catch(() => undefined);
    this.log.info('root credential rotated; connection pool rebuilt');
  }

  async deleteUser(username: string, statements: string[], bounds: CallBounds = {}): Promise<void> {
    if (!username) throw invalid('username is required');
    const { pool, dialect } = await this.ctx();
    const exists = await pool.with((c) => c.query(dialect.roleExistsQuery, [username]));
    if (exists.rowCount === 0) return; // already gone: revocation is idempotent

    if (statements.some((s) => s.trim())) {
      const stmts = await this.render(statements, { name: username, username });
      await withRetry(() => pool.with((c) => inTransaction(c, stmts, bounds, this.txOptions(pool, dialect))), this.retryLog('DeleteUser'));
      return;
    }
    await this.defaultRevoke(username, pool, dialect);
  }

  /**
   * Remove a role however it is entangled: end its sessions, move away what it owns and
   * revoke its grants in every database that records any, then drop it. Should the drop
   * still report dependencies (2BP01, e.g. CockroachDB's "grants still exist"), every
   * database is cleaned once more before a last attempt.
   */
  private async defaultRevoke(username: string, pool: ConnectionPool, dialect: Dialect): Promise<void> {
    const user = quoteIdent(username);
    if (dialect.terminateSessionsQuery) {
      await pool.with((c) => c.query(dialect.terminateSessionsQuery!, [username])).catch((e: Error) =>
        this.log.warn('could not end the sessions of a revoked user', { error: e.message }));
    }
    const dep = dialect.dependentDatabases(username);
    await this.releaseIn((await pool.with((c) => c.query<{ datname: string }>(dep.text, dep.values))).rows.map((r) => r.datname), user, pool, dialect);
    const drop = () => withRetry(() => pool.with((c) => inTransaction(c, dialect.dropRole(user), {}, this.txOptions(pool, dialect))), this.retryLog('DeleteUser'));
    try {
      await drop();
    } catch (e) {
      if ((e as { code?: string }).code !== '2BP01') throw e;
      this.log.warn('role still has dependencies; cleaning every database', { error: (e as Error).message });
      await this.releaseIn((await pool.with((c) => c.query<{ datname: string }>(dialect.allDatabasesQuery))).rows.map((r) => r.datname), user, pool, dialect);
      await drop();
    }
  }

  /** In each database: REASSIGN OWNED to the admin (taking membership if denied), then DROP OWNED. */
  private async releaseIn(dbs: readonly string[], user: string, pool: ConnectionPool, dialect: Dialect): Promise<void> {
    const admin = quoteIdent(this.target.user);
    let member = false;
    const release = (db: string) => async (c: Queryable) => {
      const [reassign, ...rest] = dialect.releaseObjects(user, admin);
      try {
        await c.query(reassign);
      } catch (e) {
        if (!member && (e as { code?: string }).code === '42501') {
          await c.query(dialect.takeMembership(user, admin));
          member = true;
          await c.query(reassign).catch((e2: Error) => this.log.warn('REASSIGN OWNED failed; dropping the objects instead', { database: db, error: e2.message }));
        } else {
          // Data cannot be moved (e.g. no rights on the target): DROP OWNED still frees the role.
          this.log.warn('REASSIGN OWNED failed; dropping the objects instead', { database: db, error: (e as Error).message });
        }
      }
      for (const s of rest) await c.query(s);
    };
    for (const db of dbs) {
      if (db === this.target.database) await withRetry(() => pool.with(release(db)), this.retryLog('DeleteUser'));
      else {
        const c = await pool.single(db);
        try { await withRetry(() => release(db)(c), this.retryLog('DeleteUser')); } finally { await c.end().catch(() => undefined); }
      }
    }
  }

  private async dropRoleQuietly(username: string): Promise<void> {
    try {
      const { pool, dialect } = await this.ctx();
      await this.defaultRevoke(username, pool, dialect);
    } catch (e) {
      this.log.error('could not remove a partially created user; remove it by hand', { username, error: (e as Error).message });
    }
  }

  private retryLog(op: string) {
    return { onRetry: (attempt: number, code: string) => this.log.debug('retrying transaction', { op, attempt, sqlstate: code }) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.releaseSmartDriver();
    const p = this.pool;
    this.pool = undefined;
    await p?.end().catch(() => undefined);
  }
}
