// The configuration fields of software managed keys (software.ts), apart from the backend
// so that config parsing and help need not load it.
import type { Field } from '../schema';

/** managed-keys/software/<name>: the key type, or the key itself. */
export const SOFTWARE_FIELDS = {
  key_type: {
    type: 'string',
    required: true,
    allowed: ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519', 'aes256-gcm'],
    description: 'key type (generated in this process: NOT an HSM)',
  },
  private_key: { type: 'string', secret: true, description: 'PEM (PKCS#8) of an existing key to use instead of generating' },
} as const satisfies Record<string, Field>;
