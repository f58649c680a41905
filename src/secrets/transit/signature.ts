// Signing, verification and HMAC with a policy's version: Node's crypto for Ed25519, ECDSA
// and RSA messages (RSA and long messages off the event loop), @noble/curves for ECDSA over
// digests and secp256k1, RSA digests through the raw RSA primitive (PKCS#1 v1.5 DigestInfo,
// EMSA-PSS), ed25519.ts for Ed25519ctx/Ed25519ph, mldsa.ts for ML-DSA, managed keys through
// their backend.
import {
  createHash,
  createHmac,
  publicDecrypt,
  publicEncrypt,
  sign as nodeSign,
  verify as nodeVerify,
  timingSafeEqual,
  constants,
  type KeyObject,
} from 'node:crypto';
import { CURVES, cheapToSignOnLoop, derToRaw, ecPoint, ecScalar, rawToDer, verifyWith, type LocalKeySpec as KeySpec } from '../../keys/crypto';
import { curveBytes } from '../../keys/curves';
import { DIGEST_BYTES, digestInfo } from '../../keys/digests';
import { pssEncode, pssVerify, type SaltLength } from '../../keys/pss';
import { rsaPrivate } from '../../keys/rsa-offload';
import type { ManagedKey, SignHash, SignOptions } from '../../keys/types';
import { UserError } from '../framework';
import { unwrap, wrap } from './envelope';
import { managedRefusal } from './cipher';
import { mldsaPublicKey, mldsaSign, mldsaVerify } from './mldsa';
import { ed25519Mode, signEd25519Variant, verifyEd25519Variant } from './ed25519';
import { SPEC, derivedEd25519, parsed, privatePem, publicKeyObject, rawEd25519, versionOf, type KeyVersion, type Policy } from './policy';
import { workerBatchTask } from '../../util/workers';

/**
 * Node's (and keys/'s) name for each transit hash_algorithm. A managed key is handed every
 * one of them, as Vault does (its transit hashes a managed key's input with any
 * hash_algorithm and passes the hash on; the key's backend refuses what it cannot sign: the
 * cloud KMSes sign with SHA-256/384/512 only, PKCS#11 has no SHA-3 for RSA-PSS); none is
 * not handed on.
 */
const HASHES: Record<string, SignHash | undefined> = {
  'sha2-224': 'sha224',
  'sha2-256': 'sha256',
  'sha2-384': 'sha384',
  'sha2-512': 'sha512',
  'sha3-224': 'sha3-224',
  'sha3-256': 'sha3-256',
  'sha3-384': 'sha3-384',
  'sha3-512': 'sha3-512',
};

/**
 * Node's name for a transit hash algorithm (sha2-*, sha3-*; with `sha1`, also sha1, which
 * Vault's sign, verify and hmac take and its hash endpoint does not); any other is a 400.
 */
export function hashName(alg: string, opts: { sha1?: boolean } = {}): string {
  if (alg === 'sha1' && opts.sha1) return 'sha1';
  const h = Object.hasOwn(HASHES, alg) ? HASHES[alg] : undefined;
  if (!h) throw new UserError(`unsupported hash algorithm ${alg}`);
  return h;
}

/** RSA-PSS salt length as Vault's salt_length: auto (as long as the key allows, Go's default), hash (the digest's length) or bytes. */
export type { SaltLength };

/** Vault's salt_length: "auto", "hash", or an integer (-1 is hash, 0 auto, as Go's constants); anything else is a 400. */
export function parseSaltLength(v: unknown): SaltLength {
  const raw = v === undefined || v === null ? 'auto' : String(v).toLowerCase();
  if (raw === 'auto' || raw === 'hash') return raw;
  if (!/^[+-]?\d{1,9}$/.test(raw)) throw new UserError(`salt length neither 'auto', 'hash', nor an int: ${String(v).slice(0, 40)}`);
  const n = Number(raw);
  if (n < -1) throw new UserError(`salt length is invalid: ${n}`);
  return n === -1 ? 'hash' : n === 0 ? 'auto' : n;
}

/** One sign or verify request: the input, and Vault's hash_algorithm, prehashed, signature_algorithm, salt_length and marshaling_algorithm. */
export interface SignInput {
  input: Buffer;
  hash: string;
  prehashed: boolean;
  padding: 'pss' | 'pkcs1v15';
  marshaling: 'asn1' | 'jws';
  version?: number;
  /** Derived (ed25519) keys: the context the key is derived for. */
  context?: Buffer;
  /** ed25519 keys: the RFC 8032 context of an Ed25519ctx or Ed25519ph signature (Vault's signature_context). */
  signatureContext?: Buffer;
  /** RSA-PSS only (default auto, as Vault). */
  saltLength?: SaltLength;
}

