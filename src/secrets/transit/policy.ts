// Transit key policies: versions of key material (in Vault's storage, which Vault
// encrypts) or a reference to a managed key (material never here). Ciphertexts,
// signatures and HMACs carry the version as `vault:v<N>:` like Vault's transit.
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPair, hkdfSync, randomBytes, sign as nodeSign, verify as nodeVerify, timingSafeEqual, type KeyObject } from 'node:crypto';
import { publicEncrypt, privateDecrypt, constants } from 'node:crypto';
import { HASH_BYTES, derToRaw, rawToDer, curveBytes, signLocalAsync, verifyWith } from '../../keys/crypto';
import type { Hash, KeySpec, ManagedKey } from '../../keys/types';
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError } from '../framework';

export const KEY_TYPES = ['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305', 'ed25519', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'hmac', 'managed_key'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export interface KeyVersion {
  creation_time: string;
  /** base64 of the symmetric key, or PKCS#8 PEM of the private key. */
  key?: string;
  hmac_key: string;
}

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
}

const SPEC: Partial<Record<KeyType, KeySpec>> = {
  ed25519: { kind: 'ed25519' }, 'ecdsa-p256': { kind: 'ec', curve: 'P-256' }, 'ecdsa-p384': { kind: 'ec', curve: 'P-384' }, 'ecdsa-p521': { kind: 'ec', curve: 'P-521' },
  'rsa-2048': { kind: 'rsa', bits: 2048 }, 'rsa-3072': { kind: 'rsa', bits: 3072 }, 'rsa-4096': { kind: 'rsa', bits: 4096 },
};
export const isSymmetric = (t: KeyType) => t === 'aes128-gcm96' || t === 'aes256-gcm96' || t === 'chacha20-poly1305';
export const canSign = (t: KeyType) => SPEC[t] !== undefined;
export const canEncrypt = (t: KeyType) => isSymmetric(t) || t.startsWith('rsa-');

/** A PKCS#8 PEM private key, generated on libuv's thread pool. */
function generatePkcs8(type: 'ed25519' | 'ec' | 'rsa', options: { namedCurve?: string; modulusLength?: number }): Promise<string> {
  const enc = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } } as const;
  return new Promise((resolve, reject) => generateKeyPair(type as 'rsa', { ...options, ...enc } as never, (e: Error | null, _pub: string, priv: string) => (e ? reject(e) : resolve(priv))));
}

/** A new key version. Asymmetric keys are generated on libuv's thread pool, not the event loop. */
export async function newVersion(type: KeyType): Promise<KeyVersion> {
  const v: KeyVersion = { creation_time: new Date().toISOString(), hmac_key: randomBytes(32).toString('base64') };
  if (type === 'aes128-gcm96') v.key = randomBytes(16).toString('base64');
  else if (type === 'aes256-gcm96' || type === 'chacha20-poly1305') v.key = randomBytes(32).toString('base64');
  else if (type === 'hmac') v.key = v.hmac_key;
  else if (type !== 'managed_key') {
    const spec = SPEC[type]!;
    v.key = spec.kind === 'ed25519' ? await generatePkcs8('ed25519', {})
      : spec.kind === 'ec' ? await generatePkcs8('ec', { namedCurve: spec.curve })
        : await generatePkcs8('rsa', { modulusLength: (spec as { bits: number }).bits });
  }
  return v;
}

// Parsing a PEM key costs far more than using it: keep parsed keys, per version's PEM.
const parsedKeys = new Map<string, { priv: KeyObject; pub: KeyObject }>();
function parsed(pem: string): { priv: KeyObject; pub: KeyObject } {
  let k = parsedKeys.get(pem);
  if (!k) {
    const priv = createPrivateKey(pem);
    k = { priv, pub: createPublicKey(priv) };
    if (parsedKeys.size >= 1024) parsedKeys.delete(parsedKeys.keys().next().value!);
    parsedKeys.set(pem, k);
  }
  return k;
}

// --- the vault:vN: envelope, and strict base64 --------------------------------------

