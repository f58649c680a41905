// A managed key on a PKCS#11 token: the module it holds a reference on, its session pool,
// the key found (or generated) on the token, and recovery. After a token reset, removal or
// re-initialisation the pool is rebuilt, the user logged in again and the key found
// again, once per call, before an error is returned.
import type { KeyObject } from 'node:crypto';
import { KeyError, isKeyError, keyFailure, keyInvalid, keyUnsupported, requireUsage } from '../errors';
import { digest, oaepEncrypt, verifyWith } from '../crypto';
import { algorithmsFor } from '../algorithms';
import type { BackendConfig, CommonConfig } from '../config';
import type { CryptOptions, KeyDescription, KeySpec, ManagedKey, SignOptions, Usage } from '../types';
import { CKR_PIN_INCORRECT, CKR_PIN_LOCKED, RECOVERABLE, TOKEN_CHANGED, ckr, pk, type Handle } from './library';
import { loadModule, reinitialiseModule, releaseModule, type LoadedModule } from './modules';
import { findSlot, parseSlotId } from './slots';
import { SessionPool } from './session-pool';
import { login } from './login';
import { findKey, generateKey, type FoundKey } from './discovery';
import { parseMechanism } from './mechanisms';
import { aesGcmEncrypt, decryptOnToken, signDigest, type OnSession } from './operations';

/** A key on a PKCS#11 token, used through a pool of at most max_parallel sessions. */
const CLOSE_WAIT_MS = 30_000;

export class Pkcs11Key implements ManagedKey {
  private readonly mod: LoadedModule;
  /** The resolved module path this key holds a reference on. */
  private readonly modulePath: string;
  private readonly pool: SessionPool;
  private slot!: Handle;
  private loggedIn = false;
  private found?: FoundKey;
  /** Kept after a reset clears `found`, for describe() and the operations' checks. */
  private spec!: KeySpec;
  private closed = false;
  private generation = 0;

  private constructor(
    private readonly name: string,
    private readonly cfg: BackendConfig,
    private readonly common: CommonConfig,
  ) {
    if (!cfg.key_label && !cfg.key_id) throw keyInvalid('key_label or key_id is required for pkcs11 managed keys');
    if (cfg.slot === undefined && !cfg.token_label) throw keyInvalid('slot or token_label is required for pkcs11 managed keys');
    if (cfg.slot !== undefined) parseSlotId(cfg.slot);
    // Buffer.from(hex) would stop at the first bad pair and look up another id (or the empty one).
    if (cfg.key_id !== undefined && !/^(0x)?([0-9a-f]{2})+$/i.test(String(cfg.key_id)))
      throw keyInvalid('key_id must be hex bytes (an even number of hex digits, optionally after 0x)');
    parseMechanism(cfg.mechanism === undefined ? undefined : String(cfg.mechanism));
    ({ path: this.modulePath, module: this.mod } = loadModule(String(cfg.library)));
    this.generation = this.mod.generation;
    const P = pk();
    const rw = cfg.force_rw_session === true || common.allowGenerate;
    const max = Number(cfg.max_parallel); // the schema's default: 1
    this.pool = new SessionPool(this.p, max, P.CKF_SERIAL_SESSION | (rw ? P.CKF_RW_SESSION : 0), (s) => {
      if (this.loggedIn) return;
      login(this.mod, this.slot, s, String(this.cfg.pin), this.name);
      this.loggedIn = true;
    });
  }

  /** The loaded module's PKCS#11 interface. */
  private get p(): LoadedModule['p'] {
    return this.mod.p;
  }

  /** Load the module, find the token and the key (generating it if allowed), or fail with the key named. */
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

  private fail(op: string, e: unknown): KeyError {
    const code = ckr(e);
    const kind = isKeyError(e) ? e.kind : code === CKR_PIN_INCORRECT || code === CKR_PIN_LOCKED ? 'denied' : 'unavailable';
    return keyFailure('pkcs11', this.name, op, e, [String(this.cfg.pin)], kind);
  }

  /** Run fn on a pooled session, after catching up with a re-initialisation of the module. */
  private async withSession<T>(fn: (s: Handle) => Promise<T> | T): Promise<T> {
    if (this.closed) throw keyInvalid(`pkcs11 key "${this.name}" is closed`);
    if (this.generation !== this.mod.generation) await this.reset(); // the module was re-initialised under us
    return this.pool.use(this.slot, fn);
  }

  /** Forget every session and handle, and find the token and key again. */
  private async reset(): Promise<void> {
    this.pool.clear(this.generation === this.mod.generation);
    this.generation = this.mod.generation;
    this.loggedIn = false;
    this.found = undefined;
    await this.resolve();
  }

