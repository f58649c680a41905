// Helpers shared by the adapters: digests, signature encodings, and sign/verify over a
// precomputed digest. Node's crypto.sign/verify always hash their input, so digest-level
// operations use @noble/curves (ECDSA), PKCS#1 v1.5 DigestInfo with the raw RSA
// primitive, and RFC 8017 EMSA-PSS encoding.
import {
  constants,
  createHash,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
  type SignKeyObjectInput,
} from 'node:crypto';
import { promisify } from 'node:util';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { readElement, seq, uint } from '../goplugin/der';
import { keyInvalid } from './errors';
import { DIGEST_BYTES, digestInfo } from './digests';
import { pssEncode, pssVerify } from './pss';
import { rsaPrivate } from './rsa-offload';
import type { Hash, KeySpec, SignHash, SignOptions } from './types';

/** Digest length of each hash, in bytes. */
export const HASH_BYTES: Record<Hash, number> = { sha256: 32, sha384: 48, sha512: 64 };
/** Whether a signature's hash is one every backend signs with (SHA-256/384/512); the cloud KMSes offer no other. */
export const isSha2Sign = (h: SignHash): h is Hash => Object.hasOwn(HASH_BYTES, h);
/** noble's curves by the names key specs use (curves.ts has each one's other names and sizes). */
export const CURVES = { 'P-256': p256, 'P-384': p384, 'P-521': p521, secp256k1 } as const;

/**
 * Whether node:crypto's signature with this key is cheap enough to make on the calling (event
 * loop) thread: an Ed25519 or P-256 signature of a short message costs ~30-60 µs there, less
 * than handing it to libuv's pool costs in wake-ups; P-384/P-521 (0.7/1.7 ms), RSA and long
 * messages (Ed25519 hashes the whole message) go off the loop (bench/RESULTS.md, session 7).
 */
export function cheapToSignOnLoop(spec: LocalKeySpec, bytes: number): boolean {
  return (spec.kind === 'ed25519' || (spec.kind === 'ec' && spec.curve === 'P-256')) && bytes <= 4096;
}
const NOBLE = { prehash: false, lowS: false, format: 'der' } as const;

/**
 * What a key held in this process may be: a managed key's spec, or secp256k1 (transit's
 * ecdsa-secp256k1 keys; no managed-key backend offers that curve).
 */
export type LocalKeySpec = KeySpec | { kind: 'ec'; curve: 'secp256k1' };

/** The digest to sign: hashes `data` unless the caller already did. */
export function digest(data: Buffer, opts: SignOptions): Buffer {
  if (!opts.prehashed) return createHash(opts.hash).update(data).digest();
  if (data.length !== DIGEST_BYTES[opts.hash])
    throw keyInvalid(`prehashed input must be ${DIGEST_BYTES[opts.hash]} bytes for ${opts.hash}, got ${data.length}`);
  return data;
}

/** r||s (PKCS#11, JWS, Azure) to ASN.1 DER: ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }. */
export function rawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  return seq(uint(raw.subarray(0, half)), uint(raw.subarray(half)));
}

/** ASN.1 DER to r||s, each left-padded to `size` bytes (JWS marshaling). */
export function derToRaw(der: Buffer, size: number): Buffer {
  const malformed = () => keyInvalid('malformed ECDSA signature');
  const sig = readElement(der, 0, malformed);
  let p = sig.content;
  const read = () => {
    const int = readElement(der, p, malformed, sig.end);
    if (int.tag !== 0x02) throw malformed();
    let v = der.subarray(int.content, int.end);
    p = int.end;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw malformed();
    return Buffer.concat([Buffer.alloc(size - v.length), v]);
  };
  return Buffer.concat([read(), read()]);
}

export { digestInfo } from './digests';

const jwkBytes = (k: KeyObject, part: 'd' | 'x' | 'y') => Buffer.from(k.export({ format: 'jwk' })[part] as string, 'base64url');
/** An EC private key's scalar, as noble signs with it. */
export const ecScalar = (k: KeyObject): Buffer => jwkBytes(k, 'd');
/** An EC public key's uncompressed point, as noble verifies with it. */
export const ecPoint = (k: KeyObject): Buffer => Buffer.concat([Buffer.from([4]), jwkBytes(k, 'x'), jwkBytes(k, 'y')]);

/**
 * How a local private key makes a signature: Node's sign (which hashes the message
 * itself), a raw RSA private operation on a block prepared here, or done already (ECDSA
 * over a digest, which Node's sign cannot do).
 */
type SignPlan =
  | { via: 'sign'; alg: SignHash | null; key: SignKeyObjectInput }
  | { via: 'raw'; padding: number; block: Buffer }
  | { via: 'done'; signature: Buffer };

