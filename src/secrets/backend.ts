// One mounted secrets engine: its paths, its storage, its open managed keys.
import type { Logger } from '../goplugin/log';
import type { Storage } from '../storage/storage';
import { Router, type Operation, type Response, type SystemView } from './framework';
import { ManagedKeys, keyErrorToUser } from './managed-keys';
import { transit, autoRotate } from './transit';
import type { Transit } from './transit/context';
import { PkiCaches, pkiPaths } from './pki';
import { keymgmtPaths, KEYMGMT_HELP } from './keymgmt';

export const ENGINES = ['transit', 'pki', 'keymgmt'] as const;
export type Engine = (typeof ENGINES)[number];

/** What a mount tells Vault about its paths (Vault's logical.Paths), answered by SpecialPaths. */
export interface SpecialPaths {
  root: string[];
  /** Readable without a token, as `curl` reads a CA or CRL. */
  unauthenticated: string[];
  local_storage: string[];
  /** Storage prefixes Vault seal-wraps (Vault Enterprise): key material. */
  seal_wrap_storage: string[];
}

/** Each engine's special paths, as Vault's own engine of that name declares them. */
export const SPECIAL_PATHS: Record<Engine, SpecialPaths> = {
  transit: { root: [], unauthenticated: [], local_storage: [], seal_wrap_storage: ['managed-keys/', 'policy/'] },
  // Vault's PKI serves its CA, chain, CRL and issued certificates to anyone: relying
  // parties fetch them with no Vault token (AIA and CRL distribution point URLs).
  // issuer/+/…: "+" matches one segment in current Vault (1.11+); Vault 1.8 has no "+" (these then need a token there).
  pki: { root: [], unauthenticated: ['cert/*', 'ca/pem', 'ca_chain', 'ca', 'crl/pem', 'crl', 'issuer/+/pem', 'issuer/+/der', 'issuer/+/json', 'issuer/+/crl', 'issuer/+/crl/pem', 'issuer/+/crl/der'], local_storage: [], seal_wrap_storage: ['managed-keys/', 'pki/ca', 'pki/pending-intermediate', 'pki/keys/'] },
  keymgmt: { root: [], unauthenticated: [], local_storage: [], seal_wrap_storage: ['managed-keys/', 'key/', 'kms/'] },
};

const TRANSIT_HELP = 'vault-plugin-ts, transit engine: encryption as a service, signing and HMAC, with Vault\'s transit API.';
const PKI_HELP = 'vault-plugin-ts, PKI engine: a CA for this mount, roles, issue, sign, revoke and CRL, with Vault\'s PKI API.';
const MANAGED_HELP = 'Managed keys (PKCS#11, AWS KMS, Google Cloud KMS, Azure Key Vault, software) are configured under managed-keys/ and used without their private keys ever being here.';

export class SecretsBackend {
  readonly managedKeys: ManagedKeys;
  private readonly transit: Transit;
  private readonly router: Router;
  private readonly storage: Storage;
  private readonly pki?: PkiCaches;

  /**
   * `engine` is the mount's choice (`vault secrets enable -options=engine=pki ...`, passed
   * in Setup's config): transit (default) or pki, each with Vault's own API. They cannot
   * share a mount: both define sign/<name>. Managed keys are configured in either.
   */
  constructor(storage: Storage, private readonly log: Logger, readonly engine: Engine = 'transit', private readonly system?: SystemView) {
    this.managedKeys = new ManagedKeys(storage);
    if (engine === 'pki') this.pki = new PkiCaches(this.managedKeys);
    this.storage = this.pki ? this.pki.watching(storage) : storage;
    const t = transit(storage, this.managedKeys);
    this.transit = t.ctx;
    const engineHelp = engine === 'pki' ? PKI_HELP : engine === 'keymgmt' ? KEYMGMT_HELP : TRANSIT_HELP;
    this.router = new Router([...this.managedKeys.paths(), ...(this.pki ? pkiPaths(this.managedKeys, this.pki) : engine === 'keymgmt' ? keymgmtPaths(storage) : t.paths)], `${engineHelp}\n\n${MANAGED_HELP}`);
  }

  handle(op: Operation | 'rollback', path: string, data: Record<string, unknown>, ctx: { displayName: string; mountPoint: string }): Promise<Response | undefined> {
    if (op === 'rollback') return this.periodic();
    // Managed-key failures anywhere below become the HTTP status they stand for.
    return this.router.handle(op, path, data, { storage: this.storage, system: this.system, ...ctx }).catch((e) => { throw keyErrorToUser(e); });
  }

  /** Vault calls every backend with the rollback operation about once a minute. */
  private async periodic(): Promise<undefined> {
    if (this.engine !== 'transit') return undefined;
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
    this.pki?.invalidate(key);
    this.log.debug('invalidated', { key });
  }

  async cleanup(): Promise<void> {
    await this.managedKeys.closeAll();
  }
}
