// PKCS#11 HSMs through pkcs11js. One loaded module per library path; per key a pool of
// at most max_parallel sessions. Operations run on libuv's thread pool (the *Async
// calls: sign, encrypt, decrypt, key generation), so parallel sessions really run in
// parallel and a slow token never stalls the event loop. pkcs11js has no async form of
// the short bookkeeping calls (open session, login, find objects, read attributes, *Init,
// C_GenerateRandom); those stay synchronous. After a token reset, removal or
// re-initialisation the pool is rebuilt, the user logged in again and the key found
// again, once per call, before an error is returned.
import { constants, createHash, createPublicKey, publicEncrypt, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import type * as Pkcs11Types from 'pkcs11js';
import { KeyError, isKeyError, keyFailure, keyInvalid, keyUnsupported, requireUsage } from './errors';
import { curveBytes, digest, digestInfo, rawToDer, verifyWith } from './crypto';
import { algorithmsFor } from './algorithms';
import type { BackendConfig, CommonConfig } from './config';
import type { KeyBackend } from './backend';
import { allowedPkcs11Library } from './operator';
import type { CryptOptions, Hash, KeyDescription, KeySpec, ManagedKey, SignOptions, Usage } from './types';

type P = typeof Pkcs11Types;
type Handle = Buffer;
let lib: P | undefined;
const pk = (): P => (lib ??= require('pkcs11js') as P);

// Errors after which a fresh session, login and key lookup may succeed.
const RECOVERABLE = new Set([0x30, 0x32, 0x60, 0x82, 0xb0, 0xb3, 0xe0, 0xe1, 0x101, 0x190]);
// Errors that mean the token itself changed (removed, replaced, re-initialised): modules
// such as SoftHSM2 fix their slot list at C_Initialize, so the module is initialised anew.
const TOKEN_CHANGED = new Set([0x3, 0x5, 0x30, 0x32, 0xe0, 0xe1]);
const CURVE_OIDS: Record<string, string> = { 'P-256': '06082a8648ce3d030107', 'P-384': '06052b81040022', 'P-521': '06052b81040023' };

interface LoadedModule {
  p: Pkcs11Types.PKCS11;
  refs: number;
  /** Per token: salted hash of the PIN that logged this process in. The login is shared by
   *  every session of the process, so a later key must match it to prove it knows the PIN. */
  logins: Map<string, { salt: Buffer; hash: Buffer }>;
  /** Bumped on every re-initialisation; sessions from an older generation are gone. */
  generation: number;
}
const modules = new Map<string, LoadedModule>();

/**
 * Load the module at `library`, or share it if this process already has it (by resolved
 * path: one file, one C_Initialize). On the request path (config writes, and keys opened
 * again after a restart or a cache drop) the operator's PLUGIN_PKCS11_LIBRARIES is checked
 * before anything is loaded, every time, and the checked resolved path is what gets loaded.
 * `byOperatorCli` skips the list for the `pkcs11-slots` command only: the operator runs that
 * by hand to find a module's tokens, and nothing reaches it through Vault's API.
 */
function loadModule(library: string, byOperatorCli = false): { path: string; module: LoadedModule } {
  const resolved = byOperatorCli ? library : allowedPkcs11Library(library);
  let m = modules.get(resolved);
  if (!m) {
    const p = new (pk().PKCS11)();
    try {
      p.load(resolved);
      // The *Async calls run on libuv's thread pool: the library must use OS locking,
      // or concurrent sessions corrupt its memory (seen with SoftHSM2).
      p.C_Initialize({ flags: pk().CKF_OS_LOCKING_OK });
    } catch (e) {
      try { p.close(); } catch { /* not loaded */ }
      throw keyInvalid(`cannot load PKCS#11 library ${library}: ${(e as Error).message}`);
    }
    m = { p, refs: 0, logins: new Map(), generation: 0 };
    modules.set(resolved, m);
  }
  m.refs++;
  return { path: resolved, module: m };
}

/** C_Finalize + C_Initialize: every key on this module then re-opens sessions and logs in again. */
function reinitialiseModule(m: LoadedModule): void {
  try { m.p.C_Finalize(); } catch { /* already finalized */ }
  m.p.C_Initialize({ flags: pk().CKF_OS_LOCKING_OK });
  m.logins.clear();
  m.generation++;
}

function releaseModule(path: string): void {
  const m = modules.get(path);
  if (m && --m.refs === 0) {
    modules.delete(path);
    try { m.p.C_Finalize(); m.p.close(); } catch { /* already gone */ }
  }
}

/** Slots with a token present: what `vault-plugin-ts pkcs11-slots <library>` prints. */
export function listSlots(library: string): Array<{ slot: string; label: string; model: string; serial: string }> {
  if (!library) throw keyInvalid('usage: vault-plugin-ts pkcs11-slots /path/to/pkcs11-module.so');
  const { path, module: m } = loadModule(library, true);
  try {
    return m.p.C_GetSlotList(true).map((h) => {
      const t = m.p.C_GetTokenInfo(h);
      return { slot: '0x' + h.readBigUInt64LE(0).toString(16), label: t.label.trim(), model: t.model.trim(), serial: t.serialNumber.trim() };
    });
  } finally {
    releaseModule(path);
  }
}

const mechanismNames: Record<string, number> = {
  CKM_RSA_PKCS: 0x1, CKM_RSA_PKCS_OAEP: 0x9, CKM_RSA_PKCS_PSS: 0xd, CKM_ECDSA: 0x1041, CKM_AES_GCM: 0x1087, CKM_EDDSA: 0x1057,
};
function parseMechanism(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v in mechanismNames) return mechanismNames[v];
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw keyInvalid(`mechanism: "${v.slice(0, 30)}" is not a number, 0x hex, or a known CKM_ name`);
  return n;
}

