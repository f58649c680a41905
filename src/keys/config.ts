// managed-keys/<type>/<name> configuration, with the field names operators know from
// Vault Enterprise's managed keys. Declared once: validation, defaults, redaction (the
// secret fields are never returned or logged) and help text come from KEY_FIELDS.
import { keyInvalid } from './errors';
import type { Backend, Usage } from './types';

type Kind = 'string' | 'bool' | 'int' | 'list';
interface Field { kind: Kind; description: string; secret?: boolean; required?: boolean; values?: readonly string[] }

const USAGES: readonly Usage[] = ['sign', 'verify', 'encrypt', 'decrypt', 'random'];

export const COMMON_FIELDS = {
  allow_generate_key: { kind: 'bool', description: 'create the key in the backend if it does not exist' },
  allow_replace_key: { kind: 'bool', description: 'allow replacing key material (rotation in the backend)' },
  allow_store_key: { kind: 'bool', description: 'allow importing key material into the backend' },
  any_mount: { kind: 'bool', description: 'usable from any mount without listing it in allowed_managed_keys' },
  usages: { kind: 'list', values: USAGES, description: 'operations allowed: sign, verify, encrypt, decrypt, random' },
} as const satisfies Record<string, Field>;

export const BACKEND_FIELDS = {
  pkcs11: {
    library: { kind: 'string', required: true, description: 'path of the PKCS#11 module (.so); only modules the operator allows with PLUGIN_PKCS11_LIBRARIES are loaded' },
    slot: { kind: 'string', description: 'slot id (decimal or 0x hex); or use token_label' },
    token_label: { kind: 'string', description: 'label of the token to use' },
    pin: { kind: 'string', required: true, secret: true, description: 'user PIN' },
    key_label: { kind: 'string', description: 'CKA_LABEL of the key' },
    key_id: { kind: 'string', description: 'CKA_ID of the key (hex, optional 0x)' },
    mechanism: { kind: 'string', description: 'PKCS#11 mechanism (decimal, 0x hex, or CKM_ name); default from the key type' },
    curve: { kind: 'string', values: ['P256', 'P384', 'P521'], description: 'EC curve when generating' },
    key_bits: { kind: 'int', description: 'RSA or AES size when generating' },
    force_rw_session: { kind: 'bool', description: 'open read-write sessions even when only reading' },
    max_parallel: { kind: 'int', description: 'most sessions open at once (default 1)' },
  },
  awskms: {
    access_key: { kind: 'string', description: 'AWS access key id (without it: the SDK credential chain, only if the operator set PLUGIN_AMBIENT_CREDENTIALS=true)' },
    secret_key: { kind: 'string', secret: true, description: 'AWS secret access key' },
    region: { kind: 'string', description: 'AWS region (default us-east-1)' },
    endpoint: { kind: 'string', description: 'KMS endpoint URL override (VPC endpoints, tests)' },
    kms_key: { kind: 'string', required: true, description: 'key id, ARN or alias/...' },
    key_type: { kind: 'string', values: ['RSA', 'EC', 'AES'], description: 'key type when generating' },
    key_bits: { kind: 'int', description: 'RSA size when generating' },
    curve: { kind: 'string', values: ['P256', 'P384', 'P521'], description: 'EC curve when generating' },
  },
  gcpckms: {
    credentials: { kind: 'string', secret: true, description: 'service account JSON, or the path of a file the operator allows with PLUGIN_CREDENTIAL_FILES (without it: application default credentials, only if the operator set PLUGIN_AMBIENT_CREDENTIALS=true)' },
    project: { kind: 'string', required: true, description: 'Google Cloud project' },
    region: { kind: 'string', required: true, description: 'location of the key ring' },
    key_ring: { kind: 'string', required: true, description: 'key ring name' },
    crypto_key: { kind: 'string', required: true, description: 'crypto key name' },
    crypto_key_version: { kind: 'string', description: 'key version (default 1)' },
    algorithm: { kind: 'string', description: 'CryptoKeyVersionAlgorithm when generating, e.g. EC_SIGN_P256_SHA256' },
    endpoint: { kind: 'string', description: 'API endpoint host:port override (private endpoints, tests)' },
    endpoint_ca: { kind: 'string', description: 'PEM of the CA behind a private endpoint (default: system roots)' },
  },
  azurekeyvault: {
    tenant_id: { kind: 'string', required: true, description: 'Azure AD tenant' },
    client_id: { kind: 'string', required: true, description: 'application (client) id' },
    client_secret: { kind: 'string', required: true, secret: true, description: 'client secret' },
    environment: { kind: 'string', description: 'AZUREPUBLICCLOUD (default), AZURECHINACLOUD, AZUREUSGOVERNMENTCLOUD' },
    vault_name: { kind: 'string', required: true, description: 'key vault name' },
    key_name: { kind: 'string', required: true, description: 'key name' },
    resource: { kind: 'string', description: 'key vault DNS suffix override, e.g. vault.azure.net' },
    key_type: { kind: 'string', values: ['RSA', 'RSA-HSM', 'EC', 'EC-HSM'], description: 'key type when generating' },
    key_bits: { kind: 'int', description: 'RSA size when generating' },
    authority_host: { kind: 'string', description: 'Azure AD authority URL override (private clouds, tests)' },
    vault_url: { kind: 'string', description: 'full vault URL override (private endpoints, tests); default https://<vault_name>.<resource>' },
    endpoint_ca: { kind: 'string', description: 'PEM of the CA behind vault_url / authority_host (default: system roots)' },
  },
  software: {
    key_type: { kind: 'string', required: true, values: ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519', 'aes256-gcm'], description: 'key type (generated in this process: NOT an HSM)' },
    private_key: { kind: 'string', secret: true, description: 'PEM (PKCS#8) of an existing key to use instead of generating' },
  },
} as const satisfies Record<Backend, Record<string, Field>>;

export type CommonConfig = { allowGenerate: boolean; allowReplace: boolean; allowStore: boolean; anyMount: boolean; usages: Usage[] };
export type BackendConfig = Record<string, string | number | boolean | undefined>;

export interface ParsedKeyConfig {
  backend: Backend;
  name: string;
  common: CommonConfig;
  fields: BackendConfig;
}

function coerce(key: string, f: Field, v: unknown): string | number | boolean | string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  switch (f.kind) {
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === 'false') return v === 'true';
      throw keyInvalid(`${key}: expected true or false`);
    case 'int': {
      const n = typeof v === 'number' ? v : /^\d+$/.test(String(v)) ? Number(v) : NaN;
      if (!Number.isInteger(n) || n <= 0) throw keyInvalid(`${key}: expected a positive integer`);
      return n;
    }
    case 'list': {
      const items = (Array.isArray(v) ? v.map(String) : String(v).split(',')).map((s) => s.trim()).filter(Boolean);
      for (const i of items) if (f.values && !f.values.includes(i)) throw keyInvalid(`${key}: unknown value "${i.slice(0, 30)}" (allowed: ${f.values.join(', ')})`);
      return items;
    }
    case 'string': {
      if (typeof v !== 'string') throw keyInvalid(`${key}: expected a string`);
      if (f.values && !f.values.includes(v)) throw keyInvalid(`${key}: must be one of ${f.values.join(', ')}`);
      return v;
    }
  }
}

