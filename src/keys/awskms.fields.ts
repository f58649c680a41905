// The configuration fields of AWS KMS managed keys, apart from awskms.ts: that file and
// its SDK are a lazily loaded bundle, and config parsing and help run in the main one.
import type { Field } from '../schema';

/** managed-keys/awskms/<name>: credentials, region and endpoint, the key. */
export const AWSKMS_FIELDS = {
  access_key: {
    type: 'string',
    description: 'AWS access key id (without it: the SDK credential chain, only if the operator set PLUGIN_AMBIENT_CREDENTIALS=true)',
  },
  secret_key: { type: 'string', secret: true, description: 'AWS secret access key' },
  region: { type: 'string', default: 'us-east-1', description: 'AWS region' },
  endpoint: { type: 'string', description: 'KMS endpoint URL override (VPC endpoints, tests)' },
  kms_key: { type: 'string', required: true, description: 'key id, ARN or alias/...' },
  key_type: { type: 'string', allowed: ['RSA', 'EC', 'AES'], description: 'key type when generating' },
  key_bits: { type: 'int', min: 1, description: 'RSA size when generating' },
  curve: { type: 'string', allowed: ['P256', 'P384', 'P521'], description: 'EC curve when generating' },
} as const satisfies Record<string, Field>;
