// Transit key policies: versions of key material (in Vault's storage, which Vault
// encrypts) or a reference to a managed key (material never here). Ciphertexts,
// signatures and HMACs carry the version as `vault:v<N>:` like Vault's transit.
// This module is the key model (types, versions, parsed keys); store.ts keeps policies,
// cipher.ts and signature.ts use them.
import { createPrivateKey, createPublicKey, generateKeyPair, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import type { LocalKeySpec } from '../../keys/crypto';
import { UserError } from '../framework';
import { forgetSeed, mldsaPublicKey, type MlDsaSet } from './mldsa';

/**
 * Vault's key types, then three Vault's open-source transit does not have: ecdsa-secp256k1,
 * ml-dsa (FIPS 204, with parameter_set 44/65/87 as Vault Enterprise names it) and x25519
 * (key agreement through derive-key/, as OpenBao's ECDH).
 */
export const KEY_TYPES = [
  'aes128-gcm96',
  'aes256-gcm96',
  'chacha20-poly1305',
  'ed25519',
  'ecdsa-p256',
  'ecdsa-p384',
  'ecdsa-p521',
  'rsa-2048',
  'rsa-3072',
  'rsa-4096',
  'hmac',
  'managed_key',
  'ecdsa-secp256k1',
  'ml-dsa',
  'x25519',
] as const;
/** A transit key type, as Vault names it. */
export type KeyType = (typeof KEY_TYPES)[number];

/** One version of a key: its key material and its HMAC key (base64). */
export interface KeyVersion {
  creation_time: string;
  /** base64 of the symmetric key, base64 of the ML-DSA seed, or PKCS#8 PEM of the private key. */
  key?: string;
  /**
   * A version imported with its public key only (keys/<name>/import with public_key): the
   * SPKI PEM, and no `key` until import_version brings the private key. It verifies and (RSA)
   * encrypts; signing and decrypting need the private key.
   */
  public_key?: string;
  hmac_key: string;
  /** keys/<name>/set-certificate: the chain certifying this version's key, leaf first, base64 DER each. */
  certificate_chain?: string[];
}

/** A transit key as stored at policy/<name>, in Vault's field names. */
export interface Policy {
  name: string;
  type: KeyType;
  versions: Record<string, KeyVersion>;
  latest_version: number;
  min_decryption_version: number;
  min_encryption_version: number;
  derived: boolean;
  convergent_encryption: boolean;
  exportable: boolean;
  deletion_allowed: boolean;
  auto_rotate_period: number;
  managed_key_name?: string;
  last_rotated: string;
  /** Versions below this were trimmed (keys/<name>/trim); 0 or absent: none. */
  min_available_version?: number;
  allow_plaintext_backup?: boolean;
  /** When the key was last backed up / restored, and its latest version then (shown by key reads, as Vault). */
  backup_info?: { time: string; version: number };
  restore_info?: { time: string; version: number };
  /** ML-DSA keys: the FIPS 204 parameter set. */
  parameter_set?: MlDsaSet;
  /** hmac keys: the key's size in bytes (32-512, as Vault's key_size); absent: 32. */
  key_size?: number;
  /**
   * Not generated here: imported (keys/<name>/import), or made by derive-key/ (which never
   * rotates, or the agreement would be lost). As current Vault, a rotation clears it.
   */
  imported_key?: boolean;
  /** Imported keys (keys/<name>/import): may rotate here (allow_rotation); absent on derive-key's keys. */
  allow_imported_key_rotation?: boolean;
  /**
   * The KDF of a derived key when it is not HKDF-SHA256: current Vault derives imported keys
   * with its older NIST SP 800-108 counter-mode KDF (HMAC-SHA256), so the same key material
   * and context give Vault's derived key.
   */
  kdf?: 'hmac-sha256-counter';
}

/** The key types whose keys Node's crypto (and keys/crypto for digests) signs with. */
export const SPEC: Partial<Record<KeyType, LocalKeySpec>> = {
  ed25519: { kind: 'ed25519' },
  'ecdsa-p256': { kind: 'ec', curve: 'P-256' },
  'ecdsa-p384': { kind: 'ec', curve: 'P-384' },
  'ecdsa-p521': { kind: 'ec', curve: 'P-521' },
  'ecdsa-secp256k1': { kind: 'ec', curve: 'secp256k1' },
  'rsa-2048': { kind: 'rsa', bits: 2048 },
  'rsa-3072': { kind: 'rsa', bits: 3072 },
  'rsa-4096': { kind: 'rsa', bits: 4096 },
};
/** The symmetric types (AES-GCM, ChaCha20-Poly1305): the only ones that can be convergent. */
export const isSymmetric = (t: KeyType) => t === 'aes128-gcm96' || t === 'aes256-gcm96' || t === 'chacha20-poly1305';
/** Types whose keys may be derived per context, as Vault: the symmetric ones and ed25519. */
export const canDerive = (t: KeyType) => isSymmetric(t) || t === 'ed25519';
/** Types signed with here (managed keys excluded: their backend decides). */
export const canSign = (t: KeyType) => SPEC[t] !== undefined || t === 'ml-dsa';
/** Types encrypted with here (managed keys excluded: their backend decides). */
export const canEncrypt = (t: KeyType) => isSymmetric(t) || t.startsWith('rsa-');
/** Types that do key agreement (derive-key/). */
export const canAgree = (t: KeyType) => t === 'x25519';
/** Types with a public key per version (shown by key reads, exported as public-key). */
export const hasPublicKey = (t: KeyType) => canSign(t) || canAgree(t);

/** A PKCS#8 PEM private key, generated on libuv's thread pool. */
function generatePkcs8(type: 'ed25519' | 'ec' | 'rsa' | 'x25519', options: { namedCurve?: string; modulusLength?: number }): Promise<string> {
  const enc = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } } as const;
  return new Promise((resolve, reject) =>
    generateKeyPair(type as 'rsa', { ...options, ...enc } as never, (e: Error | null, _pub: string, priv: string) => (e ? reject(e) : resolve(priv))),
  );
}

