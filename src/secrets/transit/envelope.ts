// The vault:v<N>: envelope around ciphertexts, signatures and HMACs, and the strict
// base64 every transit input is read with.
import { UserError } from '../framework';

/**
 * Strict base64: the standard alphabet with exact padding (or, for JWS signatures,
 * unpadded base64url), and canonical — the only encoding of its bytes, so no junk, no
 * whitespace, no other alphabet, no non-zero trailing bits. Node's decoder skips what it
 * does not understand; re-encoding and comparing refuses all of that in one step.
 * (Go's StdEncoding, which Vault uses, also refuses the other alphabet and bad padding.)
 */
export function decodeBase64(s: string, alphabet: 'base64' | 'base64url' = 'base64'): Buffer | undefined {
  const buf = Buffer.from(s, alphabet);
  return buf.toString(alphabet) === s ? buf : undefined;
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

/** Reads a vault:v<N>: value strictly (canonical version and base64); anything else is a 400 naming `what`. */
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

/** Base64 input as Vault takes it (plaintext, input, context, associated_data): strict standard base64. */
export function b64(value: unknown, what: string, required = true): Buffer {
  if (value === undefined || value === null || value === '') {
    if (required) throw new UserError(`missing ${what}`);
    return NO_BYTES;
  }
  const buf = typeof value === 'string' ? decodeBase64(value) : undefined;
  if (!buf) throw new UserError(`${what} must be base64-encoded (standard alphabet, with padding)`);
  return buf;
}
