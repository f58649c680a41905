// One configured database connection (one `database/config/<name>` in Vault) and the
// credential operations on it. No state lives only here: Vault re-sends the stored
// config after a plugin restart and everything is rebuilt from it.
import { parseConfig, configSecrets, storedConfig, type ConnectionConfig } from './config';
import {
  ConnectionPool,
  PIN_SESSION,
  claimSmartDriver,
  connectionSetup,
  clientConfig,
  loadTlsFiles,
  probeServer,
  resolveTarget,
  tlsOptions,
  type Target,
} from './connection';
import type { Dialect } from './dialects';
import type {
  Database,
  DeleteUserRequest,
  DeleteUserResponse,
  InitializeRequest,
  InitializeResponse,
  NewUserRequest,
  NewUserResponse,
  UpdateUserRequest,
  UpdateUserResponse,
} from './database';
import { TYPE_NAME } from './database';
import { invalid, precondition, unavailable, withSecrets } from './errors';
import { outcomeUnknown } from './sqlstate';
import { endedEarly, untilEnded, type CallBounds } from './bounds';
import { DEFAULTS } from './defaults';
import { withRetry } from './retry';
import { scramSecrets, scramVerifier } from './scram';
import { assertNoTransactionControl, renderVerified, splitAll, type Values } from './statements';
import { loadPgLexer } from './pglexer';
import { defaultRevoke, type RevokeContext } from './revoke';
import { boundedQuery, inTransaction, transactionOptions, type TxOptions } from './transaction';
import { generateUsername } from './usernames';
import type { Logger } from '../goplugin/log';

/** Tuning of a SqlDatabase (tests shorten the timers). */
export interface SqlDatabaseOptions {
  /** Close the pool this long after the last call ended (default DEFAULTS.poolIdleCloseMs). */
  poolIdleCloseMs?: number;
  /** Retry removing unreported users this often while no call comes (default DEFAULTS.unreportedRetryMs). */
  unreportedRetryMs?: number;
}

/**
 * What a configuration costs while idle: its parsed config and what the first connection
 * learned about the server. The pool is opened by the first call that needs it and closed
 * poolIdleCloseMs after the last call ended (no sockets, timers or listeners stay behind);
 * close() frees everything at once.
 */
