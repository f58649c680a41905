// The configuration fields of Google Cloud KMS managed keys, apart from gcpckms.ts: that
// file and its SDK are a lazily loaded bundle, and config parsing and help run in the main one.
import type { Field } from '../schema';

/** managed-keys/gcpckms/<name>: credentials, the key version's resource name, endpoint. */
export const GCPCKMS_FIELDS = {
  credentials: {
    type: 'string',
    secret: true,
    description:
      'service account JSON, or the path of a file the operator allows with PLUGIN_CREDENTIAL_FILES (without it: application default credentials, only if the operator set PLUGIN_AMBIENT_CREDENTIALS=true)',
  },
  project: { type: 'string', required: true, description: 'Google Cloud project' },
  region: { type: 'string', required: true, description: 'location of the key ring' },
  key_ring: { type: 'string', required: true, description: 'key ring name' },
  crypto_key: { type: 'string', required: true, description: 'crypto key name' },
  crypto_key_version: { type: 'string', default: '1', description: 'key version' },
  algorithm: { type: 'string', description: 'CryptoKeyVersionAlgorithm when generating, e.g. EC_SIGN_P256_SHA256' },
  endpoint: { type: 'string', description: 'API endpoint host:port override (private endpoints, tests)' },
  endpoint_ca: { type: 'string', description: 'PEM of the CA behind a private endpoint (default: system roots)' },
} as const satisfies Record<string, Field>;
