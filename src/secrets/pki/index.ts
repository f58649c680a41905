// PKI: a CA per mount (its key stored, or a managed key in an HSM/KMS), roles, issue,
// sign, revoke, CRL, and the fetch endpoints, with Vault's API.
import type { Storage } from '../../storage/storage';
import type { PathDef } from '../framework';
import type { ManagedKeys } from '../managed-keys';
import { CA_KEY, CaCache } from './ca';
import { rootPaths } from './root';
import { RoleCache, roleKey, rolePaths } from './roles';
import { issuePaths } from './issue';
import { revokePaths } from './revoke';
import { fetchPaths } from './fetch';
import { URLS_KEY, loadUrls, urlPaths, type UrlsConfig } from './urls';
import { maintenancePaths } from './maintenance';

/** What a PKI mount keeps between requests: its CA (parsed, key imported) and its roles. */
export class PkiCaches {
  readonly ca: CaCache;
  readonly roles = new RoleCache();
  /** config/urls, read once (undefined: not read yet; null: none configured). */
  private urlsConfig: Promise<UrlsConfig | null> | undefined;
  constructor(managed: ManagedKeys) { this.ca = new CaCache((n) => managed.byName(n)); }

  /** A storage key changed: through this mount, or elsewhere (Vault's InvalidateKey). */
  invalidate(key: string): void {
    if (key === CA_KEY) this.ca.invalidate();
    else if (key.startsWith(roleKey(''))) this.roles.invalidate(key);
    else if (key === URLS_KEY) this.urlsConfig = undefined;
  }

  /** The URLs written into issued certificates (config/urls), kept until config/urls changes. */
  async urls(s: Storage): Promise<UrlsConfig | undefined> {
    const p = (this.urlsConfig ??= loadUrls(s).then((u) => u ?? null));
    try { return (await p) ?? undefined; } catch (e) { this.urlsConfig = undefined; throw e; }
  }

  /** The mount's storage, with every write and delete through it invalidating what it changed. */
  watching(s: Storage): Storage {
    const changed = async (key: string, write: Promise<void>) => { try { await write; } finally { this.invalidate(key); } };
    return { get: (k) => s.get(k), list: (p) => s.list(p), put: (k, v) => changed(k, s.put(k, v)), delete: (k) => changed(k, s.delete(k)) };
  }
}

export function pkiPaths(managed: ManagedKeys, caches: PkiCaches): PathDef[] {
  return [...rootPaths(managed), ...rolePaths(), ...issuePaths(caches), ...revokePaths(managed), ...fetchPaths(), ...urlPaths(), ...maintenancePaths(managed, caches)];
}
