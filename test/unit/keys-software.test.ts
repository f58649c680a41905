import { describe, expect, it } from 'vitest';
import { verify as nodeVerify } from 'node:crypto';
import { SoftwareKey } from '../../src/keys/software';
import { parseKeyConfig, publicView } from '../../src/keys/config';
import { derToRaw, rawToDer } from '../../src/keys/crypto';
import { aesContract, ecdsaContract, rsaContract } from '../support/key-contract';

const all = ['sign', 'verify', 'encrypt', 'decrypt', 'random'] as const;

describe('software keys (not an HSM)', () => {
  for (const t of ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521']) {
    describe(t, () => { const k = SoftwareKey.create('k', t, [...all]); ecdsaContract(() => k); });
  }
  describe('rsa-2048', () => { const k = SoftwareKey.create('k', 'rsa-2048', [...all]); rsaContract(() => k); });
  describe('aes256-gcm', () => { const k = SoftwareKey.create('k', 'aes256-gcm', [...all]); aesContract(() => k); });
  it('ed25519 signs messages and refuses digests', async () => {
    const k = SoftwareKey.create('k', 'ed25519', [...all]);
    const sig = await k.sign(Buffer.from('m'), { hash: 'sha256' });
    expect(nodeVerify(null, Buffer.from('m'), await k.publicKey(), sig)).toBe(true);
    await expect(k.sign(Buffer.alloc(32), { hash: 'sha256', prehashed: true })).rejects.toThrow(/not digests/);
  });
  it('says it is not hardware, and enforces usages', async () => {
    const k = SoftwareKey.create('soft', 'ecdsa-p256', ['verify']);
    expect(k.describe()).toMatchObject({ backend: 'software', hardware: false, spec: { kind: 'ec', curve: 'P-256' } });
    await expect(k.sign(Buffer.from('x'), { hash: 'sha256' })).rejects.toThrow(/not allowed to sign/);
  });
  it('survives export and re-import', async () => {
    const a = SoftwareKey.create('k', 'ecdsa-p256', [...all]);
    const b = SoftwareKey.create('k', 'ecdsa-p256', [...all], a.exportPrivate());
    const sig = await a.sign(Buffer.from('m'), { hash: 'sha256' });
    expect(await b.verify(Buffer.from('m'), sig, { hash: 'sha256' })).toBe(true);
  });
  it('converts ECDSA signatures between DER and r||s', () => {
    const raw = Buffer.concat([Buffer.alloc(31, 0), Buffer.from([0x80]), Buffer.alloc(32, 0x7f)]);
    const der = rawToDer(raw);
    expect(derToRaw(der, 32).equals(raw)).toBe(true);
  });
});

describe('managed key configuration', () => {
  it('validates per backend and never echoes secrets', () => {
    const p = parseKeyConfig('pkcs11', 'hsm1', { library: '/usr/lib/softhsm/libsofthsm2.so', token_label: 't', pin: '1234', key_label: 'k', usages: 'sign,verify', max_parallel: '4' });
    expect(p.common.usages).toEqual(['sign', 'verify']);
    expect(p.fields.max_parallel).toBe(4);
    const view = publicView(p);
    expect(view.pin).toBeUndefined();
    expect(JSON.stringify(view)).not.toContain('1234');
    expect(() => parseKeyConfig('pkcs11', 'x', { library: 'l' })).toThrow(/pin is required/);
    expect(() => parseKeyConfig('awskms', 'x', { kms_key: 'k', bogus: 1 })).toThrow(/unknown field "bogus"/);
    expect(() => parseKeyConfig('vaultkms', 'x', {})).toThrow(/unknown managed key type/);
    expect(() => parseKeyConfig('software', 'bad name!', { key_type: 'ed25519' })).toThrow(/name must be/);
    expect(() => parseKeyConfig('software', 'x', { key_type: 'ed25519', usages: 'sign,fly' })).toThrow(/unknown value "fly"/);
    expect(publicView(parseKeyConfig('azurekeyvault', 'az', { tenant_id: 't', client_id: 'c', client_secret: 'shh-secret', vault_name: 'v', key_name: 'k' }))).not.toHaveProperty('client_secret');
  });
});
