// How a key backend's failure reaches the caller: a KeyError's kind is its HTTP status.
// Apart from managed-keys.ts so that keymgmt's providers (lazily loaded bundles) can use it
// without pulling in the key registry.
import { isKeyError } from '../keys/errors';
import { UserError } from './framework';

const STATUS = { invalid: 400, unsupported: 400, not_found: 400, denied: 403, unavailable: 502, internal: 500 } as const;

/** A KeyError as the HTTP status Vault should show, the KeyError kept as its cause; anything else unchanged. */
export function keyErrorToUser(e: unknown): unknown {
  if (!isKeyError(e)) return e;
  return new UserError(e.message, STATUS[e.kind], { cause: e });
}