export class Pkcs11Key implements ManagedKey {
  private readonly mod: LoadedModule;
  /** The resolved module path this key holds a reference on. */
  private readonly modulePath: string;
  private slot!: Handle;
  private idle: Handle[] = [];
  private open = 0;
  private waiters: Array<() => void> = [];
  private loggedIn = false;
  private priv?: Handle;
  private spec!: KeySpec;
  private pub?: KeyObject;
  private readonly max: number;
  private readonly rw: boolean;
  private closed = false;
  private generation = 0;

  private constructor(private readonly name: string, private readonly cfg: BackendConfig, private readonly common: CommonConfig) {
    this.max = (cfg.max_parallel as number | undefined) ?? 1;
    this.rw = (cfg.force_rw_session as boolean | undefined) ?? false;
    if (!cfg.key_label && !cfg.key_id) throw keyInvalid('key_label or key_id is required for pkcs11 managed keys');
    if (cfg.slot === undefined && !cfg.token_label) throw keyInvalid('slot or token_label is required for pkcs11 managed keys');
    parseMechanism(cfg.mechanism as string | undefined);
    ({ path: this.modulePath, module: this.mod } = loadModule(cfg.library as string));
    this.generation = this.mod.generation;
  }

  static async open(name: string, cfg: BackendConfig, common: CommonConfig): Promise<Pkcs11Key> {
    const k = new Pkcs11Key(name, cfg, common);
    try {
      await k.resolve();
    } catch (e) {
      await k.close();
      throw k.fail('open', e);
    }
    return k;
  }

  private get p(): Pkcs11Types.PKCS11 { return this.mod.p; }
  private secrets(): string[] { return [this.cfg.pin as string]; }
  private fail(op: string, e: unknown): KeyError {
    const code = (e as { code?: number }).code;
    const kind = isKeyError(e) ? e.kind : code === 0xa0 || code === 0xa4 ? 'denied' : 'unavailable';
    return keyFailure('pkcs11', this.name, op, e, this.secrets(), kind);
  }

