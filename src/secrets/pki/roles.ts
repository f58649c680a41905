// roles/<name>, roles/
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError, type PathDef } from '../framework';
import type { Role } from './certificates';
import { roleKeyBits, type RoleKeyType } from './keys';
import { ROLE_EXTRA_FIELDS, roleExtras, roleView } from './role-fields';
import type { PkiCaches } from './index';

import { nameGroup } from '../../schema';
const NAME = nameGroup();
/** Storage key of a role. */
export const roleKey = (n: string) => `pki/roles/${n}`;
/** A role as stored, or undefined; uncached (issue/ and sign/ use RoleCache). */
export const loadRole = (s: Storage, n: string) => getJson<Role>(s, roleKey(n));

/**
 * Roles as issue/ and sign/ read them, kept per mount until the role is written or deleted
 * through this mount, or Vault invalidates its storage key. Only roles that exist are kept
 * (a request naming no role cannot grow the cache); they are frozen, being shared.
 */
export class RoleCache {
  private readonly roles = new Map<string, Promise<Role | undefined>>();

  get(s: Storage, name: string): Promise<Role | undefined> {
    let p = this.roles.get(name);
    if (!p) {
      p = loadRole(s, name).then((r) => r && deepFreeze(r));
      this.roles.set(name, p);
      const drop = () => {
        if (this.roles.get(name) === p) this.roles.delete(name);
      };
      p.then((r) => {
        if (!r) drop();
      }, drop);
    }
    return p;
  }

  /** `key`: the role's storage key (pki/roles/<name>). */
  invalidate(key: string): void {
    this.roles.delete(key.slice(roleKey('').length));
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** roles/ (LIST) and roles/<name>. */
export function rolePaths(caches: PkiCaches): PathDef[] {
  return [
    {
      pattern: 'roles/?',
      fields: {},
      synopsis: 'List roles.',
      description: 'Names of the roles of this mount.',
      operations: { list: async (r) => ({ data: { keys: (await r.storage.list('pki/roles/')).filter((k) => !k.endsWith('/')) } }) },
    },
    {
      pattern: `roles/${NAME}`,
      fields: {
        name: { type: 'string', description: 'Role name.' },
        allowed_domains: { type: 'strings', default: [], description: 'Domains names may be under (glob patterns with allow_glob_domains).' },
        allow_subdomains: {
          type: 'bool',
          default: false,
          description: 'Allow names under allowed_domains (and wildcards *.<domain> when wildcards are allowed).',
        },
        allow_bare_domains: { type: 'bool', default: false, description: 'Allow the allowed_domains themselves.' },
        allow_glob_domains: { type: 'bool', default: false, description: 'allowed_domains may hold "*" patterns (a "*" spans labels, as in Vault).' },
        allow_wildcard_certificates: {
          type: 'bool',
          default: true,
          description: 'Allow wildcard names (one "*" in the leftmost label); false refuses them even with allow_any_name.',
        },
        allow_any_name: { type: 'bool', default: false, description: 'Allow any name (e.g. CockroachDB client certificates: CN=<sql user>).' },
        allow_localhost: { type: 'bool', default: true, description: 'Allow localhost.' },
        allow_ip_sans: { type: 'bool', default: true, description: 'Allow IP SANs.' },
        enforce_hostnames: {
          type: 'bool',
          default: true,
          description:
            'Names must be valid hostnames. Without it, names matched against allowed_domains must still be DNS names; control characters and spaces are refused always.',
        },
        server_flag: { type: 'bool', default: true, description: 'Add the serverAuth extended key usage.' },
        client_flag: { type: 'bool', default: true, description: 'Add the clientAuth extended key usage.' },
        key_type: {
          type: 'string',
          default: 'rsa',
          allowed: ['ec', 'rsa', 'ed25519', 'any'],
          description: 'Key type for issue/, and the type sign/ CSRs must have ("any": any supported type, sign/ only).',
        },
        key_bits: {
          type: 'int',
          default: 0,
          description: 'ec: 224, 256 (default), 384, 521; rsa: 2048 (default), 3072, 4096, 8192 (sign/ only). The minimum for CSR keys.',
        },
        ttl: { type: 'duration', default: 0, description: "Default validity (default: the mount's default lease TTL)." },
        max_ttl: { type: 'duration', default: 0, description: "Longest validity allowed (0: up to the CA's)." },
        ou: { type: 'strings', default: [], description: 'OU values for issued certificates.' },
        organization: { type: 'strings', default: [], description: 'O values for issued certificates.' },
        ...ROLE_EXTRA_FIELDS,
      },
      synopsis: 'Define which certificates a role may issue.',
      description:
        'Names are checked against allowed_domains (with allow_subdomains/allow_bare_domains), allow_localhost, or allow_any_name; IP SANs need allow_ip_sans.',
      existence: async (r) => (await loadRole(r.storage, r.data.str('name'))) !== undefined,
      operations: {
        update: async (r) => {
          const d = r.data;
          const extras = roleExtras(d);
          const role: Role = {
            allowed_domains: d.get('allowed_domains'),
            allow_subdomains: d.bool('allow_subdomains'),
            allow_bare_domains: d.bool('allow_bare_domains'),
            allow_glob_domains: d.bool('allow_glob_domains'),
            allow_wildcard_certificates: d.bool('allow_wildcard_certificates'),
            allow_any_name: d.bool('allow_any_name'),
            allow_localhost: d.bool('allow_localhost'),
            allow_ip_sans: d.bool('allow_ip_sans'),
            enforce_hostnames: d.bool('enforce_hostnames'),
            server_flag: d.bool('server_flag'),
            client_flag: d.bool('client_flag'),
            key_type: d.str('key_type') as RoleKeyType,
            key_bits: roleKeyBits(d.str('key_type') as RoleKeyType, d.int('key_bits')),
            ttl: d.int('ttl'),
            max_ttl: d.int('max_ttl'),
            ou: d.get('ou'),
            organization: d.get('organization'),
            ...extras,
          } as Role;
          if (role.max_ttl && role.ttl > role.max_ttl) throw new UserError('ttl must not exceed max_ttl');
          // As current Vault: a role names an issuer that exists (or "default").
          if (extras.issuer_ref && extras.issuer_ref !== 'default') (await caches.ca.registry(r.storage)).issuer(extras.issuer_ref);
          await putJson(r.storage, roleKey(d.str('name')), role);
          return { data: roleView(role) };
        },
        read: async (r) => {
          const role = await loadRole(r.storage, r.data.str('name'));
          return role ? { data: roleView(role) } : undefined;
        },
        delete: async (r) => {
          await r.storage.delete(roleKey(r.data.str('name')));
          return undefined;
        },
      },
    },
  ];
}
