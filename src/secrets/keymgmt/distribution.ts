// Copies of Vault's keys in KMS providers: kms/<name>/key/, kms/<name>/key/<key>,
// kms/<name>/key/<key>/rotate, key/<name>/kms. A distribution is written to storage
// (keymgmt's dist/<kms>/<key>) before any provider call and after each one, so a
// distribution that stops half-way (throttling, 5xx, timeout, a crash) is readable, and
// the next write of the same path resumes it without creating anything twice; removing it
// removes whatever its intents may have created. Nothing reaches a provider unrecorded.
// kms/<name>/key/<key>/replicate (AWS KMS, keys with replica_regions) replicates every
// version's multi-Region KMS key to those regions, and every later sync keeps them so.
import { randomBytes } from 'node:crypto';
import { isKeyError } from '../../keys/errors';
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError, type PathDef } from '../framework';
import { type KeyStore, NAME, materialOf, versionEnabled, type VaultKey } from './keys';
import { serialised } from '../../util/serialised';
import type { KmsStore } from './kms';
import { openTarget } from './providers';
import { unsupported } from './providers/support';
import { PURPOSES, type Distribution, type KmsConfig, type Protection, type Purpose, type Target } from './providers/types';

/** Where each key's distributions to each KMS are recorded, with one lock per distribution. */
export class DistStore {
  private readonly locks = new Map<string, Promise<unknown>>();
  constructor(private readonly storage: Storage) {}
  static path(kms: string, key: string): string {
    return `dist/${kms}/${key}`;
  }
  get(kms: string, key: string): Promise<Distribution | undefined> {
    return getJson<Distribution>(this.storage, DistStore.path(kms, key));
  }
  put(d: Distribution): Promise<void> {
    d.updated = new Date().toISOString();
    return putJson(this.storage, DistStore.path(d.kms, d.key), d);
  }
  delete(kms: string, key: string): Promise<void> {
    return this.storage.delete(DistStore.path(kms, key));
  }
  async keysIn(kms: string): Promise<string[]> {
    return (await this.storage.list(`dist/${kms}/`)).filter((k) => !k.endsWith('/'));
  }
  /** The providers (kms names) a key has a distribution in, whatever its state. */
  async kmsOf(key: string): Promise<string[]> {
    const out: string[] = [];
    for (const dir of await this.storage.list('dist/')) {
      const kms = dir.replace(/\/$/, '');
      if (await this.storage.get(DistStore.path(kms, key))) out.push(kms);
    }
    return out;
  }
  locked<T>(kms: string, key: string, fn: () => Promise<T>): Promise<T> {
    return serialised(this.locks, `${kms}/${key}`, fn);
  }
}

/** A failure as the status Vault shows: refusals are 400 (bad input or credentials), outages 502. */
function failure(e: unknown): { message: string; status: number } {
  const f = ((): { message: string; status: number } => {
    if (e instanceof UserError) return { message: e.message, status: e.status };
    if (isKeyError(e)) {
      if (e.kind === 'denied') return { message: `the provider refused the credentials: ${e.message}`, status: 400 };
      return { message: e.message, status: e.kind === 'unavailable' ? 502 : e.kind === 'internal' ? 500 : 400 };
    }
    return { message: `internal error: ${(e as Error).message ?? e}`, status: 500 };
  })();
  return { ...f, message: withoutFullStop(f.message) };
}

/** Messages are followed by more sentences: no full stop of their own (text shown, never matched on). */
const withoutFullStop = (text: string) => text.replace(/\.+$/, '');

