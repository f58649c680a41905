// keymgmt → Azure Key Vault through the backend, against the emulator over HTTPS with the
// real @azure/keyvault-keys + @azure/identity clients (AD token, 401 challenge, importKey),
// and proof that the Key Vault key is Vault's key.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { constants, createPublicKey, publicEncrypt, verify as nodeVerify } from 'node:crypto';
import { AzureKeyVaultKey } from '../../src/keys/azurekeyvault';
import { parseKeyConfig } from '../../src/keys/config';
import { startAzureKv, type AzureKvEmulator } from '../emulators/azurekv';
import { makeServerCerts } from '../support/certs';
import { keymgmtMount } from './keymgmt-harness';

let kv: AzureKvEmulator;
beforeAll(async () => {
  const pki = makeServerCerts({ dns: ['localhost'], ips: [] });
  kv = await startAzureKv({ certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem });
});
afterAll(async () => {
  await kv.close();
});

const config = (secret = kv.clientSecret) => ({
  provider: 'azurekeyvault',
  key_collection: 'vpt-vault',
  endpoint: kv.vaultUrl,
  authority_host: kv.base,
  endpoint_ca: kv.caPem,
  credentials: { tenant_id: kv.tenantId, client_id: kv.clientId, client_secret: secret },
});
let m: ReturnType<typeof keymgmtMount>;
beforeEach(async () => {
  m = keymgmtMount();
  await m.ok('update', 'kms/az', config());
});

/** The distributed key, opened as a managed key (the plugin's own Key Vault adapter, separate clients). */
async function vaultKey(name: string): Promise<AzureKeyVaultKey> {
  const p = parseKeyConfig('azurekeyvault', name, {
    tenant_id: kv.tenantId,
    client_id: kv.clientId,
    client_secret: kv.clientSecret,
    vault_name: 'vpt-vault',
    key_name: name,
    vault_url: kv.vaultUrl,
    authority_host: kv.base,
    endpoint_ca: kv.caPem,
  });
  return AzureKeyVaultKey.open(name, p.fields, p.common);
}

