// Which key types, purposes and protection levels each provider can hold: one table,
// used to refuse a distribution (400) before anything is sent to the provider, and shown
// in the README.
import { keyFamily, type KeyType } from '../keys';
import type { Protection, ProviderName, Purpose } from './types';

const CAN: Record<'aes' | 'rsa' | 'ec', readonly Purpose[]> = {
  aes: ['encrypt', 'decrypt', 'wrap', 'unwrap'],
  rsa: ['encrypt', 'decrypt', 'sign', 'verify', 'wrap', 'unwrap'],
  ec: ['sign', 'verify'],
};

interface ProviderSupport {
  types: readonly KeyType[];
  /** Purposes the provider offers per key family; `exclusive` groups cannot be mixed on one key. */
  purposes: Partial<Record<'aes' | 'rsa' | 'ec', readonly Purpose[]>>;
  exclusive?: readonly (readonly Purpose[])[];
  protections: readonly Protection[];
  why: { type: string; protection?: string; exclusive?: string };
}

/** Per provider: the key types, purposes and protections it can hold, and why not otherwise. */
export const SUPPORT: Record<ProviderName, ProviderSupport> = {
  awskms: {
    types: ['aes256-gcm96', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521'],
    purposes: { aes: ['encrypt', 'decrypt'], rsa: ['encrypt', 'decrypt', 'sign', 'verify'], ec: ['sign', 'verify'] },
    exclusive: [
      ['encrypt', 'decrypt'],
      ['sign', 'verify'],
    ],
    protections: ['hsm'],
    why: {
      type: '',
      protection: 'AWS KMS keeps every key in its own HSMs: use protection=hsm',
      exclusive: 'an AWS KMS key has one KeyUsage: encrypt/decrypt or sign/verify, not both',
    },
  },
  gcpckms: {
    types: ['aes256-gcm96', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256', 'ecdsa-p384'],
    purposes: { aes: ['encrypt', 'decrypt'], rsa: ['encrypt', 'decrypt', 'sign', 'verify'], ec: ['sign', 'verify'] },
    exclusive: [
      ['encrypt', 'decrypt'],
      ['sign', 'verify'],
    ],
    protections: ['hsm', 'software'],
    why: {
      type: 'Cloud KMS imports no P-521 keys',
      exclusive: 'a Cloud KMS key has one purpose: encrypt/decrypt (ASYMMETRIC_DECRYPT) or sign/verify (ASYMMETRIC_SIGN), not both',
    },
  },
  azurekeyvault: {
    types: ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521'],
    purposes: { rsa: ['encrypt', 'decrypt', 'sign', 'verify', 'wrap', 'unwrap'], ec: ['sign', 'verify'] },
    protections: ['hsm', 'software'],
    why: { type: 'Key Vault imports RSA and EC keys; symmetric keys need a Managed HSM' },
  },
};

/** Why this provider cannot hold this key with these parameters (a 400 message), or undefined. */
export function unsupported(provider: ProviderName, type: KeyType, purpose: readonly Purpose[], protection: Protection): string | undefined {
  const fam = keyFamily(type);
  const s = SUPPORT[provider];
  if (purpose.length === 0) return 'purpose must name at least one of encrypt, decrypt, sign, verify, wrap, unwrap';
  const impossible = purpose.filter((p) => !CAN[fam].includes(p));
  if (impossible.length) return `purpose ${impossible.join(',')} is not possible for ${type} keys (they can ${CAN[fam].join(', ')})`;
  if (!s.types.includes(type)) return `${provider} cannot hold ${type} keys: ${s.why.type}`;
  const offered = s.purposes[fam] ?? [];
  const missing = purpose.filter((p) => !offered.includes(p));
  if (missing.length) return `${provider} offers no purpose ${missing.join(',')} for ${type} keys (it offers ${offered.join(', ')})`;
  if (s.exclusive && !s.exclusive.some((g) => purpose.every((p) => g.includes(p)))) return `${provider}: ${s.why.exclusive}`;
  if (!s.protections.includes(protection)) return `${provider}: ${s.why.protection ?? `protection must be one of ${s.protections.join(', ')}`}`;
  return undefined;
}
