// Encryption and decryption with a policy's version: AES-GCM and ChaCha20-Poly1305 (HKDF-
// derived per context when the key is derived; convergent nonces), RSA-OAEP, managed keys.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, publicEncrypt, privateDecrypt, constants } from 'node:crypto';
import { pooledRandomBytes } from '../../util/random-pool';
import type { ManagedKey } from '../../keys/types';
import { isKeyError } from '../../keys/errors';
import { oaepMaxPlaintext } from '../../keys/crypto';
import { keyErrorToUser } from '../key-errors';
import { UserError } from '../framework';
import { unwrap, wrap } from './envelope';
import { isSymmetric, parsed, privatePem, publicKeyObject, versionOf, type KeyVersion, type Policy } from './policy';

// A version's key bytes, decoded once per loaded version (a reload or rotation makes new version objects).
const decodedKeys = new WeakMap<KeyVersion, Buffer>();
function keyBytes(v: KeyVersion): Buffer {
  let k = decodedKeys.get(v);
  if (!k) {
    k = Buffer.from(v.key!, 'base64');
    decodedKeys.set(v, k);
  }
  return k;
}

/**
 * Vault's counter-mode KDF (NIST SP 800-108, HMAC-SHA256 as the PRF) for 256 bits: one
 * round, HMAC(key, counter 0 || context || 256 as 32-bit big-endian). Current Vault derives
 * imported keys with it; an AES-128 key is the first 16 bytes, as Vault encrypts with.
 */
function counterKdf(key: Buffer, context: Buffer): Buffer {
  return createHmac('sha256', key)
    .update(Buffer.alloc(4))
    .update(context)
    .update(Buffer.from([0, 0, 1, 0]))
    .digest();
}

/** Key for one context: HKDF-SHA256 (or Vault's counter KDF, see Policy.kdf) when the key is derived, the version's key otherwise. */
function symmetricKey(p: Policy, v: KeyVersion, context: Buffer): Buffer {
  const key = keyBytes(v);
  // As Vault: a context given for a key that is not derived is ignored.
  if (!p.derived) return key;
  if (!context.length) throw new UserError('missing context: the key is derived, so each request needs a context');
  if (p.kdf === 'hmac-sha256-counter') return counterKdf(key, context).subarray(0, key.length);
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), context, key.length));
}

const cipherName = (p: Policy) => (p.type === 'chacha20-poly1305' ? 'chacha20-poly1305' : p.type === 'aes128-gcm96' ? 'aes-128-gcm' : 'aes-256-gcm');

const AAD_NONCE_LABEL = 'vault-plugin-ts convergent nonce with associated data';

/**
 * Convergent encryption: the nonce is a keyed hash of the message, so equal inputs give
 * equal ciphertexts. The message is the plaintext AND the associated data: were the nonce
 * derived from the plaintext alone (as Vault's transit still does), two encryptions with
 * different associated_data would reuse one GCM nonce, which gives away the GHASH key and
 * lets an attacker forge tags. Without associated data the derivation is unchanged, so
 * existing convergent ciphertexts keep matching; with it, a separate HMAC key (a different
 * domain) hashes the length-prefixed associated data and then the plaintext. Decryption
 * reads the nonce from the ciphertext, so every existing ciphertext still decrypts.
 */
function convergentNonce(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  if (!aad.length) return createHmac('sha256', key).update(plaintext).digest().subarray(0, 12);
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(aad.length));
  const aadKey = createHmac('sha256', key).update(AAD_NONCE_LABEL).digest();
  return createHmac('sha256', aadKey).update(len).update(aad).update(plaintext).digest().subarray(0, 12);
}

/** RSA-OAEP binds no associated data: as current Vault, giving some is a 400 rather than silently unbound. */
function nonAead(p: Policy, aad: Buffer): void {
  if (aad.length) throw new UserError(`associated_data provided for non-AEAD cipher suite ${p.type}`);
}

/**
 * A managed key's refusal of the request's own input (a ciphertext that is not its, an option
 * it cannot honour: KeyErrors answered 400) as a UserError, so that a batch reports it as that
 * item's error as it does for keys held here; an outage or denial stays the whole request's.
 */
export function managedRefusal(e: unknown): unknown {
  return isKeyError(e) && (e.kind === 'invalid' || e.kind === 'unsupported' || e.kind === 'not_found') ? keyErrorToUser(e) : e;
}
const rethrowRefusal = (e: unknown): never => {
  throw managedRefusal(e);
};