function signPlan(priv: KeyObject, spec: LocalKeySpec, data: Buffer, opts: SignOptions): SignPlan {
  if (spec.kind === 'ed25519') {
    if (opts.prehashed) throw keyInvalid('Ed25519 signs messages, not digests');
    return { via: 'sign', alg: null, key: { key: priv } };
  }
  if (spec.kind === 'ec' && spec.curve === 'secp256k1') {
    // Low-S signatures (BIP 62/146), which secp256k1 verifiers such as Bitcoin's require
    // and every other verifier accepts; OpenSSL's would be high-S half the time.
    return { via: 'done', signature: Buffer.from(secp256k1.sign(digest(data, opts), ecScalar(priv), { ...NOBLE, lowS: true })) };
  }
  if (spec.kind === 'ec') {
    if (!opts.prehashed) return { via: 'sign', alg: opts.hash, key: { key: priv, dsaEncoding: 'der' } };
    return { via: 'done', signature: Buffer.from(CURVES[spec.curve].sign(digest(data, opts), ecScalar(priv), NOBLE)) };
  }
  if (spec.kind === 'rsa') {
    if (opts.padding === 'pkcs1v15') {
      // PKCS#1 v1.5 is deterministic: Node's sign gives the same bytes as the DigestInfo signed raw.
      if (!opts.prehashed) return { via: 'sign', alg: opts.hash, key: { key: priv, padding: constants.RSA_PKCS1_PADDING } };
      return { via: 'raw', padding: constants.RSA_PKCS1_PADDING, block: digestInfo(opts.hash, digest(data, opts)) };
    }
    if (!opts.prehashed)
      return { via: 'sign', alg: opts.hash, key: { key: priv, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: DIGEST_BYTES[opts.hash] } };
    return { via: 'raw', padding: constants.RSA_NO_PADDING, block: pssEncode(digest(data, opts), opts.hash, spec.bits) };
  }
  throw keyInvalid('AES keys do not sign');
}

/** Sign with a private key held in this process, on the calling thread (transit's own keys). */
export function signLocal(priv: KeyObject, spec: LocalKeySpec, data: Buffer, opts: SignOptions): Buffer {
  const p = signPlan(priv, spec, data, opts);
  if (p.via === 'sign') return nodeSign(p.alg, data, p.key);
  if (p.via === 'raw') return privateEncrypt({ key: priv, padding: p.padding }, p.block);
  return p.signature;
}

const signOnThreadPool = promisify(nodeSign) as (alg: string | null, data: Buffer, key: SignKeyObjectInput) => Promise<Buffer>;

/** The same signatures as signLocal, made off the event loop (software managed keys). */
export async function signLocalAsync(priv: KeyObject, spec: LocalKeySpec, data: Buffer, opts: SignOptions): Promise<Buffer> {
  const p = signPlan(priv, spec, data, opts);
  if (p.via === 'sign') return signOnThreadPool(p.alg, data, p.key);
  if (p.via === 'raw') return rsaPrivate('sign-raw', priv, p.padding, p.block);
  return p.signature;
}

/** Verify a signature made by any backend, with the key's public half. */
export function verifyWith(pub: KeyObject, spec: LocalKeySpec, data: Buffer, signature: Buffer, opts: SignOptions): boolean {
  if (spec.kind === 'ed25519') {
    if (opts.prehashed) throw keyInvalid('Ed25519 signs messages, not digests');
    return nodeVerify(null, data, pub, signature);
  }
  const d = digest(data, opts);
  try {
    if (spec.kind === 'ec') {
      return CURVES[spec.curve].verify(signature, d, ecPoint(pub), NOBLE);
    }
    if (spec.kind === 'rsa') {
      if (opts.padding === 'pkcs1v15') return publicDecrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, signature).equals(digestInfo(opts.hash, d));
      return pssVerify(d, publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, signature), opts.hash, spec.bits);
    }
  } catch {
    return false; // malformed or mismatched signature
  }
  throw keyInvalid('AES keys do not sign');
}

/** The longest plaintext RSA-OAEP takes with this key and hash: the modulus's bytes less twice the digest and 2. */
export function oaepMaxPlaintext(key: KeyObject, hash: string): number {
  return (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8 - 2 * createHash(hash).digest().length - 2;
}

/**
 * RSA-OAEP encryption with a key's public half (the backends encrypt locally, as the HSMs and
 * KMSes would): a plaintext longer than OAEP allows for the key and hash (the modulus's
 * bytes less twice the digest and 2) is the caller's error, an `invalid` KeyError naming the
 * key, not OpenSSL's internal one.
 */
export function oaepEncrypt(key: KeyObject, plaintext: Buffer, hash: string, who: string): Buffer {
  const max = oaepMaxPlaintext(key, hash);
  if (plaintext.length > max) throw keyInvalid(`${who}: plaintext of ${plaintext.length} bytes is too long for RSA-OAEP with this key (at most ${max})`);
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, plaintext);
}
