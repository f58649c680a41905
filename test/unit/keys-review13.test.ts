// Managed-key configuration checks found missing in review 13.
import { describe, expect, it } from 'vitest';
import { Pkcs11Key } from '../../src/keys/pkcs11';
import { parseKeyConfig } from '../../src/keys/config';

describe('pkcs11 key_id', () => {
  const open = (key_id: string) => {
    const p = parseKeyConfig('pkcs11', 'k', { library: '/nonexistent/module.so', token_label: 't', pin: '1234', key_id });
    return Pkcs11Key.open('k', p.fields, p.common);
  };
  it('must be hex bytes: a typo is refused, not read as the bytes before it (which would select another key)', async () => {
    // Buffer.from(s, 'hex') stops at the first non-hex pair: "12zz" was CKA_ID 0x12, "zz" the empty id.
    for (const bad of ['zz', '12zz', '0x', '123', '0x12 34', 'g0'])
      await expect(open(bad), bad).rejects.toMatchObject({ kind: 'invalid', message: expect.stringMatching(/key_id must be hex/) });
    // Well-formed ids get as far as the module (refused here by the operator's list).
    for (const good of ['12', '0x12AB', 'deadbeef']) await expect(open(good), good).rejects.toThrow(/PLUGIN_PKCS11_LIBRARIES/);
  });
});

describe('software managed keys: private_key must be of key_type', () => {
  it('a key of another type or size is refused when the config is written, not a 500 on every use', async () => {
    const { backendMount } = await import('../support/backend');
    const { generateKeyPairSync, randomBytes } = await import('node:crypto');
    const { call, ok } = backendMount('transit');
    const pem = (type: 'rsa' | 'ec' | 'ed25519', o: object = {}) =>
      generateKeyPairSync(
        type as 'rsa',
        { ...o, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } } as never,
      ).privateKey as unknown as string;
    const rsa = pem('rsa', { modulusLength: 2048 });
    const p384 = pem('ec', { namedCurve: 'P-384' });
    for (const [key_type, private_key] of [
      ['ecdsa-p256', rsa],
      ['ecdsa-p256', p384],
      ['rsa-3072', rsa],
      ['ed25519', p384],
      ['aes256-gcm', randomBytes(16).toString('base64')],
    ]) {
      const r = await call('update', 'managed-keys/software/k', { key_type, private_key });
      expect(r.err, key_type).toBeUndefined();
      expect(r.error, key_type).toBe(`private_key is not a ${key_type} key`);
    }
    expect((await ok('update', 'managed-keys/software/k', { key_type: 'ecdsa-p384', private_key: p384 })).key_spec).toEqual({ kind: 'ec', curve: 'P-384' });
    expect((await ok('update', 'managed-keys/software/a', { key_type: 'aes256-gcm', private_key: randomBytes(32).toString('base64') })).key_spec.kind).toBe(
      'aes',
    );
  });
});
