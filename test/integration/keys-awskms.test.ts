// AWS KMS managed keys: the real @aws-sdk/client-kms over HTTP against the emulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsKmsKey } from '../../src/keys/awskms';
import { parseKeyConfig } from '../../src/keys/config';
import { startAwsKms, type AwsKmsEmulator } from '../emulators/awskms';
import { aesContract, rsaContract } from '../support/key-contract';

let kms: AwsKmsEmulator;
const opened: AwsKmsKey[] = [];
async function open(name: string, extra: Record<string, unknown>): Promise<AwsKmsKey> {
  const p = parseKeyConfig('awskms', name, { access_key: kms.accessKeyId, secret_key: kms.secretAccessKey, region: kms.region, endpoint: kms.url, ...extra });
  const k = await AwsKmsKey.open(name, p.fields, p.common);
  opened.push(k);
  return k;
}

beforeAll(async () => {
  kms = await startAwsKms();
});
afterAll(async () => {
  for (const k of opened) await k.close();
  await kms.close();
});

describe('AWS KMS', () => {
  let ec: AwsKmsKey, rsa: AwsKmsKey, rsaEnc: AwsKmsKey, aes: AwsKmsKey;
  beforeAll(async () => {
    ec = await open('ec', { kms_key: kms.createKey('ECC_NIST_P256').id });
    rsa = await open('rsa', { kms_key: kms.createKey('RSA_2048', 'SIGN_VERIFY', 'alias/rsa-sign').arn });
    rsaEnc = await open('rsa-enc', { kms_key: kms.createKey('RSA_2048', 'ENCRYPT_DECRYPT').id });
    aes = await open('aes', { kms_key: kms.createKey('SYMMETRIC_DEFAULT', undefined, 'alias/sym').id });
  });
  // ECDSA in KMS is one curve per hash; P-256 pairs with SHA-256.
  it('ECDSA P-256: DER signature over a digest, verified by Node', async () => {
    const { verify } = await import('node:crypto');
    const sig = await ec.sign(Buffer.from('hello'), { hash: 'sha256' });
    expect(verify('sha256', Buffer.from('hello'), { key: await ec.publicKey(), dsaEncoding: 'der' }, sig)).toBe(true);
    expect(await ec.verify(Buffer.from('hello'), sig, { hash: 'sha256' })).toBe(true);
    expect(kms.calls.filter((c) => c === 'Sign').length).toBeGreaterThan(0);
  });
  it('ECDSA with a hash the key does not support is refused by KMS, clearly', async () => {
    await expect(ec.sign(Buffer.from('x'), { hash: 'sha512' })).rejects.toThrow(/awskms key "ec": sign failed: Algorithm ECDSA_SHA_512 is incompatible/);
  });
  describe('RSA 2048 (by ARN, alias)', () => rsaContract(() => rsa, { oaepKey: () => rsaEnc }));
  it('an RSA signing key does not decrypt (one usage per KMS key)', async () => {
    await expect(rsa.decrypt(Buffer.alloc(256, 1))).rejects.toThrow(/decryption failed.*awskms key "rsa"/);
  });
  describe('symmetric (AES-256-GCM inside KMS)', () => aesContract(() => aes));

  it('a key that does not exist is NotFound, naming key and backend', async () => {
    await expect(open('missing', { kms_key: 'alias/nope' })).rejects.toMatchObject({
      kind: 'not_found',
      message: expect.stringMatching(/awskms key "missing".*does not exist/),
    });
  });
  it('allow_generate_key creates the key and its alias', async () => {
    const k = await open('gen', { kms_key: 'alias/generated', allow_generate_key: true, key_type: 'EC', curve: 'P384' });
    expect(k.describe().spec).toEqual({ kind: 'ec', curve: 'P-384' });
    const again = await open('gen2', { kms_key: 'alias/generated' });
    expect((await again.publicKey()).export({ format: 'jwk' })).toEqual((await k.publicKey()).export({ format: 'jwk' }));
  });
  it('a wrong secret key fails the signature check without the secret in the error', async () => {
    const wrong = 'WrongSecretKeyValue0123456789abcdefghijk';
    const err = await open('badcred', { kms_key: 'alias/sym', secret_key: wrong }).catch((e) => e);
    expect(err.kind).toBe('denied');
    expect(err.message).toMatch(/signature we calculated does not match/);
    expect(err.message).not.toContain(wrong);
  });
  it('throttling is retried (bounded), then reported clearly', async () => {
    kms.throttleNext(2);
    expect((await aes.random(16)).length).toBe(16);
    kms.calls.length = 0;
    kms.throttleNext(100);
    const err = await aes.random(16).catch((e) => e);
    expect(err.message).toMatch(/awskms key "aes": random failed: Rate exceeded/);
    expect(kms.calls.length).toBe(4);
    kms.throttleNext(0);
  });
  it('5xx is retried (bounded), then reported clearly', async () => {
    kms.failNext(1, 503);
    expect((await aes.random(8)).length).toBe(8);
    kms.calls.length = 0;
    kms.failNext(100, 500);
    await expect(aes.random(8)).rejects.toThrow(/awskms key "aes": random failed/);
    expect(kms.calls.length).toBe(4);
    kms.failNext(0);
  });
  it('close() while a call is in flight (its config rewritten or deleted): the call still gets its answer', async () => {
    const k = await open('closing', { kms_key: kms.createKey('ECC_NIST_P256').id });
    const held = kms.holdNext('Sign');
    const signing = k.sign(Buffer.from('m'), { hash: 'sha256' });
    await held.received;
    const closing = k.close();
    held.release();
    expect((await signing).length).toBeGreaterThan(0);
    await closing;
  });
  it('key usage is enforced by KMS: an encryption key does not sign', async () => {
    const k = await open('sym-as-sign', { kms_key: 'alias/sym' });
    await expect(k.sign(Buffer.from('x'), { hash: 'sha256' })).rejects.toThrow(/does not sign/);
  });
});