export class SqlDatabase implements Database {
  private config?: ConnectionConfig;
  private target?: Target;
  private pool?: ConnectionPool;
  private dialect?: Dialect;
  /** PostgreSQL major version from version() (0 when not PostgreSQL). */
  private serverMajor = 0;
  private ready?: Promise<void>;
  /** Whether connections use TLS: decided once per sslmode by the first successful connect. */
  private useTls = false;
  private closed = false;
  private releaseSmartDriver: () => void = () => undefined;
  /** Calls running now; the pool may close only when there are none. */
  private running = 0;
  private idleTimer?: NodeJS.Timeout;
  /** Users created although their call failed (connection lost around COMMIT), to remove once the database answers. */
  private readonly unreported = new Set<string>();
  private sweeping?: Promise<void>;
  private unreportedTimer?: NodeJS.Timeout;
  /** Per user name, the tail of the statement-by-statement creations of that name (see onePerName). */
  private readonly creating = new Map<string, Promise<void>>();
  /** The tail of the default revocations queued one after another (see defaultRevoke). */
  private revoking: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly log: Logger,
    private readonly options: SqlDatabaseOptions = {},
  ) {}

  /** A new instance, initialized: for callers (tests, tools) outside the gRPC binding. */
  static async open(raw: Record<string, unknown>, verify: boolean, log: Logger, options: SqlDatabaseOptions = {}): Promise<SqlDatabase> {
    const db = new SqlDatabase(log, options);
    await db.initialize({ config: raw, verifyConnection: verify });
    return db;
  }

  /** Parse and validate a config; with verifyConnection, connect now and fail clearly if that is impossible. */
  async initialize(req: InitializeRequest): Promise<InitializeResponse> {
    if (this.config) throw precondition('this database instance is already initialized');
    const { config, unknownKeys } = parseConfig(req.config);
    if (unknownKeys.length) this.log.warn('ignoring unknown configuration keys', { keys: unknownKeys.join(',') });
    const target = await loadTlsFiles(resolveTarget(config));
    if (target.ignoredParams?.length) this.log.warn('connection_url parameters without effect in this plugin', { params: target.ignoredParams.join(',') });
    tlsOptions(target, target.sslmode !== 'disable'); // surfaces inconsistent TLS settings now
    this.releaseSmartDriver = claimSmartDriver(config, target);
    this.config = config;
    this.target = target;
    if (req.verifyConnection) {
      try {
        await this.ensureReady();
      } catch (e) {
        await this.close();
        throw e;
      }
    }
    // Vault stores what we return, shows it on read (all but password and private_key) and
    // sends it back after restarts: as given, but an inline key where Vault hides it.
    return { config: storedConfig(req.config) };
  }

  type(): string {
    return TYPE_NAME;
  }

  /** Secrets of this connection, for redaction of anything said about it. */
  secrets(): string[] {
    if (!this.config || !this.target) return [];
    return [...configSecrets(this.config), this.target.password, this.target.sslkey].filter((s): s is string => !!s);
  }

  get dialectName(): string | undefined {
    return this.dialect?.name;
  }

  /** For tests and metrics: the live pool. */
  get poolStats(): { total: number; idle: number; max: number } {
    return { total: this.pool?.totalCount ?? 0, idle: this.pool?.idleCount ?? 0, max: this.config?.maxOpen ?? 0 };
  }

  /** Connect once (TLS choice per sslmode, dialect detection), then build the pool. Retried on later calls if it fails. */
  private ensureReady(): Promise<void> {
    if (this.closed) return Promise.reject(unavailable('this database connection was closed'));
    if (!this.config) return Promise.reject(precondition('this database instance is not initialized'));
    if (!this.ready) {
      this.ready = this.connectAndDetect().catch((e) => {
        this.ready = undefined;
        throw e;
      });
    }
    return this.ready;
  }

  private async connectAndDetect(): Promise<void> {
    const server = await probeServer(this.target!, this.config!);
    this.dialect = server.dialect;
    this.serverMajor = server.serverMajor;
    this.useTls = server.useTls;
    this.log.debug('connected', { dialect: this.dialect.name, tls: this.useTls });
  }

  /** The server's details (connecting once if not yet known) and the pool, opened now if it is not open. Only inside trackCall. */
  private async ctx(): Promise<{ pool: ConnectionPool; dialect: Dialect; config: ConnectionConfig; target: Target }> {
    await this.ensureReady();
    if (this.closed) throw unavailable('this database connection was closed');
    this.pool ??= new ConnectionPool(clientConfig(this.target!, this.config!, this.useTls), this.config!, connectionSetup(this.target!));
    return { pool: this.pool, dialect: this.dialect!, config: this.config!, target: this.target! };
  }

  /** Run a call (`sweep`: the removal of unreported users itself); when the last running call ends, the pool is closed after poolIdleCloseMs unless another call comes. */
  private async trackCall<T>(fn: () => Promise<T>, sweep = false): Promise<T> {
    this.running++;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    try {
      const out = await fn();
      // The database answers: remove what earlier failed calls may have left (not delaying this call).
      if (this.unreported.size && !this.sweeping && !sweep) void this.trackCall(() => this.sweepUnreported(), true);
      return out;
    } finally {
      if (--this.running === 0 && this.pool && !this.closed) {
        this.idleTimer = setTimeout(() => this.closeIdlePool(), this.options.poolIdleCloseMs ?? DEFAULTS.poolIdleCloseMs);
        this.idleTimer.unref();
      }
    }
  }

  private closeIdlePool(): void {
    this.idleTimer = undefined;
    if (this.running > 0 || !this.pool) return;
    const p = this.pool;
    this.pool = undefined;
    void p.end().catch(() => undefined);
    this.log.debug('idle connection pool closed');
  }

  /** Render every statement with the call's values, checked by PostgreSQL's lexer; reject transaction control. */
  private async render(commands: readonly string[], values: Values): Promise<string[]> {
    const stmts = splitAll(commands);
    assertNoTransactionControl(stmts);
    await loadPgLexer();
    return stmts.map((s) => renderVerified(s, values));
  }

  private txOptions(pool: ConnectionPool, dialect: Dialect): TxOptions {
    return transactionOptions(pool, dialect, this.serverMajor);
  }

  /** The password as sent to the server; a SCRAM verifier (and its parts) joins the call's secrets. */
  private async passwordValue(clear: string, secrets: string[]): Promise<string> {
    if (!this.config?.scram) return clear;
    const v = await scramVerifier(clear);
    secrets.push(...scramSecrets(v));
    return v;
  }

  async newUser(input: NewUserRequest): Promise<NewUserResponse> {
    const secrets: string[] = [];
    try {
      return { username: await this.trackCall(() => this.createUser(input, secrets)) };
    } catch (e) {
      throw withSecrets(e, secrets);
    }
  }

  async updateUser(input: UpdateUserRequest): Promise<UpdateUserResponse> {
    const secrets: string[] = [];
    try {
      await this.trackCall(() => this.changeUser(input, secrets));
      return {};
    } catch (e) {
      throw withSecrets(e, secrets);
    }
  }

  private async createUser(input: NewUserRequest, secrets: string[]): Promise<string> {
    if (input.credentialType !== 0) throw invalid(`credential_type ${input.credentialType} is not supported: this plugin issues password credentials only`);
    if (!input.password) throw invalid('password is required');
    // Statements of comments only would create nothing, and the call still answer a username.
    if (!splitAll(input.statements).length)
      throw invalid('creation statements are required (set creation_statements on the role; comments alone create nothing)');
    const { pool, dialect, config } = await this.ctx();
    const username = generateUsername(config.usernameTemplate, dialect, input);
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
        // Committed just as the caller gave up, or perhaps committed before the connection was
        // lost: Vault will never learn this user, so it must not stay.
        const flags = e as { committed?: boolean; discardConnection?: boolean };
        if (flags.committed || flags.discardConnection || outcomeUnknown(e)) await this.removeUnreported(username);
        throw e;
      }
    } else {
      // One call per name at a time here, so that a call cannot take another's new role for one it may undo.
      await this.onePerName(username, async () => {
        // A role that had the name before this call is not this call's to undo (a fixed
        // username_template gives every lease the same name; CREATE ROLE then fails as a duplicate).
        const existed = ((await pool.with((c) => c.query(dialect.roleExistsQuery, [username]))).rowCount ?? 0) > 0;
        try {
          await pool.with(async (c) => {
            // Statement by statement, each lexed on arrival; re-pin in case an earlier call's statements changed it.
            await c.query(PIN_SESSION);
            for (const s of stmts) {
              // Bounded by the call (a statement waiting on a lock is cancelled at its end).
              await withRetry(() => boundedQuery(c, s, input, this.txOptions(pool, dialect)), this.retryLog('NewUser'));
            }
          });
        } catch (e) {
          // No transactional DDL: undo what did run, so a failed call leaves no role.
          if (!existed) await this.dropRoleQuietly(username);
          throw e;
        }
      });
    }
    return username;
  }

  /** Run fn when no other call of this instance is creating a user of that name. */
  private async onePerName<T>(username: string, fn: () => Promise<T>): Promise<T> {
    const before = this.creating.get(username) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.creating.set(username, tail);
    try {
      return await run;
    } finally {
      if (this.creating.get(username) === tail) this.creating.delete(username);
    }
  }

  private async changeUser(input: UpdateUserRequest, secrets: string[]): Promise<void> {
    if (!input.username) throw invalid('username is required');
    if (input.publicKey) throw invalid('public key credentials are not supported: this plugin manages password credentials only');
    if (!input.password && !input.expiration) throw invalid('no changes requested: neither a new password nor a new expiration was given');
    if (input.password && !input.password.newPassword) throw invalid('new password is empty');
    // Given but of comments only, they would change nothing while Vault takes the new password as set (for the root: locked out).
    if (input.password?.statements.some((s) => s.trim()) && !splitAll(input.password.statements).length) {
      throw invalid('rotation statements hold only comments: give the statements that change the password, or none for the default ALTER ROLE ... PASSWORD');
    }
    const { pool, dialect, config, target } = await this.ctx();
    const stmts: string[] = [];
    if (input.password) {
      const cmds = input.password.statements.some((s) => s.trim()) ? input.password.statements : [dialect.defaultRotation];
      stmts.push(
        ...(await this.render(cmds, {
          name: input.username,
          username: input.username,
          password: await this.passwordValue(input.password.newPassword, secrets),
        })),
      );
    }
    if (input.expiration) {
      const cmds = input.expiration.statements.some((s) => s.trim()) ? input.expiration.statements : [dialect.defaultRenew];
      const exp = input.expiration.newExpiration ? dialect.formatExpiration(input.expiration.newExpiration) : 'infinity';
      stmts.push(...(await this.render(cmds, { name: input.username, username: input.username, expiration: exp })));
    }

    const isRoot = !!input.password && input.username === target.user;
    // Vault keeps the rotated password in the password field, which reaches the connection
    // only through {{password}}: a URL with the password written in (or none) would connect
    // with the old one after the next Initialize, for good. (Vault itself sets the field.)
    if (isRoot && config.connectionUrl && !/\{\{\s*password\s*\}\}/.test(config.connectionUrl)) {
      throw invalid(
        'cannot rotate the root password: connection_url has no {{password}}, so the new password would not be used to connect; write {{password}} into connection_url and set the password field',
      );
    }

    if (input.selfManagedPassword && input.password) {
      // Self-managed static roles: the user changes its own password with the one it has.
      const { Client } = await import('pg');
      const own = new Client(clientConfig({ ...target, user: input.username, password: input.selfManagedPassword }, config, this.useTls));
      own.on('error', () => undefined);
      try {
        await own.connect();
        await own.query(connectionSetup(target));
        await withRetry(() => inTransaction(own, stmts, input, this.txOptions(pool, dialect)), this.retryLog('UpdateUser'));
      } finally {
        await own.end().catch(() => undefined);
      }
      return;
    }

    await withRetry(() => pool.with((c) => inTransaction(c, stmts, input, this.txOptions(pool, dialect))), this.retryLog('UpdateUser'));
    if (isRoot) await this.swapRootPassword(input.password!.newPassword);
  }

  /** After rotating the connection's own password: the next call opens a pool with it; in-flight calls finish on the old one. */
  private async swapRootPassword(newPassword: string): Promise<void> {
    const old = this.pool;
    this.config = { ...this.config!, password: newPassword };
    this.target = { ...this.target!, password: newPassword };
    this.pool = undefined;
    void old?.end().catch(() => undefined);
    this.log.info('root credential rotated; connection pool rebuilt');
  }

  deleteUser(req: DeleteUserRequest): Promise<DeleteUserResponse> {
    return this.trackCall(() => this.removeUser(req));
  }

  private async removeUser(req: DeleteUserRequest): Promise<DeleteUserResponse> {
    const { username, statements } = req;
    if (!username) throw invalid('username is required');
    const { pool, dialect } = await this.ctx();
    const exists = await pool.with((c) => boundedQuery(c, dialect.roleExistsQuery, req, this.txOptions(pool, dialect), [username]));
    if (exists.rowCount === 0) return {}; // already gone: revocation is idempotent

    if (statements.some((s) => s.trim())) {
      const stmts = await this.render(statements, { name: username, username });
      await withRetry(() => pool.with((c) => inTransaction(c, stmts, req, this.txOptions(pool, dialect))), this.retryLog('DeleteUser'));
      return {};
    }
    await defaultRevoke(username, this.revokeContext(pool, dialect, req));
    return {};
  }

  /** `bounds`: the call's; a removal of the plugin's own (an unreported or half-created user) gets DEFAULTS.cleanupTimeoutMs. */
  private revokeContext(pool: ConnectionPool, dialect: Dialect, bounds: CallBounds = { deadline: Date.now() + DEFAULTS.cleanupTimeoutMs }): RevokeContext {
    return {
      pool,
      dialect,
      adminUser: this.target!.user,
      adminDatabase: this.target!.database,
      tx: this.txOptions(pool, dialect),
      retry: this.retryLog('DeleteUser'),
      log: this.log,
      bounds,
      serialize: (fn) => {
        // A call that ended while it waited its turn is skipped, and its caller not kept waiting.
        const turn = () => {
          const early = endedEarly(bounds);
          return early ? Promise.reject(early) : fn();
        };
        const run = this.revoking.then(turn, turn);
        this.revoking = run.catch(() => undefined);
        return untilEnded(run, bounds);
      },
    };
  }

  /**
   * Remove a user the call could not report. When the database cannot be reached now, the
   * user is remembered and removed before the next call's own work (or by a timer while no
   * call comes); its password was never returned, and its VALID UNTIL bounds it meanwhile.
   */
  private async removeUnreported(username: string): Promise<void> {
    this.unreported.add(username);
    await this.sweepUnreported();
    if (this.unreported.has(username))
      this.log.warn('a user may have been created although the call failed; it is removed when the database answers again', { username });
  }

  /** Remove the remembered unreported users; those the database still cannot drop stay for later. */
  private sweepUnreported(): Promise<void> {
    if (!this.unreported.size) return Promise.resolve();
    this.sweeping ??= (async () => {
      try {
        const { pool, dialect } = await this.ctx();
        // Live iteration: a user remembered while a sweep runs is removed by that sweep too.
        for (const username of this.unreported) {
          await defaultRevoke(username, this.revokeContext(pool, dialect));
          this.unreported.delete(username);
          this.log.info('removed a user that was created although its call failed', { username });
        }
      } catch {
        this.armUnreportedTimer(); // still unreachable: try again later
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  private armUnreportedTimer(): void {
    if (this.unreportedTimer || this.closed || !this.unreported.size) return;
    this.unreportedTimer = setTimeout(() => {
      this.unreportedTimer = undefined;
      void this.trackCall(() => this.sweepUnreported(), true);
    }, this.options.unreportedRetryMs ?? DEFAULTS.unreportedRetryMs);
    this.unreportedTimer.unref();
  }

  private async dropRoleQuietly(username: string): Promise<void> {
    try {
      const { pool, dialect } = await this.ctx();
      await defaultRevoke(username, this.revokeContext(pool, dialect));
    } catch (e) {
      this.log.error('could not remove a partially created user; remove it by hand', { username, error: (e as Error).message });
    }
  }

  private retryLog(op: string) {
    return { onRetry: (attempt: number, code: string) => this.log.debug('retrying transaction', { op, attempt, sqlstate: code }) };
  }

  /** Free everything: the idle timer, the pool and its sockets, the smart driver's claim (and its control connection when it was the last). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.unreportedTimer);
    if (this.unreported.size)
      this.log.error('users created although their calls failed remain; remove them by hand', { usernames: [...this.unreported].join(',') });
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.releaseSmartDriver();
    const p = this.pool;
    this.pool = undefined;
    await p?.end().catch(() => undefined);
  }
}
