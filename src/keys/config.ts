// managed-keys/<type>/<name> configuration, with the field names operators know from
// Vault Enterprise's managed keys. Declared once in the plugin's schema language
// (src/schema): validation, defaults, redaction (the secret fields are never returned or
// logged) and help text come from COMMON_FIELDS and BACKEND_FIELDS.
import { isName, missingRequired, nameRule, parseFields, secretValues, type Field } from '../schema';
import { keyInvalid } from './errors';
import type { Backend, Usage } from './types';

const USAGES: readonly Usage[] = ['sign', 'verify', 'encrypt', 'decrypt', 'random'];

export const COMMON_FIELDS = {
  allow_generate_key: { type: 'bool', default: false, description: 'create the key in the backend if it does not exist' },
  allow_replace_key: { type: 'bool', default: false, description: 'allow replacing key material (rotation in the backend)' },
  allow_store_key: { type: 'bool', default: false, description: 'allow importing key material into the backend' },
  any_mount: { type: 'bool', default: false, description: 'usable from any mount without listing it in allowed_managed_keys' },
  usages: { type: 'strings', allowed: USAGES, default: USAGES, description: 'operations allowed: sign, verify, encrypt, decrypt, random' },
} as const satisfies Record<string, Field>;

export const BACKEND_FIELDS = {
  pkcs11: {
    library: { type: 'string', required: true, description: 'path of the PKCS#11 module (.so); only modules the operator allows with PLUGIN_PKCS11_LIBRARIES are loaded' },
    slot: { type: 'string', description: 'slot id (decimal or 0x hex); or use token_label' },
    token_label: { type: 'string', description: 'label of the token to use' },
    pin: { type: 'string', required: true, secret: true, description: 'user PIN' },
    key_label: { type: 'string', description: 'CKA_LABEL of the key' },
    key_id: { type: 'string', description: 'CKA_ID of the key (hex, optional 0x)' },
    mechanism: { type: 'string', description: 'PKCS#11 mechanism (decimal, 0x hex, or CKM_ name); default from the key type' },
    curve: { type: 'string', allowed: ['P256', 'P384', 'P521'], description: 'EC curve when generating' },
    key_bits: { type: 'int', min: 1, description: 'RSA or AES size when generating' },
    force_rw_session: { type: 'bool', description: 'open read-write sessions even when only reading' },
    max_parallel: { type: 'int', min: 1, description: 'most sessions open at once (default 1)' },
  },
  awskms: {
    access_key: { type: 'string', description: 'AWS access key id (without it: the SDK credential chain, only if the operator set PLUGIN_AMBIENT_CREDENTIALS=true)' },
    secret_key: { type: 'string', secret: true, description: 'AWS secret access key' },
    region: { type: 'string', description: 'AWS region (default us-east-1)' },
    endpoint: { type: 'string', description: 'KMS endpoint URL override (VPC endpoints, tests)' },
    kms_key: { type: 'string', required: true, description: 'key id, ARN or alias/...' },
    key_type: { type: 'string', allowed: ['RSA', 'EC', 'AES'], description: 'key type when generating' },
    key_bits: { type: 'int', min: 1, description: 'RSA size when generating' },
    curve: { type: 'string', allowed: ['P256', 'P384', 'P521'], description: 'EC curve when generating' },
  },
  gcpckms: {
    credentials: { type: 'string', secret: true, description: 'service account JSON, or the path of a file the operator allows with PLUGIN_CREDENTIAL_FILES (without it: application default credentials, only if the operator set PLUGIN_AMBIENT_CREDENTIALS=true)' },
    project: { type: 'string', required: true, description: 'Google Cloud project' },
    region: { type: 'string', required: true, description: 'location of the key ring' },
    key_ring: { type: 'string', required: true, description: 'key ring name' },
    crypto_key: { type: 'string', required: true, description: 'crypto key name' },
    crypto_key_version: { type: 'string', description: 'key version (default 1)' },
    algorithm: { type: 'string', description: 'CryptoKeyVersionAlgorithm when generating, e.g. EC_SIGN_P256_SHA256' },
    endpoint: { type: 'string', description: 'API endpoint host:port override (private endpoints, tests)' },
    endpoint_ca: { type: 'string', description: 'PEM of the CA behind a private endpoint (default: system roots)' },
  },
  azurekeyvault: {
    tenant_id: { type: 'string', required: true, description: 'Azure AD tenant' },
    client_id: { type: 'string', required: true, description: 'application (client) id' },
    client_secret: { type: 'string', required: true, secret: true, description: 'client secret' },
    environment: { type: 'string', description: 'AZUREPUBLICCLOUD (default), AZURECHINACLOUD, AZUREUSGOVERNMENTCLOUD' },
    vault_name: { type: 'string', required: true, description: 'key vault name' },
    key_name: { type: 'string', required: true, description: 'key name' },
    resource: { type: 'string', description: 'key vault DNS suffix override, e.g. vault.azure.net' },
    key_type: { type: 'string', allowed: ['RSA', 'RSA-HSM', 'EC', 'EC-HSM'], description: 'key type when generating' },
    key_bits: { type: 'int', min: 1, description: 'RSA size when generating' },
    authority_host: { type: 'string', description: 'Azure AD authority URL override (private clouds, tests)' },
    vault_url: { type: 'string', description: 'full vault URL override (private endpoints, tests); default https://<vault_name>.<resource>' },
    endpoint_ca: { type: 'string', description: 'PEM of the CA behind vault_url / authority_host (default: system roots)' },
  },
  software: {
    key_type: { type: 'string', required: true, allowed: ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519', 'aes256-gcm'], description: 'key type (generated in this process: NOT an HSM)' },
    private_key: { type: 'string', secret: true, description: 'PEM (PKCS#8) of an existing key to use instead of generating' },
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
  return secretValues(BACKEND_FIELDS[p.backend], p.fields);
}