/**
 * Strict base64: the standard alphabet with exact padding (or, for JWS signatures,
 * unpadded base64url), and canonical — the only encoding of its bytes, so no junk, no
 * whitespace, no other alphabet, no non-zero trailing bits. Node's decoder skips what it
 * does not understand; re-encoding and comparing refuses all of that in one step.
 * (Go's StdEncoding, which Vault uses, also refuses the other alphabet and bad padding.)
 */
export function decodeBase64(s: string, alphabet: 'base64' | 'base64url' = 'base64'): Buffer | undefined {
  const buf = Buffer.from(s, alphabet);
  return buf.toString(alphabet) === s ? buf : undefined;
}

export function wrap(version: number, body: Buffer, urlSafe = false): string {
  return `vault:v${version}:${body.toString(urlSafe ? 'base64url' : 'base64')}`;
}

/** The key version named by a vault:vN: value we just produced. */
export const versionIn = (wrapped: string): number => Number(/^vault:v(\d+):/.exec(wrapped)![1]);

// The version is a decimal without sign or leading zeros, at least 1: what Vault writes.
// (Vault's own parser, strconv.Atoi, would also take "v01" and "v+1"; one spelling per
// value is safer for callers that compare or index ciphertexts, so only that is read.)
const ENVELOPE = /^vault:v([1-9][0-9]{0,9}):([^]*)$/;

export function unwrap(value: unknown, what: string, alphabet: 'base64' | 'base64url' = 'base64'): { version: number; body: Buffer } {
  if (typeof value !== 'string') throw new UserError(`${what} is required`);
  const m = ENVELOPE.exec(value);
  const body = m ? decodeBase64(m[2], alphabet) : undefined;
  if (!m || !body) throw new UserError(`invalid ${what}: expected vault:v<version>:<${alphabet === 'base64' ? 'standard padded base64' : 'unpadded base64url'}>`);
  return { version: Number(m[1]), body };
}

/** Base64 input as Vault takes it (plaintext, input, context, associated_data): strict standard base64. */
export function b64(value: unknown, what: string, required = true): Buffer {
  if (value === undefined || value === null || value === '') {
    if (required) throw new UserError(`missing ${what}`);
    return Buffer.alloc(0);
  }
  const buf = typeof value === 'string' ? decodeBase64(value) : undefined;
  if (!buf) throw new UserError(`${what} must be base64-encoded (standard alphabet, with padding)`);
  return buf;
}

// --- storage, cache and per-key serialisation ---------------------------------------

export class Policies {
  private readonly cache = new Map<string, Policy>();
  private readonly locks = new Map<string, Promise<unknown>>();
  constructor(private readonly storage: Storage) {}

  static key(name: string): string { return `policy/${name}`; }

  async get(name: string): Promise<Policy | undefined> {
    const hit = this.cache.get(name);
    if (hit) return hit;
    const p = await getJson<Policy>(this.storage, Policies.key(name));
    if (p) this.cache.set(name, p);
    return p;
  }

  async require(name: string): Promise<Policy> {
    const p = await this.get(name);
    if (!p) throw new UserError(`encryption key not found: ${name}`);
    return p;
  }

  /** Read-modify-write one key at a time (rotation, config) so concurrent writes cannot lose a version. */
  async update<T>(name: string, fn: (p: Policy | undefined) => Promise<{ policy?: Policy; result: T }>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const chained = prev.then(() => mine);
    this.locks.set(name, chained);
    await prev.catch(() => undefined);
    try {
      this.cache.delete(name);
      const { policy, result } = await fn(await this.get(name));
      if (policy) {
        await putJson(this.storage, Policies.key(name), policy);
        this.cache.set(name, policy);
      }
      return result;
    } finally {
      release();
      if (this.locks.get(name) === chained) this.locks.delete(name);
    }
  }

  async delete(name: string): Promise<void> {
    await this.storage.delete(Policies.key(name));
    this.cache.delete(name);
  }

  invalidate(name: string): void { this.cache.delete(name); }
  async list(): Promise<string[]> { return (await this.storage.list('policy/')).filter((k) => !k.endsWith('/')); }
}

// --- cryptography -------------------------------------------------------------------

