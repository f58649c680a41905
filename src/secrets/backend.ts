// One mounted secrets engine: its paths, its storage, its open managed keys.
import type { Logger } from '../goplugin/log';
import type { Storage } from '../storage/storage';
import { Router, type Operation, type Response } from './framework';
import { ManagedKeys, keyErrorToUser } from './managed-keys';
import { transit, autoRotate } from './transit';
import type { Transit } from './transit/context';

const HELP = `vault-plugin-ts secrets engine: transit (encryption as a service, signing, HMAC) and
managed keys (PKCS#11, AWS KMS, Google Cloud KMS, Azure Key Vault, software).`;

export class SecretsBackend {
  readonly managedKeys: ManagedKeys;
  private readonly transit: Transit;
  private readonly router: Router;

  constructor(private readonly storage: Storage, private readonly log: Logger) {
    this.managedKeys = new ManagedKeys(storage);
    const t = transit(storage, this.managedKeys);
    this.transit = t.ctx;
    this.router = new Router([...this.managedKeys.paths(), ...t.paths], HELP);
  }

  handle(op: Operation | 'rollback', path: string, data: Record<string, unknown>, ctx: { displayName: string; mountPoint: string }): Promise<Response | undefined> {
    if (op === 'rollback') return this.periodic();
    // Managed-key failures anywhere below become the HTTP status they stand for.
    return this.router.handle(op, path, data, { storage: this.storage, ...ctx }).catch((e) => { throw keyErrorToUser(e); });
  }

  /** Vault calls every backend with the rollback operation about once a minute. */
  private async periodic(): Promise<undefined> {
    const rotated = await autoRotate(this.transit);
    if (rotated.length) this.log.info('auto-rotated transit keys', { keys: rotated.join(',') });
    return undefined;
  }

  exists(path: string): Promise<{ found: boolean; exists: boolean }> {
    return this.router.exists(path, { storage: this.storage, displayName: '', mountPoint: '' });
  }

  /** Vault tells us a storage key changed elsewhere (replication, another node). */
  invalidate(key: string): void {
    if (key.startsWith('managed-keys/')) this.managedKeys.invalidate(key);
    if (key.startsWith('policy/')) this.transit.policies.invalidate(key.slice('policy/'.length));
    this.log.debug('invalidated', { key });
  }

  async cleanup(): Promise<void> {
    await this.managedKeys.closeAll();
  }
}
