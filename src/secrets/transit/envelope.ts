// The vault:v<N>: envelope around ciphertexts, signatures and HMACs, and the base64 every
// transit input is read with: Go's, as Vault reads it.
import { UserError } from '../framework';

// Go's base64.StdEncoding: the standard alphabet in whole 4-character groups, with exact
// padding; base64.RawURLEncoding (JWS): the URL alphabet, no padding, no 1-character tail.
const STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const RAW_URL = /^[A-Za-z0-9_-]*$/;

/**
 * Base64 decoded as Vault's Go decoders do (StdEncoding, or RawURLEncoding for JWS
 * signatures): every character in the alphabet, padding exact, except that \r and \n are
 * skipped wherever they are, and, Go's decoders not being Strict, non-zero trailing bits are
 * accepted ("aGk=" and "aGl=" both read "hi"). Anything else is undefined. (Node's own
 * decoder skips what it does not understand, so the form is checked first.)
 */
export function decodeBase64(s: string, alphabet: 'base64' | 'base64url' = 'base64'): Buffer | undefined {
  const t = s.includes('\n') || s.includes('\r') ? s.replace(/[\r\n]/g, '') : s;
  if (alphabet === 'base64' ? !STD.test(t) : !RAW_URL.test(t) || t.length % 4 === 1) return undefined;
  return Buffer.from(t, alphabet);
}

/** vault:v<version>:<body> in standard base64, or unpadded base64url when urlSafe (JWS). */
export function wrap(version: number, body: Buffer, urlSafe = false): string {
  return `vault:v${version}:${body.toString(urlSafe ? 'base64url' : 'base64')}`;
}

/** The key version named by a vault:vN: value we just produced. */
export const versionIn = (wrapped: string): number => Number(/^vault:v(\d+):/.exec(wrapped)![1]);

// The version is a decimal without sign or leading zeros, at least 1: what Vault writes.
// (Vault's own parser, strconv.Atoi, would also take "v01" and "v+1"; one spelling per
// value is safer for callers that compare or index ciphertexts, so only that is read.)
const ENVELOPE = /^vault:v([1-9][0-9]{0,9}):([\s\S]*)$/;

/** Reads a vault:v<N>: value (canonical version, base64 as Go reads it); anything else is a 400 naming `what`. */
export function unwrap(value: unknown, what: string, alphabet: 'base64' | 'base64url' = 'base64'): { version: number; body: Buffer } {
  if (typeof value !== 'string') throw new UserError(`${what} is required`);
  const m = ENVELOPE.exec(value);
  const body = m ? decodeBase64(m[2], alphabet) : undefined;
  if (!m || !body)
    throw new UserError(`invalid ${what}: expected vault:v<version>:<${alphabet === 'base64' ? 'standard padded base64' : 'unpadded base64url'}>`);
  return { version: Number(m[1]), body };
}

// What an absent optional input reads as: one shared buffer (it has no bytes to write to), not
// a new one for each batch item's context and associated_data.
const NO_BYTES = Buffer.alloc(0);

/**
 * Base64 input as Vault takes it (plaintext, input, context, associated_data). An absent
 * value is a 400 when required; "" is always the empty string (Vault signs, HMACs and hashes
 * it), as is an absent optional one.
 */
export function b64(value: unknown, what: string, required = true, missing = `missing ${what}`): Buffer {
  if (value === undefined || value === null) {
    if (required) throw new UserError(missing);
    return NO_BYTES;
  }
  if (value === '') return NO_BYTES;
  const buf = typeof value === 'string' ? decodeBase64(value) : undefined;
  if (!buf) throw new UserError(`${what} must be base64-encoded (standard alphabet, with padding)`);
  return buf;
}
