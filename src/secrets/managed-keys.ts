// managed-keys/<type>/<name>: managed key configuration inside the mount, and
// managed-keys/<type>/<name>/test/sign. The config (secrets included) lives in Vault's
// storage, encrypted by Vault's barrier and marked for seal wrapping; reads never return
// the secret fields. Opened keys are cached per mount and dropped when their config changes.
import { BACKEND_FIELDS, COMMON_FIELDS, parseKeyConfig, publicView } from '../keys/config';
import { loadBackend, openManagedKey, selfTest, type ManagedKey } from '../keys';
import { keyErrorToUser } from './key-errors';
import { getJson, putJson, type Storage } from '../storage/storage';
import { UserError, type FieldDef, type PathDef, type Request, type Response } from './framework';
import { describeDefault, nameGroup, type Field } from '../schema';
import { serialised } from '../util/serialised';

export { keyErrorToUser } from './key-errors';

const TYPES = Object.keys(BACKEND_FIELDS).join('|');
const PREFIX = 'managed-keys/';
const storageKey = (type: string, name: string) => `${PREFIX}${type}/${name}`;

/** Every managed-key field, for validation and help; the per-type schema checks the rest. Built once, shared by every mount. */
let allFieldsTable: Record<string, FieldDef> | undefined;
function allFields(): Record<string, FieldDef> {
  allFieldsTable ??= buildAllFields();
  return allFieldsTable;
}

function buildAllFields(): Record<string, FieldDef> {
  const out: Record<string, FieldDef> = {
    type: { type: 'string', description: `backend type: ${TYPES.replace(/\|/g, ', ')}` },
    name: { type: 'string', description: 'name of the managed key' },
  };
  for (const [k, f] of Object.entries(COMMON_FIELDS)) out[k] = { type: 'raw', description: f.description };
  for (const [type, fields] of Object.entries(BACKEND_FIELDS)) {
    for (const [k, f] of Object.entries<Field>(fields)) {
      const prev = out[k];
      const def = describeDefault(f);
      const text = `${type}: ${f.description}${def === undefined ? '' : ` (default ${def})`}`;
      out[k] = { type: 'raw', description: prev ? `${prev.description}; ${text}` : text };
    }
  }
  return out;
}

/** A mount's managed keys: their paths, and the opened keys cached per mount. */
export class ManagedKeys {
  private readonly open = new Map<string, Promise<ManagedKey>>();
  // Bumped whenever a config is written, deleted or invalidated: a read begun before is stale.
  private readonly generations = new Map<string, number>();
  /** Writes and deletes of one config run one at a time (serialised), so the key in use is the stored config's. */
  private readonly writes = new Map<string, Promise<unknown>>();
  constructor(private readonly storage: Storage) {}

  /** The key named `name` of any type (transit and PKI refer to managed keys by name). */
  async byName(name: string): Promise<ManagedKey> {
    const types = Object.keys(BACKEND_FIELDS);
    // An opened key first: this runs on every transit/PKI operation, and probing the
    // other types would cost a storage round trip over the broker each time.
    const cached = types.find((t) => this.open.has(storageKey(t, name)));
    for (const type of cached ? [cached] : types) {
      const k = await this.get(type, name);
      if (k) return k;
    }
    throw new UserError(`managed key "${name}" is not configured (write managed-keys/<type>/${name} first)`);
  }

  async get(type: string, name: string): Promise<ManagedKey | undefined> {
    const sk = storageKey(type, name);
    let p = this.open.get(sk);
    // A config read while the config is written or invalidated may be the old one: read again
    // (a few times; then what was read is used). A key another request opened meanwhile is used.
    for (let attempt = 0; !p; attempt++) {
      const generation = this.generations.get(sk) ?? 0;
      const raw = await getJson<Record<string, unknown>>(this.storage, sk);
      p = this.open.get(sk);
      if (p) break;
      if ((this.generations.get(sk) ?? 0) !== generation && attempt < 3) continue;
      if (!raw) return undefined;
      const opening = openManagedKey(parseKeyConfig(type, name, raw));
      this.open.set(sk, opening);
      // retry on next use (unless a newer key has taken its place)
      opening.catch(() => {
        if (this.open.get(sk) === opening) this.open.delete(sk);
      });
      p = opening;
    }
    try {
      return await p;
    } catch (e) {
      throw keyErrorToUser(e);
    }
  }

  invalidate(storagePath: string): void {
    this.generations.set(storagePath, (this.generations.get(storagePath) ?? 0) + 1);
    const p = this.open.get(storagePath);
    this.open.delete(storagePath);
    void p?.then(
      (k) => k.close(),
      () => undefined,
    );
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(
      all.map((p) =>
        p.then(
          (k) => k.close(),
          () => undefined,
        ),
      ),
    );
  }

