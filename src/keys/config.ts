// managed-keys/<type>/<name> configuration, with the field names operators know from
// Vault Enterprise's managed keys. Declared once in the plugin's schema language
// (src/schema): validation, defaults, redaction (the secret fields are never returned or
// logged) and help text come from COMMON_FIELDS and each backend's own field table.
import { isName, missingRequired, nameRule, parseFields, secretValues, type Field, type Schema } from '../schema';
import { keyInvalid } from './errors';
import { AWSKMS_FIELDS } from './awskms.fields';
import { AZUREKEYVAULT_FIELDS } from './azurekeyvault.fields';
import { GCPCKMS_FIELDS } from './gcpckms.fields';
import { PKCS11_FIELDS } from './pkcs11/fields';
import { SOFTWARE_FIELDS } from './software.fields';
import type { Backend, Usage } from './types';

const USAGES: readonly Usage[] = ['sign', 'verify', 'encrypt', 'decrypt', 'random'];

/** The fields every managed key has, whatever its backend. */
export const COMMON_FIELDS = {
  allow_generate_key: { type: 'bool', default: false, description: 'create the key in the backend if it does not exist' },
  allow_replace_key: { type: 'bool', default: false, description: 'allow replacing key material (rotation in the backend)' },
  allow_store_key: { type: 'bool', default: false, description: 'allow importing key material into the backend' },
  any_mount: { type: 'bool', default: false, description: 'usable from any mount without listing it in allowed_managed_keys' },
  usages: { type: 'strings', allowed: USAGES, default: USAGES, description: 'operations allowed: sign, verify, encrypt, decrypt, random' },
} as const satisfies Record<string, Field>;

/**
 * Each backend's fields, declared beside it (<backend>.fields.ts: importing the backend
 * itself would load its SDK, or defeat its lazy bundle). One line per backend here and one
 * loader in index.ts; the types make either without the other a compile error.
 */
export const BACKEND_FIELDS = {
  pkcs11: PKCS11_FIELDS,
  awskms: AWSKMS_FIELDS,
  gcpckms: GCPCKMS_FIELDS,
  azurekeyvault: AZUREKEYVAULT_FIELDS,
  software: SOFTWARE_FIELDS,
} as const satisfies Record<string, Schema>;

/** The common fields of a managed key, parsed. */
export type CommonConfig = { allowGenerate: boolean; allowReplace: boolean; allowStore: boolean; anyMount: boolean; usages: Usage[] };
/** A backend's own fields, parsed by its table (absent when neither given nor defaulted). */
export type BackendConfig = Record<string, string | number | boolean | undefined>;

/** A managed key's configuration, validated and defaulted. */
export interface ParsedKeyConfig {
  backend: Backend;
  name: string;
  common: CommonConfig;
  fields: BackendConfig;
}

/** Parse managed-keys/<type>/<name> by the common fields and the type's table; bad input is an `invalid` KeyError. */
export function parseKeyConfig(backend: string, name: string, raw: Record<string, unknown>): ParsedKeyConfig {
  if (!(backend in BACKEND_FIELDS)) throw keyInvalid(`unknown managed key type "${backend.slice(0, 30)}" (use ${Object.keys(BACKEND_FIELDS).join(', ')})`);
  if (!isName(name)) throw keyInvalid(nameRule('managed key name'));
  const b = backend as Backend;
  const spec: Record<string, Field> = { ...COMMON_FIELDS, ...BACKEND_FIELDS[b] };
  const { values: vals, given, unknown } = parseFields(spec, raw, keyInvalid);
  if (unknown.length) throw keyInvalid(`unknown field "${unknown[0].slice(0, 40)}" for ${b} managed keys`);
  const missing = missingRequired(spec, given);
  if (missing !== undefined) throw keyInvalid(`${missing} is required for ${b} managed keys`);
  const fields: BackendConfig = {};
  for (const k of Object.keys(BACKEND_FIELDS[b])) fields[k] = vals[k] as string | number | boolean | undefined;
  return {
    backend: b,
    name,
    common: {
      allowGenerate: vals.allow_generate_key as boolean,
      allowReplace: vals.allow_replace_key as boolean,
      allowStore: vals.allow_store_key as boolean,
      anyMount: vals.any_mount as boolean,
      usages: vals.usages as Usage[],
    },
    fields,
  };
}

/** The config as an API read returns it: secret fields are never echoed. */
export function publicView(p: ParsedKeyConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: p.backend,
    name: p.name,
    allow_generate_key: p.common.allowGenerate,
    allow_replace_key: p.common.allowReplace,
    allow_store_key: p.common.allowStore,
    any_mount: p.common.anyMount,
    usages: p.common.usages,
  };
  const spec = BACKEND_FIELDS[p.backend] as Record<string, Field>;
  for (const [k, v] of Object.entries(p.fields)) if (v !== undefined && !spec[k].secret) out[k] = v;
  return out;
}

/** Every secret value in a config, for redaction. */
export function keySecrets(p: ParsedKeyConfig): string[] {
  return secretValues(BACKEND_FIELDS[p.backend], p.fields);
}
