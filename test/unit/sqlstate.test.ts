// SQLSTATE → status code, by class and by the states whose meaning differs from their class.
import { describe, expect, it } from 'vitest';
import { ErrorCode, PluginError } from '../../src/database/errors';
import { classify, codeForSqlState, connectionFailed, outcomeUnknown } from '../../src/database/sqlstate';
import { sanitizeError } from '../../src/database/sanitizing-database';
import { isRetryable } from '../../src/database/retry';

const pgError = (code: string, message = 'server said no') => Object.assign(new Error(message), { code, severity: 'ERROR' });

describe('codeForSqlState', () => {
  it.each([
    ['42501', 'insufficient_privilege', ErrorCode.PermissionDenied],
    ['28P01', 'invalid_password', ErrorCode.Unauthenticated],
    ['28000', 'invalid_authorization_specification', ErrorCode.PermissionDenied],
    ['08006', 'connection_failure', ErrorCode.Unavailable],
    ['08001', 'sqlclient_unable_to_establish_sqlconnection', ErrorCode.Unavailable],
    ['57P01', 'admin_shutdown', ErrorCode.Unavailable],
    ['57P02', 'crash_shutdown', ErrorCode.Unavailable],
    ['57P03', 'cannot_connect_now', ErrorCode.Unavailable],
    ['40001', 'serialization_failure', ErrorCode.Aborted],
    ['40P01', 'deadlock_detected', ErrorCode.Aborted],
    ['57014', 'query_canceled', ErrorCode.Cancelled],
    ['25P04', 'transaction_timeout', ErrorCode.DeadlineExceeded],
    ['53300', 'too_many_connections', ErrorCode.ResourceExhausted],
    ['53100', 'disk_full', ErrorCode.ResourceExhausted],
    ['53200', 'out_of_memory', ErrorCode.ResourceExhausted],
    ['42601', 'syntax_error', ErrorCode.InvalidArgument],
    ['42P01', 'undefined_table', ErrorCode.InvalidArgument],
    ['42710', 'duplicate_object', ErrorCode.AlreadyExists],
    ['23505', 'unique_violation', ErrorCode.AlreadyExists],
    ['23503', 'foreign_key_violation', ErrorCode.FailedPrecondition],
    ['23502', 'not_null_violation', ErrorCode.FailedPrecondition],
    ['22P02', 'invalid_text_representation', ErrorCode.InvalidArgument],
    ['22007', 'invalid_datetime_format', ErrorCode.InvalidArgument],
    ['2BP01', 'dependent_objects_still_exist', ErrorCode.FailedPrecondition],
    ['25006', 'read_only_sql_transaction', ErrorCode.FailedPrecondition],
    ['3D000', 'invalid_catalog_name', ErrorCode.InvalidArgument],
    ['0A000', 'feature_not_supported', ErrorCode.InvalidArgument],
    ['40003', 'statement_completion_unknown', ErrorCode.Unknown],
    ['P0001', 'raise_exception', ErrorCode.FailedPrecondition],
    ['XX000', 'internal_error', ErrorCode.Internal],
    ['58030', 'io_error', ErrorCode.Internal],
  ])('%s (%s)', (state, _name, code) => {
    expect(codeForSqlState(state)).toBe(code);
    expect(classify(pgError(state)).code).toBe(code);
  });
});

describe('classify', () => {
  it('a socket error is Unavailable and says the database could not be reached', () => {
    const e = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', syscall: 'connect', errno: -111 });
    expect(classify(e)).toEqual({ code: ErrorCode.Unavailable, message: 'database connection failed: connect ECONNREFUSED 127.0.0.1:1' });
  });
  it('message text decides nothing: an uncoded error mentioning "timeout" or "connect" is Internal', () => {
    expect(classify(new Error('connect timeout terminated')).code).toBe(ErrorCode.Internal);
    expect(classify(new TypeError('x is undefined')).code).toBe(ErrorCode.Internal);
  });
  it('names the SQLSTATE in the message', () => {
    expect(classify(pgError('42501', 'permission denied to create role')).message).toBe('permission denied to create role (SQLSTATE 42501)');
  });
});

describe("connectionFailed and sanitizeError keep the cause's identity", () => {
  it('a refused password while connecting is Unauthenticated, with the call and SQLSTATE named and the cause kept', () => {
    const cause = pgError('28P01', 'password authentication failed for user "vault"');
    const e = connectionFailed(cause, 'cannot connect to db:5432/app as vault');
    expect(e).toBeInstanceOf(PluginError);
    expect(e.code).toBe(ErrorCode.Unauthenticated);
    expect(e.cause).toBe(cause);
    const out = sanitizeError(e, [], 'Initialize');
    expect(out.message).toBe('Initialize: cannot connect to db:5432/app as vault: password authentication failed for user "vault" (SQLSTATE 28P01)');
  });
  it('without a SQLSTATE a failed connection is Unavailable', () => {
    expect(connectionFailed(new Error('Connection terminated unexpectedly')).code).toBe(ErrorCode.Unavailable);
  });
});

describe('outcomeUnknown: whether a failed transaction may still have committed', () => {
  it('a statement error aborted it: known (nothing committed)', () => {
    for (const s of ['42601', '42710', '40001', '57014', '23505']) expect(outcomeUnknown(pgError(s))).toBe(false);
  });
  it('the connection was lost or the server cannot tell: unknown', () => {
    for (const s of ['57P01', '57P02', '08006', '40003']) expect(outcomeUnknown(pgError(s))).toBe(true);
    expect(outcomeUnknown(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(outcomeUnknown(connectionFailed(Object.assign(new Error('read ECONNRESET'), { syscall: 'read' })))).toBe(true);
  });
  it('our own refusal before anything was sent: known', () => {
    expect(outcomeUnknown(new PluginError(ErrorCode.DeadlineExceeded, "the call's deadline passed before the statements were sent"))).toBe(false);
  });
});

describe('isRetryable', () => {
  it('retries serialization failures, deadlocks and concurrent catalog updates, no other internal error', () => {
    expect(isRetryable(pgError('40001'))).toBe(true);
    expect(isRetryable(pgError('40P01'))).toBe(true);
    expect(isRetryable(pgError('XX000', 'tuple concurrently updated'))).toBe(true);
    expect(isRetryable(pgError('XX000', 'cache lookup failed for relation 1234'))).toBe(false);
    expect(isRetryable(pgError('42601'))).toBe(false);
    expect(isRetryable(new Error('tuple concurrently updated'))).toBe(false);
  });
});
