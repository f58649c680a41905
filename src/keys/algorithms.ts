// The operations a key of each kind offers when its backend does not fix one algorithm
// per key (software keys, PKCS#11, AWS KMS, Azure Key Vault; Cloud KMS fixes it per key version).
import type { KeySpec } from './types';

/** Algorithm names as KeyDescription.algorithms lists them, e.g. "ecdsa-sha256", "rsa-oaep-sha256". */
export function algorithmsFor(spec: KeySpec): string[] {
  switch (spec.kind) {
    case 'ec':
      return ['ecdsa-sha256', 'ecdsa-sha384', 'ecdsa-sha512'];
    case 'rsa':
      return ['rsa-pss-sha256', 'rsa-pss-sha384', 'rsa-pss-sha512', 'rsa-pkcs1v15-sha256', 'rsa-pkcs1v15-sha384', 'rsa-pkcs1v15-sha512', 'rsa-oaep-sha256'];
    case 'ed25519':
      return ['ed25519'];
    case 'aes':
      return ['aes-gcm'];
  }
}