/** Make the provider hold every version of the key, enabled as min_enabled_version says, the latest current. */
async function sync(t: Target, d: Distribution, k: VaultKey, save: () => Promise<void>): Promise<void> {
  await t.prepare(d, k.type, save);
  for (let n = 1; n <= k.latest_version; n++) {
    if (!k.versions[n]) continue;
    if (d.versions[n]?.state !== 'imported') await t.importVersion(d, n, { type: k.type, bytes: materialOf(k, n) }, save);
  }
  // A replica region that refuses or fails is reported once the rest is done: it holds back
  // neither the other versions nor min_enabled_version and the current version where the
  // provider answers (a version meant to be disabled is disabled there all the same).
  let replication: { e: unknown } | undefined;
  if (d.replicate && t.replicate) {
    for (let n = 1; n <= k.latest_version; n++) {
      const v = d.versions[n];
      if (!k.versions[n] || v?.state !== 'imported') continue;
      if ((d.replica_regions ?? []).some((r) => v.replicas?.[r]?.state !== 'imported')) {
        try {
          await t.replicate(d, n, { type: k.type, bytes: materialOf(k, n) }, save);
        } catch (e) {
          replication ??= { e };
        }
      }
    }
  }
  try {
    for (let n = 1; n <= k.latest_version; n++) {
      const v = d.versions[n];
      if (!v) continue;
      const want = versionEnabled(k, n);
      if (v.enabled !== want || Object.values(v.replicas ?? {}).some((r) => r.state === 'imported' && r.enabled !== want)) {
        await t.setEnabled(d, n, want);
        v.enabled = want;
        await save();
      }
    }
    await t.setCurrent(d, k.latest_version, k.type, save);
  } catch (e) {
    throw replication ? replication.e : e;
  }
  if (replication) throw replication.e;
}

/** The identifiers a consumer needs: AWS key ARN (and alias), GCP crypto key name, Azure key URL. */
export function describeDistribution(cfg: KmsConfig, d: Distribution): Record<string, unknown> {
  const versions: Record<string, string> = {};
  for (const [n, v] of Object.entries(d.versions)) if (v.id) versions[n] = v.id;
  const out: Record<string, unknown> = {
    name: d.name,
    provider: cfg.provider,
    purpose: d.purpose.join(','),
    protection: d.protection,
    state: d.state,
    versions,
  };
  if (cfg.provider === 'awskms') {
    const latest = Object.keys(versions)
      .map(Number)
      .sort((a, b) => b - a)[0];
    if (latest) out.key_id = versions[latest];
    if (d.container && latest && versions[latest].startsWith('arn:')) out.alias = versions[latest].replace(/:key\/.*$/, `:${d.container}`);
    if (d.replica_regions?.length) {
      out.replica_regions = [...d.replica_regions];
      const replicas: Record<string, Record<string, unknown>> = {};
      for (const region of d.replica_regions) {
        const rv: Record<string, string> = {};
        for (const [n, v] of Object.entries(d.versions)) {
          const r = v.replicas?.[region];
          if (r?.id && r.state === 'imported') rv[n] = r.id;
        }
        const top = d.versions[String(latest)]?.replicas?.[region];
        if (!Object.keys(rv).length) continue;
        replicas[region] = {
          versions: rv,
          ...(top?.id && top.state === 'imported' ? { key_id: top.id, ...(d.container ? { alias: top.id.replace(/:key\/.*$/, `:${d.container}`) } : {}) } : {}),
        };
      }
      if (d.replicate) out.replicas = replicas;
    }
  } else if (d.container) out.key_id = d.container;
  // Not "error": Vault shows a response with data.error as a failed request.
  if (d.error) out.last_error = d.error;
  return out;
}

/** Refuse (400) a multi-Region key whose replica_regions include the kms's own region: its primary key is there. */
function checkReplicaRegions(cfg: KmsConfig, k: VaultKey): void {
  if (cfg.provider === 'awskms' && k.replica_regions?.includes(cfg.key_collection))
    throw new UserError(
      `key "${k.name}" has replica_regions ${k.replica_regions.join(',')}, which include ${cfg.key_collection}: that is kms "${cfg.name}"'s key_collection, where the multi-Region primary key is made; replicas go to other regions`,
    );
}

/** Distributes keys to KMS providers, rotates and removes them there, resuming what stopped half-way. */
export class Distributor {
  constructor(
    readonly keys: KeyStore,
    readonly kms: KmsStore,
    readonly dists: DistStore,
  ) {}

  private async withTarget<T>(cfg: KmsConfig, fn: (t: Target) => Promise<T>): Promise<T> {
    const t = await openTarget(cfg);
    try {
      return await fn(t);
    } finally {
      await t.close().catch(() => undefined);
    }
  }

