// The cryptographic calls on a session: ECDSA and RSA (PKCS#1 v1.5, PSS) signatures over
// a digest, AES-GCM, RSA-OAEP decryption. Digests are computed here, outside the token;
// the long calls run on libuv's thread pool (the *Async forms).
import { randomBytes } from 'node:crypto';
import { keyInvalid, keyUnsupported } from '../errors';
import { digestInfo, rawToDer } from '../crypto';
import { curveBytes } from '../curves';
import type { CryptOptions, KeySpec, SignOptions } from '../types';
import { CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, ckr, pk, type Handle, type Pkcs11Types } from './library';
import { hashMech } from './mechanisms';

/** One key's handle and what it is, on one session. */
export interface OnSession {
  p: Pkcs11Types.PKCS11;
  s: Handle;
  key: Handle;
  spec: KeySpec;
  /** The key's name, for errors. */
  name: string;
}

/** Sign digest `d` (of opts.hash): ECDSA as DER, RSA PKCS#1 v1.5 (over a DigestInfo) or PSS (salt = digest length). */
export async function signDigest({ p, s, key, spec, name }: OnSession, d: Buffer, opts: SignOptions): Promise<Buffer> {
  const P = pk();
  if (spec.kind === 'ec') {
    p.C_SignInit(s, { mechanism: P.CKM_ECDSA }, key);
    return rawToDer(await p.C_SignAsync(s, d, Buffer.alloc(2 * curveBytes(spec.curve))));
  }
  if (spec.kind !== 'rsa') throw keyUnsupported(`pkcs11 key "${name}" (${spec.kind}) does not sign`);
  const bytes = spec.bits / 8;
  if (opts.padding === 'pkcs1v15') {
    p.C_SignInit(s, { mechanism: P.CKM_RSA_PKCS }, key);
    return p.C_SignAsync(s, digestInfo(opts.hash, d), Buffer.alloc(bytes));
  }
  const pss: Pkcs11Types.RsaPSS = { type: P.CK_PARAMS_RSA_PSS, ...hashMech(opts.hash), saltLen: d.length };
  p.C_SignInit(s, { mechanism: P.CKM_RSA_PKCS_PSS, parameter: pss }, key);
  return p.C_SignAsync(s, d, Buffer.alloc(bytes));
}

/** AES-GCM with a random 96-bit IV on the token: iv || ciphertext || tag. */
export async function aesGcmEncrypt({ p, s, key }: OnSession, plaintext: Buffer, aad?: Buffer): Promise<Buffer> {
  const P = pk();
  const iv = randomBytes(12);
  const gcm: Pkcs11Types.AesGCM = { type: P.CK_PARAMS_AES_GCM, iv, aad, ivBits: 96, tagBits: 128 };
  p.C_EncryptInit(s, { mechanism: P.CKM_AES_GCM, parameter: gcm }, key);
  const out = await p.C_EncryptAsync(s, plaintext, Buffer.alloc(plaintext.length + 16));
  return Buffer.concat([iv, out]);
}

/** AES-GCM or RSA-OAEP decryption on the token; input the token refuses is an `invalid` KeyError. */
export async function decryptOnToken({ p, s, key, spec, name }: OnSession, ciphertext: Buffer, opts: CryptOptions): Promise<Buffer> {
  const P = pk();
  try {
    if (spec.kind === 'aes') {
      if (ciphertext.length < 28) throw keyInvalid('ciphertext too short');
      const gcm: Pkcs11Types.AesGCM = { type: P.CK_PARAMS_AES_GCM, iv: ciphertext.subarray(0, 12), aad: opts.aad, ivBits: 96, tagBits: 128 };
      p.C_DecryptInit(s, { mechanism: P.CKM_AES_GCM, parameter: gcm }, key);
      return await p.C_DecryptAsync(s, ciphertext.subarray(12), Buffer.alloc(ciphertext.length));
    }
    if (spec.kind === 'rsa') {
      const oaep: Pkcs11Types.RsaOAEP = { type: P.CK_PARAMS_RSA_OAEP, ...hashMech(opts.oaepHash ?? 'sha256'), source: 1 };
      p.C_DecryptInit(s, { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: oaep }, key);
      return await p.C_DecryptAsync(s, ciphertext, Buffer.alloc(spec.bits / 8));
    }
  } catch (e) {
    const code = ckr(e);
    // The input, not the token.
    if (code === CKR_ENCRYPTED_DATA_INVALID || code === CKR_ENCRYPTED_DATA_LEN_RANGE)
      throw keyInvalid('decryption failed: ciphertext or associated data do not match the key');
    throw e;
  }
  throw keyUnsupported(`pkcs11 key "${name}" (${spec.kind}) does not decrypt`);
}
