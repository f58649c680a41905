// Keys the keymgmt engine owns: key/, key/<name>, key/<name>/rotate. The material of
// every version is in Vault's storage (keymgmt/key/<name>, encrypted by Vault's barrier),
// never in a response or a log line; reads give creation times and public keys only.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { getJson, putJson, type Storage } from '../../storage/storage';
import { newVersion } from '../transit/policy';
import { UserError } from '../framework';
import { NAME_PATTERN } from '../../schema';
import { serialised } from '../../util/serialised';

/** The key types keymgmt creates (Vault Enterprise's names). */
export const KEY_TYPES = ['aes256-gcm96', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521'] as const;
/** One of KEY_TYPES. */
export type KeyType = (typeof KEY_TYPES)[number];
/** Key and KMS names: the plugin's one name rule. */
export const NAME = NAME_PATTERN;

/** One version of a key: its material and when it was made. */
export interface KeyVersion {
  creation_time: string;
  /** base64 of the AES key, or PKCS#8 PEM of the private key. */
  key: string;
}

/** A key Vault owns, with its versions, as stored. */
export interface VaultKey {
  name: string;
  type: KeyType;
  deletion_allowed: boolean;
  /** Versions below this are disabled in every provider (0: all enabled). */
  min_enabled_version: number;
  latest_version: number;
  versions: Record<string, KeyVersion>;
  /** AWS regions the key's multi-Region KMS keys are replicated to (set at creation only). */
  replica_regions?: string[];
}

/** Is the key type AES? */
export const isSymmetric = (t: KeyType) => t === 'aes256-gcm96';
/** The algorithm family of a key type. */
export const keyFamily = (t: KeyType): 'aes' | 'rsa' | 'ec' => (t === 'aes256-gcm96' ? 'aes' : t.startsWith('rsa-') ? 'rsa' : 'ec');

/** A fresh version, generated the way transit generates its keys. */
async function generate(type: KeyType): Promise<KeyVersion> {
  const { creation_time, key } = await newVersion(type);
  return { creation_time, key: key! };
}

/** A new key with one fresh version. */
export async function newKey(name: string, type: KeyType): Promise<VaultKey> {
  return { name, type, deletion_allowed: false, min_enabled_version: 0, latest_version: 1, versions: { 1: await generate(type) } };
}

/** An AWS region's form: us-east-1, ap-southeast-2, us-gov-west-1. */
export const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** Regions a key may be replicated to at most (AWS has fewer). */
const MAX_REPLICA_REGIONS = 32;

/** replica_regions as given at key creation, checked: AWS regions, no repeats, aes256-gcm96 keys only (as Vault). */
export function replicaRegions(type: KeyType, given: readonly string[]): string[] {
  const regions = [...new Set(given.map((r) => r.trim()).filter(Boolean))];
  if (!regions.length) return [];
  if (type !== 'aes256-gcm96') throw new UserError(`replica_regions: multi-Region keys are aes256-gcm96 keys only, not ${type}`);
  if (regions.length > MAX_REPLICA_REGIONS) throw new UserError(`replica_regions: at most ${MAX_REPLICA_REGIONS} regions`);
  const bad = regions.find((r) => !AWS_REGION.test(r));
  if (bad) throw new UserError(`replica_regions: ${JSON.stringify(bad.slice(0, 30))} is not an AWS region such as us-east-1`);
  return regions;
}

/** The key with a fresh version added as the latest. */
export async function rotated(k: VaultKey): Promise<VaultKey> {
  const n = k.latest_version + 1;
  return { ...k, latest_version: n, versions: { ...k.versions, [n]: await generate(k.type) } };
}

/** Is version n enabled by min_enabled_version? */
export const versionEnabled = (k: VaultKey, n: number) => n >= k.min_enabled_version;

/** The material of one version as providers import it: raw AES bytes, or PKCS#8 DER. */
export function materialOf(k: VaultKey, n: number): Buffer {
  const v = k.versions[String(n)];
  if (!v) throw new UserError(`key "${k.name}" has no version ${n}`);
  if (isSymmetric(k.type)) return Buffer.from(v.key, 'base64');
  return createPrivateKey(v.key).export({ type: 'pkcs8', format: 'der' });
}

/** The key as a read returns it: versions and public keys, never private material. */
export function describeKey(k: VaultKey): Record<string, unknown> {
  const keys: Record<string, unknown> = {};
  for (const [n, v] of Object.entries(k.versions)) {
    keys[n] = isSymmetric(k.type)
      ? { creation_time: v.creation_time }
      : { creation_time: v.creation_time, public_key: createPublicKey(v.key).export({ type: 'spki', format: 'pem' }) };
  }
  return {
    name: k.name,
    type: k.type,
    deletion_allowed: k.deletion_allowed,
    min_enabled_version: k.min_enabled_version,
    latest_version: k.latest_version,
    keys,
    ...(k.replica_regions?.length ? { replica_regions: [...k.replica_regions] } : {}),
  };
}

/** Storage of keys, one read-modify-write at a time per key (rotation and updates cannot lose a version). */
export class KeyStore {
  private readonly locks = new Map<string, Promise<unknown>>();
  constructor(private readonly storage: Storage) {}

  static path(name: string): string {
    return `key/${name}`;
  }

  get(name: string): Promise<VaultKey | undefined> {
    return getJson<VaultKey>(this.storage, KeyStore.path(name));
  }

  async require(name: string): Promise<VaultKey> {
    const k = await this.get(name);
    if (!k) throw new UserError(`key "${name}" not found`);
    return k;
  }

  async list(): Promise<string[]> {
    return (await this.storage.list('key/')).filter((k) => !k.endsWith('/'));
  }

  async update<T>(name: string, fn: (k: VaultKey | undefined) => Promise<{ key?: VaultKey | null; result: T }>): Promise<T> {
    return serialised(this.locks, name, async () => {
      const { key, result } = await fn(await this.get(name));
      if (key === null) await this.storage.delete(KeyStore.path(name));
      else if (key) await putJson(this.storage, KeyStore.path(name), key);
      return result;
    });
  }
}