  /** Bring an existing distribution up to date with the key (resume, rotation, min_enabled_version, replication). */
  async resync(cfg: KmsConfig, d: Distribution, k: VaultKey): Promise<void> {
    const save = () => this.dists.put(d);
    d.state = 'distributing';
    await save();
    try {
      await this.withTarget(cfg, (t) => sync(t, d, k, save));
      d.state = 'distributed';
      delete d.error;
      await save();
    } catch (e) {
      const f = failure(e);
      d.state = 'failed';
      d.error = f.message;
      await save();
      throw new UserError(
        `${d.replicate ? 'replicating' : 'distributing'} key "${d.key}" to kms "${d.kms}" stopped: ${f.message}. Its state is recorded: write kms/${d.kms}/key/${d.key} (or .../rotate${d.replicate ? ', .../replicate' : ''}) again to resume, or delete kms/${d.kms}/key/${d.key} to remove what reached the provider`,
        f.status,
        { cause: e },
      );
    }
  }

  /** Distribute (or resume); without `protection`, an existing distribution's is kept, else hsm (Vault's default). */
  async distribute(kmsName: string, keyName: string, purpose: Purpose[], given?: Protection): Promise<Record<string, unknown>> {
    const cfg = await this.kms.require(kmsName);
    const k = await this.keys.require(keyName);
    const protection = given ?? (await this.dists.get(kmsName, keyName))?.protection ?? 'hsm';
    const why = unsupported(cfg.provider, k.type, purpose, protection);
    if (why) throw new UserError(why);
    const replicaRegions = cfg.provider === 'awskms' ? (k.replica_regions ?? []) : [];
    checkReplicaRegions(cfg, k);
    return this.dists.locked(kmsName, keyName, async () => {
      let d = await this.dists.get(kmsName, keyName);
      if (d) {
        if (d.state === 'removing')
          throw new UserError(`key "${keyName}" is being removed from kms "${kmsName}": delete kms/${kmsName}/key/${keyName} again to finish first`);
        if (d.purpose.join(',') !== purpose.join(',') || d.protection !== protection) {
          throw new UserError(
            `key "${keyName}" is already distributed to kms "${kmsName}" with purpose ${d.purpose.join(',')} and protection ${d.protection}; these cannot change after distribution (remove it first)`,
          );
        }
        await this.resync(cfg, d, k);
        return describeDistribution(cfg, d);
      }
      d = {
        kms: kmsName,
        key: keyName,
        purpose,
        protection,
        state: 'distributing',
        versions: {},
        ...(replicaRegions.length ? { replica_regions: [...replicaRegions] } : {}),
        name: `${keyName.replace(/[^A-Za-z0-9_-]/g, '-')}-${Math.floor(Date.now() / 1000)}`,
        nonce: randomBytes(12).toString('hex'),
        updated: '',
      };
      const save = () => this.dists.put(d!);
      // Recorded only while the kms and the key still exist: a concurrent delete of either
      // sees this record, or this sees it gone (no distribution Vault cannot remove).
      await this.kms.locked(kmsName, () =>
        this.keys.update(keyName, async (key) => {
          if (!key) throw new UserError(`key "${keyName}" not found`);
          await this.kms.require(kmsName);
          await save();
          return { result: undefined };
        }),
      );
      try {
        await this.withTarget(cfg, (t) => sync(t, d!, k, save));
      } catch (e) {
        const f = failure(e);
        // A refusal (400) will not succeed on retry: undo what reached the provider.
        if (f.status === 400 && (await this.rollBack(cfg, d))) {
          throw new UserError(`distributing key "${keyName}" to kms "${kmsName}" failed: ${f.message} (rolled back: nothing was left in the provider)`, 400, {
            cause: e,
          });
        }
        d.state = 'failed';
        d.error = f.message;
        await save();
        throw new UserError(
          `distributing key "${keyName}" to kms "${kmsName}" stopped: ${f.message}. Its state is recorded: write kms/${kmsName}/key/${keyName} again with the same purpose and protection to resume, or delete it to remove what reached the provider`,
          f.status,
          { cause: e },
        );
      }
      d.state = 'distributed';
      await save();
      return describeDistribution(cfg, d);
    });
  }

  /** Remove a new distribution's traces from the provider and storage; false if that failed too. */
  private async rollBack(cfg: KmsConfig, d: Distribution): Promise<boolean> {
    try {
      // Nothing created yet (e.g. refused before the first call): no provider call needed.
      const empty = Object.keys(d.versions).length === 0 && !(cfg.provider === 'awskms' && d.container);
      if (!empty) await this.withTarget(cfg, (t) => t.remove(d, () => this.dists.put(d)));
      await this.dists.delete(d.kms, d.key);
      return true;
    } catch {
      return false;
    }
  }

