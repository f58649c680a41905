// Errors from key backends name the key and the backend, never a secret.
import { redact } from '../goplugin/log';

/** What kind of failure a KeyError is; managed-keys.ts maps it to an HTTP status. */
export type KeyErrorKind = 'invalid' | 'not_found' | 'unsupported' | 'denied' | 'unavailable' | 'internal';

/** The identity of the SDK error a KeyError wraps (never its message, which may hold a secret). */
export interface ErrorOrigin {
  /** The error's name, e.g. AWS's exception name "NotFoundException". */
  name?: string;
  /** A numeric code, e.g. a gRPC status or a PKCS#11 CKR_ value. */
  code?: number;
  /** An HTTP status, e.g. from Azure's REST pipeline. */
  statusCode?: number;
}

/** A failure of a key backend, naming the key and the backend, never a secret. */
export class KeyError extends Error {
  /** `cause`: the error this one wraps, kept for identity (never shown: its message may hold a secret). */
  constructor(
    readonly kind: KeyErrorKind,
    message: string,
    readonly origin?: ErrorOrigin,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'KeyError';
  }
}

/** By shape, not instanceof: cloud adapters are loaded from separate bundles in the executable,
 *  each with its own copy of this class. */
export function isKeyError(e: unknown): e is KeyError {
  return e instanceof Error && e.name === 'KeyError' && 'kind' in e && typeof e.kind === 'string';
}

/** Bad input: a config, a ciphertext, an option the key cannot honour. */
export const keyInvalid = (m: string, cause?: unknown) => new KeyError('invalid', m, undefined, cause);

/** The configured `usages` of a managed key gate each operation. */
export function requireUsage(backend: string, name: string, usages: readonly string[], usage: string): void {
  if (!usages.includes(usage)) throw keyInvalid(`${backend} key "${name}" is not allowed to ${usage}`);
}
/** Something this backend or key cannot do. */
export const keyUnsupported = (m: string) => new KeyError('unsupported', m);

/** Wrap whatever a backend threw (kept as the cause), with the key's identity, its message redacted of the given secrets. */
export function keyFailure(backend: string, name: string, op: string, e: unknown, secrets: readonly string[], kind: KeyErrorKind = 'unavailable'): KeyError {
  if (isKeyError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new KeyError(
    kind,
    redact(`${backend} key "${name}": ${op} failed: ${msg}`, secrets),
    { name: ownName(e), code: ownNumber(e, 'code'), statusCode: ownNumber(e, 'statusCode') },
    e,
  );
}

function ownNumber(e: unknown, field: 'code' | 'statusCode'): number | undefined {
  if (typeof e !== 'object' || e === null || !(field in e)) return undefined;
  const v: unknown = Reflect.get(e, field);
  return typeof v === 'number' ? v : undefined;
}

function ownName(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('name' in e)) return undefined;
  const v: unknown = Reflect.get(e, 'name');
  return typeof v === 'string' ? v : undefined;
}

/** The failing SDK error's name ('' if none): of the value thrown, or of the one a KeyError wraps. */
export const sdkErrorName = (e: unknown): string => (isKeyError(e) ? e.origin?.name : ownName(e)) ?? '';

/** The failing SDK error's numeric code (gRPC status, CKR_ value): of the value thrown, or of the one a KeyError wraps. */
export const sdkErrorCode = (e: unknown): number | undefined => (isKeyError(e) ? e.origin?.code : ownNumber(e, 'code'));

/** The failing call's HTTP status: of the value thrown, or of the one a KeyError wraps. */
export const sdkStatusCode = (e: unknown): number | undefined => (isKeyError(e) ? e.origin?.statusCode : ownNumber(e, 'statusCode'));
