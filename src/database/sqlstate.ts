// What a server or driver error means for the caller, by its identity: the SQLSTATE
// (PostgreSQL's errcodes; CockroachDB and YugabyteDB use the same), or a Node system
// error on the socket. Never by message text.
import { ErrorCode, PluginError, sqlState } from './errors';

/** Single SQLSTATEs whose meaning differs from their class. */
const BY_STATE: Record<string, ErrorCode> = {
  '28P01': ErrorCode.Unauthenticated, // invalid_password: the configured credentials were refused
  '42501': ErrorCode.PermissionDenied, // insufficient_privilege: the admin lacks a right, the request is fine
  '42601': ErrorCode.InvalidArgument, // syntax_error (in the role's statements)
  // duplicate_object/_database/_cursor/_schema/_table/_alias/_function: it exists already
  '42710': ErrorCode.AlreadyExists,
  '42P04': ErrorCode.AlreadyExists,
  '42P03': ErrorCode.AlreadyExists,
  '42P06': ErrorCode.AlreadyExists,
  '42P07': ErrorCode.AlreadyExists,
  '42712': ErrorCode.AlreadyExists,
  '42723': ErrorCode.AlreadyExists,
  '23505': ErrorCode.AlreadyExists, // unique_violation
  // query_canceled: someone cancelled the statement (pg_cancel_backend, an operator). When the
  // call's own deadline set statement_timeout, inTransaction reports DeadlineExceeded instead.
  '57014': ErrorCode.Cancelled,
  '25P04': ErrorCode.DeadlineExceeded, // transaction_timeout (PostgreSQL 17+), set from the call's deadline
  '25P03': ErrorCode.Unavailable, // idle_in_transaction_session_timeout: the server ended the session
  '40002': ErrorCode.FailedPrecondition, // transaction_integrity_constraint_violation
  '40003': ErrorCode.Unknown, // statement_completion_unknown: it may or may not have committed
  '55P03': ErrorCode.Aborted, // lock_not_available: contention, as 40001
};

/** SQLSTATE classes (the first two characters). */
const BY_CLASS: Record<string, ErrorCode> = {
  '08': ErrorCode.Unavailable, // connection exception
  '57': ErrorCode.Unavailable, // operator intervention: 57P01 admin_shutdown, 57P02 crash, 57P03 cannot_connect_now, ...
  '53': ErrorCode.ResourceExhausted, // insufficient resources: too_many_connections, disk_full, out_of_memory
  '28': ErrorCode.PermissionDenied, // invalid authorization: no pg_hba entry, role may not log in
  '40': ErrorCode.Aborted, // transaction rollback: 40001 serialization_failure, 40P01 deadlock (after the retries)
  '72': ErrorCode.Aborted, // snapshot too old
  '0A': ErrorCode.InvalidArgument, // feature not supported (by this server, in the role's statements)
  '0L': ErrorCode.InvalidArgument, // invalid grantor
  '0P': ErrorCode.InvalidArgument, // invalid role specification
  '21': ErrorCode.InvalidArgument, // cardinality violation
  '22': ErrorCode.InvalidArgument, // data exception: bad values in the statements
  '3D': ErrorCode.InvalidArgument, // invalid catalog name: no such database
  '3F': ErrorCode.InvalidArgument, // invalid schema name
  '42': ErrorCode.InvalidArgument, // syntax error or access rule violation (undefined table, ...)
  '54': ErrorCode.InvalidArgument, // program limit exceeded (name too long, statement too complex)
  '23': ErrorCode.FailedPrecondition, // integrity constraint violation
  '25': ErrorCode.FailedPrecondition, // invalid transaction state (e.g. read-only transaction on a standby)
  '2B': ErrorCode.FailedPrecondition, // dependent objects still exist
  '44': ErrorCode.FailedPrecondition, // WITH CHECK OPTION violation
  '55': ErrorCode.FailedPrecondition, // object not in prerequisite state
  P0: ErrorCode.FailedPrecondition, // PL/pgSQL: RAISE EXCEPTION in the role's statements
};

/** The status code for a SQLSTATE (Internal for classes that say the server itself failed: 58, XX, ...). */
export function codeForSqlState(state: string): ErrorCode {
  return BY_STATE[state] ?? BY_CLASS[state.slice(0, 2)] ?? ErrorCode.Internal;
}

/** A Node system error on the socket (ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, ENOTFOUND, ...). */
function isSystemError(e: unknown): boolean {
  return typeof (e as { syscall?: unknown } | null)?.syscall === 'string';
}

/** An error met while connecting, or by a connection the server or network ended: the code its SQLSTATE gives, else Unavailable. */
export function connectionFailed(e: unknown, what = 'database connection failed'): PluginError {
  if (e instanceof PluginError) return e;
  const state = sqlState(e);
  return new PluginError(state ? codeForSqlState(state) : ErrorCode.Unavailable, `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** The code and message for anything a call threw that is not a PluginError. */
export function classify(e: unknown): { code: ErrorCode; message: string } {
  const base = (e as Error | null)?.message || String(e);
  const state = sqlState(e);
  if (state) {
    const code = codeForSqlState(state);
    // The server ended the session or cannot serve (08, 57P0x): say so plainly.
    const lost = code === ErrorCode.Unavailable ? 'database connection failed: ' : '';
    return { code, message: `${lost}${base} (SQLSTATE ${state})` };
  }
  // Say plainly when the database itself is unreachable: "read ECONNRESET" alone is not.
  if (isSystemError(e)) return { code: ErrorCode.Unavailable, message: `database connection failed: ${base}` };
  return { code: ErrorCode.Internal, message: base };
}

/**
 * Whether a failed query may still have committed: the connection was lost while it ran
 * (a socket error, or the server ending the session: 08, 57P0x), or the server says it
 * cannot tell (40003). A statement's own error aborts the transaction, so it is not one.
 */
export function outcomeUnknown(e: unknown): boolean {
  if (e instanceof PluginError) return outcomeUnknown(e.cause);
  const state = sqlState(e);
  if (state) return state === '40003' || state.startsWith('08') || state.startsWith('57P');
  // No SQLSTATE: the socket failed, or pg saw the connection end ("Connection terminated").
  return e instanceof Error;
}