  /** Replicate a distributed multi-Region key to the key's replica_regions (AWS KMS), and keep it so from then on. */
  async replicate(kmsName: string, keyName: string): Promise<Record<string, unknown>> {
    const cfg = await this.kms.require(kmsName);
    if (cfg.provider !== 'awskms') throw new UserError(`replication is for AWS KMS (awskms) providers only; kms "${kmsName}" is ${cfg.provider}`);
    const k = await this.keys.require(keyName);
    if (!k.replica_regions?.length)
      throw new UserError(`key "${keyName}" does not have replica_regions: they are given when the key is created (type aes256-gcm96)`);
    checkReplicaRegions(cfg, k);
    return this.dists.locked(kmsName, keyName, async () => {
      const d = await this.dists.get(kmsName, keyName);
      if (!d) throw new UserError(`key "${keyName}" is not distributed to kms "${kmsName}": distribute it first (write kms/${kmsName}/key/${keyName})`);
      if (d.state === 'removing')
        throw new UserError(`key "${keyName}" is being removed from kms "${kmsName}": delete kms/${kmsName}/key/${keyName} again to finish first`);
      if (!d.replica_regions?.length)
        throw new UserError(
          `key "${keyName}" was distributed to kms "${kmsName}" as single-Region KMS keys, which cannot be replicated: remove it (delete kms/${kmsName}/key/${keyName}) and distribute it again`,
        );
      if (!d.replicate) {
        d.replicate = true;
        await this.dists.put(d);
      }
      await this.resync(cfg, d, k);
      return describeDistribution(cfg, d);
    });
  }

  async remove(kmsName: string, keyName: string): Promise<void> {
    const cfg = await this.kms.require(kmsName);
    await this.dists.locked(kmsName, keyName, async () => {
      const d = await this.dists.get(kmsName, keyName);
      if (!d) return;
      const save = () => this.dists.put(d);
      d.state = 'removing';
      await save();
      try {
        await this.withTarget(cfg, (t) => t.remove(d, save));
      } catch (e) {
        const f = failure(e);
        d.error = f.message;
        await save();
        throw new UserError(`removing key "${keyName}" from kms "${kmsName}" stopped: ${f.message}. Delete again to finish`, f.status, { cause: e });
      }
      await this.dists.delete(kmsName, keyName);
    });
  }

  /** After a rotation or a min_enabled_version change: update every provider; failures become warnings. */
  async propagate(k: VaultKey): Promise<string[]> {
    const warnings: string[] = [];
    for (const kmsName of await this.dists.kmsOf(k.name)) {
      try {
        await this.dists.locked(kmsName, k.name, async () => {
          const d = await this.dists.get(kmsName, k.name);
          if (!d || d.state === 'removing') return;
          await this.resync(await this.kms.require(kmsName), d, (await this.keys.get(k.name)) ?? k);
        });
      } catch (e) {
        warnings.push(failure(e).message);
      }
    }
    return warnings;
  }
}

