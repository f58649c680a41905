// PKI: issuers and keys per mount (keys stored, or managed keys in an HSM/KMS), roles,
// issue, sign, revoke, CRLs, and the fetch endpoints, with current Vault's API.
import type { Storage } from '../../storage/storage';
import type { PathDef } from '../framework';
import type { ManagedKeys } from '../managed-keys';
import { IssuerCache, isRegistryKey } from './issuers';
import { issuerPaths } from './issuer-paths';
import { importPaths } from './import';
import { keyManagementPaths } from './key-paths';
import { rootPaths } from './root';
import { signCaPaths } from './sign-ca';
import { RoleCache, roleKey, rolePaths } from './roles';
import { issuePaths } from './issue';
import { revokePaths } from './revoke';
import { moreRevokePaths } from './revoke-more';
import { fetchPaths } from './fetch';
import { URLS_KEY, loadUrls, urlPaths, type UrlsConfig } from './urls';
import { maintenancePaths } from './maintenance';
import { ocspPaths } from './ocsp';
import { tidyPaths } from './tidy';

/** What a PKI mount keeps between requests: its issuers (parsed, keys imported) and its roles. */
export class PkiCaches {
  readonly ca: IssuerCache;
  readonly roles = new RoleCache();
  /** config/urls, read once (undefined: not read yet; null: none configured). */
  private urlsConfig: Promise<UrlsConfig | null> | undefined;
  constructor(managed: ManagedKeys) {
    this.ca = new IssuerCache((n) => managed.byName(n));
  }

  /** A storage key changed: through this mount, or elsewhere (Vault's InvalidateKey). */
  invalidate(key: string): void {
    if (isRegistryKey(key)) this.ca.invalidate();
    else if (key.startsWith(roleKey(''))) this.roles.invalidate(key);
    else if (key === URLS_KEY) this.urlsConfig = undefined;
  }

  /** The URLs written into issued certificates (config/urls), kept until config/urls changes. */
  async urls(s: Storage): Promise<UrlsConfig | undefined> {
    this.urlsConfig ??= loadUrls(s).then((u) => u ?? null);
    const p = this.urlsConfig;
    try {
      return (await p) ?? undefined;
    } catch (e) {
      this.urlsConfig = undefined;
      throw e;
    }
  }

  /** The mount's storage, with every write and delete through it invalidating what it changed. */
  watching(s: Storage): Storage {
    const changed = async (key: string, write: Promise<void>) => {
      try {
        await write;
      } finally {
        this.invalidate(key);
      }
    };
    return { get: (k) => s.get(k), list: (p) => s.list(p), put: (k, v) => changed(k, s.put(k, v)), delete: (k) => changed(k, s.delete(k)) };
  }
}

/** Every PKI path of a mount. */
export function pkiPaths(managed: ManagedKeys, caches: PkiCaches): PathDef[] {
  return [
    ...rootPaths(managed, caches),
    ...signCaPaths(caches),
    ...issuerPaths(caches),
    ...importPaths(caches),
    ...keyManagementPaths(managed, caches),
    ...rolePaths(caches),
    ...issuePaths(caches),
    ...revokePaths(caches),
    ...moreRevokePaths(caches),
    ...fetchPaths(caches),
    ...urlPaths(),
    ...maintenancePaths(caches),
    ...ocspPaths(caches),
    ...tidyPaths(caches),
  ];
}