  private async resolve(): Promise<void> {
    try {
      this.slot = findSlot(this.p, this.cfg, this.name);
    } catch (e) {
      // A token that appeared after C_Initialize (re-created, re-inserted) is only seen after a new one.
      if (!isKeyError(e) || e.kind !== 'not_found') throw e;
      reinitialiseModule(this.mod);
      this.slot = findSlot(this.p, this.cfg, this.name);
    }
    if (!(await this.withSession((s) => this.lookUp(s)))) {
      if (!this.common.allowGenerate)
        throw new KeyError(
          'not_found',
          `pkcs11 key "${this.name}": no key with ${this.cfg.key_label ? `label "${this.cfg.key_label}"` : `id ${this.cfg.key_id}`} on the token (set allow_generate_key to create it)`,
        );
      await this.withSession((s) => generateKey(this.p, s, this.cfg));
      if (!(await this.withSession((s) => this.lookUp(s)))) throw keyFailure('pkcs11', this.name, 'generate', 'key not found after generation', []);
    }
  }

  /**
   * Find the key on session `s` and adopt it at once, inside the session callback: calls
   * running meanwhile see the key as soon as it is found, not one tick later (each call
   * that still sees no key starts a reset of its own).
   */
  private lookUp(s: Handle): boolean {
    const found = findKey(this.p, s, this.cfg, this.name);
    if (!found) return false;
    this.found = found;
    this.spec = found.spec;
    return true;
  }

  /** Run an operation; after a token reset, recover once and retry. */
  private async run<T>(op: string, usage: Usage, fn: (on: OnSession) => Promise<T>): Promise<T> {
    requireUsage('pkcs11', this.name, this.common.usages, usage);
    const attempt = () =>
      this.withSession((s) => {
        const f = this.found!;
        return fn({ p: this.p, s, key: f.handle, spec: f.spec, name: this.name });
      });
    try {
      if (!this.found) await this.reset();
      return await attempt();
    } catch (e) {
      const code = ckr(e) ?? -1;
      if (!RECOVERABLE.has(code) && !TOKEN_CHANGED.has(code)) throw this.fail(op, e);
      try {
        if (TOKEN_CHANGED.has(code)) reinitialiseModule(this.mod);
        await this.reset();
        return await attempt();
      } catch (e2) {
        throw this.fail(op, e2);
      }
    }
  }

  describe(): KeyDescription {
    return { backend: 'pkcs11', name: this.name, spec: this.spec, usages: this.common.usages, algorithms: algorithmsFor(this.spec), hardware: true };
  }

  async publicKey(): Promise<KeyObject> {
    const pub = this.found?.pub;
    if (!pub) throw keyUnsupported(`pkcs11 key "${this.name}" is symmetric: it has no public key`);
    return pub;
  }

  async sign(data: Buffer, opts: SignOptions): Promise<Buffer> {
    if (this.spec?.kind === 'aes') throw keyUnsupported(`pkcs11 key "${this.name}" is AES: it does not sign`);
    const d = digest(data, opts);
    return this.run('sign', 'sign', (on) => signDigest(on, d, opts));
  }

  async verify(data: Buffer, signature: Buffer, opts: SignOptions): Promise<boolean> {
    requireUsage('pkcs11', this.name, this.common.usages, 'verify');
    return verifyWith(await this.publicKey(), this.spec, data, signature, opts);
  }

  async encrypt(plaintext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    return this.run('encrypt', 'encrypt', async (on) => {
      if (on.spec.kind === 'aes') return aesGcmEncrypt(on, plaintext, opts.aad);
      if (on.spec.kind === 'rsa') return oaepEncrypt(await this.publicKey(), plaintext, opts.oaepHash ?? 'sha256', `pkcs11 key "${this.name}"`);
      throw keyUnsupported(`pkcs11 key "${this.name}" (${on.spec.kind}) does not encrypt`);
    });
  }

  async decrypt(ciphertext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    return this.run('decrypt', 'decrypt', (on) => decryptOnToken(on, ciphertext, opts));
  }

  async random(bytes: number): Promise<Buffer> {
    return this.run('random', 'random', async ({ p, s }) => p.C_GenerateRandom(s, Buffer.alloc(bytes)));
  }

  /**
   * Refuse new calls, wait for the calls already made (their sessions, and the module under
   * their asynchronous C_* calls, must outlive them), then close the sessions and let go of
   * the module (finalized and unloaded when no key holds it).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // PKCS#11 calls cannot be cancelled. One hung in the HSM past the wait keeps its module
    // loaded (its reference is never given back) rather than unloaded under it, and the mount's
    // Cleanup is not held for ever.
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.pool.drain().then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), Pkcs11Key.closeWaitMs);
      }),
    ]);
    clearTimeout(timer);
    this.pool.clear(true);
    if (drained) releaseModule(this.modulePath);
  }

  /** How long close() waits for the calls already made. */
  static get closeWaitMs(): number {
    return CLOSE_WAIT_MS;
  }
}
