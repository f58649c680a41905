// Azure Key Vault managed keys: the real @azure/keyvault-keys + @azure/identity clients
// over HTTPS against the emulator (challenge, AD token, key operations).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultKey } from '../../src/keys/azurekeyvault';
import { parseKeyConfig } from '../../src/keys/config';
import { startAzureKv, type AzureKvEmulator } from '../emulators/azurekv';
import { makeServerCerts } from '../support/certs';
import { aesContract, rsaContract } from '../support/key-contract';

let kv: AzureKvEmulator;
async function open(name: string, keyName: string, extra: Record<string, unknown> = {}): Promise<AzureKeyVaultKey> {
  const p = parseKeyConfig('azurekeyvault', name, {
    tenant_id: kv.tenantId,
    client_id: kv.clientId,
    client_secret: kv.clientSecret,
    vault_name: 'vpt',
    key_name: keyName,
    vault_url: kv.vaultUrl,
    authority_host: kv.base,
    endpoint_ca: kv.caPem,
    ...extra,
  });
  return AzureKeyVaultKey.open(name, p.fields, p.common);
}

beforeAll(async () => {
  const pki = makeServerCerts({ dns: ['localhost'], ips: [] });
  kv = await startAzureKv({ certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem });
  kv.createKey('ec256', 'EC-HSM', { crv: 'P-256' });
  kv.createKey('ec384', 'EC-HSM', { crv: 'P-384' });
  kv.createKey('ec521', 'EC-HSM', { crv: 'P-521' });
  kv.createKey('rsa', 'RSA-HSM', { size: 2048 });
  kv.createKey('aes', 'oct-HSM');
});
afterAll(async () => {
  await kv.close();
});

describe('Azure Key Vault', () => {
  // Key Vault pairs each EC curve with one hash (ES256/384/512).
  for (const [key, hash] of [
    ['ec256', 'sha256'],
    ['ec384', 'sha384'],
    ['ec521', 'sha512'],
  ] as const) {
    it(`ECDSA ${key}: r||s from the vault comes back as DER that Node verifies`, async () => {
      const { verify, createHash } = await import('node:crypto');
      const k = await open(key, key);
      const m = Buffer.from('azure message');
      const sig = await k.sign(m, { hash });
      expect(sig[0]).toBe(0x30);
      expect(verify(hash, m, { key: await k.publicKey(), dsaEncoding: 'der' }, sig)).toBe(true);
      expect(await k.verify(m, await k.sign(createHash(hash).update(m).digest(), { hash, prehashed: true }), { hash })).toBe(true);
    });
  }
  it('went through the challenge and got a token from the AD endpoint (no anonymous key access)', () => {
    expect(kv.tokensIssued).toBeGreaterThan(0);
    expect(kv.calls.some((c) => c.startsWith('POST') && c.includes('/oauth2/v2.0/token'))).toBe(true);
  });
  describe('RSA 2048', () => {
    let k: AzureKeyVaultKey;
    beforeAll(async () => {
      k = await open('rsa', 'rsa');
    });
    rsaContract(() => k);
  });
  describe('AES-256-GCM (Managed HSM oct-HSM)', () => {
    let k: AzureKeyVaultKey;
    beforeAll(async () => {
      k = await open('aes', 'aes');
    });
    aesContract(() => k);
  });
  it('random bytes from the HSM', async () => {
    const k = await open('aes-rng', 'aes');
    expect((await k.random(24)).length).toBe(24);
  });
  it('an unknown key is NotFound, naming key and backend', async () => {
    await expect(open('missing', 'nope')).rejects.toMatchObject({
      kind: 'not_found',
      message: expect.stringMatching(/azurekeyvault key "missing": describe failed: .*not found/),
    });
  });
  it('allow_generate_key creates the key in the vault', async () => {
    const k = await open('gen', 'generated', { allow_generate_key: true, key_type: 'RSA-HSM', key_bits: 3072 });
    expect(k.describe().spec).toEqual({ kind: 'rsa', bits: 3072 });
  });
  it('a wrong client secret is refused by AD; the secret is not in the error', async () => {
    const wrong = 'azs~WrongSecretValue000000000';
    const err = await open('bad', 'ec256', { client_secret: wrong }).catch((e) => e);
    expect(err.kind).toBe('denied');
    expect(err.message).toMatch(/azurekeyvault key "bad"/);
    expect(err.message).not.toContain(wrong);
    expect(err.message).not.toContain(kv.clientSecret);
  });
  it('429 and 5xx are retried (bounded), then reported clearly', async () => {
    const k = await open('retry', 'aes');
    kv.throttleNext(2);
    expect((await k.random(8)).length).toBe(8);
    kv.failNext(100, 503);
    kv.calls.length = 0;
    await expect(k.random(8)).rejects.toThrow(/azurekeyvault key "retry": random failed/);
    expect(kv.calls.filter((c) => c === 'POST /rng').length).toBe(4);
    kv.failNext(0);
  });
  it('key_ops are enforced by the vault: an EC signing key does not decrypt', async () => {
    const k = await open('ec-dec', 'ec256');
    await expect(k.decrypt(Buffer.alloc(64))).rejects.toThrow(/does not decrypt/);
  });
});
