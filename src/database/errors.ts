// Errors the database role returns. Every message that leaves the plugin goes
// through redact() with the secrets of the call, so no password or URL credential
// reaches Vault's log or the API caller.
import * as grpc from '@grpc/grpc-js';
import { redact } from '../goplugin/log';

export class PluginError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

export const invalid = (msg: string) => new PluginError(grpc.status.INVALID_ARGUMENT, msg);
export const precondition = (msg: string) => new PluginError(grpc.status.FAILED_PRECONDITION, msg);
export const unavailable = (msg: string) => new PluginError(grpc.status.UNAVAILABLE, msg);
export const deadlineExceeded = (msg: string) => new PluginError(grpc.status.DEADLINE_EXCEEDED, msg);

const SECRETS = Symbol('secrets');

/** Attach secrets derived during a call (e.g. a SCRAM verifier) to an error, for toGrpcError to redact. */
export function withSecrets(e: unknown, secrets: readonly string[]): unknown {
  if (secrets.length && e !== null && typeof e === 'object') {
    const prev = (e as { [SECRETS]?: string[] })[SECRETS] ?? [];
    Object.defineProperty(e, SECRETS, { value: [...prev, ...secrets], enumerable: false, configurable: true });
  }
  return e;
}

interface PgLikeError {
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  position?: string;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

/** Map anything thrown while talking to the database to a gRPC status with a redacted message. */
export function toGrpcError(e: unknown, callSecrets: readonly string[], context: string): grpc.ServiceError | { code: grpc.status; details: string } {
  const attached = e !== null && typeof e === 'object' ? (e as { [SECRETS]?: string[] })[SECRETS] ?? [] : [];
  const secrets = [...callSecrets, ...attached];
  if (e instanceof PluginError) return { code: e.code, details: redact(e.message, secrets) };
  const pe = (e ?? {}) as PgLikeError;
  const base = pe.message || String(e);
  const c = pe.code ?? '';
  const sqlstate = /^[0-9A-Z]{5}$/.test(c);
  // Text is only a fallback for driver errors that carry no SQLSTATE.
  const connection = CONNECTION_CODES.has(c) || (!sqlstate && /timeout|terminated|connect/i.test(base));
  // Say plainly when the database itself is unreachable: "read ECONNRESET" alone is not.
  const msg = redact(`${context}: ${connection ? 'database connection failed: ' : ''}${base}${sqlstate ? ` (SQLSTATE ${c})` : ''}`, secrets);
  let code = grpc.status.INTERNAL;
  if (connection) code = grpc.status.UNAVAILABLE;
  // canceled by the call's statement_timeout, or its transaction_timeout (25P04, PostgreSQL 17+)
  else if (c === '57014' || c === '25P04') code = grpc.status.DEADLINE_EXCEEDED;
  // 42501 (insufficient_privilege) is the admin's missing rights, not a bad request: test
  // it before the class-42 rule below, which would otherwise swallow it.
  else if (c === '28P01' || c === '28000' || c === '42501') code = grpc.status.PERMISSION_DENIED;
  else if (c.startsWith('42') || c.startsWith('22')) code = grpc.status.INVALID_ARGUMENT;
  return { code, details: msg };
}