/** One encryption's input: context (derived keys) and associated data are empty buffers when not given; no version means the latest. */
export interface CryptInput {
  plaintext: Buffer;
  context: Buffer;
  aad: Buffer;
  version?: number;
}

/**
 * Encrypts with the requested (else latest) version allowed for encryption; returns
 * vault:v<N>:<base64>. Synchronous for keys held here (a batch item then costs no promise),
 * a promise for managed keys.
 */
export function encrypt(p: Policy, inp: CryptInput, managed?: () => Promise<ManagedKey>): string | Promise<string> {
  const { n, v } = versionOf(p, inp.version, 'encrypt');
  if (p.type === 'managed_key') {
    // A managed key is never derived: its context is ignored, as Vault's (and as for keys held here).
    return managed!()
      .then((k) => k.encrypt(inp.plaintext, { aad: inp.aad }))
      .then((ct) => wrap(n, ct), rethrowRefusal);
  }
  if (p.type.startsWith('rsa-')) {
    nonAead(p, inp.aad);
    const key = publicKeyObject(v);
    // More than RSA-OAEP (SHA-256) holds is the caller's error (Vault's message, with Go's reason).
    if (inp.plaintext.length > oaepMaxPlaintext(key, 'sha256'))
      throw new UserError('failed to RSA encrypt the plaintext: crypto/rsa: message too long for RSA key size');
    return wrap(n, publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, inp.plaintext));
  }
  if (!isSymmetric(p.type)) throw new UserError(`key type ${p.type} does not support encryption`);
  const key = symmetricKey(p, v, inp.context);
  const nonce = p.convergent_encryption ? convergentNonce(key, inp.plaintext, inp.aad) : pooledRandomBytes(12);
  const c = createCipheriv(cipherName(p) as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  if (inp.aad.length) c.setAAD(inp.aad);
  return wrap(n, Buffer.concat([nonce, c.update(inp.plaintext), c.final(), c.getAuthTag()]));
}

/**
 * A managed key's ciphertext: associated data only. Ciphertexts made before 2026-12-02 bound
 * context || associated_data (an ambiguous join: context "ab" was context "a" with data "b"),
 * so with a context given, a failed decryption is tried once more that way.
 */
async function decryptManaged(k: ManagedKey, body: Buffer, inp: Omit<CryptInput, 'plaintext'>): Promise<Buffer> {
  try {
    return await k.decrypt(body, { aad: inp.aad });
  } catch (e) {
    if (!inp.context.length) throw e;
    return k.decrypt(body, { aad: Buffer.concat([inp.context, inp.aad]) }).catch(() => {
      throw e;
    });
  }
}

/** A decrypted plaintext and the key version that made it. */
export interface Decrypted {
  plaintext: Buffer;
  version: number;
}

/**
 * Decrypts a vault:v<N>: ciphertext with its version (if not below min_decryption_version);
 * any authentication failure is a 400. Synchronous for keys held here, a promise for managed keys.
 */
export function decrypt(
  p: Policy,
  ciphertext: unknown,
  inp: Omit<CryptInput, 'plaintext'>,
  managed?: () => Promise<ManagedKey>,
): Decrypted | Promise<Decrypted> {
  const { version, body } = unwrap(ciphertext, 'ciphertext');
  const { v } = versionOf(p, version, 'decrypt');
  if (p.type === 'managed_key') {
    return managed!()
      .then((k) => decryptManaged(k, body, inp))
      .then((plaintext) => ({ plaintext, version }), rethrowRefusal);
  }
  if (p.type.startsWith('rsa-')) {
    nonAead(p, inp.aad);
    const priv = parsed(privatePem(v, 'decryption')).priv;
    try {
      return { plaintext: privateDecrypt({ key: priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, body), version };
    } catch {
      throw new UserError('invalid ciphertext: unable to decrypt');
    }
  }
  if (!isSymmetric(p.type)) throw new UserError(`key type ${p.type} does not support decryption`);
  const key = symmetricKey(p, v, inp.context);
  if (body.length < 28) throw new UserError('invalid ciphertext: too short');
  try {
    const d = createDecipheriv(cipherName(p) as 'aes-256-gcm', key, body.subarray(0, 12), { authTagLength: 16 });
    if (inp.aad.length) d.setAAD(inp.aad);
    d.setAuthTag(body.subarray(body.length - 16));
    return { plaintext: Buffer.concat([d.update(body.subarray(12, body.length - 16)), d.final()]), version };
  } catch {
    throw new UserError('cipher: message authentication failed (wrong key version, context or associated_data, or altered ciphertext)');
  }
}
