// The vault:v<N>: envelope around ciphertexts, signatures and HMACs, and the base64 every
// transit input is read with: Go's, as Vault reads it.
import { UserError } from '../framework';

// Go's base64.StdEncoding: the standard alphabet in whole 4-character groups, with exact
// padding; base64.RawURLEncoding (JWS): the URL alphabet, no padding, no 1-character tail.
// Checked by looking for one character outside the alphabet and then at the padding: a
// pattern over the whole input (groups of four, repeated) overflows V8's regexp stack on a
// request of some megabytes.
const NOT_STD = /[^A-Za-z0-9+/=]/;
const NOT_RAW_URL = /[^A-Za-z0-9_-]/;

/** Standard base64's form: whole groups of four, "=" only as the last one or two characters. */
function isStdForm(t: string): boolean {
  if (t.length % 4 !== 0 || NOT_STD.test(t)) return false;
  const pad = t.indexOf('=');
  return pad === -1 || pad === t.length - 1 || (pad === t.length - 2 && t[t.length - 1] === '=');
}

/**
 * Base64 decoded as Vault's Go decoders do (StdEncoding, or RawURLEncoding for JWS
 * signatures): every character in the alphabet, padding exact, except that \r and \n are
 * skipped wherever they are, and, Go's decoders not being Strict, non-zero trailing bits are
 * accepted ("aGk=" and "aGl=" both read "hi"). Anything else is undefined. (Node's own
 * decoder skips what it does not understand, so the form is checked first.)
 */
export function decodeBase64(s: string, alphabet: 'base64' | 'base64url' = 'base64'): Buffer | undefined {
  const t = s.includes('\n') || s.includes('\r') ? s.replace(/[\r\n]/g, '') : s;
  if (alphabet === 'base64' ? !isStdForm(t) : NOT_RAW_URL.test(t) || t.length % 4 === 1) return undefined;
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
const VERSION = /^[1-9][0-9]{0,9}$/;
const PREFIX = 'vault:v';

/** The version and body text of vault:v<N>:<body>, without a pattern over the (maybe large) body. */
function envelope(value: string): [string, string] | undefined {
  if (!value.startsWith(PREFIX)) return undefined;
  const colon = value.indexOf(':', PREFIX.length);
  if (colon < 0) return undefined;
  const version = value.slice(PREFIX.length, colon);
  return VERSION.test(version) ? [version, value.slice(colon + 1)] : undefined;
}

/** Reads a vault:v<N>: value (canonical version, base64 as Go reads it); anything else is a 400 naming `what`. */
export function unwrap(value: unknown, what: string, alphabet: 'base64' | 'base64url' = 'base64'): { version: number; body: Buffer } {
  if (typeof value !== 'string') throw new UserError(`${what} is required`);
  const m = envelope(value);
  const body = m ? decodeBase64(m[1], alphabet) : undefined;
  if (!m || !body)
    throw new UserError(`invalid ${what}: expected vault:v<version>:<${alphabet === 'base64' ? 'standard padded base64' : 'unpadded base64url'}>`);
  return { version: Number(m[0]), body };
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
