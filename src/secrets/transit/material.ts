// Key material going in and out of transit by "bring your own key": what an imported key's
// bytes must be for each type (current Vault's rules and messages: sizes, PKCS#8 private
// keys, PEM public keys), how they become a version's `key` / `public_key`, and the bytes
// byok-export wraps. Parsed keys are normalised from their defining values (an EC key from
// its scalar, an RSA key from n, e, d and its primes, checked), as Go's parsers do, so a
// stored key never carries an inconsistent public half or CRT value. Errors name the
// problem, never a byte of the key.
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CURVES, ecScalar } from '../../keys/crypto';
import { curveOfOpenssl, MANAGED_CURVES, type ManagedCurve } from '../../keys/curves';
import { readElement, strictDer } from '../../goplugin/der';
import { UserError } from '../framework';
import { HMAC_KEY_SIZES, SPEC, type KeyType, type KeyVersion, type Policy } from './policy';

/** The types current Vault imports (its open-source ones; CMAC and ML-DSA are Enterprise's). */
export const IMPORT_TYPES = [
  'aes128-gcm96',
  'aes256-gcm96',
  'chacha20-poly1305',
  'ecdsa-p256',
  'ecdsa-p384',
  'ecdsa-p521',
  'ed25519',
  'rsa-2048',
  'rsa-3072',
  'rsa-4096',
  'hmac',
] as const satisfies readonly KeyType[];
export type ImportType = (typeof IMPORT_TYPES)[number];

/** Types whose public key may be imported alone (public_key), as current Vault. */
export const importsPublicKey = (t: KeyType): boolean => t.startsWith('rsa-') || (t.startsWith('ecdsa-p') && t !== 'ecdsa-secp256k1') || t === 'ed25519';

const SYMMETRIC_BYTES: Partial<Record<KeyType, number>> = { 'aes128-gcm96': 16, 'aes256-gcm96': 32, 'chacha20-poly1305': 32 };

/** What a key is, for messages: "an RSA key", "an EC key (secp256k1)". */
function kindOf(k: KeyObject): string {
  const t = k.asymmetricKeyType;
  if (t === 'rsa' || t === 'rsa-pss') return 'an RSA key';
  if (t === 'ec') return 'an EC key';
  if (t === 'ed25519') return 'an Ed25519 key';
  return `a key of type ${t ?? 'unknown'}`;
}

// The curves transit has key types on, by the names Vault reports; any other by OpenSSL's name.
const TRANSIT_CURVES = [...MANAGED_CURVES, 'secp256k1'] as const;

