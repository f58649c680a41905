// Leaf and CA keys: what kind a public key is, whether a role accepts it (Vault's
// key_type / key_bits rules), and generating new ones on libuv's thread pool.
import { createECDH, createPrivateKey, createPublicKey, type ECDH, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { pem } from '../../goplugin/der';
import { curveFacts, curveOfOpenssl, NIST_CURVES, nistCurveOfBits } from '../../keys/curves';
import { UserError } from '../framework';

/** The key kinds Vault's PKI signs. */
export type KeyType = 'rsa' | 'ec' | 'ed25519';
/** A public key's kind and size (bits: RSA modulus or EC curve size; 0 for Ed25519). */
export interface KeyInfo {
  type: KeyType;
  bits: number;
}

/** The kind and size of a public key; anything Vault's PKI does not sign is a 400. */
export function keyInfo(key: KeyObject): KeyInfo {
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (t === 'rsa') return { type: 'rsa', bits: d.modulusLength ?? 0 };
  if (t === 'ed25519') return { type: 'ed25519', bits: 0 };
  if (t === 'ec') {
    const curve = curveOfOpenssl(d.namedCurve, NIST_CURVES);
    if (!curve) throw new UserError(`unsupported key: EC curve ${d.namedCurve ?? 'unknown'} is not supported (P-224, P-256, P-384 or P-521)`);
    return { type: 'ec', bits: curveFacts(curve).bits };
  }
  if (t === 'rsa-pss') throw new UserError('unsupported key: RSA-PSS (id-RSASSA-PSS) public keys are not supported; use an rsaEncryption key');
  throw new UserError(`unsupported key type ${t ?? 'unknown'} (rsa, ec or ed25519)`);
}

/** keyInfo for a DER SubjectPublicKeyInfo; a key Node cannot read is a 400. */
export const spkiKeyInfo = (spki: Buffer): KeyInfo => {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new UserError('unsupported key: the public key cannot be read');
  }
  return keyInfo(key);
};

/** A role's key_type, as stored (roles from before ed25519/any default to ec). */
export type RoleKeyType = KeyType | 'any';

/**
 * key_bits as Vault normalises it when a role is written: rsa 0 → 2048 (or 2048, 3072,
 * 4096, 8192), ec 0 → 256 (or 224, 256, 384, 521); ed25519 and any carry no size.
 */
export function roleKeyBits(keyType: RoleKeyType, bits: number): number {
  if (keyType === 'rsa') {
    const b = bits || 2048;
    if (![2048, 3072, 4096, 8192].includes(b)) throw new UserError('key_bits for rsa must be 2048, 3072, 4096 or 8192');
    return b;
  }
  if (keyType === 'ec') {
    const b = bits || 256;
    if (!nistCurveOfBits(b)) throw new UserError('key_bits for ec must be 224, 256, 384 or 521');
    return b;
  }
  return 0;
}

/** Does a CSR's key fit the role? The messages are Vault's. */
export function checkKeyForRole(role: { key_type: RoleKeyType; key_bits: number }, key: KeyInfo): void {
  if (role.key_type !== 'any' && key.type !== role.key_type) throw new UserError(`role requires keys of type ${role.key_type}`);
  // With "any", only Vault's own minimums apply: RSA 2048, EC P-224.
  const min = role.key_type === 'any' ? (key.type === 'rsa' ? 2048 : key.type === 'ec' ? 224 : 0) : roleKeyBits(role.key_type, role.key_bits);
  if (key.bits < min) throw new UserError(`role requires a minimum of a ${min}-bit key, but CSR's key is ${key.bits} bits`);
  if (key.type === 'rsa' && key.bits < 2048) throw new UserError(`a minimum of a 2048-bit RSA key is required, but CSR's key is ${key.bits} bits`);
}

/** A new key, serialised: its private key as PKCS#8 PEM and its public key as DER SPKI. */
export interface GeneratedKey extends KeyInfo {
  pkcs8: string;
  spki: Buffer;
}
/** How a leaf's private key is answered: Vault's default (the key's own structure) or PKCS#8. */
export type LeafKeyFormat = 'der' | 'pkcs8';
/** The DER structure a leaf's private key is written in. */
export type PrivateKeyStructure = 'pkcs8' | 'pkcs1' | 'sec1';
/** A new leaf key, written once by the generator in the structure the answer needs. */
export interface GeneratedLeafKey extends KeyInfo {
  privateKeyDer: Buffer;
  structure: PrivateKeyStructure;
  spki: Buffer;
}

