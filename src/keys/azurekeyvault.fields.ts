// The configuration fields of Azure Key Vault managed keys, apart from azurekeyvault.ts:
// that file and its SDK are a lazily loaded bundle, and config parsing and help run in the main one.
import type { Field } from '../schema';

/** managed-keys/azurekeyvault/<name>: the application's credentials, the vault and the key. */
export const AZUREKEYVAULT_FIELDS = {
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
} as const satisfies Record<string, Field>;
