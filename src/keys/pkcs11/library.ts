// pkcs11js, loaded on first use (it is a native addon), and the PKCS#11 return codes the
// other pkcs11/ files act on.
import type * as Pkcs11Types from 'pkcs11js';
import { isKeyError, sdkErrorCode } from '../errors';

/** pkcs11js's types (PKCS11, Template, mechanism parameters). */
export type { Pkcs11Types };
/** The pkcs11js module: constants (CKA_, CKM_, CKO_ …) and the PKCS11 class. */
export type Pkcs11Js = typeof Pkcs11Types;
/** A session, slot or object handle as pkcs11js gives it. */
export type Handle = Buffer;

let lib: Pkcs11Js | undefined;
/** pkcs11js, required the first time a module is loaded. */
export const pk = (): Pkcs11Js => (lib ??= require('pkcs11js') as Pkcs11Js);

/** The CKR_ code of an error a PKCS#11 call threw; undefined for our own errors and others. */
export const ckr = (e: unknown): number | undefined => (isKeyError(e) ? undefined : sdkErrorCode(e));

/** Errors after which a fresh session, login and key lookup may succeed. */
export const RECOVERABLE = new Set([0x30, 0x32, 0x60, 0x82, 0xb0, 0xb3, 0xe0, 0xe1, 0x101, 0x190]);
/**
 * Errors that mean the token itself changed (removed, replaced, re-initialised): modules
 * such as SoftHSM2 fix their slot list at C_Initialize, so the module is initialised anew.
 */
export const TOKEN_CHANGED = new Set([0x3, 0x5, 0x30, 0x32, 0xe0, 0xe1]);

/** Return codes acted on by name. */
export const CKR_ENCRYPTED_DATA_INVALID = 0x40;
/** CKR_ENCRYPTED_DATA_LEN_RANGE: a ciphertext of a length the mechanism cannot have. */
export const CKR_ENCRYPTED_DATA_LEN_RANGE = 0x41;
/** CKR_PIN_INCORRECT. */
export const CKR_PIN_INCORRECT = 0xa0;
/** CKR_PIN_LOCKED: the token refuses the user PIN until reset. */
export const CKR_PIN_LOCKED = 0xa4;
/** CKR_USER_ALREADY_LOGGED_IN: another session of the process logged in (logins are per token). */
export const CKR_USER_ALREADY_LOGGED_IN = 0x100;