/** The key is of the policy's type: family, curve, modulus size; otherwise a 400 in Vault's words. */
export function checkType(type: KeyType, k: KeyObject): void {
  const spec = SPEC[type];
  const t = k.asymmetricKeyType;
  const family = t === 'rsa' || t === 'rsa-pss' ? 'rsa' : t;
  if (!spec || spec.kind !== family) throw new UserError(`invalid key type: expected ${type}, got ${kindOf(k)}`);
  if (spec.kind === 'ec') {
    const named = k.asymmetricKeyDetails?.namedCurve;
    const curve = curveOfOpenssl(named, TRANSIT_CURVES) ?? named ?? 'an unknown curve';
    if (curve !== spec.curve) throw new UserError(`invalid curve: expected ${spec.curve}, got ${curve}`);
  }
  if (spec.kind === 'rsa') {
    const got = Math.ceil((k.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    if (got !== spec.bits / 8) throw new UserError(`invalid key size: expected ${spec.bits / 8} bytes, got ${got} bytes`);
  }
}

const big = (b64url: string | undefined) => BigInt(`0x${Buffer.from(b64url ?? '', 'base64url').toString('hex') || '0'}`);
const unbig = (n: bigint) => {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex').toString('base64url');
};
/** x⁻¹ mod m (m prime here), by the extended Euclidean algorithm. */
function modInverse(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [((x % m) + m) % m, m, 1n, 0n];
  while (b) {
    const q = a / b;
    [a, b] = [b, a - q * b];
    [u, v] = [v, u - q * v];
  }
  return ((u % m) + m) % m;
}

/**
 * An RSA private key rebuilt from n, e, d, p and q after Go's checks (n = p·q, e·d ≡ 1 mod
 * p−1 and q−1), its CRT values recomputed: a key whose parts disagree would sign wrongly.
 */
function normalisedRsa(k: KeyObject): KeyObject {
  const j = k.export({ format: 'jwk' }) as JsonWebKey;
  const [n, e, d, p, q] = [big(j.n), big(j.e), big(j.d), big(j.p), big(j.q)];
  if (p < 2n || q < 2n || p * q !== n) throw new UserError('error parsing asymmetric key: crypto/rsa: invalid modulus');
  if (e < 2n || (d * e) % (p - 1n) !== 1n || (d * e) % (q - 1n) !== 1n) throw new UserError('error parsing asymmetric key: crypto/rsa: invalid exponents');
  const jwk: JsonWebKey = { kty: 'RSA', n: j.n, e: j.e, d: j.d, p: j.p, q: j.q, dp: unbig(d % (p - 1n)), dq: unbig(d % (q - 1n)), qi: unbig(modInverse(q, p)) };
  return createPrivateKey({ key: jwk, format: 'jwk' });
}

/** An EC private key rebuilt from its scalar (its public point computed, as Go does), which must be in range. */
function normalisedEc(k: KeyObject, curve: ManagedCurve): KeyObject {
  const d = ecScalar(k);
  let point: Uint8Array;
  try {
    point = CURVES[curve].getPublicKey(d, false);
  } catch {
    throw new UserError('error parsing asymmetric key: x509: invalid elliptic curve private key value');
  }
  const size = (point.length - 1) / 2;
  const coord = (from: number) => Buffer.from(point.subarray(from, from + size)).toString('base64url');
  return createPrivateKey({ key: { kty: 'EC', crv: curve, d: Buffer.from(d).toString('base64url'), x: coord(1), y: coord(1 + size) }, format: 'jwk' });
}

/** The RSAPrivateKey (PKCS#1) inside a PKCS#8 key whose algorithm is RSASSA-PSS, which Vault takes as an RSA key. */
function pssAsRsa(der: Buffer): KeyObject {
  const outer = readElement(der, 0);
  const version = readElement(der, outer.content);
  const alg = readElement(der, version.end);
  const key = readElement(der, alg.end);
  if (key.tag !== 0x04) throw new Error('not an OCTET STRING');
  return createPrivateKey({ key: der.subarray(key.content, key.end), format: 'der', type: 'pkcs1' });
}

/** A PKCS#8 (DER) private key of the policy's type, normalised; anything else is a 400. */
export function parsePrivateKey(type: KeyType, der: Buffer): KeyObject {
  let k: KeyObject;
  try {
    strictDer(der); // as Go's PKCS#8 parser (OpenSSL also reads BER)
    k = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    if (k.asymmetricKeyType === 'rsa-pss') k = pssAsRsa(der);
  } catch {
    throw new UserError('error parsing asymmetric key: not a PKCS#8 (DER) private key');
  }
  checkType(type, k);
  const spec = SPEC[type]!;
  if (spec.kind === 'rsa') return normalisedRsa(k);
  if (spec.kind === 'ec') return normalisedEc(k, spec.curve as ManagedCurve);
  return k;
}

/**
 * A public key of the policy's type from the first PEM block of `text` (its body must be a
 * SubjectPublicKeyInfo, as Go's ParsePKIXPublicKey reads it, whatever the block's label).
 */
export function parsePublicKey(type: KeyType, text: string): KeyObject {
  const m = /-----BEGIN ([^\r\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new UserError('error parsing public key: not in PEM format');
  const der = Buffer.from(m[2].replace(/\s+/g, ''), 'base64');
  let k: KeyObject;
  try {
    strictDer(der);
    k = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    throw new UserError('error parsing public key: not a SubjectPublicKeyInfo of a supported key type');
  }
  checkType(type, k);
  return k;
}

/** A version's key material from imported bytes: a private key (unwrapped) or a public key alone (PEM text). */
export type Imported = { private: Buffer } | { publicPem: string };

/**
 * The `key` (or `public_key`) of a version of type `type` made from imported material,
 * after current Vault's checks; and for hmac keys their size. Each refusal is a 400.
 */
export function importedMaterial(p: Pick<Policy, 'type' | 'derived'>, m: Imported): { key?: string; public_key?: string; keySize?: number } {
  const type = p.type;
  if ('publicPem' in m) {
    if (!importsPublicKey(type)) throw new UserError('provided type does not support public_key import');
    if (type === 'ed25519' && p.derived)
      throw new UserError(
        'unable to import only public key for derived Ed25519 key: imported key should not be an Ed25519 key pair but is instead an HKDF key',
      );
    return { public_key: parsePublicKey(type, m.publicPem).export({ type: 'spki', format: 'pem' }) as string };
  }
  const bytes = m.private;
  const want = SYMMETRIC_BYTES[type];
  if ((want !== undefined && bytes.length !== want) || (type === 'hmac' && (bytes.length < HMAC_KEY_SIZES.min || bytes.length > HMAC_KEY_SIZES.max)))
    throw new UserError(`invalid key size ${bytes.length} bytes for key type ${type}`);
  if (want !== undefined) return { key: bytes.toString('base64') };
  if (type === 'hmac') return { key: bytes.toString('base64'), keySize: bytes.length };
  return { key: parsePrivateKey(type, bytes).export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** Does `priv` belong to this version's imported public key? (import_version adding the private half.) */
export function samePair(v: KeyVersion, privPem: string): boolean {
  const mine = createPublicKey(v.public_key!).export({ type: 'spki', format: 'der' }) as Buffer;
  const theirs = createPublicKey(createPrivateKey(privPem)).export({ type: 'spki', format: 'der' }) as Buffer;
  return mine.equals(theirs);
}

/**
 * The bytes byok-export wraps for one version, as current Vault: the raw key of AES,
 * ChaCha20 and HMAC keys, PKCS#8 DER of RSA, ECDSA and Ed25519 keys. Other types, and a
 * version without its private key, are a 400.
 */
export function exportMaterial(p: Policy, v: KeyVersion, version: number): Buffer {
  if (SYMMETRIC_BYTES[p.type] !== undefined || p.type === 'hmac') return Buffer.from(v.key!, 'base64');
  if (!SPEC[p.type]) throw new UserError(`unable to export to unknown key type: ${p.type}`);
  if (!v.key) throw new UserError(`version ${version} of key ${p.name} has no private key (only its public key was imported)`);
  return createPrivateKey(v.key).export({ type: 'pkcs8', format: 'der' }) as Buffer;
}
