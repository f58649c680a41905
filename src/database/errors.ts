// Errors of the database role, by identity: a PluginError carries one of the canonical
// status codes (the numbers gRPC uses, so the binding converts them as they are) and,
// where it wraps a driver or server error, that error as its `cause`. Nothing here knows
// a transport. Every message leaves the plugin only through sanitizeError
// (sanitizing-database.ts), which redacts the secrets of the call.

/** The canonical status codes (google.rpc.Code), as the gRPC binding sends them. */
export const ErrorCode = {
  Cancelled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;
/** One of the canonical status codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error of the database role: a status code, a message fit for Vault (once sanitized), and what it wraps as cause. */
export class PluginError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PluginError';
  }
}

type Options = { cause?: unknown };
/** Bad input (InvalidArgument). */
export const invalid = (msg: string, o?: Options) => new PluginError(ErrorCode.InvalidArgument, msg, o);
/** The call cannot run in the current state (FailedPrecondition). */
export const precondition = (msg: string, o?: Options) => new PluginError(ErrorCode.FailedPrecondition, msg, o);
/** The database cannot be reached or served the call (Unavailable). */
export const unavailable = (msg: string, o?: Options) => new PluginError(ErrorCode.Unavailable, msg, o);
/** The call's deadline passed (DeadlineExceeded). */
export const deadlineExceeded = (msg: string, o?: Options) => new PluginError(ErrorCode.DeadlineExceeded, msg, o);
/** The caller cancelled the call (Cancelled). */
export const cancelled = (msg: string, o?: Options) => new PluginError(ErrorCode.Cancelled, msg, o);

/** The SQLSTATE of a server error (node-postgres puts it in `code`), if it is one. */
export function sqlState(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c) ? c : undefined;
}

const SECRETS = Symbol('secrets');

/** Attach secrets derived during a call (e.g. a SCRAM verifier) to an error, for sanitizeError to redact. */
export function withSecrets(e: unknown, secrets: readonly string[]): unknown {
  if (secrets.length && e !== null && typeof e === 'object') {
    const prev = attachedSecrets(e);
    Object.defineProperty(e, SECRETS, { value: [...prev, ...secrets], enumerable: false, configurable: true });
  }
  return e;
}

/** The secrets attached to an error (and to its causes) by withSecrets. */
export function attachedSecrets(e: unknown): string[] {
  const out: string[] = [];
  for (let x = e, depth = 0; x !== null && typeof x === 'object' && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    out.push(...((x as { [SECRETS]?: string[] })[SECRETS] ?? []));
  }
  return out;
}
