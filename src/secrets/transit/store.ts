// The key store: policies in the mount's storage, a cache of the parsed JSON, and one
// lock per key name so read-modify-write operations (rotate, config, backup) never lose
// an update. The cryptography on a policy lives in policy.ts, cipher.ts and signature.ts.
import { getJson, putJson, type Storage } from '../../storage/storage';
import { serialised } from '../../util/serialised';
import { UserError } from '../framework';
import { forgetParsed, type Policy } from './policy';

/** A mount's transit keys: read through a cache, and changed under a per-name lock so concurrent updates are never lost. */
export class Policies {
  private readonly cache = new Map<string, Policy>();
  private readonly locks = new Map<string, Promise<unknown>>();
  // Bumped by every write, delete and invalidation of a name: a read that started before one
  // must not put what it read into the cache (it may be older than what was written).
  private readonly generations = new Map<string, number>();
  constructor(private readonly storage: Storage) {}

  static key(name: string): string {
    return `policy/${name}`;
  }

  async get(name: string): Promise<Policy | undefined> {
    const hit = this.cache.get(name);
    if (hit) return hit;
    const generation = this.generations.get(name) ?? 0;
    const p = await getJson<Policy>(this.storage, Policies.key(name));
    if (p && (this.generations.get(name) ?? 0) === generation) this.cache.set(name, p);
    return p;
  }

  async require(name: string): Promise<Policy> {
    const p = await this.get(name);
    if (!p) throw new UserError(`encryption key not found: ${name}`);
    return p;
  }

  /** Read-modify-write one key at a time (rotation, config) so concurrent writes cannot lose a version. */
  async update<T>(name: string, fn: (p: Policy | undefined) => Promise<{ policy?: Policy; result: T }>): Promise<T> {
    return serialised(this.locks, name, async () => {
      this.cache.delete(name);
      const current = await this.get(name);
      const { policy, result } = await fn(current);
      if (policy) {
        this.changed(name);
        await putJson(this.storage, Policies.key(name), policy);
        this.cache.set(name, policy);
        // Versions the new policy no longer has (trimmed, or replaced by a restore): their parsed keys go too.
        if (current) {
          const kept = new Set(Object.values(policy.versions).map((v) => v.key));
          forgetParsed(pemsOf(current).filter((k) => !kept.has(k)));
        }
      }
      return result;
    });
  }

  /** Removes the key; callers hold the name's lock (keys/<name> delete runs inside update). */
  async delete(name: string): Promise<void> {
    const old = this.cache.get(name) ?? (await getJson<Policy>(this.storage, Policies.key(name)));
    this.changed(name);
    await this.storage.delete(Policies.key(name));
    this.cache.delete(name);
    if (old) forgetParsed(pemsOf(old));
  }

  invalidate(name: string): void {
    this.changed(name);
    this.cache.delete(name);
  }

  /** The stored key may differ from any read in flight: those reads no longer fill the cache. */
  private changed(name: string): void {
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
  }
  async list(): Promise<string[]> {
    return (await this.storage.list('policy/')).filter((k) => !k.endsWith('/'));
  }
}

/** The private keys (PEM) of a policy's versions. */
const pemsOf = (p: Policy): string[] => Object.values(p.versions).flatMap((v) => (v.key ? [v.key] : []));
