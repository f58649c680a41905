// Errors from key backends name the key and the backend, never a secret.
import { redact } from '../goplugin/log';

export type KeyErrorKind = 'invalid' | 'not_found' | 'unsupported' | 'denied' | 'unavailable' | 'internal';

export class KeyError extends Error {
  constructor(readonly kind: KeyErrorKind, message: string) {
    super(message);
  }
}

export const keyInvalid = (m: string) => new KeyError('invalid', m);
export const keyUnsupported = (m: string) => new KeyError('unsupported', m);

/** Wrap whatever a backend threw, with the key's identity and redacted of the given secrets. */
export function keyFailure(backend: string, name: string, op: string, e: unknown, secrets: readonly string[], kind: KeyErrorKind = 'unavailable'): KeyError {
  if (e instanceof KeyError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new KeyError(kind, redact(`${backend} key "${name}": ${op} failed: ${msg}`, secrets));
}
