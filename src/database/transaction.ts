// One call's statements as one transaction in one round trip, bounded by the call's
// deadline and cancellation: a credential Vault never learned of is never committed.
import type { PoolClient, Client as PgClient, QueryResult, QueryResultRow } from 'pg';
import type { CallBounds } from './bounds';
import { endedEarly, onEndedEarly } from './bounds';
import type { ConnectionPool } from './connection/pool';
import { PIN_SESSION } from './connection/session';
import { DEFAULTS } from './defaults';
import type { Dialect } from './dialects';
import { PluginError, deadlineExceeded, sqlState } from './errors';

/** A connection or pool client that runs SQL text (and, for cancelling, names its backend process). */
export type Queryable = Pick<PoolClient | PgClient, 'query'> & { processID?: number | null };

/** What the server and dialect offer for bounding a transaction. */
export interface TxOptions {
  /** The server has transaction_timeout (PostgreSQL 17+). */
  transactionTimeout: boolean;
  /** Cancel what a backend is running, from another connection. */
  cancelBackend?: (pid: number) => Promise<void>;
}

/** What the server offers a transaction: transaction_timeout, and cancelling from another connection (on a connection of its own). */
export function transactionOptions(pool: ConnectionPool, dialect: Dialect, serverMajor: number): TxOptions {
  const q = dialect.cancelBackendQuery;
  return {
    transactionTimeout: dialect.name === 'postgresql' && serverMajor >= 17,
    cancelBackend: q
      ? async (pid) => {
          const c = await pool.single();
          try {
            await c.query(q, [pid]);
          } finally {
            await c.end().catch(() => undefined);
          }
        }
      : undefined,
  };
}

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
    if (o.transactionTimeout) parts.push(`SET LOCAL transaction_timeout = ${left + DEFAULTS.cancelGraceMs}`);
  }
  return parts;
}

/** What the deadline guard casts to an integer (failing with 22P02): it names the cause in the server's log and error. */
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

type Outcome<T> = { ok: true; value: T } | { ok: false; e: unknown };

/**
 * The call's end, watched while a statement runs on `client` (until stop()): at the end the
 * running statement is cancelled on the server, and reason() tells why the call ended
 * (`whenEnded` for a deadline). outcome(p): how the statement settled, unless the call ended
 * first and the statement did not come back within the grace period: then the end's reason,
 * marked discardConnection.
 */
function watchCallEnd(client: Queryable, b: CallBounds, o: TxOptions, whenEnded: string) {
  let reason: PluginError | undefined;
  let wake: () => void = () => undefined;
  const ended = new Promise<'ended'>((res) => {
    wake = () => res('ended');
  });
  const stop = onEndedEarly(b, () => {
    reason = endedEarly(b) ?? deadlineExceeded(whenEnded);
    const pid = client.processID;
    if (pid && o.cancelBackend) void o.cancelBackend(pid).catch(() => undefined);
    wake();
  });
  return {
    stop,
    reason: () => reason,
    async outcome<T>(p: Promise<T>): Promise<Outcome<T>> {
      const settled = p.then(
        (value) => ({ ok: true as const, value }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      let r: Outcome<T> | 'ended' | 'stuck' = await Promise.race([settled, ended]);
      if (r === 'ended') {
        r = await Promise.race([settled, new Promise<'stuck'>((res) => setTimeout(() => res('stuck'), DEFAULTS.cancelGraceMs))]);
        if (r === 'stuck') throw Object.assign(reason!, { discardConnection: true });
      }
      return r;
    },
  };
}

/**
 * Run statements atomically, in ONE round trip: BEGIN and the pinned settings, the
 * statements, a deadline guard, COMMIT. When the call's deadline passes or the caller
 * cancels it while this runs, the running statement is cancelled on the server (the rest,
 * COMMIT included, is skipped) and the transaction rolled back, or its connection dropped,
 * which rolls it back too: a credential Vault never learned of is not committed. Should
 * the end come so late that COMMIT already ran, the error says so (`committed`).
 */
export async function inTransaction(client: Queryable, stmts: readonly string[], b: CallBounds, o: TxOptions): Promise<void> {
  if (stmts.length === 0) return;
  const before = endedEarly(b);
  if (before) throw before;
  const left = b.deadline === undefined ? undefined : Math.floor(b.deadline - Date.now() - DEFAULTS.deadlineMarginMs);
  if (left !== undefined && left <= 0) throw deadlineExceeded("the call's deadline passed before the statements were sent");
  const text = [...transactionSetup(left, o), ...stmts, ...(left !== undefined ? [deadlineGuard(left)] : []), 'COMMIT', PIN_SESSION].join('\n;\n');

  const watch = watchCallEnd(client, b, o, "the call's deadline passed; nothing was committed");
  const sentAt = Date.now();
  try {
    const r = await watch.outcome(client.query(text));
    if (r.ok) {
      const reason = watch.reason();
      if (reason) throw Object.assign(new PluginError(reason.code, 'the call ended while its transaction committed'), { committed: true });
      return;
    }
    // A statement failed (or was cancelled): the rest was skipped and the transaction is aborted.
    await client.query(`ROLLBACK; ${PIN_SESSION}`).catch(() => undefined);
    const reason = watch.reason();
    if (reason) throw reason;
    // By identity, once the time the call had left is spent (both measure from the server's
    // receipt, so never before this): 22P02 is the deadline guard's cast of its mark (a
    // statement with a bad integer that late is past the deadline all the same); 57014
    // query_canceled is the statement_timeout set above.
    const late = left !== undefined && Date.now() - sentAt >= left;
    if (late && sqlState(r.e) === '22P02') throw deadlineExceeded("the call's deadline passed; nothing was committed", { cause: r.e });
    if (late && sqlState(r.e) === '57014') {
      throw deadlineExceeded("the call's deadline passed (statement timeout); nothing was committed", { cause: r.e });
    }
    throw r.e;
  } finally {
    watch.stop();
  }
}

/**
 * One statement on its own (not in the plugin's transaction text: REASSIGN/DROP OWNED of a
 * revocation, a creation statement where DDL is not transactional), bounded by the call:
 * when its deadline passes or the caller cancels, the statement is cancelled on the server
 * and the call ends with that reason; should the statement not come back within the grace
 * period, the error asks for its connection to be discarded. A statement that completed
 * anyway has taken effect, and is reported as done.
 */
export async function boundedQuery<R extends QueryResultRow = QueryResultRow>(
  client: Queryable,
  text: string,
  b: CallBounds,
  o: TxOptions,
  values?: unknown[],
): Promise<QueryResult<R>> {
  const before = endedEarly(b);
  if (before) throw before;
  const run = () => (values ? client.query<R>(text, values) : client.query<R>(text)) as Promise<QueryResult<R>>;
  if (b.deadline === undefined && !b.signal) return run();
  const watch = watchCallEnd(client, b, o, "the call's deadline passed");
  try {
    const r = await watch.outcome(run());
    if (r.ok) return r.value;
    const reason = watch.reason();
    if (reason) throw reason;
    throw r.e;
  } finally {
    watch.stop();
  }
}
