// kms/, kms/<name>: where keys are distributed to. Credentials are write-only: stored in
// Vault's storage (barrier-encrypted), never returned, never logged.
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError, type PathDef } from '../framework';
import { NAME } from './keys';
import { serialised } from '../../util/serialised';
import { CREDENTIALS, checkCollection, checkCredentials, parseCredentials, publicView } from './providers/config';
import { PROVIDERS, type KmsConfig, type ProviderName } from './providers/types';

/** The kms/<name> configurations, as stored. */
export class KmsStore {
  private readonly locks = new Map<string, Promise<unknown>>();
  constructor(private readonly storage: Storage) {}
  /** Deleting a kms and recording a new distribution to it exclude each other. */
  locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return serialised(this.locks, name, fn);
  }
  static path(name: string): string {
    return `kms/${name}`;
  }
  get(name: string): Promise<KmsConfig | undefined> {
    return getJson<KmsConfig>(this.storage, KmsStore.path(name));
  }
  async require(name: string): Promise<KmsConfig> {
    const c = await this.get(name);
    if (!c) throw new UserError(`kms "${name}" not found (write kms/${name} with provider and key_collection first)`);
    return c;
  }
  put(c: KmsConfig): Promise<void> {
    return putJson(this.storage, KmsStore.path(c.name), c);
  }
  delete(name: string): Promise<void> {
    return this.storage.delete(KmsStore.path(name));
  }
  async list(): Promise<string[]> {
    return (await this.storage.list('kms/')).filter((k) => !k.endsWith('/'));
  }
}

const credentialHelp = Object.entries(CREDENTIALS)
  .map(
    ([p, f]) =>
      `${p}: ${Object.entries(f)
        .map(([k, d]) => `${k} (${d.description})`)
        .join(', ')}`,
  )
  .join('; ');

/** The kms/<name> paths: configure a provider, read it (never its credentials), delete, list. */
export function kmsPaths(store: KmsStore, distributedKeys: (kms: string) => Promise<string[]>): PathDef[] {
  return [
    {
      pattern: 'kms/?',
      fields: {},
      synopsis: 'List the KMS providers.',
      description: 'Names of the configured KMS providers.',
      operations: { list: async () => ({ data: { keys: await store.list() } }) },
    },
    {
      pattern: `kms/(?<name>${NAME})`,
      fields: {
        name: { type: 'string', description: 'Name of the KMS provider.' },
        provider: { type: 'string', allowed: PROVIDERS, description: 'The KMS: awskms, gcpckms or azurekeyvault. Cannot change after creation.' },
        key_collection: {
          type: 'string',
          description:
            'Where keys go: an AWS region, a Google key ring resource id (projects/.../locations/.../keyRings/...), or an Azure Key Vault name. Cannot change after creation.',
        },
        credentials: {
          type: 'raw',
          description: `Write-only map (or list of key=value). ${credentialHelp}. Without credentials the SDK's default chain is used only if the operator set PLUGIN_AMBIENT_CREDENTIALS=true.`,
        },
        endpoint: { type: 'string', description: 'API endpoint override (private endpoints, tests): AWS KMS URL, Google host:port, Azure Key Vault URL.' },
        endpoint_ca: { type: 'string', description: 'PEM of the CA behind the endpoint override (default: system roots).' },
        authority_host: { type: 'string', description: 'Azure AD authority URL override.' },
      },
      synopsis: 'Configure, read or delete a KMS provider.',
      description:
        'A destination for keys: a provider, a key collection in it, and the credentials to manage keys there. Reads never return the credentials. A provider cannot be deleted while keys are distributed to it.',
      existence: async (r) => (await store.get(r.data.str('name'))) !== undefined,
      operations: {
        update: async (r) => {
          const name = r.data.str('name');
          const old = await store.get(name);
          const provider = (r.data.has('provider') ? r.data.str('provider') : old?.provider) as ProviderName | undefined;
          const collection = r.data.has('key_collection') ? r.data.str('key_collection') : old?.key_collection;
          if (!provider) throw new UserError('missing required field "provider"');
          if (!collection) throw new UserError('missing required field "key_collection"');
          if (old && old.provider !== provider) throw new UserError(`provider cannot change after creation (kms "${name}" is ${old.provider})`);
          if (old && old.key_collection !== collection) throw new UserError('key_collection cannot change after creation');
          checkCollection(provider, collection);
          const c: KmsConfig = {
            name,
            provider,
            key_collection: collection,
            credentials: r.data.has('credentials') ? parseCredentials(provider, r.data.get('credentials')) : (old?.credentials ?? {}),
          };
          for (const f of ['endpoint', 'endpoint_ca', 'authority_host'] as const) {
            const v = r.data.has(f) ? r.data.str(f) : old?.[f];
            if (v) c[f] = v;
          }
          if (c.endpoint && provider !== 'gcpckms' && !/^https?:\/\//.test(c.endpoint)) throw new UserError('endpoint must be an http(s) URL');
          if (c.authority_host && provider !== 'azurekeyvault') throw new UserError('authority_host applies to azurekeyvault only');
          checkCredentials(c);
          await store.put(c);
          return { data: publicView(c) };
        },
        read: async (r) => {
          const c = await store.get(r.data.str('name'));
          return c ? { data: publicView(c) } : undefined;
        },
        delete: async (r) => {
          const name = r.data.str('name');
          await store.locked(name, async () => {
            const keys = await distributedKeys(name);
            if (keys.length) throw new UserError(`kms "${name}" still holds keys ${keys.join(', ')}: remove them first (delete kms/${name}/key/<key>)`);
            await store.delete(name);
          });
          return undefined;
        },
      },
    },
  ];
}
