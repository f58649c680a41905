// Google Cloud KMS managed keys: the real @google-cloud/kms client over gRPC + TLS
// against the emulator, authenticated with self-signed service-account JWTs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createHash, verify as nodeVerify, constants, publicEncrypt } from 'node:crypto';
import { GcpKmsKey } from '../../src/keys/gcpckms';
import { parseKeyConfig } from '../../src/keys/config';
import { startGcpKms, type GcpKmsEmulator } from '../emulators/gcpkms';
import { makeServerCerts } from '../support/certs';
import { aesContract } from '../support/key-contract';

let kms: GcpKmsEmulator;
const opened: GcpKmsKey[] = [];
async function open(name: string, cryptoKey: string, extra: Record<string, unknown> = {}): Promise<GcpKmsKey> {
  const p = parseKeyConfig('gcpckms', name, {
    credentials: kms.credentialsJson,
    project: kms.project,
    region: kms.location,
    key_ring: kms.keyRing,
    crypto_key: cryptoKey,
    endpoint: kms.endpoint,
    endpoint_ca: kms.caPem,
    ...extra,
  });
  const k = await GcpKmsKey.open(name, p.fields, p.common);
  opened.push(k);
  return k;
}

beforeAll(async () => {
  const pki = makeServerCerts({ dns: ['localhost'], ips: [] });
  kms = await startGcpKms({ certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem });
  kms.createKey('ec256', 'EC_SIGN_P256_SHA256');
  kms.createKey('ec384', 'EC_SIGN_P384_SHA384');
  kms.createKey('pss', 'RSA_SIGN_PSS_2048_SHA256');
  kms.createKey('pkcs1', 'RSA_SIGN_PKCS1_2048_SHA256');
  kms.createKey('oaep', 'RSA_DECRYPT_OAEP_2048_SHA256');
  kms.createKey('sym', 'GOOGLE_SYMMETRIC_ENCRYPTION');
});
afterAll(async () => {
  for (const k of opened) await k.close();
  await kms.close();
});

const msg = Buffer.from('gcp message');
describe('Google Cloud KMS', () => {
  it('ECDSA P-256 and P-384: signatures over digests, verified by Node; every call was authenticated', async () => {
    for (const [key, hash] of [
      ['ec256', 'sha256'],
      ['ec384', 'sha384'],
    ] as const) {
      const k = await open(key, key);
      const sig = await k.sign(msg, { hash });
      expect(nodeVerify(hash, msg, { key: await k.publicKey(), dsaEncoding: 'der' }, sig)).toBe(true);
      const pre = await k.sign(createHash(hash).update(msg).digest(), { hash, prehashed: true });
      expect(await k.verify(msg, pre, { hash })).toBe(true);
    }
    expect(kms.calls.length).toBeGreaterThan(0);
    expect(kms.calls.every((c) => c.authorized)).toBe(true);
  });
  it('close() while a call is in flight (its config rewritten or deleted): the call still gets its answer', async () => {
    const k = await open('closing', 'ec256');
    const pub = await k.publicKey();
    const held = kms.holdNext('AsymmetricSign');
    const signing = k.sign(msg, { hash: 'sha256' });
    await held.received;
    const closing = k.close();
    held.release();
    const sig = await signing;
    expect(nodeVerify('sha256', msg, { key: pub, dsaEncoding: 'der' }, sig)).toBe(true);
    await closing;
  });
  it('RSA-PSS and PKCS#1 keys sign with their one algorithm; another is refused by name', async () => {
    const pss = await open('pss', 'pss');
    const sig = await pss.sign(msg, { hash: 'sha256', padding: 'pss' });
    expect(
      nodeVerify('sha256', msg, { key: await pss.publicKey(), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig),
    ).toBe(true);
    await expect(pss.sign(msg, { hash: 'sha256', padding: 'pkcs1v15' })).rejects.toThrow(/gcpckms key "pss" signs with pss padding only/);
    await expect(pss.sign(msg, { hash: 'sha512', padding: 'pss' })).rejects.toThrow(/signs with sha256 only/);
    const p1 = await open('pkcs1', 'pkcs1');
    const s1 = await p1.sign(msg, { hash: 'sha256', padding: 'pkcs1v15' });
    expect(nodeVerify('sha256', msg, { key: await p1.publicKey(), padding: constants.RSA_PKCS1_PADDING }, s1)).toBe(true);
  });
  it('RSA-OAEP decryption in KMS of what Node encrypted to the public key', async () => {
    const k = await open('oaep', 'oaep');
    const ct = publicEncrypt({ key: await k.publicKey(), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('wrapped'));
    expect((await k.decrypt(ct)).toString()).toBe('wrapped');
    await expect(k.sign(msg, { hash: 'sha256' })).rejects.toThrow(/does not sign/);
  });
  describe('symmetric', () => {
    let k: GcpKmsKey;
    beforeAll(async () => {
      k = await open('sym', 'sym');
    });
    aesContract(() => k);
  });

  it("a ciphertext or AAD the key did not make is bad input, known by the service's INVALID_ARGUMENT (the cause kept)", async () => {
    const k = await open('symbad', 'sym');
    const ct = await k.encrypt(msg, { aad: Buffer.from('a') });
    const e = await k.decrypt(ct, { aad: Buffer.from('b') }).catch((x: unknown) => x);
    expect(e).toMatchObject({ kind: 'invalid', message: 'decryption failed: ciphertext or associated data do not match gcpckms key "symbad"' });
    expect((e as Error).cause).toMatchObject({ kind: 'invalid', origin: { code: 3 } });
  });

  it('a key that does not exist is NotFound, naming key and backend', async () => {
    await expect(open('missing', 'nope')).rejects.toMatchObject({
      kind: 'not_found',
      message: expect.stringMatching(/gcpckms key "missing": describe failed: .*not found/),
    });
  });
  it('allow_generate_key creates the crypto key with the requested algorithm', async () => {
    const k = await open('gen', 'generated', { allow_generate_key: true, algorithm: 'EC_SIGN_P256_SHA256' });
    expect(k.describe()).toMatchObject({ spec: { kind: 'ec', curve: 'P-256' }, algorithms: ['ecdsa-sha256'] });
    expect(await k.verify(msg, await k.sign(msg, { hash: 'sha256' }), { hash: 'sha256' })).toBe(true);
  });
  it('credentials of another service account are refused (UNAUTHENTICATED), with no key material in the error', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const other = JSON.parse(kms.credentialsJson);
    other.private_key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    const err = await open('forged', 'ec256', { credentials: JSON.stringify(other) }).catch((e) => e);
    expect(err.kind).toBe('denied');
    expect(err.message).toMatch(/invalid authentication credentials/);
    expect(err.message).not.toMatch(/PRIVATE KEY/);
  });
  it('UNAVAILABLE is retried (bounded), then reported clearly', async () => {
    const k = await open('retry', 'sym');
    kms.failNext(2);
    expect((await k.random(16)).length).toBe(16);
    kms.calls.length = 0;
    kms.failNext(100, grpc.status.RESOURCE_EXHAUSTED);
    await expect(k.random(16)).rejects.toThrow(/gcpckms key "retry": random failed/);
    expect(kms.calls.length).toBe(4); // first try + 3 retries
    kms.failNext(0);
  });
});
