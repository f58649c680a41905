// The wrapping format of transit's "bring your own key" (keys/<name>/import, import_version,
// byok-export), as current Vault defines it: the RSA-OAEP encryption (hash_function, MGF1
// with the same hash, empty label) of a fresh AES-256 key under the mount's RSA-4096
// wrapping key, followed by the target key wrapped with that AES key by AES-KWP (RFC 5649,
// NIST SP 800-38F; OpenSSL's id-aes256-wrap-pad). The target key is its raw bytes for
// AES, ChaCha20 and HMAC keys, PKCS#8 DER for RSA, ECDSA and Ed25519 keys.
//
// Nothing here puts key material into an error: a failure says which step failed.
import { constants, createCipheriv, createDecipheriv, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { rsaPrivate } from '../../keys/rsa-offload';
import { UserError } from '../framework';

/** The RSA-OAEP block's size: a 4096-bit wrapping key's, which current Vault expects first. */
export const ENCRYPTED_KEY_BYTES = 512;

// hash_function's names (case-insensitive, as Vault reads them) and Node's.
const OAEP_HASHES: Record<string, string> = { SHA1: 'sha1', SHA224: 'sha224', SHA256: 'sha256', SHA384: 'sha384', SHA512: 'sha512' };

/** Node's name for a hash_function (SHA1, SHA224, SHA256, SHA384, SHA512, any case); any other is a 400. */
export function oaepHash(name: string): string {
  const up = name.toUpperCase();
  const h = Object.hasOwn(OAEP_HASHES, up) ? OAEP_HASHES[up] : undefined;
  if (!h) throw new UserError(`unknown hash function: ${name.slice(0, 40)}`);
  return h;
}

// RFC 5649's alternative initial value; OpenSSL takes it as the cipher's 4-byte IV.
const KWP_IV = Buffer.from('a65959a6', 'hex');
// The sizes Vault's KWP (Tink's) wraps: 16 to 8192 bytes; wrapped, 8 to 15 bytes more.
const MIN_WRAP = 16;
const MAX_WRAP = 8192;
const wrappedSize = (n: number) => n + (7 - ((n + 7) % 8)) + 8;

/** AES-256-KWP of `data` (16 to 8192 bytes) under `kek`. */
export function kwpWrap(kek: Buffer, data: Buffer): Buffer {
  if (data.length < MIN_WRAP || data.length > MAX_WRAP)
    throw new UserError('failed to wrap target key: its size is outside what AES-KWP wraps here (16 to 8192 bytes)');
  const c = createCipheriv('id-aes256-wrap-pad', kek, KWP_IV);
  return Buffer.concat([c.update(data), c.final()]);
}

/** The key AES-256-KWP unwraps from `wrapped` under `kek`; a malformed or altered value is a 400 with Vault's (Tink's) reason. */
export function kwpUnwrap(kek: Buffer, wrapped: Buffer): Buffer {
  if (wrapped.length < wrappedSize(MIN_WRAP)) throw new UserError('kwp: wrapped key size too small');
  if (wrapped.length > wrappedSize(MAX_WRAP)) throw new UserError('kwp: wrapped key size too large');
  if (wrapped.length % 8 !== 0) throw new UserError('kwp: wrapped key size must be a multiple of 8 bytes');
  try {
    const d = createDecipheriv('id-aes256-wrap-pad', kek, KWP_IV);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch {
    // OpenSSL checks the integrity value and the padding, as Tink does.
    throw new UserError('kwp: unwrap failed integrity check');
  }
}

/**
 * The target key inside an import ciphertext: the first 512 bytes RSA-OAEP-decrypted with
 * the wrapping key (on a worker thread: an RSA-4096 private operation), which must give an
 * AES-256 key, and the rest unwrapped with it. Each failure is a 400 naming the step.
 */
export async function unwrapImport(wrappingKey: KeyObject, ciphertext: Buffer, hash: string): Promise<Buffer> {
  if (ciphertext.length <= ENCRYPTED_KEY_BYTES) throw new UserError('provided ciphertext is too short');
  let ephemeral: Buffer;
  try {
    ephemeral = await rsaPrivate('decrypt', wrappingKey, constants.RSA_PKCS1_OAEP_PADDING, ciphertext.subarray(0, ENCRYPTED_KEY_BYTES), hash);
  } catch {
    throw new UserError(`crypto/rsa: decryption error (the ephemeral AES key is not RSA-OAEP-${hash.toUpperCase()} encrypted to this mount's wrapping key)`);
  }
  try {
    if (ephemeral.length !== 32) throw new UserError('expected ephemeral AES key to be 256-bit');
    return kwpUnwrap(ephemeral, ciphertext.subarray(ENCRYPTED_KEY_BYTES));
  } finally {
    ephemeral.fill(0);
  }
}

/** `target` wrapped for import under an RSA public key, as an import ciphertext (base64): what byok-export answers. */
export function wrapForImport(wrappingKey: KeyObject, target: Buffer, hash: string): string {
  const ephemeral = randomBytes(32);
  try {
    const block = publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, ephemeral);
    return Buffer.concat([block, kwpWrap(ephemeral, target)]).toString('base64');
  } finally {
    ephemeral.fill(0);
  }
}