export function versionOf(p: Policy, requested: number | undefined, purpose: 'encrypt' | 'decrypt'): { n: number; v: KeyVersion } {
  const n = requested && requested > 0 ? requested : p.latest_version;
  if (n > p.latest_version) throw new UserError(`requested version ${n} is greater than the latest version ${p.latest_version}`);
  const floor = purpose === 'decrypt' ? p.min_decryption_version : p.min_encryption_version;
  if (n < floor) throw new UserError(purpose === 'decrypt' ? `ciphertext or signature version is disallowed by policy (too old)` : `requested version for encryption is less than the minimum encryption key version`);
  const v = p.versions[String(n)];
  if (!v) throw new UserError(`key version ${n} not found`);
  return { n, v };
}

/** Key for one context: HKDF-SHA256 when the key is derived, the version's key otherwise. */
function symmetricKey(p: Policy, v: KeyVersion, context: Buffer): Buffer {
  const key = Buffer.from(v.key!, 'base64');
  // As Vault: a context given for a key that is not derived is ignored.
  if (!p.derived) return key;
  if (!context.length) throw new UserError('missing context: the key is derived, so each request needs a context');
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

export interface CryptInput { plaintext: Buffer; context: Buffer; aad: Buffer; version?: number }

export async function encrypt(p: Policy, inp: CryptInput, managed?: () => Promise<ManagedKey>): Promise<string> {
  const { n, v } = versionOf(p, inp.version, 'encrypt');
  if (p.type === 'managed_key') {
    const k = await managed!();
    return wrap(n, await k.encrypt(inp.plaintext, { aad: Buffer.concat([inp.context, inp.aad]) }));
  }
  if (p.type.startsWith('rsa-')) {
    return wrap(n, publicEncrypt({ key: parsed(v.key!).pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, inp.plaintext));
  }
  if (!isSymmetric(p.type)) throw new UserError(`key type ${p.type} does not support encryption`);
  const key = symmetricKey(p, v, inp.context);
  const nonce = p.convergent_encryption ? convergentNonce(key, inp.plaintext, inp.aad) : randomBytes(12);
  const c = createCipheriv(cipherName(p) as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  if (inp.aad.length) c.setAAD(inp.aad);
  return wrap(n, Buffer.concat([nonce, c.update(inp.plaintext), c.final(), c.getAuthTag()]));
}

export async function decrypt(p: Policy, ciphertext: unknown, inp: Omit<CryptInput, 'plaintext'>, managed?: () => Promise<ManagedKey>): Promise<{ plaintext: Buffer; version: number }> {
  const { version, body } = unwrap(ciphertext, 'ciphertext');
  const { v } = versionOf(p, version, 'decrypt');
  if (p.type === 'managed_key') {
    const k = await managed!();
    return { plaintext: await k.decrypt(body, { aad: Buffer.concat([inp.context, inp.aad]) }), version };
  }
  if (p.type.startsWith('rsa-')) {
    try {
      return { plaintext: privateDecrypt({ key: parsed(v.key!).priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, body), version };
    } catch { throw new UserError('invalid ciphertext: unable to decrypt'); }
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

// --- signing and HMAC ---------------------------------------------------------------

export const HASH_ALGORITHMS: Record<string, Hash | undefined> = { 'sha2-256': 'sha256', 'sha2-384': 'sha384', 'sha2-512': 'sha512', none: undefined };
const nodeHash: Record<string, string> = { 'sha2-224': 'sha224', 'sha2-256': 'sha256', 'sha2-384': 'sha384', 'sha2-512': 'sha512', 'sha3-224': 'sha3-224', 'sha3-256': 'sha3-256', 'sha3-384': 'sha3-384', 'sha3-512': 'sha3-512' };

export function hashName(alg: string): string {
  const h = nodeHash[alg];
  if (!h) throw new UserError(`unsupported hash algorithm ${alg}`);
  return h;
}

export interface SignInput { input: Buffer; hash: string; prehashed: boolean; padding: 'pss' | 'pkcs1v15'; marshaling: 'asn1' | 'jws'; version?: number }

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

/**
 * A signature made on libuv's thread pool (crypto.sign with a callback), so an RSA-4096
 * batch does not stall every other request. Prehashed input needs keys/crypto's digest-
 * level code: raw RSA on the worker threads (util/workers), ECDSA on this thread.
 */
async function signOffLoop(priv: KeyObject, spec: KeySpec, data: Buffer, opts: SignOpts): Promise<Buffer> {
  if (opts.prehashed || spec.kind === 'aes') return signLocalAsync(priv, spec, data, opts);
  const o = nodeOptions(priv, spec, opts);
  return new Promise((resolve, reject) => nodeSign(o.alg, data, o.key, (e, sig) => (e ? reject(e) : resolve(sig))));
}

/** The thread-pool twin of verifyWith; a malformed signature is simply invalid. */
async function verifyOffLoop(pub: KeyObject, spec: KeySpec, data: Buffer, sig: Buffer, opts: SignOpts): Promise<boolean> {
  if (opts.prehashed || spec.kind === 'aes') return verifyWith(pub, spec, data, sig, opts);
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

export async function sign(p: Policy, inp: SignInput, managed?: () => Promise<ManagedKey>): Promise<{ signature: string; publicKey?: string }> {
  const { n, v } = versionOf(p, inp.version, 'encrypt');
  const spec = await specOf(p, managed);
  const opts = signOptions(p, inp, spec);
  let sig: Buffer;
  if (p.type === 'managed_key') sig = await (await managed!()).sign(inp.input, opts);
  else sig = await signOffLoop(parsed(v.key!).priv, spec, inp.input, opts);
  if (spec.kind === 'ec' && inp.marshaling === 'jws') return { signature: wrap(n, derToRaw(sig, curveBytes(spec.curve)), true) };
  return { signature: wrap(n, sig) };
}

export async function verify(p: Policy, inp: SignInput, signature: unknown, managed?: () => Promise<ManagedKey>): Promise<boolean> {
  // Vault reads JWS-marshaled signatures as unpadded base64url, all others as standard base64.
  const { version, body } = unwrap(signature, 'signature', inp.marshaling === 'jws' ? 'base64url' : 'base64');
  const { v } = versionOf(p, version, 'decrypt');
  const spec = await specOf(p, managed);
  const opts = signOptions(p, inp, spec);
  let sig = body;
  if (spec.kind === 'ec' && inp.marshaling === 'jws') {
    if (sig.length !== 2 * curveBytes(spec.curve)) return false;
    sig = rawToDer(sig);
  }
  const pub: KeyObject = p.type === 'managed_key' ? await (await managed!()).publicKey() : parsed(v.key!).pub;
  return verifyOffLoop(pub, spec, inp.input, sig, opts);
}

export function hmac(p: Policy, input: Buffer, algorithm: string, version?: number): string {
  if (p.type === 'managed_key') throw new UserError('HMAC is not available for managed keys');
  const { n, v } = versionOf(p, version, 'encrypt');
  return wrap(n, createHmac(hashName(algorithm), Buffer.from(v.hmac_key, 'base64')).update(input).digest());
}

export function verifyHmac(p: Policy, input: Buffer, algorithm: string, mac: unknown): boolean {
  const { version, body } = unwrap(mac, 'hmac');
  const { v } = versionOf(p, version, 'decrypt');
  const want = createHmac(hashName(algorithm), Buffer.from(v.hmac_key, 'base64')).update(input).digest();
  return want.length === body.length && timingSafeEqual(want, body);
}

/** A version's public key as Vault shows it: raw base64 for Ed25519, PEM (SPKI) for ECDSA and RSA. */
export function publicKeyOf(p: Policy, v: KeyVersion): string | undefined {
  if (!v.key || !SPEC[p.type]) return undefined;
  const pub = parsed(v.key).pub;
  if (p.type === 'ed25519') return (pub.export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32).toString('base64');
  return pub.export({ type: 'spki', format: 'pem' }) as string;
}

/** The name Vault gives an asymmetric key version. */
export function versionKeyName(t: KeyType): string {
  const s = SPEC[t];
  return !s ? '' : s.kind === 'ec' ? s.curve : t;
}

/** The parsed private key of a version (for export). */
export const privateKeyOf = (v: KeyVersion): KeyObject => parsed(v.key!).priv;

export const hashInput = (alg: string, input: Buffer) => createHash(hashName(alg)).update(input).digest();
