// What a secrets engine declares (Vault's framework.Backend, one per engine): its name,
// help, special paths, and how a mount of it is set up. The backend (backend.ts) and the
// gRPC binding (plugin.ts) know engines only through this interface and the registry
// (engines.ts): a new engine is a folder exporting an Engine plus one registry line.
import type { Logger } from '../goplugin/log';
import type { Storage } from '../storage/storage';
import type { PathDef, SystemView } from './framework';
import type { ManagedKeys } from './managed-keys';
import type { SecretType } from './lease';

/** What a mount tells Vault about its paths (Vault's logical.Paths), answered by SpecialPaths. */
export interface SpecialPaths {
  /** Paths that need a root (sudo) token. */
  root: string[];
  /** Readable without a token, as `curl` reads a CA or CRL. */
  unauthenticated: string[];
  /** Storage prefixes kept local to a cluster (not replicated). */
  local_storage: string[];
  /** Storage prefixes Vault seal-wraps (Vault Enterprise): key material. */
  seal_wrap_storage: string[];
  /** Paths whose POST bodies are not JSON (current Vault hands them over as http_raw_body; Vault 1.8 has no such list). */
  binary?: string[];
}

/** What a mount of an engine is given when Vault sets it up. */
export interface MountContext {
  /** The mount's storage in Vault (served back over the broker). */
  storage: Storage;
  /** The mount's managed keys (every mount has them, under managed-keys/). */
  managedKeys: ManagedKeys;
  log: Logger;
  system?: SystemView;
}

/** One mount of an engine: its paths and what it keeps between requests. */
export interface EngineMount {
  paths: PathDef[];
  /** The secret types its responses lease (Vault's framework.Backend Secrets), renewed and revoked by type. */
  secrets?: SecretType[];
  /** The storage its requests use, when not the mount's own (e.g. one that keeps caches fresh on writes). */
  storage?: Storage;
  /** Vault's periodic function: run on the rollback operation, about once a minute. */
  periodic?(): Promise<void>;
  /** A storage key changed elsewhere (Vault's InvalidateKey): drop what was cached of it. */
  invalidate?(key: string): void;
  /** The mount goes away (Cleanup, or the process stops). */
  cleanup?(): Promise<void>;
}

/** A secrets engine, chosen per mount with `vault secrets enable -options=engine=<name>`. */
export interface Engine {
  name: string;
  /** The engine's paragraph of `vault path-help <mount>`. */
  help: string;
  /** Its special paths; the backend adds managed-keys/ to the seal-wrapped prefixes of every engine. */
  specialPaths: SpecialPaths;
  create(ctx: MountContext): EngineMount;
}
