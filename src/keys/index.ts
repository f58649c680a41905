// Opening a managed key from its configuration, and the self-check behind
// managed-keys/<type>/<name>/test/sign.
import { randomBytes } from 'node:crypto';
import { keyInvalid } from './errors';
import { parseKeyConfig, type ParsedKeyConfig } from './config';
import type { ManagedKey } from './types';

export type { ManagedKey, KeyDescription, SignOptions, CryptOptions, Usage, Backend, KeySpec } from './types';
export { KeyError, isKeyError } from './errors';

/** Each adapter loads its SDK only when a key of its type is opened. */
export async function openManagedKey(p: ParsedKeyConfig): Promise<ManagedKey> {
  switch (p.backend) {
    case 'software': {
      const { SoftwareKey } = await import('./software');
      return SoftwareKey.create(p.name, String(p.fields.key_type), p.common.usages, p.fields.private_key as string | undefined);
    }
    case 'pkcs11': return (await import('./pkcs11')).Pkcs11Key.open(p.name, p.fields, p.common);
    case 'awskms': return (await import('./awskms')).AwsKmsKey.open(p.name, p.fields, p.common);
    case 'gcpckms': return (await import('./gcpckms')).GcpKmsKey.open(p.name, p.fields, p.common);
    case 'azurekeyvault': return (await import('./azurekeyvault')).AzureKeyVaultKey.open(p.name, p.fields, p.common);
  }
}

export async function openFromConfig(type: string, name: string, raw: Record<string, unknown>): Promise<ManagedKey> {
  return openManagedKey(parseKeyConfig(type, name, raw));
}

export interface SelfTestResult { operation: 'sign' | 'encrypt'; ok: true; algorithm: string; millis: number }

/**
 * Prove the key works end to end: sign a random message and verify the signature with the
 * public key, or for symmetric keys encrypt and decrypt a random value.
 */
export async function selfTest(key: ManagedKey): Promise<SelfTestResult> {
  const d = key.describe();
  const start = Date.now();
  const msg = randomBytes(32);
  if (d.spec.kind === 'aes') {
    const aad = randomBytes(8);
    const back = await key.decrypt(await key.encrypt(msg, { aad }), { aad });
    if (!back.equals(msg)) throw keyInvalid(`${d.backend} key "${d.name}": encrypt/decrypt self-test returned different data`);
    return { operation: 'encrypt', ok: true, algorithm: 'aes-gcm', millis: Date.now() - start };
  }
  const hash = d.spec.kind === 'ec' ? ({ 'P-256': 'sha256', 'P-384': 'sha384', 'P-521': 'sha512' } as const)[d.spec.curve] : 'sha256';
  // Ask the key for an algorithm it offers (KMS keys fix padding per key).
  const padding = d.spec.kind === 'rsa' ? (d.algorithms.some((a) => a.startsWith('rsa-pss')) ? 'pss' : 'pkcs1v15') : undefined;
  const sig = await key.sign(msg, { hash, padding });
  if (!(await key.verify(msg, sig, { hash, padding }))) throw keyInvalid(`${d.backend} key "${d.name}": the signature from the self-test does not verify`);
  return { operation: 'sign', ok: true, algorithm: d.spec.kind === 'ed25519' ? 'ed25519' : `${d.spec.kind === 'ec' ? 'ecdsa' : `rsa-${padding}`}-${hash}`, millis: Date.now() - start };
}

/** The public key as PEM (SubjectPublicKeyInfo) or DER. */
export async function exportPublicKey(key: ManagedKey, format: 'pem' | 'der' = 'pem'): Promise<string | Buffer> {
  const pub = await key.publicKey();
  return format === 'pem' ? (pub.export({ type: 'spki', format: 'pem' }) as string) : (pub.export({ type: 'spki', format: 'der' }) as Buffer);
}