describe('keymgmt → Azure Key Vault', () => {
  it("RSA: imported as a JWK with the purposes as key_ops; Key Vault signs and decrypts as Vault's key", async () => {
    await m.ok('create', 'key/rsa', { type: 'rsa-2048' });
    const d = await m.ok('update', 'kms/az/key/rsa', { purpose: 'sign,verify,decrypt,unwrap', protection: 'hsm' });
    expect(d).toMatchObject({
      state: 'distributed',
      key_id: `${kv.vaultUrl}/keys/${d.name}`,
      versions: { 1: expect.stringMatching(new RegExp(`^${kv.vaultUrl}/keys/${d.name}/[0-9a-f]{32}$`)) },
    });
    const [v1] = kv.versionsOf(d.name);
    expect(v1).toMatchObject({ kty: 'RSA-HSM', ops: ['decrypt', 'sign', 'verify', 'unwrapKey'], imported: true });
    expect(kv.tokensIssued).toBeGreaterThan(0);
    const k = await vaultKey(d.name);
    const msg = Buffer.from('signed in key vault');
    const pub = createPublicKey((await m.ok('read', 'key/rsa')).keys['1'].public_key);
    const sig = await k.sign(msg, { hash: 'sha256', padding: 'pss' });
    expect(nodeVerify('sha256', msg, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig)).toBe(true);
    const ct = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('for key vault'));
    expect((await k.decrypt(ct)).toString()).toBe('for key vault');
  });

  it("ECDSA P-521 (software protection): Key Vault signatures verify with Vault's public key", async () => {
    await m.ok('create', 'key/ec', { type: 'ecdsa-p521' });
    const d = await m.ok('update', 'kms/az/key/ec', { purpose: 'sign', protection: 'software' });
    expect(kv.versionsOf(d.name)[0].kty).toBe('EC');
    const msg = Buffer.from('p521');
    const sig = await (await vaultKey(d.name)).sign(msg, { hash: 'sha512' });
    expect(nodeVerify('sha512', msg, { key: createPublicKey((await m.ok('read', 'key/ec')).keys['1'].public_key), dsaEncoding: 'der' }, sig)).toBe(true);
  });

  it('rotation adds a Key Vault version (the current one); min_enabled_version disables older versions; removal deletes the key', async () => {
    await m.ok('create', 'key/rot', { type: 'rsa-2048' });
    const d = await m.ok('update', 'kms/az/key/rot', { purpose: 'sign' });
    await m.ok('update', 'key/rot/rotate');
    const r = await m.ok('read', 'kms/az/key/rot');
    expect(Object.keys(r.versions)).toEqual(['1', '2']);
    const msg = Buffer.from('v2');
    const sig = await (await vaultKey(d.name)).sign(msg, { hash: 'sha256', padding: 'pss' });
    expect(
      nodeVerify(
        'sha256',
        msg,
        {
          key: createPublicKey((await m.ok('read', 'key/rot')).keys['2'].public_key),
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_AUTO,
        },
        sig,
      ),
    ).toBe(true);
    await m.ok('update', 'key/rot', { min_enabled_version: 2 });
    expect(kv.versionsOf(d.name).map((v) => v.enabled)).toEqual([false, true]);
    await m.call('delete', 'kms/az/key/rot');
    expect(kv.versionsOf(d.name)).toEqual([]);
    expect(kv.deleted.get(d.name)).toHaveLength(2);
    expect(await m.call('read', 'kms/az/key/rot')).toEqual({});
  });

  it('what Key Vault cannot hold is a 400; a refused client secret is a 400 without the secret', async () => {
    await m.ok('create', 'key/aes', { type: 'aes256-gcm96' });
    await m.ok('create', 'key/ec', { type: 'ecdsa-p256' });
    expect((await m.call('update', 'kms/az/key/aes', { purpose: 'encrypt' })).error).toMatch(/azurekeyvault cannot hold aes256-gcm96 keys: .*Managed HSM/);
    expect((await m.call('update', 'kms/az/key/ec', { purpose: 'sign,wrap' })).error).toMatch(/purpose wrap is not possible for ecdsa-p256 keys/);
    expect(
      (await m.call('update', 'kms/x', { provider: 'azurekeyvault', key_collection: 'v', credentials: { client_id: 'a', client_secret: 'b' } })).error,
    ).toMatch(/key_collection for azurekeyvault must be a Key Vault name/);
    expect(
      (await m.call('update', 'kms/x', { provider: 'azurekeyvault', key_collection: 'vault1', credentials: { client_id: 'a', client_secret: 'b' } })).error,
    ).toMatch(/tenant_id is required/);
    const wrong = 'azs~NotTheSecret0000000000';
    await m.ok('update', 'kms/bad', config(wrong));
    const r = await m.call('update', 'kms/bad/key/ec', { purpose: 'sign' });
    expect(r.error).toMatch(/refused the credentials: .*rolled back/);
    expect(JSON.stringify(r)).not.toContain(wrong);
    expect(JSON.stringify(await m.ok('read', 'kms/bad'))).not.toContain(wrong);
  });

  it('two key names sharing a long prefix get distinct, valid Key Vault names; each rotates and is removed alone', async () => {
    // Key names are at most 128 characters: these two share their first 126.
    const prefix = `cmek-${'p'.repeat(121)}`;
    const names: string[] = [];
    for (const key of [`${prefix}-a`, `${prefix}.a`]) {
      await m.ok('create', `key/${key}`, { type: 'rsa-2048' });
      const d = await m.ok('update', `kms/az/key/${key}`, { purpose: 'sign' });
      expect(d.state).toBe('distributed');
      const name = d.key_id.slice(`${kv.vaultUrl}/keys/`.length);
      expect(name).toMatch(/^[0-9a-zA-Z-]{1,127}$/);
      expect(d.versions['1']).toMatch(new RegExp(`^${kv.vaultUrl}/keys/${name}/[0-9a-f]{32}$`));
      expect(kv.versionsOf(name)).toHaveLength(1);
      names.push(name);
    }
    expect(names[0]).not.toBe(names[1]);
    await m.ok('update', `key/${prefix}-a/rotate`);
    expect(kv.versionsOf(names[0])).toHaveLength(2);
    expect(kv.versionsOf(names[1])).toHaveLength(1);
    await m.ok('delete', `kms/az/key/${prefix}-a`);
    expect(kv.versionsOf(names[0])).toEqual([]);
    expect(kv.versionsOf(names[1])).toHaveLength(1);
    // A name that fits keeps its old mapping: the distribution's name with '_' and '.' as '-'.
    await m.ok('create', 'key/short_name.1', { type: 'rsa-2048' });
    const short = await m.ok('update', 'kms/az/key/short_name.1', { purpose: 'sign' });
    expect(short.key_id).toBe(`${kv.vaultUrl}/keys/${short.name.replace(/[^A-Za-z0-9-]/g, '-')}`);
  });

  it('a distribution recorded with an older (cut) Key Vault name keeps using that name', async () => {
    const key = `old-${'q'.repeat(124)}`;
    await m.ok('create', `key/${key}`, { type: 'rsa-2048' });
    const name = `${key}-1700000000`;
    const legacy = name.slice(0, 127);
    // As an earlier release recorded it: stopped before its first import.
    m.store.data.set(
      `dist/az/${key}`,
      Buffer.from(
        JSON.stringify({
          kms: 'az',
          key,
          purpose: ['sign'],
          protection: 'hsm',
          name,
          nonce: 'aabbccddeeff001122334455',
          state: 'failed',
          container: `${kv.vaultUrl}/keys/${legacy}`,
          versions: {},
          updated: '',
        }),
      ),
    );
    const d = await m.ok('update', `kms/az/key/${key}`, { purpose: 'sign' });
    expect(d).toMatchObject({ state: 'distributed', key_id: `${kv.vaultUrl}/keys/${legacy}` });
    expect(kv.versionsOf(legacy)).toHaveLength(1);
    await m.ok('delete', `kms/az/key/${key}`);
    expect(kv.deleted.get(legacy)).toHaveLength(1);
  });

  it('a Key Vault key of the chosen name that this distribution did not make is left alone (400, rolled back)', async () => {
    // 'col_1' and 'col.1' both become col-1-<time> in Key Vault; here that name is already taken.
    const now = Math.floor(Date.now() / 1000);
    for (let t = now; t < now + 8; t++) kv.createKey(`col-1-${t}`, 'RSA');
    await m.ok('create', 'key/col_1', { type: 'rsa-2048' });
    const r = await m.call('update', 'kms/az/key/col_1', { purpose: 'sign' });
    expect(r.error).toMatch(/key col-1-\d+ already exists in the key vault and was not made by this distribution.*rolled back/);
    for (let t = now; t < now + 8; t++) expect(kv.versionsOf(`col-1-${t}`)).toHaveLength(1);
    expect(await m.call('read', 'kms/az/key/col_1')).toEqual({});
  });

  it('an import whose reply was lost: the resumed distribution finds that version by its tags instead of importing twice', async () => {
    await m.ok('create', 'key/lost', { type: 'rsa-2048' });
    kv.faultOn('PUT /keys/', 1, { when: 'after', status: 503 });
    const r = await m.call('update', 'kms/az/key/lost', { purpose: 'sign' });
    expect(r.err).toMatchObject({ err_code: 502 });
    const failed = await m.ok('read', 'kms/az/key/lost');
    expect(failed.state).toBe('failed');
    expect(kv.versionsOf(failed.name)).toHaveLength(1);
    const d = await m.ok('update', 'kms/az/key/lost', { purpose: 'sign' });
    expect(d.state).toBe('distributed');
    expect(kv.versionsOf(d.name)).toHaveLength(1);
    expect(d.versions['1']).toMatch(new RegExp(`/${kv.versionsOf(d.name)[0].version}$`));
  });

  it('429 and 5xx on updates are retried (bounded); an outage that outlasts them is recorded and resumable', async () => {
    await m.ok('create', 'key/thr', { type: 'rsa-2048' });
    await m.ok('update', 'kms/az/key/thr', { purpose: 'sign' });
    kv.throttleNext(2);
    await m.ok('update', 'key/thr/rotate');
    expect((await m.ok('read', 'kms/az/key/thr')).state).toBe('distributed');
    kv.faultOn('PATCH /keys/', 4, { status: 503 });
    const r = await m.call('update', 'key/thr', { min_enabled_version: 2 });
    expect(r.warnings?.join('\n')).toMatch(/disable version failed/);
    expect((await m.ok('read', 'kms/az/key/thr')).state).toBe('failed');
    const fin = await m.ok('update', 'kms/az/key/thr/rotate');
    expect(fin.state).toBe('distributed');
    expect(kv.versionsOf(fin.name).map((v) => v.enabled)).toEqual([false, true]);
  });
});