/** A version's key pair: the one derived for the context when the key is a derived ed25519 key. */
const keyPairOf = (p: Policy, v: KeyVersion, context: Buffer | undefined) =>
  p.derived && p.type === 'ed25519' ? derivedEd25519(v.key!, context ?? Buffer.alloc(0)) : parsed(privatePem(v, 'signing'));
/** A version's public key for verification: the one derived for the context for a derived ed25519 key; an imported public key alone does. */
const verifyKeyOf = (p: Policy, v: KeyVersion, context: Buffer | undefined) =>
  p.derived && p.type === 'ed25519' ? derivedEd25519(v.key!, context ?? Buffer.alloc(0)).pub : publicKeyObject(v);

/** Vault's rule, checked for every key type before anything else: hash_algorithm=none signs a digest with PKCS#1 v1.5 only. */
function checkNone(inp: SignInput): void {
  if (inp.hash === 'none' && (!inp.prehashed || inp.padding !== 'pkcs1v15'))
    throw new UserError('hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15');
}

/** A managed key's options: the hash (or digest of it) it signs, as HASHES names it. */
function managedOptions(inp: SignInput, spec: KeySpec): SignOptions {
  if (inp.signatureContext?.length) throw new UserError('signature_context is not supported for managed keys');
  if (spec.kind === 'ed25519') {
    if (inp.prehashed) throw new UserError('ed25519 keys sign messages; prehashed input is not supported');
    return { hash: 'sha256' };
  }
  const hash = Object.hasOwn(HASHES, inp.hash) ? HASHES[inp.hash] : undefined;
  if (!hash) throw new UserError(`hash_algorithm ${inp.hash} is not supported for managed keys (use sha2-* or sha3-*)`);
  return { hash, prehashed: inp.prehashed, padding: spec.kind === 'rsa' ? inp.padding : undefined };
}

/** How a key held here signs: Node's hash name (null: none, the input is the digest), the padding and the PSS salt. */
interface LocalOpts {
  hash: string | null;
  prehashed: boolean;
  padding: 'pss' | 'pkcs1v15';
  salt: SaltLength;
}

/**
 * Options for a key held here, as Vault's: any sha2/sha3 hash for ECDSA and RSA, the input
 * hashed unless prehashed; for RSA-PSS the salt length, at most what the key allows.
 */
function localOptions(inp: SignInput, spec: KeySpec): LocalOpts {
  const salt = inp.saltLength ?? 'auto';
  if (spec.kind === 'ed25519') return { hash: null, prehashed: false, padding: inp.padding, salt };
  const hash = inp.hash === 'none' ? null : hashName(inp.hash, { sha1: true });
  if (spec.kind === 'rsa' && inp.padding === 'pss' && typeof salt === 'number') {
    const max = Math.ceil((spec.bits - 1) / 8) - 2 - DIGEST_BYTES[hash!];
    if (salt > max) throw new UserError(`requested salt length ${salt} is invalid`);
  }
  return { hash, prehashed: inp.prehashed, padding: inp.padding, salt };
}

/** Node's saltLength for a salt_length: auto is the longest salt when signing, any salt when verifying. */
const nodeSalt = (salt: SaltLength, signing: boolean) =>
  salt === 'auto' ? (signing ? constants.RSA_PSS_SALTLEN_MAX_SIGN : constants.RSA_PSS_SALTLEN_AUTO) : salt === 'hash' ? constants.RSA_PSS_SALTLEN_DIGEST : salt;

/** Node's sign/verify options for a message (Node hashes it). */
function nodeOptions(key: KeyObject, spec: KeySpec, opts: LocalOpts, signing: boolean): { alg: string | null; key: Parameters<typeof nodeSign>[2] } {
  if (spec.kind === 'ed25519') return { alg: null, key };
  if (spec.kind === 'ec') return { alg: opts.hash, key: { key, dsaEncoding: 'der' } };
  if (opts.padding === 'pkcs1v15') return { alg: opts.hash, key: { key, padding: constants.RSA_PKCS1_PADDING } };
  return { alg: opts.hash, key: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: nodeSalt(opts.salt, signing) } };
}

/** secp256k1 is signed with noble (low-S), as are digests on every curve (Node's sign cannot sign a digest). */
const isK1 = (spec: KeySpec) => spec.kind === 'ec' && spec.curve === 'secp256k1';
const NOBLE = { prehash: false, format: 'der' } as const;

/** The digest a key signs: the input when prehashed (of the hash's size for RSA, as Go's rsa package requires), else its hash. */
function digestOf(spec: KeySpec, data: Buffer, opts: LocalOpts): Buffer {
  if (!opts.prehashed) return createHash(opts.hash!).update(data).digest();
  if (spec.kind === 'rsa' && opts.hash && data.length !== DIGEST_BYTES[opts.hash])
    throw new UserError(`prehashed input must be ${DIGEST_BYTES[opts.hash]} bytes for this hash_algorithm, got ${data.length}`);
  return data;
}

