// What a driver or server error means for the caller: its status code, and a message
// that says plainly when the database itself could not be reached.
import { ErrorCode, sqlState } from './errors';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

export function classify(e: unknown): { code: ErrorCode; message: string } {
  const pe = (e ?? {}) as { code?: string; message?: string };
  const base = pe.message || String(e);
  const c = pe.code ?? '';
  const sqlstate = sqlState(e) !== undefined;
  // Text is only a fallback for driver errors that carry no SQLSTATE.
  const connection = CONNECTION_CODES.has(c) || (!sqlstate && /timeout|terminated|connect/i.test(base));
  // Say plainly when the database itself is unreachable: "read ECONNRESET" alone is not.
  const message = `${connection ? 'database connection failed: ' : ''}${base}${sqlstate ? ` (SQLSTATE ${c})` : ''}`;
  let code: ErrorCode = ErrorCode.Internal;
  if (connection) code = ErrorCode.Unavailable;
  // canceled by the call's statement_timeout, or its transaction_timeout (25P04, PostgreSQL 17+)
  else if (c === '57014' || c === '25P04') code = ErrorCode.DeadlineExceeded;
  // 42501 (insufficient_privilege) is the admin's missing rights, not a bad request: test
  // it before the class-42 rule below, which would otherwise swallow it.
  else if (c === '28P01' || c === '28000' || c === '42501') code = ErrorCode.PermissionDenied;
  else if (c.startsWith('42') || c.startsWith('22')) code = ErrorCode.InvalidArgument;
  return { code, message };
}