  private findSlot(): Handle {
    const slots = this.p.C_GetSlotList(true);
    if (this.cfg.slot !== undefined) {
      const want = String(this.cfg.slot);
      const id = /^0x/i.test(want) ? BigInt(want) : BigInt(want);
      const s = slots.find((h) => h.readBigUInt64LE(0) === id || (h.length === 4 && BigInt(h.readUInt32LE(0)) === id));
      if (!s) throw new KeyError('not_found', `pkcs11 key "${this.name}": no token in slot ${want}`);
      return s;
    }
    const labelOf = (h: Handle) => { try { return this.p.C_GetTokenInfo(h).label.trim(); } catch { return undefined; } }; // a vanished token
    const s = slots.find((h) => labelOf(h) === this.cfg.token_label);
    if (!s) throw new KeyError('not_found', `pkcs11 key "${this.name}": no token labelled "${this.cfg.token_label}"`);
    return s;
  }

  /** Take a session from the pool (opening one if under max_parallel), run fn, give it back. */
  private async withSession<T>(fn: (s: Handle) => Promise<T> | T): Promise<T> {
    if (this.closed) throw keyInvalid(`pkcs11 key "${this.name}" is closed`);
    if (this.generation !== this.mod.generation) await this.reset(); // the module was re-initialised under us
    while (!this.idle.length && this.open >= this.max) await new Promise<void>((r) => this.waiters.push(r));
    let s = this.idle.pop();
    if (!s) {
      this.open++;
      try {
        const P = pk();
        s = this.p.C_OpenSession(this.slot, P.CKF_SERIAL_SESSION | (this.rw || this.common.allowGenerate ? P.CKF_RW_SESSION : 0));
        if (!this.loggedIn) this.login(s);
      } catch (e) {
        if (s) { try { this.p.C_CloseSession(s); } catch { /* gone */ } }
        this.open--;
        this.waiters.shift()?.();
        throw e;
      }
    }
    try {
      const r = await fn(s);
      this.idle.push(s);
      return r;
    } catch (e) {
      if (RECOVERABLE.has((e as { code?: number }).code ?? -1)) this.open--; // the session is dead: drop it
      else this.idle.push(s);
      throw e;
    } finally {
      this.waiters.shift()?.();
    }
  }

  private login(s: Handle): void {
    const pin = this.cfg.pin as string;
    const token = this.p.C_GetTokenInfo(this.slot).serialNumber.trim();
    const known = this.mod.logins.get(token);
    try {
      this.p.C_Login(s, pk().CKU_USER, pin);
      const salt = randomBytes(16);
      this.mod.logins.set(token, { salt, hash: createHash('sha256').update(salt).update(pin).digest() });
    } catch (e) {
      if ((e as { code?: number }).code !== 0x100) throw e;
      // CKR_USER_ALREADY_LOGGED_IN: another key logged the process in; this key must still know the PIN.
      const mine = known && createHash('sha256').update(known.salt).update(pin).digest();
      if (!known || !mine || !timingSafeEqual(mine, known.hash)) throw new KeyError('denied', `pkcs11 key "${this.name}": PIN incorrect (CKR_PIN_INCORRECT)`);
    }
    this.loggedIn = true;
  }

  /** Forget every session and handle, and find the token and key again. */
  private async reset(): Promise<void> {
    if (this.generation === this.mod.generation) for (const s of this.idle) { try { this.p.C_CloseSession(s); } catch { /* gone */ } }
    this.generation = this.mod.generation;
    this.idle = [];
    this.open = 0;
    this.loggedIn = false;
    this.priv = undefined;
    this.pub = undefined;
    await this.resolve();
  }

  private async resolve(): Promise<void> {
    try {
      this.slot = this.findSlot();
    } catch (e) {
      // A token that appeared after C_Initialize (re-created, re-inserted) is only seen after a new one.
      if (!isKeyError(e) || e.kind !== 'not_found') throw e;
      reinitialiseModule(this.mod);
      this.slot = this.findSlot();
    }
    const found = await this.withSession((s) => this.findKey(s));
    if (!found) {
      if (!this.common.allowGenerate) throw new KeyError('not_found', `pkcs11 key "${this.name}": no key with ${this.cfg.key_label ? `label "${this.cfg.key_label}"` : `id ${this.cfg.key_id}`} on the token (set allow_generate_key to create it)`);
      await this.withSession((s) => this.generate(s));
      if (!(await this.withSession((s) => this.findKey(s)))) throw keyFailure('pkcs11', this.name, 'generate', 'key not found after generation', []);
    }
  }

