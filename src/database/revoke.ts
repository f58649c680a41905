// The default revocation (no revocation_statements): remove a role however it is entangled.
import type { Logger } from '../goplugin/log';
import { endedEarly, type CallBounds } from './bounds';
import type { ConnectionPool } from './connection/pool';
import type { Dialect } from './dialects';
import { sqlState } from './errors';
import { quoteIdent } from './quote';
import { isRetryable, withRetry, type RetryOptions } from './retry';
import { boundedQuery, inTransaction, type Queryable, type TxOptions } from './transaction';

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
  /** Runs the catalog changes of one revocation at a time (see defaultRevoke); a call that ends while queued leaves the queue. */
  serialize: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The call's deadline and cancellation, which every statement of the revocation keeps to. */
  bounds: CallBounds;
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
      .with((c) => boundedQuery(c, dialect.terminateSessionsQuery!, ctx.bounds, ctx.tx, [username]))
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
    (await pool.with((c) => boundedQuery<{ datname: string }>(c, dep.text, ctx.bounds, ctx.tx, dep.values))).rows.map((r) => r.datname),
    user,
    ctx,
  );
  const drop = () => withRetry(() => pool.with((c) => inTransaction(c, dialect.dropRole(user), ctx.bounds, ctx.tx)), ctx.retry);
  try {
    await drop();
  } catch (e) {
    if (sqlState(e) !== '2BP01') throw e;
    log.warn('role still has dependencies; cleaning every database', { error: (e as Error).message });
    await releaseIn(
      (await pool.with((c) => boundedQuery<{ datname: string }>(c, dialect.allDatabasesQuery, ctx.bounds, ctx.tx))).rows.map((r) => r.datname),
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
    // Each statement waits no longer than the call (REASSIGN/DROP OWNED wait for the locks of what they change).
    const q = (text: string) => boundedQuery(c, text, ctx.bounds, ctx.tx);
    try {
      await q(reassign);
    } catch (e) {
      // Contention (a concurrent GRANT/REVOKE on the same objects): the whole release is retried, nothing dropped.
      // The call ended (the statement was cancelled): nothing is dropped either.
      if (isRetryable(e) || endedEarly(ctx.bounds)) throw e;
      if (!member && sqlState(e) === '42501') {
        await q(dialect.takeMembership(user, admin));
        member = true;
        await q(reassign).catch((e2: Error) => log.warn('REASSIGN OWNED failed; dropping the objects instead', { database: db, error: e2.message }));
      } else {
        // Data cannot be moved (e.g. no rights on the target): DROP OWNED still frees the role.
        log.warn('REASSIGN OWNED failed; dropping the objects instead', { database: db, error: (e as Error).message });
      }
    }
    for (const s of rest) await q(s);
  };
  for (const db of dbs) {
    if (db === ctx.adminDatabase) await withRetry(() => pool.with(release(db)), ctx.retry);
    else {
      const c = await pool.single(db);
      let stuck = false;
      try {
        await withRetry(() => release(db)(c), ctx.retry);
      } catch (e) {
        stuck = !!(e as { discardConnection?: boolean }).discardConnection;
        throw e;
      } finally {
        // A statement still running on it: closing waits for the server, so this call does not.
        const closing = c.end().catch(() => undefined);
        if (!stuck) await closing;
      }
    }
  }
}