/** Vault's choice: the key's own structure (PKCS#1 for RSA, SEC 1 for EC) unless PKCS#8 is asked; Ed25519 keys are always PKCS#8. */
export function leafKeyStructure(type: KeyType, format: LeafKeyFormat): PrivateKeyStructure {
  return format === 'pkcs8' || type === 'ed25519' ? 'pkcs8' : type === 'rsa' ? 'pkcs1' : 'sec1';
}

/** The PEM label of each private key structure. */
const PRIVATE_KEY_LABEL = { pkcs8: 'PRIVATE KEY', pkcs1: 'RSA PRIVATE KEY', sec1: 'EC PRIVATE KEY' } as const;

/**
 * An exported CA key as Vault answers it: private_key_format der or pem (the default) give the
 * key's own structure (PKCS#1 for RSA, SEC 1 for EC; PKCS#8 for Ed25519), pkcs8 gives PKCS#8;
 * `der` is the DER for format=der answers.
 */
export function exportedPrivateKey(pkcs8Pem: string, type: KeyType, privateKeyFormat: string): { pem: string; der: Buffer } {
  const structure = leafKeyStructure(type, privateKeyFormat === 'pkcs8' ? 'pkcs8' : 'der');
  const der = createPrivateKey(pkcs8Pem).export({ type: structure, format: 'der' } as never) as Buffer;
  return { pem: pem(der, PRIVATE_KEY_LABEL[structure]).trimEnd(), der };
}

interface KeySpec {
  type: KeyType;
  size: number;
  options: { modulusLength?: number; namedCurve?: string };
}

/** What to generate for a key_type/key_bits; CA keys must be ones the CA signer signs with (P-256/384/521, RSA, Ed25519). */
function keySpec(keyType: string, bits: number, forCa: boolean): KeySpec {
  if (keyType === 'ec') {
    const size = bits || 256;
    const namedCurve = nistCurveOfBits(size);
    if (!namedCurve || (forCa && size === 224)) throw new UserError(`key_bits for ec keys must be ${forCa ? '' : '224, '}256, 384 or 521`);
    return { type: 'ec', size, options: { namedCurve } };
  }
  if (keyType === 'rsa') {
    const size = bits || 2048;
    if (![2048, 3072, 4096].includes(size)) throw new UserError('key_bits for rsa keys must be 2048, 3072 or 4096 to generate a key here');
    return { type: 'rsa', size, options: { modulusLength: size } };
  }
  // Ed25519 CA keys as current Vault (1.10+); Vault 1.8's CAs were EC or RSA only.
  if (keyType === 'ed25519') return { type: 'ed25519', size: 0, options: {} };
  if (keyType === 'any') throw new UserError('a role with key_type "any" can be used only for signing CSRs (sign/<role>), not to generate keys');
  throw new UserError('key_type must be ec, rsa or ed25519');
}

/**
 * A new key (PKCS#8 PEM and SPKI DER), generated on the thread pool so a 4096-bit RSA
 * key does not stall other requests. CA keys are P-256/384/521, RSA or Ed25519; leaves may
 * also be P-224.
 */
export async function generateKey(keyType: string, bits: number, forCa: boolean): Promise<GeneratedKey> {
  const { type, size, options } = keySpec(keyType, bits, forCa);
  const enc = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'der' } } as const;
  const { pkcs8, spki } = await new Promise<{ pkcs8: string; spki: Buffer }>((resolve, reject) =>
    generateKeyPair(type as 'rsa', { ...options, ...enc } as never, (e: Error | null, pub: Buffer, priv: string) =>
      e ? reject(e) : resolve({ pkcs8: priv, spki: pub }),
    ),
  );
  return { type, bits: size, pkcs8, spki };
}

// SubjectPublicKeyInfo prefixes up to the key bytes: id-ecPublicKey with the named curve
// (then 0x04 || x || y), and id-Ed25519 (then the 32-byte key), as OpenSSL writes them.
const SPKI_PREFIX: Record<string, Buffer> = {
  'P-256': Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
  'P-384': Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
  'P-521': Buffer.from('30819b301006072a8648ce3d020106052b8104002303818600', 'hex'),
  Ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
};

// The key bytes after each prefix: 0x04 || x || y, or the Ed25519 key.
const POINT_BYTES: Record<string, number> = { 'P-256': 65, 'P-384': 97, 'P-521': 133, Ed25519: 32 };

/**
 * A public key from SPKI DER. OpenSSL 3's DER decoder costs ~0.12 ms (P-256) to ~0.08 ms
 * (Ed25519); the same key as a JWK 0.08 / 0.01 ms. SPKIs of exactly the shapes above
 * (uncompressed points) go through their JWK, whose import checks the point all the same.
 */
