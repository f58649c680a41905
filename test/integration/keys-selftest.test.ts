// The managed-key factory and the test/sign self-check, across backend kinds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFromConfig, selfTest } from '../../src/keys';
import type { ManagedKey } from '../../src/keys/types';
import { startAwsKms, type AwsKmsEmulator } from '../emulators/awskms';

let kms: AwsKmsEmulator;
beforeAll(async () => {
  kms = await startAwsKms();
});
afterAll(async () => {
  await kms.close();
});

describe('openFromConfig + selfTest', () => {
  it.each(['ecdsa-p256', 'ecdsa-p521', 'rsa-2048', 'ed25519', 'aes256-gcm'])('software %s passes its self-test', async (t) => {
    const k = await openFromConfig('software', 'k', { key_type: t });
    const r = await selfTest(k);
    expect(r.ok).toBe(true);
    expect(r.operation).toBe(t === 'aes256-gcm' ? 'encrypt' : 'sign');
  });
  it('an AWS KMS key passes its self-test through the real SDK', async () => {
    const id = kms.createKey('ECC_NIST_P384').id;
    const k = await openFromConfig('awskms', 'aws', { kms_key: id, access_key: kms.accessKeyId, secret_key: kms.secretAccessKey, endpoint: kms.url });
    expect(await selfTest(k)).toMatchObject({ ok: true, algorithm: 'ecdsa-sha384' });
    await k.close();
  });
  it('a key whose signature does not verify, or whose decryption gives other data back, fails it', async () => {
    /** `key`, with some of its operations replaced. */
    const broken = (key: ManagedKey, over: Partial<ManagedKey>): ManagedKey =>
      new Proxy(key, {
        get: (t, p) => {
          if (p in over) return over[p as keyof ManagedKey];
          const v = Reflect.get(t, p, t);
          return typeof v === 'function' ? v.bind(t) : v;
        },
      });
    const ec = await openFromConfig('software', 'ec', { key_type: 'ecdsa-p256' });
    await expect(selfTest(broken(ec, { verify: async () => false }))).rejects.toThrow(/software key "ec": the signature from the self-test does not verify/);
    const aes = await openFromConfig('software', 'aes', { key_type: 'aes256-gcm' });
    await expect(selfTest(broken(aes, { decrypt: async () => Buffer.alloc(32) }))).rejects.toThrow(
      /software key "aes": encrypt\/decrypt self-test returned different data/,
    );
  });
  it('a self-test that cannot pass says why', async () => {
    const k = await openFromConfig('software', 'vo', { key_type: 'ecdsa-p256', usages: 'verify' });
    await expect(selfTest(k)).rejects.toThrow(/not allowed to sign/);
  });
  it('bad configuration is rejected before anything is opened', async () => {
    await expect(openFromConfig('software', 'x', { key_type: 'dsa-1024' })).rejects.toThrow(/key_type: must be one of/);
    await expect(openFromConfig('hsm', 'x', {})).rejects.toThrow(/unknown managed key type/);
  });
});
