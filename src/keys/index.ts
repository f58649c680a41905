// The managed-key backend registry: one line per backend (its field table is named in
// config.ts's BACKEND_FIELDS, whose keys are the Backend type this record must cover). Each
// entry loads its backend's file only when a key of that type is opened, so an SDK costs
// nothing until it is used.
// In the executable the cloud backends are separate bundles (scripts/build.mjs turns the
// `import('./awskms')` etc. of this file into loads of those bundles): keep these imports
// here, in this file, and import nothing of those files statically from the main bundle.
import { parseKeyConfig, type ParsedKeyConfig } from './config';
import type { KeyBackend } from './backend';
import type { Backend, ManagedKey } from './types';

/** The key interface and its option types (see types.ts). */
export type { ManagedKey, KeyDescription, SignOptions, CryptOptions, Usage, Backend, KeySpec } from './types';
/** What a backend declares (see backend.ts). */
export type { KeyBackend } from './backend';
export { KeyError, isKeyError } from './errors';
export { selfTest, exportPublicKey, type SelfTestResult } from './self-test';

const BACKENDS: Record<Backend, () => Promise<KeyBackend>> = {
  software: async () => (await import('./software')).backend,
  pkcs11: async () => (await import('./pkcs11')).backend,
  awskms: async () => (await import('./awskms')).backend,
  gcpckms: async () => (await import('./gcpckms')).backend,
  azurekeyvault: async () => (await import('./azurekeyvault')).backend,
};

/** The backend types the registry knows, in registry order. */
export const BACKEND_TYPES = Object.keys(BACKENDS) as Backend[];

/** The declaration of backend `type`, loading its file (and SDK) on first use. */
export function loadBackend(type: Backend): Promise<KeyBackend> {
  return BACKENDS[type]();
}

/** Open the key a parsed configuration names, through its backend. */
export async function openManagedKey(p: ParsedKeyConfig): Promise<ManagedKey> {
  return (await loadBackend(p.backend)).open(p);
}

/** Parse a raw managed-key configuration and open the key. */
export async function openFromConfig(type: string, name: string, raw: Record<string, unknown>): Promise<ManagedKey> {
  return openManagedKey(parseKeyConfig(type, name, raw));
}
