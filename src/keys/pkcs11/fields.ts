// The configuration fields of PKCS#11 managed keys, apart from the backend so that config
// parsing and help load neither pkcs11js nor a module.
import type { Field } from '../../schema';

/** managed-keys/pkcs11/<name>: the module, the token, the PIN and the key on it. */
export const PKCS11_FIELDS = {
  library: {
    type: 'string',
    required: true,
    description: 'path of the PKCS#11 module (.so); only modules the operator allows with PLUGIN_PKCS11_LIBRARIES are loaded',
  },
  slot: { type: 'string', description: 'slot id (decimal or 0x hex); or use token_label' },
  token_label: { type: 'string', description: 'label of the token to use' },
  pin: { type: 'string', required: true, secret: true, description: 'user PIN' },
  key_label: { type: 'string', description: 'CKA_LABEL of the key' },
  key_id: { type: 'string', description: 'CKA_ID of the key (hex, optional 0x)' },
  mechanism: { type: 'string', description: 'PKCS#11 mechanism (decimal, 0x hex, or CKM_ name); default from the key type' },
  curve: { type: 'string', allowed: ['P256', 'P384', 'P521'], description: 'EC curve when generating' },
  key_bits: { type: 'int', min: 1, description: 'RSA or AES size when generating' },
  force_rw_session: { type: 'bool', description: 'open read-write sessions even when only reading' },
  max_parallel: { type: 'int', min: 1, default: 1, description: 'most sessions open at once' },
} as const satisfies Record<string, Field>;
