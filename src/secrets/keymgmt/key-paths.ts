// key/, key/<name>, key/<name>/rotate: keys Vault owns. Rotation and min_enabled_version
// reach every provider the key is distributed to (as Vault Enterprise does); a provider
// that cannot be updated is reported in the response's warnings and its distribution is
// recorded as failed, to be resumed with kms/<kms>/key/<key>/rotate.
import { UserError, type PathDef } from '../framework';
import { KEY_TYPES, NAME, describeKey, newKey, replicaRegions, rotated, type KeyType, type VaultKey } from './keys';
import type { Distributor } from './distribution';

/** Refuse replica_regions on an existing key unless they are the ones it was created with (they cannot change). */
function sameReplicaRegions(k: VaultKey, given: string[] | undefined): void {
  if (given === undefined) return;
  const want = [...new Set(given.map((g) => g.trim()).filter(Boolean))].sort().join(',');
  const have = [...(k.replica_regions ?? [])].sort().join(',');
  if (want !== have) throw new UserError(`replica_regions cannot change after the key is created (key "${k.name}" has ${have || 'none'})`);
}

/** The key/<name> paths: create, read, rotate, configure, delete, list. */
export function keyPaths(x: Distributor): PathDef[] {
  const name = { type: 'string', description: 'Name of the key.' } as const;
  return [
    {
      pattern: 'key/?',
      fields: {},
      synopsis: 'List the keys.',
      description: 'Names of the keys this mount owns.',
      operations: { list: async () => ({ data: { keys: await x.keys.list() } }) },
    },
    {
      pattern: `key/(?<name>${NAME})`,
      fields: {
        name,
        type: { type: 'string', default: 'rsa-2048', allowed: KEY_TYPES, description: 'Key type (at creation; cannot change).' },
        min_enabled_version: { type: 'int', description: 'Versions below this are disabled in every KMS provider the key is distributed to (0: all enabled).' },
        deletion_allowed: { type: 'bool', description: 'Allow deleting the key (it must also be removed from every KMS provider).' },
        replica_regions: {
          type: 'strings',
          description:
            'AWS regions to replicate the key to as a multi-Region KMS key (aes256-gcm96 keys; at creation only; comma-separated or a list). Distributing to an awskms provider makes a multi-Region primary key in its key_collection region; kms/<kms>/key/<key>/replicate makes the replicas.',
        },
      },
      synopsis: 'Create, read, update or delete a key.',
      description:
        "Vault generates and keeps the key material (in its storage); reads return each version's creation time and, for asymmetric keys, its public key, never private material.",
      existence: async (r) => (await x.keys.get(r.data.str('name'))) !== undefined,
      operations: {
        create: async (r) => {
          const n = r.data.str('name');
          return x.keys.update(n, async (existing) => {
            if (existing) {
              if (r.data.has('type') && r.data.str('type') !== existing.type)
                throw new UserError(`key "${n}" exists with type ${existing.type}; the type cannot change`);
              sameReplicaRegions(existing, r.data.has('replica_regions') ? r.data.get<string[]>('replica_regions') : undefined);
              return { result: { data: describeKey(existing) } };
            }
            const type = r.data.str('type') as KeyType;
            const regions = r.data.has('replica_regions') ? replicaRegions(type, r.data.get<string[]>('replica_regions')) : [];
            if (r.data.has('min_enabled_version')) throw new UserError('min_enabled_version can be set once the key exists');
            const k = await newKey(n, type);
            if (r.data.has('deletion_allowed')) k.deletion_allowed = r.data.bool('deletion_allowed');
            if (regions.length) k.replica_regions = regions;
            return { key: k, result: { data: describeKey(k) } };
          });
        },
        update: async (r) => {
          const n = r.data.str('name');
          let minChanged = false;
          const k = await x.keys.update(n, async (p) => {
            if (!p) throw new UserError(`key "${n}" not found`);
            if (r.data.has('type') && r.data.str('type') !== p.type) throw new UserError('type cannot change after creation');
            sameReplicaRegions(p, r.data.has('replica_regions') ? r.data.get<string[]>('replica_regions') : undefined);
            const next = { ...p };
            if (r.data.has('min_enabled_version')) {
              const v = r.data.int('min_enabled_version');
              if (v < 0 || v > p.latest_version) throw new UserError(`min_enabled_version must be between 0 and the latest version ${p.latest_version}`);
              minChanged = v !== p.min_enabled_version;
              next.min_enabled_version = v;
            }
            if (r.data.has('deletion_allowed')) next.deletion_allowed = r.data.bool('deletion_allowed');
            return { key: next, result: next };
          });
          const warnings = minChanged ? await x.propagate(k) : [];
          return { data: describeKey(k), ...(warnings.length ? { warnings } : {}) };
        },
        read: async (r) => {
          const k = await x.keys.get(r.data.str('name'));
          return k ? { data: describeKey(k) } : undefined;
        },
        delete: async (r) => {
          const n = r.data.str('name');
          await x.keys.update(n, async (k) => {
            if (!k) return { result: undefined };
            if (!k.deletion_allowed) throw new UserError(`deletion is not allowed for key "${n}" (set deletion_allowed=true first)`);
            const where = await x.dists.kmsOf(n);
            if (where.length)
              throw new UserError(`key "${n}" is distributed to kms ${where.join(', ')}: remove it from each first (delete kms/<name>/key/${n})`);
            return { key: null, result: undefined };
          });
          return undefined;
        },
      },
    },
    {
      pattern: `key/(?<name>${NAME})/rotate`,
      fields: { name },
      synopsis: 'Rotate a key: a new version, made current here and in every KMS provider the key is distributed to.',
      description:
        'The new version is imported into each provider and made the one used for new operations (AWS alias, Google primary version, Azure latest version).',
      operations: {
        update: async (r) => {
          const n = r.data.str('name');
          const k = await x.keys.update(n, async (p) => {
            if (!p) throw new UserError(`key "${n}" not found`);
            const next = await rotated(p);
            return { key: next, result: next };
          });
          const warnings = await x.propagate(k);
          return { data: describeKey(k), ...(warnings.length ? { warnings } : {}) };
        },
      },
    },
  ];
}