/** Vault's bounds on an hmac key's key_size, in bytes. */
export const HMAC_KEY_SIZES = { min: 32, max: 512 } as const;

/** A new key version (an hmac key of keySize bytes, default 32). Asymmetric keys are generated on libuv's thread pool, not the event loop. */
export async function newVersion(type: KeyType, keySize?: number): Promise<KeyVersion> {
  const v: KeyVersion = {
    creation_time: new Date().toISOString(),
    hmac_key: randomBytes(type === 'hmac' ? keySize || 32 : 32).toString('base64'),
  };
  if (type === 'aes128-gcm96') v.key = randomBytes(16).toString('base64');
  // An ML-DSA key is its 32-byte seed (FIPS 204's xi): the key pair is derived from it on use.
  else if (type === 'aes256-gcm96' || type === 'chacha20-poly1305' || type === 'ml-dsa') v.key = randomBytes(32).toString('base64');
  else if (type === 'hmac') v.key = v.hmac_key;
  else if (type === 'x25519') v.key = await generatePkcs8('x25519', {});
  else if (type !== 'managed_key') {
    const spec = SPEC[type]!;
    v.key =
      spec.kind === 'ed25519'
        ? await generatePkcs8('ed25519', {})
        : spec.kind === 'ec'
          ? await generatePkcs8('ec', { namedCurve: spec.curve })
          : await generatePkcs8('rsa', { modulusLength: (spec as { bits: number }).bits });
  }
  return v;
}

// Parsing a PEM key costs far more than using it: keep parsed keys, per version's PEM.
const parsedKeys = new Map<string, { priv: KeyObject; pub: KeyObject }>();
/** A version's PEM private key and its public key, parsed once and cached (up to 1024 keys, oldest dropped first). */
export function parsed(pem: string): { priv: KeyObject; pub: KeyObject } {
  let k = parsedKeys.get(pem);
  if (!k) {
    const priv = createPrivateKey(pem);
    k = { priv, pub: createPublicKey(priv) };
    if (parsedKeys.size >= 1024) parsedKeys.delete(parsedKeys.keys().next().value!);
    parsedKeys.set(pem, k);
  }
  return k;
}

/** A key made by derive-key/ (imported, without keys/<name>/import's allow_rotation): it never rotates, and its shared secret never leaves. */
export const madeByDeriveKey = (p: Policy): boolean => !!p.imported_key && p.allow_imported_key_rotation === undefined;

/**
 * Drop the parsed private keys (and derived Ed25519 keys) of versions that no longer exist:
 * a deleted key, trimmed versions, a key replaced by a restore. Key material stays in memory
 * no longer than its key.
 */
export function forgetParsed(pems: Iterable<string>): void {
  for (const pem of pems) {
    forgetSeed(pem);
    parsedKeys.delete(pem);
    for (const id of derivedEd.keys()) if (id.startsWith(`${pem}\0`)) derivedEd.delete(id);
  }
}

/** Whether a PEM's parsed key is held (for tests). */
export const isParsed = (pem: string): boolean => parsedKeys.has(pem) || [...derivedEd.keys()].some((id) => id.startsWith(`${pem}\0`));

// --- versions and their keys --------------------------------------------------------

/**
 * The version a request uses (requested, else latest: 0 means latest) and its key; a negative
 * one, one above latest, below the minimum for this purpose, or trimmed away is a 400.
 * `use` names the operation in the negative-version message, as Vault's do.
 */