// RSA signatures of messages on the worker threads, many per message (util/workers): a
// 100-item batch costs the event loop a few messages instead of 100 thread-pool jobs at
// ~40 µs of the loop's time each, so the pool's threads, not the loop, set the pace.
interface RsaSignArgs {
  alg: string;
  key: KeyObject;
  padding: number;
  saltLength: number;
  data: Uint8Array;
}
const RSA_SIGNATURES_PER_MESSAGE = 8;
const rsaSignTask = workerBatchTask<RsaSignArgs, Uint8Array>(
  'transit-rsa-sign',
  `({ alg, key, padding, saltLength, data }) =>
  require('node:crypto').sign(alg, Buffer.from(data.buffer, data.byteOffset, data.byteLength), { key, padding, saltLength })`,
  RSA_SIGNATURES_PER_MESSAGE,
);

/**
 * A signature that does not stall other requests: RSA on the worker threads (a digest's raw
 * RSA operation through keys/rsa-offload), long messages on libuv's thread pool
 * (crypto.sign with a callback), short Ed25519/P-256 ones here. ECDSA over a digest, and
 * secp256k1, are noble's, here.
 */
async function signScheduled(priv: KeyObject, spec: KeySpec, data: Buffer, opts: LocalOpts): Promise<Buffer> {
  if (spec.kind === 'ec' && (opts.prehashed || isK1(spec))) {
    const digest = digestOf(spec, data, opts);
    return Buffer.from(CURVES[spec.curve].sign(digest, ecScalar(priv), { ...NOBLE, lowS: isK1(spec) }));
  }
  if (spec.kind === 'rsa' && opts.prehashed) {
    const digest = digestOf(spec, data, opts);
    try {
      if (opts.padding === 'pkcs1v15')
        return await rsaPrivate('sign-raw', priv, constants.RSA_PKCS1_PADDING, opts.hash ? digestInfo(opts.hash, digest) : digest);
      return await rsaPrivate('sign-raw', priv, constants.RSA_NO_PADDING, pssEncode(digest, opts.hash!, spec.bits, opts.salt));
    } catch {
      // Only hash_algorithm=none can get here: a digest too long for the key.
      throw new UserError('input is too long for the key to sign');
    }
  }
  if (spec.kind === 'aes') throw new UserError('AES keys do not sign');
  const o = nodeOptions(priv, spec, opts, true);
  if (cheapToSignOnLoop(spec, data.length)) return nodeSign(o.alg, data, o.key);
  if (spec.kind === 'rsa') {
    const { padding, saltLength } = o.key as { padding: number; saltLength?: number };
    const sig = await rsaSignTask.run({ alg: o.alg!, key: priv, padding, saltLength: saltLength ?? 0, data });
    return Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength);
  }
  return new Promise((resolve, reject) => nodeSign(o.alg, data, o.key, (e, sig) => (e ? reject(e) : resolve(sig))));
}

/** The twin of signScheduled; a malformed signature is simply invalid. */
async function verifyLocal(pub: KeyObject, spec: KeySpec, data: Buffer, sig: Buffer, opts: LocalOpts): Promise<boolean> {
  if (spec.kind === 'ec' && (opts.prehashed || isK1(spec))) {
    const digest = digestOf(spec, data, opts);
    try {
      return CURVES[spec.curve].verify(sig, digest, ecPoint(pub), { ...NOBLE, lowS: false });
    } catch {
      return false;
    }
  }
  if (spec.kind === 'rsa' && opts.prehashed) {
    const digest = digestOf(spec, data, opts);
    try {
      if (opts.padding === 'pkcs1v15')
        return publicDecrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, sig).equals(opts.hash ? digestInfo(opts.hash, digest) : digest);
      return pssVerify(digest, publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, sig), opts.hash!, spec.bits, opts.salt);
    } catch {
      return false;
    }
  }
  if (spec.kind === 'aes') throw new UserError('AES keys do not sign');
  const o = nodeOptions(pub, spec, opts, false);
  return new Promise((resolve) => {
    try {
      nodeVerify(o.alg, data, o.key as never, sig, (e, ok) => resolve(!e && ok));
    } catch {
      resolve(false);
    }
  });
}

async function specOf(p: Policy, managed?: () => Promise<ManagedKey>): Promise<KeySpec> {
  if (p.type === 'managed_key') return (await managed!()).describe().spec;
  const s = SPEC[p.type];
  if (!s) throw new UserError(`key type ${p.type} does not support signing`);
  return s;
}

/** ML-DSA signs the message itself (pure ML-DSA): there is no digest to hand it. */
function checkMlDsa(inp: SignInput): void {
  if (inp.prehashed) throw new UserError('ml-dsa keys sign messages (pure ML-DSA); prehashed input is not supported');
}

