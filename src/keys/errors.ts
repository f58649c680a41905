// Errors from key backends name the key and the backend, never a secret.
import { redact } from '../goplugin/log';

export type KeyErrorKind = 'invalid' | 'not_found' | 'unsupported' | 'denied' | 'unavailable' | 'internal';

export class KeyError extends Error {
  constructor(readonly kind: KeyErrorKind, message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

/** By shape, not instanceof: cloud adapters are loaded from separate bundles in the executable,
 *  each with its own copy of this class. */
export function isKeyError(e: unknown): e is KeyError {
  return e instanceof Error && e.name === 'KeyError' && typeof (e as KeyError).kind === 'string';
}

export const keyInvalid = (m: string) => new KeyError('invalid', m);

/** The configured `usages` of a managed key gate each operation. */
export function requireUsage(backend: string, name: string, usages: readonly string[], usage: string): void {
  if (!usages.includes(usage)) throw keyInvalid(`${backend} key "${name}" is not allowed to ${usage}`);
}
export const keyUnsupported = (m: string) => new KeyError('unsupported', m);

/** Wrap whatever a backend threw, with the key's identity and redacted of the given secrets. */
export function keyFailure(backend: string, name: string, op: string, e: unknown, secrets: readonly string[], kind: KeyErrorKind = 'unavailable'): KeyError {
  if (isKeyError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new KeyError(kind, redact(`${backend} key "${name}": ${op} failed: ${msg}`, secrets));
}