  private template(cls: number): Pkcs11Types.Template {
    const P = pk();
    const t: Pkcs11Types.Template = [{ type: P.CKA_CLASS, value: cls }];
    if (this.cfg.key_label) t.push({ type: P.CKA_LABEL, value: this.cfg.key_label as string });
    if (this.cfg.key_id) t.push({ type: P.CKA_ID, value: Buffer.from(String(this.cfg.key_id).replace(/^0x/i, ''), 'hex') });
    return t;
  }

  private findOne(s: Handle, cls: number): Handle | undefined {
    this.p.C_FindObjectsInit(s, this.template(cls));
    try {
      const found = this.p.C_FindObjects(s, 2);
      if (found.length > 1) throw keyInvalid(`pkcs11 key "${this.name}": more than one object matches; set key_id too`);
      return found[0];
    } finally {
      this.p.C_FindObjectsFinal(s);
    }
  }

  private findKey(s: Handle): boolean {
    const P = pk();
    const priv = this.findOne(s, P.CKO_PRIVATE_KEY);
    if (priv) {
      const [kt] = this.p.C_GetAttributeValue(s, priv, [{ type: P.CKA_KEY_TYPE }]);
      const keyType = (kt.value as Buffer).readUInt32LE(0);
      if (keyType === P.CKK_EC) {
        const [params] = this.p.C_GetAttributeValue(s, priv, [{ type: P.CKA_EC_PARAMS }]);
        const hex = (params.value as Buffer).toString('hex');
        const curve = Object.keys(CURVE_OIDS).find((c) => CURVE_OIDS[c] === hex) as 'P-256' | 'P-384' | 'P-521' | undefined;
        if (!curve) throw keyUnsupported(`pkcs11 key "${this.name}": unsupported EC curve ${hex}`);
        const pubObj = this.findOne(s, P.CKO_PUBLIC_KEY);
        if (!pubObj) throw new KeyError('not_found', `pkcs11 key "${this.name}": the public half is not on the token`);
        let point = this.p.C_GetAttributeValue(s, pubObj, [{ type: P.CKA_EC_POINT }])[0].value as Buffer;
        if (point[0] === 0x04 && point.length !== 2 * curveBytes(curve) + 1) point = point.subarray(point[1] & 0x80 ? 2 + (point[1] & 0x7f) : 2); // DER OCTET STRING
        const n = curveBytes(curve);
        this.spec = { kind: 'ec', curve };
        this.pub = createPublicKey({ format: 'jwk', key: { kty: 'EC', crv: curve, x: point.subarray(1, 1 + n).toString('base64url'), y: point.subarray(1 + n).toString('base64url') } });
      } else if (keyType === P.CKK_RSA) {
        const [mod, exp] = this.p.C_GetAttributeValue(s, priv, [{ type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }]);
        this.spec = { kind: 'rsa', bits: (mod.value as Buffer).length * 8 };
        this.pub = createPublicKey({ format: 'jwk', key: { kty: 'RSA', n: (mod.value as Buffer).toString('base64url'), e: (exp.value as Buffer).toString('base64url') } });
      } else throw keyUnsupported(`pkcs11 key "${this.name}": key type ${keyType} is not supported`);
      this.priv = priv;
      return true;
    }
    const secret = this.findOne(s, P.CKO_SECRET_KEY);
    if (!secret) return false;
    const [len] = this.p.C_GetAttributeValue(s, secret, [{ type: P.CKA_VALUE_LEN }]);
    const bits = (len.value as Buffer).readUInt32LE(0) * 8;
    if (bits !== 128 && bits !== 256) throw keyUnsupported(`pkcs11 key "${this.name}": AES-${bits} is not supported`);
    this.spec = { kind: 'aes', bits };
    this.priv = secret;
    return true;
  }

