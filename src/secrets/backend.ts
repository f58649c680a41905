// One mounted secrets engine: its paths, its storage, its open managed keys. Which engine
// is the mount's choice; what each engine is comes from its declaration (engine.ts), so
// nothing here names one.
import type { Logger } from '../goplugin/log';
import type { Storage } from '../storage/storage';
import { Router, UnsupportedOperationError, UserError, type Operation, type Response, type SystemView } from './framework';
import { ManagedKeys, keyErrorToUser } from './managed-keys';
import type { Engine, EngineMount } from './engine';
import { DEFAULT_ENGINE, engineNamed } from './engines';
import { SECRET_TYPE_KEY, type LeasedSecret, type SecretType } from './lease';

const MANAGED_HELP =
  'Managed keys (PKCS#11, AWS KMS, Google Cloud KMS, Azure Key Vault, software) are configured under managed-keys/ and used without their private keys ever being here.';

/** Every operation a mount answers: the framework's, plus Vault's rollback (periodic) and a lease's renew and revoke. */
export type BackendOperation = Operation | 'rollback' | 'renew' | 'revoke';

/** Who asks, and for renew and revoke the secret Vault leased. */
export interface RequestContext {
  displayName: string;
  mountPoint: string;
  secret?: LeasedSecret;
}

/** One mount of the secrets role: its engine's paths and managed keys, over the mount's storage. */
export class SecretsBackend {
  readonly managedKeys: ManagedKeys;
  /** The mount's engine. */
  readonly engine: Engine;
  /** The mount's hooks; its path declarations live in the router (their compiled form shared by the engine's mounts). */
  private readonly mount: EngineMount;
  private readonly router: Router;
  private readonly storage: Storage;
  private readonly secretTypes: Map<string, SecretType>;

  /**
   * `engine` is the mount's choice (`vault secrets enable -options=engine=pki ...`, passed
   * in Setup's config), by name or as a declaration. Engines cannot share a mount (transit
   * and PKI both define sign/<name>). Managed keys are configured in every mount.
   */
  constructor(
    storage: Storage,
    private readonly log: Logger,
    engine: string | Engine = DEFAULT_ENGINE,
    private readonly system?: SystemView,
  ) {
    const e = typeof engine === 'string' ? engineNamed(engine) : engine;
    if (!e) throw new Error(`unknown engine "${String(engine).slice(0, 40)}"`);
    this.engine = e;
    this.managedKeys = new ManagedKeys(storage);
    const mount = e.create({ storage, managedKeys: this.managedKeys, log, system });
    this.storage = mount.storage ?? storage;
    this.secretTypes = new Map((mount.secrets ?? []).map((s) => [s.type, s]));
    this.router = new Router([...this.managedKeys.paths(), ...mount.paths], `${e.help}\n\n${MANAGED_HELP}`, e);
    // The router keeps the handlers (and shares the compiled declarations): drop the mount's copy of them.
    mount.paths = [];
    this.mount = mount;
  }

  /** Answer one request: a path operation, the periodic rollback, or a lease's renew or revoke. */
  handle(op: BackendOperation, path: string, data: Record<string, unknown>, ctx: RequestContext): Promise<Response | undefined> {
    if (op === 'rollback') return this.periodic();
    const { secret, ...who } = ctx;
    const handled =
      op === 'renew' || op === 'revoke'
        ? this.lease(op, secret, data, who)
        : this.router.handle(op, path, data, { storage: this.storage, system: this.system, ...who });
    // Managed-key failures anywhere below become the HTTP status they stand for.
    return handled.catch((e) => {
      throw keyErrorToUser(e);
    });
  }

  /** Renew or revoke: the handler of the secret's type, as Vault's framework routes them (by secret_type, not by path). */
  private async lease(
    op: 'renew' | 'revoke',
    secret: LeasedSecret | undefined,
    data: Record<string, unknown>,
    who: Omit<RequestContext, 'secret'>,
  ): Promise<Response | undefined> {
    if (!secret) throw new Error('request has no secret');
    const typeName = secret.internal[SECRET_TYPE_KEY];
    const type = typeof typeName === 'string' ? this.secretTypes.get(typeName) : undefined;
    if (!type) throw new UserError('secret is unsupported by this backend');
    const handler = op === 'renew' ? type.renew : type.revoke;
    if (!handler) throw new UnsupportedOperationError();
    return handler({ operation: op, secret, data, storage: this.storage, system: this.system, ...who });
  }

  /** Vault calls every backend with the rollback operation about once a minute. */
  private async periodic(): Promise<undefined> {
    await this.mount.periodic?.();
    return undefined;
  }

  /** Vault's existence check: does the path declare one (found), and does its object exist? */
  exists(path: string, body: () => Record<string, unknown> = () => ({}), who: Partial<RequestContext> = {}): Promise<{ found: boolean; exists: boolean }> {
    return this.router.exists(path, { storage: this.storage, system: this.system, displayName: who.displayName ?? '', mountPoint: who.mountPoint ?? '' }, body);
  }

  /** Vault tells us a storage key changed elsewhere (replication, another node). */
  invalidate(key: string): void {
    if (key.startsWith('managed-keys/')) this.managedKeys.invalidate(key);
    this.mount.invalidate?.(key);
    this.log.debug('invalidated', { key });
  }

  /** The mount goes away: the engine's cleanup, then every open managed key closed. */
  async cleanup(): Promise<void> {
    try {
      await this.mount.cleanup?.();
    } finally {
      await this.managedKeys.closeAll();
    }
  }
}