export function parseKeyConfig(backend: string, name: string, raw: Record<string, unknown>): ParsedKeyConfig {
  if (!(backend in BACKEND_FIELDS)) throw keyInvalid(`unknown managed key type "${backend.slice(0, 30)}" (use ${Object.keys(BACKEND_FIELDS).join(', ')})`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) throw keyInvalid('managed key name must be 1-128 letters, digits, "_", "." or "-"');
  const b = backend as Backend;
  const spec: Record<string, Field> = { ...COMMON_FIELDS, ...BACKEND_FIELDS[b] };
  const vals: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!(k in spec)) throw keyInvalid(`unknown field "${k.slice(0, 40)}" for ${b} managed keys`);
    vals[k] = coerce(k, spec[k], v);
  }
  for (const [k, f] of Object.entries(spec)) if (f.required && vals[k] === undefined) throw keyInvalid(`${k} is required for ${b} managed keys`);
  const fields: BackendConfig = {};
  for (const k of Object.keys(BACKEND_FIELDS[b])) fields[k] = vals[k] as string | number | boolean | undefined;
  return {
    backend: b,
    name,
    common: {
      allowGenerate: (vals.allow_generate_key as boolean) ?? false,
      allowReplace: (vals.allow_replace_key as boolean) ?? false,
      allowStore: (vals.allow_store_key as boolean) ?? false,
      anyMount: (vals.any_mount as boolean) ?? false,
      usages: (vals.usages as Usage[] | undefined) ?? [...USAGES],
    },
    fields,
  };
}

/** The config as an API read returns it: secret fields are never echoed. */
export function publicView(p: ParsedKeyConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: p.backend, name: p.name,
    allow_generate_key: p.common.allowGenerate, allow_replace_key: p.common.allowReplace,
    allow_store_key: p.common.allowStore, any_mount: p.common.anyMount, usages: p.common.usages,
  };
  const spec = BACKEND_FIELDS[p.backend] as Record<string, Field>;
  for (const [k, v] of Object.entries(p.fields)) if (v !== undefined && !spec[k].secret) out[k] = v;
  return out;
}

/** Every secret value in a config, for redaction. */
export function keySecrets(p: ParsedKeyConfig): string[] {
  const spec = BACKEND_FIELDS[p.backend] as Record<string, Field>;
  return Object.entries(p.fields).filter(([k, v]) => spec[k].secret && typeof v === 'string' && v).map(([, v]) => v as string);
}