  private async generate(s: Handle): Promise<void> {
    const P = pk();
    const mech = parseMechanism(this.cfg.mechanism as string | undefined);
    const bits = this.cfg.key_bits as number | undefined;
    const ids: Pkcs11Types.Template = this.template(0).slice(1);
    if (!this.cfg.key_id) ids.push({ type: P.CKA_ID, value: randomBytes(8) });
    const privAttrs: Pkcs11Types.Template = [...ids, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true }, { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }];
    if (mech === mechanismNames.CKM_AES_GCM || (!this.cfg.curve && (bits === 128 || bits === 256))) {
      await this.p.C_GenerateKeyAsync(s, { mechanism: P.CKM_AES_KEY_GEN }, [...privAttrs, { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_VALUE_LEN, value: (bits ?? 256) / 8 }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true }]);
    } else if (this.cfg.curve || mech === mechanismNames.CKM_ECDSA || !bits) {
      const curve = { P256: 'P-256', P384: 'P-384', P521: 'P-521' }[(this.cfg.curve as string) ?? 'P256']!;
      await this.p.C_GenerateKeyPairAsync(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN },
        [...ids, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_VERIFY, value: true }, { type: P.CKA_EC_PARAMS, value: Buffer.from(CURVE_OIDS[curve], 'hex') }],
        [...privAttrs, { type: P.CKA_SIGN, value: true }]);
    } else {
      if (bits < 2048) throw keyInvalid('key_bits: RSA keys must be at least 2048 bits');
      await this.p.C_GenerateKeyPairAsync(s, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [...ids, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_VERIFY, value: true }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_MODULUS_BITS, value: bits }, { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }],
        [...privAttrs, { type: P.CKA_SIGN, value: true }, { type: P.CKA_DECRYPT, value: true }]);
    }
  }

  /** Run an operation; after a token reset, recover once and retry. */
  private async run<T>(op: string, usage: Usage, fn: (s: Handle, key: Handle) => Promise<T>): Promise<T> {
    requireUsage('pkcs11', this.name, this.common.usages, usage);
    try {
      if (!this.priv) await this.reset();
      return await this.withSession((s) => fn(s, this.priv!));
    } catch (e) {
      const code = (e as { code?: number }).code ?? -1;
      if (!RECOVERABLE.has(code) && !TOKEN_CHANGED.has(code)) throw this.fail(op, e);
      try {
        if (TOKEN_CHANGED.has(code)) reinitialiseModule(this.mod);
        await this.reset();
        return await this.withSession((s) => fn(s, this.priv!));
      } catch (e2) {
        throw this.fail(op, e2);
      }
    }
  }

  describe(): KeyDescription {
    return { backend: 'pkcs11', name: this.name, spec: this.spec, usages: this.common.usages, algorithms: algorithmsFor(this.spec), hardware: true };
  }

  async publicKey(): Promise<KeyObject> {
    if (!this.pub) throw keyUnsupported(`pkcs11 key "${this.name}" is symmetric: it has no public key`);
    return this.pub;
  }

  private hashMech(h: Hash | 'sha1'): { hashAlg: number; mgf: number } {
    const P = pk();
    return { sha1: { hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1 }, sha256: { hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256 }, sha384: { hashAlg: P.CKM_SHA384, mgf: P.CKG_MGF1_SHA384 }, sha512: { hashAlg: P.CKM_SHA512, mgf: P.CKG_MGF1_SHA512 } }[h];
  }

  async sign(data: Buffer, opts: SignOptions): Promise<Buffer> {
    const P = pk();
    if (this.spec?.kind === 'aes') throw keyUnsupported(`pkcs11 key "${this.name}" is AES: it does not sign`);
    const d = digest(data, opts);
    return this.run('sign', 'sign', async (s, key) => {
      if (this.spec.kind === 'ec') {
        this.p.C_SignInit(s, { mechanism: P.CKM_ECDSA }, key);
        return rawToDer(await this.p.C_SignAsync(s, d, Buffer.alloc(2 * curveBytes(this.spec.curve))));
      }
      const bytes = (this.spec as { bits: number }).bits / 8;
      if (opts.padding === 'pkcs1v15') {
        this.p.C_SignInit(s, { mechanism: P.CKM_RSA_PKCS }, key);
        return this.p.C_SignAsync(s, digestInfo(opts.hash, d), Buffer.alloc(bytes));
      }
      const hm = this.hashMech(opts.hash);
      this.p.C_SignInit(s, { mechanism: P.CKM_RSA_PKCS_PSS, parameter: { type: P.CK_PARAMS_RSA_PSS, ...hm, saltLen: d.length } as Pkcs11Types.RsaPSS }, key);
      return this.p.C_SignAsync(s, d, Buffer.alloc(bytes));
    });
  }

  async verify(data: Buffer, signature: Buffer, opts: SignOptions): Promise<boolean> {
    requireUsage('pkcs11', this.name, this.common.usages, 'verify');
    return verifyWith(await this.publicKey(), this.spec, data, signature, opts);
  }

  async encrypt(plaintext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    const P = pk();
    return this.run('encrypt', 'encrypt', async (s, key) => {
      if (this.spec.kind === 'aes') {
        const iv = randomBytes(12);
        this.p.C_EncryptInit(s, { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv, aad: opts.aad, ivBits: 96, tagBits: 128 } as Pkcs11Types.AesGCM }, key);
        const out = await this.p.C_EncryptAsync(s, plaintext, Buffer.alloc(plaintext.length + 16));
        return Buffer.concat([iv, out]);
      }
      if (this.spec.kind === 'rsa') {
        return publicEncrypt({ key: this.pub!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: opts.oaepHash ?? 'sha256' }, plaintext);
      }
      throw keyUnsupported(`pkcs11 key "${this.name}" (${this.spec.kind}) does not encrypt`);
    });
  }

  async decrypt(ciphertext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    const P = pk();
    return this.run('decrypt', 'decrypt', async (s, key) => {
      try {
        if (this.spec.kind === 'aes') {
          if (ciphertext.length < 28) throw keyInvalid('ciphertext too short');
          this.p.C_DecryptInit(s, { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv: ciphertext.subarray(0, 12), aad: opts.aad, ivBits: 96, tagBits: 128 } as Pkcs11Types.AesGCM }, key);
          return await this.p.C_DecryptAsync(s, ciphertext.subarray(12), Buffer.alloc(ciphertext.length));
        }
        if (this.spec.kind === 'rsa') {
          this.p.C_DecryptInit(s, { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, ...this.hashMech(opts.oaepHash ?? 'sha256'), source: 1 } as Pkcs11Types.RsaOAEP }, key);
          return await this.p.C_DecryptAsync(s, ciphertext, Buffer.alloc(this.spec.bits / 8));
        }
      } catch (e) {
        const code = (e as { code?: number }).code;
        // CKR_ENCRYPTED_DATA_INVALID / _LEN_RANGE: the input, not the token.
        if (code === 0x40 || code === 0x41) throw keyInvalid('decryption failed: ciphertext or associated data do not match the key');
        throw e;
      }
      throw keyUnsupported(`pkcs11 key "${this.name}" (${this.spec.kind}) does not decrypt`);
    });
  }

  async random(bytes: number): Promise<Buffer> {
    return this.run('random', 'random', async (s) => this.p.C_GenerateRandom(s, Buffer.alloc(bytes)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.idle) { try { this.p.C_CloseSession(s); } catch { /* gone */ } }
    this.idle = [];
    releaseModule(this.modulePath);
  }
}

/** PKCS#11 managed keys: the module named by `library`, loaded only when a key is opened. */
export const backend: KeyBackend = { type: 'pkcs11', open: (p) => Pkcs11Key.open(p.name, p.fields, p.common) };