export function versionOf(
  p: Policy,
  requested: number | undefined,
  purpose: 'encrypt' | 'decrypt',
  use: 'encryption' | 'signing' | 'HMAC' = 'encryption',
): { n: number; v: KeyVersion } {
  if (requested !== undefined && requested < 0) throw new UserError(`requested version for ${use} is negative`);
  const n = requested || p.latest_version;
  if (n > p.latest_version) throw new UserError(`requested version ${n} is greater than the latest version ${p.latest_version}`);
  const floor = purpose === 'decrypt' ? p.min_decryption_version : p.min_encryption_version;
  if (n < floor)
    throw new UserError(
      purpose === 'decrypt'
        ? `ciphertext or signature version is disallowed by policy (too old)`
        : `requested version for encryption is less than the minimum encryption key version`,
    );
  const v = p.versions[String(n)];
  if (!v) throw new UserError(`key version ${n} not found`);
  return { n, v };
}

/**
 * A version's public key as Vault shows it: raw base64 for Ed25519 (and X25519, ML-DSA:
 * FIPS 204's encoded public key), PEM (SPKI) for ECDSA and RSA.
 */
export function publicKeyOf(p: Policy, v: KeyVersion): string | undefined {
  if (!(v.key || v.public_key) || !hasPublicKey(p.type)) return undefined;
  if (p.type === 'ml-dsa') return Buffer.from(mldsaPublicKey(p.parameter_set!, v.key!)).toString('base64');
  const pub = publicKeyObject(v);
  if (p.type === 'ed25519' || p.type === 'x25519') return (pub.export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32).toString('base64');
  return pub.export({ type: 'spki', format: 'pem' }) as string;
}

/** The name Vault gives an asymmetric key version: "P-256", "ed25519", "rsa-2048", "ml-dsa-65". */
export function versionKeyName(p: Policy): string {
  const s = SPEC[p.type];
  if (p.type === 'ml-dsa') return `ml-dsa-${p.parameter_set}`;
  return !s ? p.type : s.kind === 'ec' ? s.curve : p.type;
}

/** The parsed private key of a version (for export). */
export const privateKeyOf = (v: KeyVersion): KeyObject => parsed(v.key!).priv;

const parsedPublicKeys = new Map<string, KeyObject>();
/** A version's public key: of its private key, or the one imported alone (public_key). */
export function publicKeyObject(v: KeyVersion): KeyObject {
  if (v.key) return parsed(v.key).pub;
  const pem = v.public_key!;
  let k = parsedPublicKeys.get(pem);
  if (!k) {
    k = createPublicKey(pem);
    if (parsedPublicKeys.size >= 1024) parsedPublicKeys.delete(parsedPublicKeys.keys().next().value!);
    parsedPublicKeys.set(pem, k);
  }
  return k;
}

/**
 * A version's private key, or a 400 when only its public key was imported (as current
 * Vault: signing and decryption need the private part, which import_version can add).
 */
export function privatePem(v: KeyVersion, use: 'signing' | 'decryption'): string {
  if (!v.key) throw new UserError(`requested version for ${use} does not contain a private part`);
  return v.key;
}

// The PKCS#8 header of an Ed25519 private key (RFC 8410); the 32-byte seed follows it.
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const derivedEd = new Map<string, { priv: KeyObject; pub: KeyObject }>();

/**
 * A derived ed25519 key's key pair for one context, as Vault derives it: HKDF-SHA256 with no
 * salt over the version's key as Go holds it (seed || public key, 64 bytes), the context as
 * info; Go's ed25519.GenerateKey reads its 32-byte seed from that HKDF stream. So the same
 * key material and context give Vault's key pair, and (Ed25519 being deterministic) its
 * signatures. A missing context is a 400.
 */
export function derivedEd25519(pem: string, context: Buffer): { priv: KeyObject; pub: KeyObject } {
  if (!context.length) throw new UserError('missing context: the key is derived, so each request needs a context');
  const id = `${pem}\0${context.toString('base64')}`;
  let k = derivedEd.get(id);
  if (!k) {
    const { priv, pub } = parsed(pem);
    const goKey = Buffer.concat([
      (priv.export({ type: 'pkcs8', format: 'der' }) as Buffer).subarray(-32),
      (pub.export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32),
    ]);
    const seed = Buffer.from(hkdfSync('sha256', goKey, Buffer.alloc(0), context, 32));
    const dpriv = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
    k = { priv: dpriv, pub: createPublicKey(dpriv) };
    if (derivedEd.size >= 256) derivedEd.delete(derivedEd.keys().next().value!);
    derivedEd.set(id, k);
  }
  return k;
}

/** A raw Ed25519 public key (32 bytes), base64, as Vault shows it. */
export const rawEd25519 = (pub: KeyObject): string => (pub.export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32).toString('base64');