/** Signs with the requested (else latest) version allowed for encryption; returns vault:v<N>:<signature>. */
export async function sign(p: Policy, inp: SignInput, managed?: () => Promise<ManagedKey>): Promise<{ signature: string; publicKey?: string }> {
  checkNone(inp);
  const { n, v } = versionOf(p, inp.version, 'encrypt', 'signing');
  // As Vault: marshaling_algorithm=jws encodes every key type's signature as unpadded
  // base64url (for ECDSA the signature is also r||s instead of ASN.1).
  const jws = inp.marshaling === 'jws';
  if (p.type === 'ml-dsa') {
    checkMlDsa(inp);
    return { signature: wrap(n, mldsaSign(p.parameter_set!, v.key!, inp.input), jws) };
  }
  const spec = await specOf(p, managed);
  let sig: Buffer;
  let publicKey: string | undefined;
  if (p.type === 'managed_key') {
    const key = await managed!();
    sig = await key.sign(inp.input, managedOptions(inp, spec)).catch((e) => {
      throw managedRefusal(e);
    });
  } else {
    const opts = localOptions(inp, spec);
    const mode = p.type === 'ed25519' ? ed25519Mode(inp) : undefined;
    const pair = keyPairOf(p, v, inp.context);
    sig = mode && mode.kind !== 'pure' ? signEd25519Variant(pair.priv, mode, inp.input) : await signScheduled(pair.priv, spec, inp.input, opts);
    // As Vault, a derived key's signature comes with the public key derived for its context.
    if (p.derived) publicKey = rawEd25519(pair.pub);
  }
  if (spec.kind === 'ec' && jws) sig = derToRaw(sig, curveBytes(spec.curve));
  return { signature: wrap(n, sig, jws), publicKey };
}

/** Verifies a vault:v<N>: signature with the version it names: false if it does not match; a malformed value or disallowed version is a 400. */
export async function verify(p: Policy, inp: SignInput, signature: unknown, managed?: () => Promise<ManagedKey>): Promise<boolean> {
  checkNone(inp);
  // Vault reads JWS-marshaled signatures as unpadded base64url, all others as standard base64.
  const { version, body } = unwrap(signature, 'signature', inp.marshaling === 'jws' ? 'base64url' : 'base64');
  const { v } = versionOf(p, version, 'decrypt');
  if (p.type === 'ml-dsa') {
    checkMlDsa(inp);
    return mldsaVerify(p.parameter_set!, mldsaPublicKey(p.parameter_set!, v.key!), inp.input, body);
  }
  const spec = await specOf(p, managed);
  let sig = body;
  if (spec.kind === 'ec' && inp.marshaling === 'jws') {
    if (sig.length !== 2 * curveBytes(spec.curve)) return false;
    sig = rawToDer(sig);
  }
  if (p.type === 'managed_key') {
    const key = await managed!();
    const pub = await key.publicKey().catch((e) => {
      throw managedRefusal(e);
    });
    return verifyWith(pub, spec, inp.input, sig, managedOptions(inp, spec));
  }
  const opts = localOptions(inp, spec);
  const mode = p.type === 'ed25519' ? ed25519Mode(inp) : undefined;
  const pub = verifyKeyOf(p, v, inp.context);
  if (mode && mode.kind !== 'pure') return verifyEd25519Variant(pub, mode, inp.input, sig);
  return verifyLocal(pub, spec, inp.input, sig, opts);
}

/** HMAC of the input with the requested (else latest) version's HMAC key, as vault:v<N>:<mac>; not for managed keys (400). */
export function hmac(p: Policy, input: Buffer, algorithm: string, version?: number): string {
  if (p.type === 'managed_key') throw new UserError('HMAC is not available for managed keys');
  const { n, v } = versionOf(p, version, 'encrypt', 'HMAC');
  return wrap(
    n,
    createHmac(hashName(algorithm, { sha1: true }), Buffer.from(v.hmac_key, 'base64'))
      .update(input)
      .digest(),
  );
}

/** Checks a vault:v<N>: HMAC with its version's HMAC key, in constant time. */
export function verifyHmac(p: Policy, input: Buffer, algorithm: string, mac: unknown): boolean {
  const { version, body } = unwrap(mac, 'hmac');
  const { v } = versionOf(p, version, 'decrypt');
  const want = createHmac(hashName(algorithm, { sha1: true }), Buffer.from(v.hmac_key, 'base64'))
    .update(input)
    .digest();
  return want.length === body.length && timingSafeEqual(want, body);
}

/** The digest of the input with a transit hash algorithm (the hash/ path). */
export const hashInput = (alg: string, input: Buffer) => createHash(hashName(alg)).update(input).digest();
