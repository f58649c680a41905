// The mount's certificate authority: its certificate, chain and signing key. The key is
// either stored (PKCS#8 in Vault's storage) or a managed key, in which case every
// signature is made by the HSM/KMS and the private key never exists here.
// @peculiar/x509 is loaded on first PKI use, not at plugin start.
import { webcrypto, createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type Crypto = typeof webcrypto;
import type * as X509 from '@peculiar/x509';
import { derToRaw } from '../../keys/crypto';
import { curveBytes, curveOfOpenssl, ecdsaHash, MANAGED_CURVES, type ManagedCurve } from '../../keys/curves';
import type { KeySpec, ManagedKey } from '../../keys/types';
import { readElement, uint } from '../../goplugin/der';
import { pooledRandomBytes } from '../../util/random-pool';
import { UserError } from '../framework';

let lib: typeof X509 | undefined;
/** @peculiar/x509, loaded (with reflect-metadata) on first use and bound to Node's WebCrypto. */
export function x509(): typeof X509 {
  if (!lib) {
    require('reflect-metadata'); // @peculiar/x509 resolves its ASN.1 providers through tsyringe
    lib = require('@peculiar/x509') as typeof X509;
    lib.cryptoProvider.set(webcrypto as never);
  }
  return lib;
}

/** The legacy single CA of a mount (pki/ca), migrated to an issuer and a key when read (issuers.ts). */
export interface StoredCa {
  certificate: string;
  ca_chain: string[];
  key: { kind: 'stored'; pkcs8: string } | { kind: 'managed'; managed_key_name: string };
  crl_number: number;
}

/** Storage key of the legacy single CA (StoredCa), migrated into an issuer and a key when read. */
export const CA_KEY = 'pki/ca';
/** Storage key of the legacy pending intermediate's key (generated, awaiting set-signed), migrated when read. */
export const PENDING_KEY = 'pki/pending-intermediate';

/** WebCrypto algorithm for signing with a key of this spec. */
export function signingAlgorithm(spec: KeySpec): (EcdsaParams & EcKeyImportParams) | RsaHashedImportParams | { name: 'Ed25519' } {
  if (spec.kind === 'ec') {
    const hash = `SHA-${ecdsaHash(spec.curve).slice(3)}`; // WebCrypto's name of the digest
    return { name: 'ECDSA', namedCurve: spec.curve, hash } as EcdsaParams & EcKeyImportParams;
  }
  if (spec.kind === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  // Ed25519 CAs, as current Vault (1.10+) has them; Vault 1.8 had only EC and RSA CAs.
  if (spec.kind === 'ed25519') return { name: 'Ed25519' };
  throw new UserError(`${spec.kind} keys cannot sign certificates here (use EC, RSA or Ed25519)`);
}

type EcdsaParams = { name: 'ECDSA'; hash: string };
type EcKeyImportParams = { namedCurve: string };
type RsaHashedImportParams = { name: string; hash: string };

const MANAGED = Symbol('managed-key');

/** A WebCrypto provider whose sign() goes to the managed key for our marker keys. */
function managedCrypto(): Crypto {
  const subtle = new Proxy(webcrypto.subtle, {
    get(target, prop) {
      if (prop === 'sign') {
        return async (alg: unknown, key: Record<symbol, { mk: ManagedKey; spec: KeySpec }>, data: ArrayBuffer) => {
          const m = key[MANAGED];
          if (!m) return target.sign(alg as never, key as never, data);
          const hash = m.spec.kind === 'ec' ? ecdsaHash(m.spec.curve) : 'sha256';
          // RSASSA-PSS (use_pss; withSignatureBits keeps a managed key at its SHA-256): the backend's PSS, salt as long as the digest.
          const padding = (alg as { name?: string }).name === 'RSA-PSS' ? 'pss' : 'pkcs1v15';
          const sig = await m.mk.sign(Buffer.from(data), { hash, padding });
          // WebCrypto ECDSA signatures are r||s; x509 re-encodes them for the certificate.
          const raw = m.spec.kind === 'ec' ? derToRaw(sig, curveBytes(m.spec.curve)) : sig;
          return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
        };
      }
      const v: unknown = Reflect.get(target, prop);
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
  // Only what @peculiar/x509 calls on its provider.
  const provider: Pick<Crypto, 'subtle' | 'getRandomValues'> = { subtle, getRandomValues: (a) => webcrypto.getRandomValues(a) };
  return provider as Crypto;
}

/** A CA key as WebCrypto sees it; `crypto` is the provider that signs with it (for a managed key, the HSM/KMS). */
export interface CaSigner {
  spec: KeySpec;
  /** As signingAlgorithm gives it, or RSA-PSS (use_pss, withSignatureBits in cert-writer.ts). */
  algorithm: ReturnType<typeof signingAlgorithm> | { name: 'RSA-PSS'; hash: string; saltLength: number };
  publicKey: CryptoKey;
  privateKey: CryptoKey;
  /** A stored key as node:crypto signs it (the CryptoKey is not extractable, so it cannot be made into one later). */
  keyObject?: KeyObject;
  crypto: Crypto;
}

// One signer per open managed-key handle: ManagedKeys replaces the handle (and closes the
// old one) when the key's configuration changes, so a new handle gets a new signer.
const managedSigners = new WeakMap<ManagedKey, Promise<CaSigner>>();

/** The signer for a stored or managed CA key; a managed key's signer is made once per open handle (and forgotten if making it fails). */
export async function signerFor(key: StoredCa['key'], managed: (name: string) => Promise<ManagedKey>): Promise<CaSigner> {
  if (key.kind === 'managed') {
    const mk = await managed(key.managed_key_name);
    let signer = managedSigners.get(mk);
    if (!signer) {
      signer = managedSigner(mk);
      managedSigners.set(mk, signer);
      signer.catch(() => managedSigners.delete(mk));
    }
    return signer;
  }
  return storedSigner(key.pkcs8);
}

async function managedSigner(mk: ManagedKey): Promise<CaSigner> {
  const spec = mk.describe().spec;
  // The managed-key signing façade below hashes first (ECDSA, RSA); Ed25519 signs the message itself.
  if (spec.kind === 'ed25519') throw new UserError('a managed Ed25519 key cannot sign certificates here (use an EC or RSA managed key)');
  const algorithm = signingAlgorithm(spec);
  const der = (await mk.publicKey()).export({ type: 'spki', format: 'der' });
  const publicKey = await webcrypto.subtle.importKey('spki', der, algorithm, true, ['verify']);
  const privateKey: CryptoKey & { [MANAGED]: { mk: ManagedKey; spec: KeySpec } } = {
    type: 'private',
    algorithm,
    extractable: false,
    usages: ['sign'],
    [MANAGED]: { mk, spec },
  };
  return { spec, algorithm, publicKey, privateKey, crypto: managedCrypto() };
}

async function storedSigner(pkcs8: string): Promise<CaSigner> {
  const ko = createPrivateKey(pkcs8);
  const d = ko.asymmetricKeyDetails!;
  const spec: KeySpec =
    ko.asymmetricKeyType === 'ec'
      ? { kind: 'ec', curve: curveOfOpenssl(d.namedCurve, MANAGED_CURVES) as ManagedCurve }
      : ko.asymmetricKeyType === 'ed25519'
        ? { kind: 'ed25519' }
        : { kind: 'rsa', bits: d.modulusLength! };
  const algorithm = signingAlgorithm(spec);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', ko.export({ type: 'pkcs8', format: 'der' }), algorithm, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', createPublicKey(ko).export({ type: 'spki', format: 'der' }), algorithm, true, ['verify']);
  return { spec, algorithm, publicKey, privateKey, keyObject: ko, crypto: webcrypto };
}

/** RFC 5280's key identifier (method 1): SHA-1 of the subjectPublicKey bits of an SPKI (DER). */
export function keyIdentifier(spki: Buffer): Buffer {
  return createHash('sha1').update(spkiKeyBits(spki)).digest();
}

/** A SubjectPublicKeyInfo's subjectPublicKey bits (past the BIT STRING's unused-bits byte): what key identifiers and OCSP key hashes hash. */
export function spkiKeyBits(spki: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  const unreadable = () => new UserError('unsupported key: the public key cannot be read');
  const outer = readElement(spki, 0, unreadable);
  const keyBits = readElement(spki, readElement(spki, outer.content, unreadable).end, unreadable);
  if (outer.tag !== 0x30 || keyBits.tag !== 0x03) throw unreadable();
  return spki.subarray(keyBits.content + 1, keyBits.end);
}

/** What signing under an issuer needs from its certificate, parsed once. */
export interface Issuer {
  cert: string;
  notAfter: Date;
  subject: string;
  authorityKeyId: X509.Extension;
  /** Its Basic Constraints pathLenConstraint; undefined when it sets none. */
  pathLength?: number;
}

/** Parses an issuer's PEM certificate once, including the Authority Key Identifier its certificates will carry. */
export function parseIssuer(pemText: string): Issuer {
  const X = x509();
  const cert = new X.X509Certificate(pemText);
  const aki = new X.AuthorityKeyIdentifierExtension(keyIdentifier(Buffer.from(cert.publicKey.rawData)).toString('hex'));
  const pathLength = cert.getExtension(X.BasicConstraintsExtension)?.pathLength;
  return { cert: pemText, notAfter: cert.notAfter, subject: cert.subject, authorityKeyId: aki, pathLength };
}

// Two hex digits per byte value: a serial's display form without a regex match per issue.
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** 20 random bytes, positive, as Vault prints serials: "3a:0f:…". */
export function newSerial(): { hex: string; display: string } {
  const b = Buffer.from(pooledRandomBytes(20)); // a copy: the pool's bytes are not written to
  b[0] = b[0] & 0x7f || 1;
  const hex = b.toString('hex');
  let display = HEX_BYTE[b[0]];
  for (let i = 1; i < b.length; i++) display += `:${HEX_BYTE[b[i]]}`;
  return { hex, display };
}
/** Storage key of an issued certificate's record: pki/certs/ with the serial's ":" as "-", lower-case. */
export const serialKey = (display: string) => `pki/certs/${display.toLowerCase().replaceAll(':', '-')}`;
/** A serial in Vault's display form ("3a:0f:…") from hex with or without ":"/"-" separators; "" for an empty one. */
export const displaySerial = (s: string) => s.toLowerCase().replace(/[-:]/g, '').match(/../g)?.join(':') ?? '';

/** The CRL Number extension (2.5.29.20), not among @peculiar/x509's classes. */
export function crlNumberExtension(n: number): X509.Extension {
  const X = x509();
  const v = Buffer.alloc(8);
  v.writeBigUInt64BE(BigInt(n));
  return new X.Extension('2.5.29.20', false, new Uint8Array(uint(v)));
}
