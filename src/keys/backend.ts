// What one managed-key backend declares. Each backend file (software.ts, pkcs11/,
// awskms.ts, gcpckms.ts, azurekeyvault.ts) exports one `backend`; the registry in
// index.ts lists them, one line each, and loads a backend (and its SDK) only when a key
// of that type is opened. Shared code asks the declaration, never the type name.
import type { Schema } from '../schema';
import type { ParsedKeyConfig } from './config';
import type { Backend, ManagedKey } from './types';

/** A managed-key backend: its type, its configuration fields, how to open its keys, and its optional capabilities. */
export interface KeyBackend {
  /** The managed-key type: the `<type>` of managed-keys/<type>/<name>. */
  readonly type: Backend;
  /** Its configuration fields (its <backend>.fields.ts table, the one config.ts parses with). */
  readonly fields: Schema;
  /** Open the key the configuration names (generating it if allowed and missing). */
  open(config: ParsedKeyConfig): Promise<ManagedKey>;
  /**
   * Optional: configuration fields that must be stored with the config for the same key
   * to open again after a restart, when the key lives in this process rather than in a
   * backend (a generated software key's private material). Fields the config already
   * gives are kept as given.
   */
  fieldsToStore?(key: ManagedKey): Record<string, string>;
}

/** An optional string field of a parsed backend config (the config's coercion made it a string or left it out). */
export const optionalString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
