// A transit managed_key over an AWS KMS key (the emulator, through the real SDK): transit
// hands every hash_algorithm to the key, as Vault; KMS signs with SHA-2 256/384/512 only, so
// the key refuses the others with a 400 that names them, before any call to KMS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsKms, type AwsKmsEmulator } from '../emulators/awskms';
import { transitPerTest } from '../support/backend';

const { call, ok } = transitPerTest();
const b64 = (x: string | Buffer) => Buffer.from(x).toString('base64');

let kms: AwsKmsEmulator;
beforeAll(async () => {
  kms = await startAwsKms();
});
afterAll(async () => {
  await kms.close();
});

describe('transit managed_key on AWS KMS', () => {
  it('signs with sha2-256; sha2-224 and sha3-* are refused by the key with a clear 400, not sent to KMS', async () => {
    const kmsKey = kms.createKey('RSA_2048', 'SIGN_VERIFY');
    await ok('update', 'managed-keys/awskms/aws', {
      kms_key: kmsKey.id,
      access_key: kms.accessKeyId,
      secret_key: kms.secretAccessKey,
      region: kms.region,
      endpoint: kms.url,
    });
    await ok('create', 'keys/aws', { type: 'managed_key', managed_key_name: 'aws' });
    const { signature } = await ok('update', 'sign/aws/sha2-256', { input: b64('m'), signature_algorithm: 'pkcs1v15' });
    expect((await ok('update', 'verify/aws/sha2-256', { input: b64('m'), signature_algorithm: 'pkcs1v15', signature })).valid).toBe(true);
    const signs = () => kms.calls.filter((c) => c === 'Sign').length;
    const before = signs();
    for (const alg of ['sha2-224', 'sha3-256', 'sha3-512']) {
      const r = await call('update', `sign/aws/${alg}`, { input: b64('m') });
      expect(r.error, alg).toBe(`awskms key "aws" signs with sha256, sha384 or sha512 only, not ${alg.replace('sha2-', 'sha')}`);
    }
    expect(signs()).toBe(before);
  });
});
