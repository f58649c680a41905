// Signing, verification and HMAC with a policy's version: Node's crypto for Ed25519, ECDSA
// and RSA (RSA and long messages off the event loop), keys/crypto for digests and secp256k1,
// mldsa.ts for ML-DSA, managed keys through their backend.
import { createHash, createHmac, sign as nodeSign, verify as nodeVerify, timingSafeEqual, constants, type KeyObject } from 'node:crypto';
import { HASH_BYTES, cheapToSignOnLoop, derToRaw, rawToDer, curveBytes, signLocalAsync, verifyWith, type LocalKeySpec as KeySpec } from '../../keys/crypto';
import type { Hash, ManagedKey } from '../../keys/types';
import { UserError } from '../framework';
import { unwrap, wrap } from './envelope';
import { mldsaPublicKey, mldsaSign, mldsaVerify } from './mldsa';
import { SPEC, derivedEd25519, parsed, rawEd25519, versionOf, type KeyVersion, type Policy } from './policy';
import { workerBatchTask } from '../../util/workers';

/** hash_algorithm values for signing, as Node names them (none: the input is signed as given); sha2-224 is allowed apart, in signOptions. */
export const HASH_ALGORITHMS: Record<string, Hash | undefined> = { 'sha2-256': 'sha256', 'sha2-384': 'sha384', 'sha2-512': 'sha512', none: undefined };
const nodeHash: Record<string, string> = {
  'sha2-224': 'sha224',
  'sha2-256': 'sha256',
  'sha2-384': 'sha384',
  'sha2-512': 'sha512',
  'sha3-224': 'sha3-224',
  'sha3-256': 'sha3-256',
  'sha3-384': 'sha3-384',
  'sha3-512': 'sha3-512',
};

/** Node's name for a transit hash algorithm (sha2-*, sha3-*); any other is a 400. */
export function hashName(alg: string): string {
  const h = nodeHash[alg];
  if (!h) throw new UserError(`unsupported hash algorithm ${alg}`);
  return h;
}

/** One sign or verify request: the input, and Vault's hash_algorithm, prehashed, signature_algorithm and marshaling_algorithm. */
export interface SignInput {
  input: Buffer;
  hash: string;
  prehashed: boolean;
  padding: 'pss' | 'pkcs1v15';
  marshaling: 'asn1' | 'jws';
  version?: number;
  /** Derived (ed25519) keys: the context the key is derived for. */
  context?: Buffer;
}

/** A version's key pair: the one derived for the context when the key is a derived ed25519 key. */
const keyPairOf = (p: Policy, v: KeyVersion, context: Buffer | undefined) =>
  p.derived && p.type === 'ed25519' ? derivedEd25519(v.key!, context ?? Buffer.alloc(0)) : parsed(v.key!);

function signOptions(p: Policy, inp: SignInput, spec: KeySpec) {
  if (spec.kind === 'ed25519') {
    if (inp.prehashed) throw new UserError('ed25519 keys sign messages; prehashed input is not supported');
    return { hash: 'sha256' as Hash, padding: undefined };
  }
  // sha2-224 is signed by Node directly (not by managed keys, nor prehashed), as Vault offers it.
  const hash = HASH_ALGORITHMS[inp.hash] ?? (inp.hash === 'sha2-224' && p.type !== 'managed_key' && !inp.prehashed ? ('sha224' as Hash) : undefined);
  if (!hash) throw new UserError(`hash_algorithm ${inp.hash} is not supported for ${p.type} keys (use sha2-256, sha2-384 or sha2-512)`);
  return { hash, prehashed: inp.prehashed, padding: spec.kind === 'rsa' ? inp.padding : undefined };
}

type SignOpts = ReturnType<typeof signOptions>;

/** Node's sign/verify options equal to what keys/crypto's signLocal/verifyWith do, for messages (not digests). */
function nodeOptions(key: KeyObject, spec: KeySpec, opts: SignOpts): { alg: string | null; key: Parameters<typeof nodeSign>[2] } {
  if (spec.kind === 'ed25519') return { alg: null, key };
  if (spec.kind === 'ec') return { alg: opts.hash, key: { key, dsaEncoding: 'der' } };
  const padding = opts.padding === 'pkcs1v15' ? constants.RSA_PKCS1_PADDING : constants.RSA_PKCS1_PSS_PADDING;
  return { alg: opts.hash, key: { key, padding, saltLength: HASH_BYTES[opts.hash] ?? 28 /* sha224 */ } };
}

/** secp256k1 is signed and verified by keys/crypto (noble, low-S), on the calling thread. */
const isK1 = (spec: KeySpec) => spec.kind === 'ec' && spec.curve === 'secp256k1';

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
 * A signature that does not stall other requests: RSA on the worker threads, long messages on
 * libuv's thread pool (crypto.sign with a callback), short Ed25519/P-256 ones here. Prehashed
 * input needs keys/crypto's digest-level code: raw RSA on the worker threads, ECDSA here.
 */