/** The kms/<kms>/key/<key> paths: distribute, read, rotate, remove. */
export function distributionPaths(x: Distributor): PathDef[] {
  const kmsName = `(?<name>${NAME})`;
  const keyName = `(?<key_name>${NAME})`;
  const names = {
    name: { type: 'string', description: 'Name of the KMS provider.' },
    key_name: { type: 'string', description: 'Name of the key.' },
  } as const;
  return [
    {
      pattern: `kms/${kmsName}/key/?`,
      fields: { name: names.name },
      synopsis: 'List the keys distributed to a KMS provider.',
      description: 'Keys with a distribution in this provider, in any state (distributed, failed, being removed).',
      operations: { list: async (r) => ({ data: { keys: await x.dists.keysIn(r.data.str('name')) } }) },
    },
    {
      pattern: `kms/${kmsName}/key/${keyName}`,
      fields: {
        ...names,
        purpose: {
          type: 'array',
          description: 'What the key may do in the provider: encrypt, decrypt, sign, verify, wrap, unwrap (comma-separated or a list).',
        },
        protection: {
          type: 'string',
          default: 'hsm',
          allowed: ['hsm', 'software'],
          description:
            'Where the provider keeps the key: hsm (default for a new distribution) or software; writing an existing distribution again keeps its own.',
        },
      },
      synopsis: 'Distribute a key to a KMS provider, read its copy there, or remove it from the provider.',
      description:
        "The key material is wrapped with the provider's import protocol (AWS GetParametersForImport/ImportKeyMaterial, Google import jobs, Azure importKey). Every version goes; versions below min_enabled_version are disabled there. Purpose and protection cannot change afterwards. Writing again resumes a distribution that stopped half-way. Removing deletes the copy from the provider (AWS: deletion scheduled after 7 days; Google: versions destroyed; Azure: key deleted), never from Vault.",
      existence: async (r) => (await x.dists.get(r.data.str('name'), r.data.str('key_name'))) !== undefined,
      operations: {
        update: async (r) => {
          const raw = r.data.get<unknown[]>('purpose');
          if (!r.data.has('purpose')) throw new UserError('missing required field "purpose"');
          const purpose = [...new Set(raw.map((p) => String(p).trim().toLowerCase()))];
          const bad = purpose.filter((p) => !(PURPOSES as readonly string[]).includes(p));
          if (bad.length) throw new UserError(`purpose: unknown ${bad.map((b) => JSON.stringify(b.slice(0, 20))).join(', ')} (use ${PURPOSES.join(', ')})`);
          purpose.sort((a, b) => PURPOSES.indexOf(a as Purpose) - PURPOSES.indexOf(b as Purpose));
          const protection = r.data.has('protection') ? (r.data.str('protection') as Protection) : undefined;
          return { data: await x.distribute(r.data.str('name'), r.data.str('key_name'), purpose as Purpose[], protection) };
        },
        read: async (r) => {
          const d = await x.dists.get(r.data.str('name'), r.data.str('key_name'));
          if (!d) return undefined;
          return { data: describeDistribution(await x.kms.require(d.kms), d) };
        },
        delete: async (r) => {
          await x.remove(r.data.str('name'), r.data.str('key_name'));
          return undefined;
        },
      },
    },
    {
      pattern: `kms/${kmsName}/key/${keyName}/rotate`,
      fields: names,
      synopsis: "Put the key's latest version in the provider (and finish any unfinished distribution).",
      description:
        'Imports the versions the provider does not have yet, applies min_enabled_version, and makes the latest version current (AWS alias, Google primary version).',
      operations: {
        update: async (r) => {
          const [kmsN, keyN] = [r.data.str('name'), r.data.str('key_name')];
          const cfg = await x.kms.require(kmsN);
          return x.dists.locked(kmsN, keyN, async () => {
            const d = await x.dists.get(kmsN, keyN);
            if (!d) throw new UserError(`key "${keyN}" is not distributed to kms "${kmsN}"`);
            if (d.state === 'removing') throw new UserError(`key "${keyN}" is being removed from kms "${kmsN}": delete it again to finish`);
            await x.resync(cfg, d, await x.keys.require(keyN));
            return { data: describeDistribution(cfg, d) };
          });
        },
      },
    },
    {
      pattern: `kms/${kmsName}/key/${keyName}/replicate`,
      fields: names,
      synopsis: "Replicate a distributed key's multi-Region KMS keys to the key's replica_regions (AWS KMS only).",
      description:
        'For a key created with replica_regions and distributed to an awskms provider (each version a multi-Region primary key in its key_collection region): ReplicateKey into each region, then the same key material imported into each replica, and the alias made in each region. From then on rotation, min_enabled_version and removal reach the replicas too. Writing again resumes a replication that stopped half-way.',
      operations: { update: async (r) => ({ data: await x.replicate(r.data.str('name'), r.data.str('key_name')) }) },
    },
    {
      pattern: `key/(?<name>${NAME})/kms/?`,
      fields: { name: { type: 'string', description: 'Name of the key.' } },
      synopsis: 'List the KMS providers a key is distributed to.',
      description: 'Providers holding a distribution of this key, in any state.',
      operations: { list: async (r) => ({ data: { keys: await x.dists.kmsOf(r.data.str('name')) } }) },
    },
  ];
}