  /** managed-keys/<type>/<name> written: the key opened (a bad config fails here), the config stored, the key put in use. */
  private async write(r: Request, fields: Record<string, FieldDef>): Promise<Response> {
    const type = r.data.str('type');
    const kname = r.data.str('name');
    const raw: Record<string, unknown> = {};
    for (const k of Object.keys(fields)) if (k !== 'type' && k !== 'name' && r.data.has(k)) raw[k] = r.data.get(k);
    let parsed: ReturnType<typeof parseKeyConfig>;
    try {
      parsed = parseKeyConfig(type, kname, raw);
    } catch (e) {
      throw keyErrorToUser(e);
    }
    let key: ManagedKey;
    let toStore: Record<string, string> = {};
    try {
      const backend = await loadBackend(parsed.backend);
      key = await backend.open(parsed);
      // A key held in this process (a generated software key) must survive restarts:
      // what its backend asks to keep goes into Vault's storage with the config.
      toStore = backend.fieldsToStore?.(key) ?? {};
    } catch (e) {
      throw keyErrorToUser(e);
    }
    for (const [k, v] of Object.entries(toStore)) if (!raw[k]) raw[k] = v;
    try {
      await putJson(this.storage, storageKey(type, kname), raw);
    } catch (e) {
      // Not stored, so not the mount's key: nothing else will ever close it.
      await key.close().catch(() => undefined);
      throw e;
    }
    this.invalidate(storageKey(type, kname));
    this.open.set(storageKey(type, kname), Promise.resolve(key));
    return { data: { ...publicView(parsed), ...describe(key) } };
  }

  paths(): PathDef[] {
    const fields = allFields();
    const name = `(?<type>${TYPES})/${nameGroup()}`;
    return [
      {
        pattern: `managed-keys/${name}`,
        fields,
        synopsis: 'Configure a managed key: an HSM or cloud KMS key that transit and PKI use without ever holding its private material.',
        description:
          'Field names follow Vault Enterprise managed keys. The key is opened (and generated, if allow_generate_key is set and it does not exist) when the configuration is written, so a bad library, PIN, credential or key name fails the write. Secret fields (pin, secret_key, client_secret, credentials, private_key) are stored in Vault, seal-wrapped where the seal allows, and never returned.',
        existence: async (r) => (await this.storage.get(storageKey(r.data.str('type'), r.data.str('name')))) !== undefined,
        operations: {
          // One write or delete of a config at a time: two at once could store one config
          // and leave the other's key in use.
          update: (r) => serialised(this.writes, storageKey(r.data.str('type'), r.data.str('name')), () => this.write(r, fields)),
          read: async (r) => {
            const type = r.data.str('type');
            const kname = r.data.str('name');
            const raw = await getJson<Record<string, unknown>>(this.storage, storageKey(type, kname));
            if (!raw) return undefined;
            const key = await this.get(type, kname);
            return { data: { ...publicView(parseKeyConfig(type, kname, raw)), ...(key ? describe(key) : {}) } };
          },
          delete: (r) => {
            const sk = storageKey(r.data.str('type'), r.data.str('name'));
            return serialised(this.writes, sk, async () => {
              await this.storage.delete(sk);
              this.invalidate(sk);
              return undefined;
            });
          },
        },
      },
      {
        pattern: `managed-keys/(?<type>${TYPES})/?`,
        fields: { type: fields.type },
        synopsis: 'List the managed keys of a type.',
        description: 'Names of the configured managed keys of this backend type.',
        operations: { list: async (r) => ({ data: { keys: (await this.storage.list(`${PREFIX}${r.data.str('type')}/`)).filter((k) => !k.endsWith('/')) } }) },
      },
      {
        pattern: `managed-keys/${name}/test/sign`,
        fields: { type: fields.type, name: fields.name },
        synopsis: 'Check a managed key end to end.',
        description:
          'Signs a random message and verifies the signature with the public key; for symmetric keys encrypts and decrypts a random value. Returns the algorithm used and how long it took.',
        operations: {
          update: async (r) => {
            const key = await this.get(r.data.str('type'), r.data.str('name'));
            if (!key) throw new UserError(`managed key ${r.data.str('type')}/${r.data.str('name')} is not configured`, 404);
            try {
              return { data: { ...(await selfTest(key)) } };
            } catch (e) {
              throw keyErrorToUser(e);
            }
          },
        },
      },
    ];
  }
}

function describe(k: ManagedKey): Record<string, unknown> {
  const d = k.describe();
  return { key_spec: d.spec, algorithms: d.algorithms, hardware_backed: d.hardware, usages: d.usages };
}
