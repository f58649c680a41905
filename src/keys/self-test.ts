// The self-check behind managed-keys/<type>/<name>/test/sign, and public-key export.
import { randomBytes } from 'node:crypto';
import { ecdsaHash } from './curves';
import { keyInvalid } from './errors';
import type { ManagedKey } from './types';

/** What a passing self-test reports. */
export interface SelfTestResult {
  operation: 'sign' | 'encrypt';
  ok: true;
  algorithm: string;
  millis: number;
}

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
  const hash = d.spec.kind === 'ec' ? ecdsaHash(d.spec.curve) : 'sha256';
  // Ask the key for an algorithm it offers (KMS keys fix padding per key).
  const padding = d.spec.kind === 'rsa' ? (d.algorithms.some((a) => a.startsWith('rsa-pss')) ? 'pss' : 'pkcs1v15') : undefined;
  const sig = await key.sign(msg, { hash, padding });
  if (!(await key.verify(msg, sig, { hash, padding }))) throw keyInvalid(`${d.backend} key "${d.name}": the signature from the self-test does not verify`);
  return {
    operation: 'sign',
    ok: true,
    algorithm: d.spec.kind === 'ed25519' ? 'ed25519' : `${d.spec.kind === 'ec' ? 'ecdsa' : `rsa-${padding}`}-${hash}`,
    millis: Date.now() - start,
  };
}

/** The public key as PEM (SubjectPublicKeyInfo) or DER. */
export async function exportPublicKey(key: ManagedKey, format: 'pem' | 'der' = 'pem'): Promise<string | Buffer> {
  const pub = await key.publicKey();
  return format === 'pem' ? (pub.export({ type: 'spki', format: 'pem' }) as string) : (pub.export({ type: 'spki', format: 'der' }) as Buffer);
}
