// PKCS#11 logins belong to the process, not to a session or a key: once one key has
// logged a token in, C_Login from any other key answers CKR_USER_ALREADY_LOGGED_IN,
// whatever PIN it gives. So each login records a salted hash of its PIN per token, and a
// later key must match it to prove it knows the PIN.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeyError } from '../errors';
import { CKR_USER_ALREADY_LOGGED_IN, ckr, pk, type Handle } from './library';
import type { LoadedModule } from './modules';

const pinHash = (salt: Buffer, pin: string) => createHash('sha256').update(salt).update(pin).digest();

/** Log the user in on session `s` of the token in `slot`, or check `pin` against the login already made. */
export function login(mod: LoadedModule, slot: Handle, s: Handle, pin: string, keyName: string): void {
  const token = mod.p.C_GetTokenInfo(slot).serialNumber.trim();
  const known = mod.logins.get(token);
  try {
    mod.p.C_Login(s, pk().CKU_USER, pin);
    const salt = randomBytes(16);
    mod.logins.set(token, { salt, hash: pinHash(salt, pin) });
  } catch (e) {
    if (ckr(e) !== CKR_USER_ALREADY_LOGGED_IN) throw e;
    // Another key logged the process in; this key must still know the PIN.
    if (!known || !timingSafeEqual(pinHash(known.salt, pin), known.hash))
      throw new KeyError('denied', `pkcs11 key "${keyName}": PIN incorrect (CKR_PIN_INCORRECT)`);
  }
}