export function publicKeyFromSpki(spki: Buffer): KeyObject {
  for (const [crv, prefix] of Object.entries(SPKI_PREFIX)) {
    if (spki.length !== prefix.length + POINT_BYTES[crv] || !spki.subarray(0, prefix.length).equals(prefix)) continue;
    const point = spki.subarray(prefix.length);
    if (crv === 'Ed25519') return createPublicKey({ key: { kty: 'OKP', crv, x: point.toString('base64url') }, format: 'jwk' });
    const n = (point.length - 1) / 2;
    if (point[0] === 4)
      return createPublicKey({ key: { kty: 'EC', crv, x: point.toString('base64url', 1, 1 + n), y: point.toString('base64url', 1 + n) }, format: 'jwk' });
  }
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

/**
 * A new leaf key, its private key already in the structure the answer needs and its public
 * key as SPKI DER. Never a private KeyObject from the generator: Node 20's generated
 * KeyObjects share a lock with the generation job's copy of the key, and when V8 collects
 * the finished job while an export of the same key holds that lock (a JWK export allocating
 * its strings), the job's destructor waits for it on the one JavaScript thread and the
 * process hangs for good (test/unit/keygen-gc.test.ts). P-256 keys take ~0.02 ms: generated
 * on the loop (the thread pool hop costs more) as a bare scalar and point (newP256Key), their
 * structures written here; Ed25519 keys on the loop with both written by the generator; RSA
 * and P-224/384/521 on the pool.
 */
export async function generateLeafKey(keyType: string, bits: number, format: LeafKeyFormat): Promise<GeneratedLeafKey> {
  const { type, size, options } = keySpec(keyType, bits, false);
  const structure = leafKeyStructure(type, format);
  const privateKeyEncoding = { type: structure, format: 'der' };
  const publicKeyEncoding = { type: 'spki', format: 'der' };
  let spki: Buffer;
  let privateKeyDer: Buffer;
  if (type === 'ec' && size === 256) {
    const { d, q } = newP256Key();
    privateKeyDer = p256PrivateKeyDer(d, q, structure === 'pkcs8' ? 'pkcs8' : 'sec1');
    spki = Buffer.concat([SPKI_PREFIX['P-256'], q]);
  } else {
    const opts = { ...options, privateKeyEncoding, publicKeyEncoding } as never;
    const g =
      type === 'ed25519'
        ? (generateKeyPairSync('ed25519', opts) as unknown as { publicKey: Buffer; privateKey: Buffer })
        : await new Promise<{ publicKey: Buffer; privateKey: Buffer }>((resolve, reject) =>
            generateKeyPair(type as 'rsa', opts, (e: Error | null, pub: Buffer, priv: Buffer) =>
              e ? reject(e) : resolve({ publicKey: pub, privateKey: priv }),
            ),
          );
    spki = g.publicKey;
    privateKeyDer = g.privateKey;
  }
  return { type, bits: size, privateKeyDer, structure, spki };
}

// One generator for every P-256 leaf key: OpenSSL's EC key generation through Node's ECDH
// object gives the scalar and the point in ~20 µs, where generateKeyPairSync with a DER
// encoding took ~70 (its encoder alone ~30). The structures are then written here, byte for
// byte as OpenSSL writes them (test/unit/pki-cert-writer.test.ts compares).
let p256: ECDH | undefined;

/** A fresh P-256 key: the private scalar (32 bytes) and the uncompressed public point. */
export function newP256Key(): { d: Buffer; q: Buffer } {
  p256 ??= createECDH('prime256v1');
  p256.generateKeys();
  const raw = p256.getPrivateKey();
  // The scalar comes without its leading zero bytes (one key in 256): SEC 1 wants 32.
  const d = raw.length === 32 ? raw : Buffer.concat([Buffer.alloc(32 - raw.length), raw]);
  return { d, q: p256.getPublicKey() };
}

// SEC 1 ECPrivateKey { version 1, privateKey OCTET STRING (32), [0] prime256v1, [1] BIT STRING point }
// and PKCS#8 { version 0, id-ecPublicKey prime256v1, OCTET STRING { ECPrivateKey without [0] } },
// split around the scalar and the point.
const P256_SEC1 = [Buffer.from('30770201010420', 'hex'), Buffer.from('a00a06082a8648ce3d030107a144034200', 'hex')];
const P256_PKCS8 = [Buffer.from('308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420', 'hex'), Buffer.from('a144034200', 'hex')];

/** A P-256 private key (scalar `d`, point `q`) as SEC 1 or PKCS#8 DER. */
export function p256PrivateKeyDer(d: Buffer, q: Buffer, structure: 'sec1' | 'pkcs8'): Buffer {
  if (d.length !== 32 || q.length !== 65 || q[0] !== 4) throw new Error('not a P-256 key');
  const [head, middle] = structure === 'sec1' ? P256_SEC1 : P256_PKCS8;
  return Buffer.concat([head, d, middle, q]);
}