async function signScheduled(priv: KeyObject, spec: KeySpec, data: Buffer, opts: SignOpts): Promise<Buffer> {
  if (opts.prehashed || spec.kind === 'aes' || isK1(spec)) return signLocalAsync(priv, spec, data, opts);
  const o = nodeOptions(priv, spec, opts);
  if (cheapToSignOnLoop(spec, data.length)) return nodeSign(o.alg, data, o.key);
  if (spec.kind === 'rsa') {
    const { padding, saltLength } = o.key as { padding: number; saltLength: number };
    const sig = await rsaSignTask.run({ alg: o.alg!, key: priv, padding, saltLength, data });
    return Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength);
  }
  return new Promise((resolve, reject) => nodeSign(o.alg, data, o.key, (e, sig) => (e ? reject(e) : resolve(sig))));
}

/** The thread-pool twin of verifyWith; a malformed signature is simply invalid. */
async function verifyOffLoop(pub: KeyObject, spec: KeySpec, data: Buffer, sig: Buffer, opts: SignOpts): Promise<boolean> {
  if (opts.prehashed || spec.kind === 'aes' || isK1(spec)) return verifyWith(pub, spec, data, sig, opts);
  const o = nodeOptions(pub, spec, opts);
  // PSS signatures made elsewhere may use any salt length, as verifyWith accepts.
  const key = spec.kind === 'rsa' && opts.padding !== 'pkcs1v15' ? { ...(o.key as object), saltLength: constants.RSA_PSS_SALTLEN_AUTO } : o.key;
  return new Promise((resolve) => {
    try {
      nodeVerify(o.alg, data, key as never, sig, (e, ok) => resolve(!e && ok));
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
  const { n, v } = versionOf(p, inp.version, 'encrypt', 'signing');
  // As Vault: marshaling_algorithm=jws encodes every key type's signature as unpadded
  // base64url (for ECDSA the signature is also r||s instead of ASN.1).
  const jws = inp.marshaling === 'jws';
  if (p.type === 'ml-dsa') {
    checkMlDsa(inp);
    return { signature: wrap(n, mldsaSign(p.parameter_set!, v.key!, inp.input), jws) };
  }
  const spec = await specOf(p, managed);
  const opts = signOptions(p, inp, spec);
  let sig: Buffer;
  let publicKey: string | undefined;
  if (p.type === 'managed_key') sig = await (await managed!()).sign(inp.input, opts);
  else {
    const pair = keyPairOf(p, v, inp.context);
    sig = await signScheduled(pair.priv, spec, inp.input, opts);
    // As Vault, a derived key's signature comes with the public key derived for its context.
    if (p.derived) publicKey = rawEd25519(pair.pub);
  }
  if (spec.kind === 'ec' && jws) sig = derToRaw(sig, curveBytes(spec.curve));
  return { signature: wrap(n, sig, jws), publicKey };
}

/** Verifies a vault:v<N>: signature with the version it names: false if it does not match; a malformed value or disallowed version is a 400. */
export async function verify(p: Policy, inp: SignInput, signature: unknown, managed?: () => Promise<ManagedKey>): Promise<boolean> {
  // Vault reads JWS-marshaled signatures as unpadded base64url, all others as standard base64.
  const { version, body } = unwrap(signature, 'signature', inp.marshaling === 'jws' ? 'base64url' : 'base64');
  const { v } = versionOf(p, version, 'decrypt');
  if (p.type === 'ml-dsa') {
    checkMlDsa(inp);
    return mldsaVerify(p.parameter_set!, mldsaPublicKey(p.parameter_set!, v.key!), inp.input, body);
  }
  const spec = await specOf(p, managed);
  const opts = signOptions(p, inp, spec);
  let sig = body;
  if (spec.kind === 'ec' && inp.marshaling === 'jws') {
    if (sig.length !== 2 * curveBytes(spec.curve)) return false;
    sig = rawToDer(sig);
  }
  const pub: KeyObject = p.type === 'managed_key' ? await (await managed!()).publicKey() : keyPairOf(p, v, inp.context).pub;
  return verifyOffLoop(pub, spec, inp.input, sig, opts);
}

/** HMAC of the input with the requested (else latest) version's HMAC key, as vault:v<N>:<mac>; not for managed keys (400). */
export function hmac(p: Policy, input: Buffer, algorithm: string, version?: number): string {
  if (p.type === 'managed_key') throw new UserError('HMAC is not available for managed keys');
  const { n, v } = versionOf(p, version, 'encrypt', 'HMAC');
  return wrap(n, createHmac(hashName(algorithm), Buffer.from(v.hmac_key, 'base64')).update(input).digest());
}

/** Checks a vault:v<N>: HMAC with its version's HMAC key, in constant time. */
export function verifyHmac(p: Policy, input: Buffer, algorithm: string, mac: unknown): boolean {
  const { version, body } = unwrap(mac, 'hmac');
  const { v } = versionOf(p, version, 'decrypt');
  const want = createHmac(hashName(algorithm), Buffer.from(v.hmac_key, 'base64')).update(input).digest();
  return want.length === body.length && timingSafeEqual(want, body);
}

/** The digest of the input with a transit hash algorithm (the hash/ path). */
export const hashInput = (alg: string, input: Buffer) => createHash(hashName(alg)).update(input).digest();
