// The one interface transit and PKI use for key operations. Key material stays in the
// backend (HSM, cloud KMS); only public keys and results cross this boundary.
import type { KeyObject } from 'node:crypto';
import type { BACKEND_FIELDS } from './config';
import type { ManagedCurve } from './curves';

/** The managed-key backend types (the `<type>` of managed-keys/<type>/<name>): those config.ts has fields for. */
export type Backend = keyof typeof BACKEND_FIELDS;
/** Operations a managed key's `usages` may allow. */
export type Usage = 'sign' | 'verify' | 'encrypt' | 'decrypt' | 'random';
/** Digests every backend signs over (and RSA-OAEP's hashes). */
export type Hash = 'sha256' | 'sha384' | 'sha512';
/** Digests a signature may be made over: Hash, and the others transit hands a managed key (as Vault); a backend that cannot sign one refuses it. */
export type SignHash = Hash | 'sha224' | 'sha3-224' | 'sha3-256' | 'sha3-384' | 'sha3-512';

/** What kind of key it is, as far as callers need to know. */
export type KeySpec = { kind: 'ec'; curve: ManagedCurve } | { kind: 'rsa'; bits: number } | { kind: 'ed25519' } | { kind: 'aes'; bits: 128 | 256 };

/** What a key tells about itself: managed-keys reads show it. */
export interface KeyDescription {
  backend: Backend;
  name: string;
  spec: KeySpec;
  usages: Usage[];
  /** Operations the backend itself offers for this key, e.g. "ecdsa-sha256", "rsa-pss-sha256", "aes-gcm", "rsa-oaep-sha256". */
  algorithms: string[];
  /** false for software keys: key material in this process's memory. */
  hardware: boolean;
}

/** How to sign or verify. */
export interface SignOptions {
  hash: SignHash;
  /** RSA only. */
  padding?: 'pss' | 'pkcs1v15';
  /** `data` is already the digest of `hash`. */
  prehashed?: boolean;
}

/** Options of encrypt and decrypt. */
export interface CryptOptions {
  /** AES-GCM additional authenticated data. */
  aad?: Buffer;
  /** RSA-OAEP hash and MGF1 hash (default sha256; some HSMs, SoftHSM2 among them, offer only sha1). */
  oaepHash?: Hash | 'sha1';
}

/** A key whose private material stays in its backend; what transit and PKI use. */
export interface ManagedKey {
  describe(): KeyDescription;
  /** Public half of an asymmetric key. */
  publicKey(): Promise<KeyObject>;
  /** ECDSA signatures are ASN.1 DER whatever the backend returns; Ed25519 is raw (64 bytes). */
  sign(data: Buffer, opts: SignOptions): Promise<Buffer>;
  verify(data: Buffer, signature: Buffer, opts: SignOptions): Promise<boolean>;
  /** AES-GCM: nonce(12) || ciphertext || tag(16). RSA: OAEP. */
  encrypt(plaintext: Buffer, opts?: CryptOptions): Promise<Buffer>;
  decrypt(ciphertext: Buffer, opts?: CryptOptions): Promise<Buffer>;
  random(bytes: number): Promise<Buffer>;
  close(): Promise<void>;
}
