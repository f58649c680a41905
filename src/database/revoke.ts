// The default revocation (no revocation_statements): remove a role however it is entangled.
import type { Logger } from '../goplugin/log';
import type { ConnectionPool } from './connection/pool';
import type { Dialect } from './dialects';
import { sqlState } from './errors';
import { quoteIdent } from './quote';
import { isRetryable, withRetry, type RetryOptions } from './retry';
import { inTransaction, type Queryable, type TxOptions } from './transaction';

/** What revoking a user needs: the pool, the dialect and the transaction options. */
export interface RevokeContext {
  pool: ConnectionPool;
  dialect: Dialect;
  /** The configuration's own user (who receives what the role owned) and database. */
  adminUser: string;
  adminDatabase: string;
  tx: TxOptions;
  retry: RetryOptions;
  log: Logger;
  /** Runs the catalog changes of one revocation at a time (see defaultRevoke). */
  serialize: <T>(fn: () => Promise<T>) => Promise<T>;
}

/**
 * End the role's sessions, move away what it owns and revoke its grants in every database
 * that records any, then drop it. Should the drop still report dependencies (2BP01, e.g.
 * CockroachDB's "grants still exist"), every database is cleaned once more before a last
 * attempt.
 */
export async function defaultRevoke(username: string, ctx: RevokeContext): Promise<void> {
  const { pool, dialect, log } = ctx;
  const user = quoteIdent(username);
  if (dialect.terminateSessionsQuery) {
    await pool
      .with((c) => c.query(dialect.terminateSessionsQuery!, [username]))
      .catch((e: Error) => log.warn('could not end the sessions of a revoked user', { error: e.message }));
  }
  // DROP OWNED revokes the role's grants object by object, so concurrent revocations of
  // roles granted on the same tables deadlock (each costing deadlock_timeout) or hit
  // "tuple concurrently updated" until the retries run out: this process runs them one
  // at a time (retries still cover other processes).
  await ctx.serialize(() => releaseAndDrop(username, user, ctx));
}

async function releaseAndDrop(username: string, user: string, ctx: RevokeContext): Promise<void> {
  const { pool, dialect, log } = ctx;
  const dep = dialect.dependentDatabases(username);
  await releaseIn(
    (await pool.with((c) => c.query<{ datname: string }>(dep.text, dep.values))).rows.map((r) => r.datname),
    user,
    ctx,
  );
  const drop = () => withRetry(() => pool.with((c) => inTransaction(c, dialect.dropRole(user), {}, ctx.tx)), ctx.retry);
  try {
    await drop();
  } catch (e) {
    if (sqlState(e) !== '2BP01') throw e;
    log.warn('role still has dependencies; cleaning every database', { error: (e as Error).message });
    await releaseIn(
      (await pool.with((c) => c.query<{ datname: string }>(dialect.allDatabasesQuery))).rows.map((r) => r.datname),
      user,
      ctx,
    );
    await drop();
  }
}

/** In each database: REASSIGN OWNED to the admin (taking membership if denied), then DROP OWNED. */
async function releaseIn(dbs: readonly string[], user: string, ctx: RevokeContext): Promise<void> {
  const { pool, dialect, log } = ctx;
  const admin = quoteIdent(ctx.adminUser);
  let member = false;
  const release = (db: string) => async (c: Queryable) => {
    const [reassign, ...rest] = dialect.releaseObjects(user, admin);
    try {
      await c.query(reassign);
    } catch (e) {
      // Contention (a concurrent GRANT/REVOKE on the same objects): the whole release is retried, nothing dropped.
      if (isRetryable(e)) throw e;
      if (!member && sqlState(e) === '42501') {
        await c.query(dialect.takeMembership(user, admin));
        member = true;
        await c.query(reassign).catch((e2: Error) => log.warn('REASSIGN OWNED failed; dropping the objects instead', { database: db, error: e2.message }));
      } else {
        // Data cannot be moved (e.g. no rights on the target): DROP OWNED still frees the role.
        log.warn('REASSIGN OWNED failed; dropping the objects instead', { database: db, error: (e as Error).message });
      }
    }
    for (const s of rest) await c.query(s);
  };
  for (const db of dbs) {
    if (db === ctx.adminDatabase) await withRetry(() => pool.with(release(db)), ctx.retry);
    else {
      const c = await pool.single(db);
      try {
        await withRetry(() => release(db)(c), ctx.retry);
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  }
}
