// What the distribution engine needs from a KMS provider, and the records it keeps.
import type { KeyType } from '../keys';

/** The KMS providers keymgmt distributes to. */
export const PROVIDERS = ['awskms', 'gcpckms', 'azurekeyvault'] as const;
/** One of PROVIDERS. */
export type ProviderName = (typeof PROVIDERS)[number];
/** What a distributed key may be used for in the provider. */
export const PURPOSES = ['encrypt', 'decrypt', 'sign', 'verify', 'wrap', 'unwrap'] as const;
/** One of PURPOSES. */
export type Purpose = (typeof PURPOSES)[number];
/** Where the provider keeps the key: its HSMs or software. */
export type Protection = 'hsm' | 'software';

/** A kms/<name> configuration as stored (credentials included: never returned). */
export interface KmsConfig {
  name: string;
  provider: ProviderName;
  key_collection: string;
  credentials: Record<string, string>;
  /** Overrides for private endpoints and emulators. */
  endpoint?: string;
  endpoint_ca?: string;
  authority_host?: string;
}

/** One Vault key version in the provider. Providers keep their own fields here. */
export interface VersionRecord {
  /**
   * pending: nothing asked of the provider yet; creating/importing: a call that creates
   * something was made and may have succeeded unseen (resume must look for it first);
   * imported: the material is in the provider.
   */
  state: 'pending' | 'creating' | 'importing' | 'imported';
  /** The provider's identifier of this version (AWS key ARN, GCP version name, Azure key id). */
  id?: string;
  enabled?: boolean;
  /** GCP: the import jobs used for this version, to find a version whose import reply was lost. */
  jobs?: string[];
  /** AWS multi-Region keys: this version's replica in each region it was replicated to. */
  replicas?: Record<string, ReplicaRecord>;
}

/**
 * One version's replica in one AWS region. pending: nothing asked; creating: ReplicateKey
 * was sent and may have succeeded unseen (resume asks the primary key for its replicas
 * first); importing: the replica exists, its material is not in yet; imported: done.
 */
export interface ReplicaRecord {
  state: 'pending' | 'creating' | 'importing' | 'imported';
  /** The replica's key ARN (the primary's key id in the replica's region). */
  id?: string;
  enabled?: boolean;
}

/** keymgmt/dist/<kms>/<key>: a key's copy in one provider, written before every provider call. */
export interface Distribution {
  kms: string;
  key: string;
  purpose: Purpose[];
  protection: Protection;
  /** The provider-side name: `<key>-<unix time>` (AWS alias hashicorp/<name>, GCP crypto key id, Azure key name). */
  name: string;
  /** Marks what this distribution created in the provider (tags, labels, descriptions). */
  nonce: string;
  state: 'distributing' | 'distributed' | 'failed' | 'removing';
  /** GCP crypto key resource name / AWS alias name, once created. */
  container?: string;
  /** AWS: the key's replica_regions, when it has any: every version is a multi-Region primary key. */
  replica_regions?: string[];
  /** AWS: replication was asked for (kms/<kms>/key/<key>/replicate); from then on every version is replicated to every region. */
  replicate?: boolean;
  versions: Record<string, VersionRecord>;
  error?: string;
  updated: string;
}

/** What the provider needs to hold one version. */
export interface Material {
  type: KeyType;
  /** Raw AES key, or PKCS#8 DER of the private key. */
  bytes: Buffer;
}

/** Store the distribution record now (before a provider call that creates something). */
export type Save = () => Promise<void>;

/** One configured provider, as the distribution engine drives it. */
export interface Target {
  /** Create what holds all versions (GCP crypto key); idempotent. */
  prepare(d: Distribution, type: KeyType, save: Save): Promise<void>;
  /** Put one version in the provider; records intent through `save` before each creating call; resumable. */
  importVersion(d: Distribution, n: number, m: Material, save: Save): Promise<void>;
  setEnabled(d: Distribution, n: number, enabled: boolean): Promise<void>;
  /** Make version n the one the provider uses for new operations (AWS alias, GCP primary). */
  setCurrent(d: Distribution, n: number, type: KeyType, save: Save): Promise<void>;
  /** AWS: put version n (imported in the primary region) in every replica region with the same material; records intent through `save`; resumable. */
  replicate?(d: Distribution, n: number, m: Material, save: Save): Promise<void>;
  /** Remove everything `d` records (and anything its unfinished intents may have created); idempotent. */
  remove(d: Distribution, save: Save): Promise<void>;
  close(): Promise<void>;
}
