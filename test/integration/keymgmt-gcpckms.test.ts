// keymgmt → Google Cloud KMS through the backend, against the emulator over gRPC + TLS
// with the real @google-cloud/kms client: crypto key (import-only), import job
// (RSA_OAEP_3072_SHA256_AES_256), ImportCryptoKeyVersion; and proof that what Cloud KMS
// holds is Vault's key.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { constants, createPublicKey, publicEncrypt, verify as nodeVerify } from 'node:crypto';
import { GcpKmsKey } from '../../src/keys/gcpckms';
import { parseKeyConfig } from '../../src/keys/config';
import { startGcpKms, type GcpKmsEmulator } from '../emulators/gcpkms';
import { makeServerCerts } from '../support/certs';
import { aesGcmOpen, keymgmtMount } from './keymgmt-harness';

let kms: GcpKmsEmulator;
let dir: string;
let saFile: string;
const opened: GcpKmsKey[] = [];
beforeAll(async () => {
  const pki = makeServerCerts({ dns: ['localhost'], ips: [] });
  kms = await startGcpKms({ certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keymgmt-gcp-'));
  saFile = path.join(dir, 'sa.json');
  fs.writeFileSync(saFile, kms.credentialsJson, { mode: 0o600 });
});
afterAll(async () => {
  for (const k of opened) await k.close();
  await kms.close();
  fs.rmSync(dir, { recursive: true, force: true });
  delete process.env.VAULT_PLUGIN_CREDENTIAL_FILES;
  delete process.env.VAULT_PLUGIN_AMBIENT_ENDPOINTS;
});

const ring = () => `projects/${kms.project}/locations/${kms.location}/keyRings/${kms.keyRing}`;
let m: ReturnType<typeof keymgmtMount>;
beforeEach(async () => {
  m = keymgmtMount();
  process.env.VAULT_PLUGIN_CREDENTIAL_FILES = `${dir}/`;
  // The operator's credential file signs for a configured endpoint only when the operator lists it.
  process.env.VAULT_PLUGIN_AMBIENT_ENDPOINTS = kms.endpoint;
  await m.ok('update', 'kms/gcp', {
    provider: 'gcpckms',
    key_collection: ring(),
    endpoint: kms.endpoint,
    endpoint_ca: kms.caPem,
    credentials: { service_account_file: saFile },
  });
});

/** The distributed key, opened as a managed key (the plugin's own Cloud KMS adapter, a separate client). */
async function cloudKey(cryptoKey: string, version = '1'): Promise<GcpKmsKey> {
  const p = parseKeyConfig('gcpckms', cryptoKey, {
    credentials: kms.credentialsJson,
    project: kms.project,
    region: kms.location,
    key_ring: kms.keyRing,
    crypto_key: cryptoKey,
    crypto_key_version: version,
    endpoint: kms.endpoint,
    endpoint_ca: kms.caPem,
  });
  const k = await GcpKmsKey.open(cryptoKey, p.fields, p.common);
  opened.push(k);
  return k;
}
const versionsOf = (cryptoKey: string) => [...kms.versions.values()].filter((v) => v.name.startsWith(`${cryptoKey}/cryptoKeyVersions/`));

describe('keymgmt → Google Cloud KMS', () => {
  it("aes256-gcm96: an import-only crypto key holds Vault's key; what Cloud KMS encrypts, Vault's copy decrypts", async () => {
    await m.ok('create', 'key/cmek', { type: 'aes256-gcm96' });
    const d = await m.ok('update', 'kms/gcp/key/cmek', { purpose: 'encrypt,decrypt', protection: 'hsm' });
    expect(d).toMatchObject({
      state: 'distributed',
      key_id: `${ring()}/cryptoKeys/${d.name}`,
      versions: { 1: `${ring()}/cryptoKeys/${d.name}/cryptoKeyVersions/1` },
    });
    expect(kms.cryptoKeys.get(d.key_id)).toMatchObject({ importOnly: true, purpose: 'ENCRYPT_DECRYPT', protectionLevel: 'HSM' });
    expect(kms.calls.map((c) => c.method)).toEqual(expect.arrayContaining(['CreateCryptoKey', 'CreateImportJob', 'ImportCryptoKeyVersion']));
    const ct = await (await cloudKey(d.name)).encrypt(Buffer.from('row data key'), { aad: Buffer.from('aad') });
    expect(aesGcmOpen(m.material('cmek').aes!, ct.subarray(0, 12), ct.subarray(12), Buffer.from('aad')).toString()).toBe('row data key');
  });

  it("RSA-PSS and ECDSA: Cloud KMS signatures verify with the public key key/<name> returns; OAEP decrypts what Vault's public key encrypted", async () => {
    for (const [type, hash] of [
      ['rsa-2048', 'sha256'],
      ['ecdsa-p384', 'sha384'],
    ] as const) {
      await m.ok('create', `key/${type}`, { type });
      const d = await m.ok('update', `kms/gcp/key/${type}`, { purpose: 'sign', protection: 'software' });
      const msg = Buffer.from(`cloud kms signs for ${type}`);
      const sig = await (await cloudKey(d.name)).sign(msg, { hash, padding: 'pss' });
      const pub = createPublicKey((await m.ok('read', `key/${type}`)).keys['1'].public_key);
      const opts = type.startsWith('rsa')
        ? { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
        : { key: pub, dsaEncoding: 'der' as const };
      expect(nodeVerify(hash, msg, opts, sig)).toBe(true);
    }
    await m.ok('create', 'key/oaep', { type: 'rsa-3072' });
    const d = await m.ok('update', 'kms/gcp/key/oaep', { purpose: 'encrypt,decrypt' });
    const ct = publicEncrypt(
      { key: (await m.ok('read', 'key/oaep')).keys['1'].public_key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from('for cloud kms'),
    );
    expect((await (await cloudKey(d.name)).decrypt(ct)).toString()).toBe('for cloud kms');
  });

  it('rotation imports version 2 and makes it primary; min_enabled_version disables version 1; removal destroys the versions', async () => {
    await m.ok('create', 'key/rot', { type: 'aes256-gcm96' });
    const d = await m.ok('update', 'kms/gcp/key/rot', { purpose: 'encrypt,decrypt' });
    await m.ok('update', 'key/rot/rotate');
    const ct = await (await cloudKey(d.name)).encrypt(Buffer.from('after rotation'));
    expect(aesGcmOpen(m.material('rot', 2).aes!, ct.subarray(0, 12), ct.subarray(12), Buffer.alloc(0)).toString()).toBe('after rotation');
    await m.ok('update', 'key/rot', { min_enabled_version: 2 });
    expect(versionsOf(d.key_id).map((v) => v.state)).toEqual(['DISABLED', 'ENABLED']);
    await m.call('delete', 'kms/gcp/key/rot');
    expect(versionsOf(d.key_id).map((v) => v.state)).toEqual(['DESTROY_SCHEDULED', 'DESTROY_SCHEDULED']);
    expect(await m.call('read', 'kms/gcp/key/rot')).toEqual({});
  });

  it("what Cloud KMS cannot hold, and credential files outside the operator's allowlist, are 400s with clear messages", async () => {
    await m.ok('create', 'key/p521', { type: 'ecdsa-p521' });
    await m.ok('create', 'key/rsa', { type: 'rsa-2048' });
    expect((await m.call('update', 'kms/gcp/key/p521', { purpose: 'sign' })).error).toMatch(
      /gcpckms cannot hold ecdsa-p521 keys: Cloud KMS imports no P-521 keys/,
    );
    expect((await m.call('update', 'kms/gcp/key/rsa', { purpose: 'unwrap' })).error).toMatch(/gcpckms offers no purpose unwrap/);
    expect((await m.call('update', 'kms/gcp/key/rsa', { purpose: 'sign,decrypt' })).error).toMatch(/one purpose/);
    expect((await m.call('update', 'kms/x', { provider: 'gcpckms', key_collection: 'my-ring' })).error).toMatch(/key ring resource id/);
    delete process.env.VAULT_PLUGIN_CREDENTIAL_FILES;
    const r = await m.call('update', 'kms/x', { provider: 'gcpckms', key_collection: ring(), credentials: { service_account_file: saFile } });
    expect(r.error).toMatch(/service_account_file: this path is not allowed by the operator .*VAULT_PLUGIN_CREDENTIAL_FILES/);
    expect(r.error).not.toContain(saFile);
    // Already configured, then the operator narrows the list: refused when used, too.
    expect((await m.call('update', 'kms/gcp/key/rsa', { purpose: 'sign' })).error).toMatch(/not allowed by the operator/);
    expect(await m.call('read', 'kms/gcp/key/rsa')).toEqual({});
  });

  it("the operator's credential file never signs requests to an endpoint the config names, unless the operator lists that endpoint", async () => {
    // The config's writer does not hold the file's service-account key: a JWT it signs, sent to
    // a server the writer runs, would be a bearer token for Cloud KMS as the operator's account.
    await m.ok('create', 'key/rsa', { type: 'rsa-2048' });
    delete process.env.VAULT_PLUGIN_AMBIENT_ENDPOINTS;
    const before = kms.calls.length;
    const cfg = { provider: 'gcpckms', key_collection: ring(), endpoint: kms.endpoint, endpoint_ca: kms.caPem, credentials: { service_account_file: saFile } };
    expect((await m.call('update', 'kms/writer', cfg)).error).toMatch(/kms "writer": .*configured endpoint.*VAULT_PLUGIN_AMBIENT_ENDPOINTS/);
    process.env.VAULT_PLUGIN_AMBIENT_ENDPOINTS = 'elsewhere.example:443';
    expect((await m.call('update', 'kms/writer', cfg)).error).toMatch(/VAULT_PLUGIN_AMBIENT_ENDPOINTS/);
    // Configured while the operator listed it, then the list changed: refused when used, too.
    expect((await m.call('update', 'kms/gcp/key/rsa', { purpose: 'sign' })).error).toMatch(/VAULT_PLUGIN_AMBIENT_ENDPOINTS/);
    expect(kms.calls.length).toBe(before);
    // The service-account JSON given in the config is the writer's own: any endpoint.
    delete process.env.VAULT_PLUGIN_AMBIENT_ENDPOINTS;
    await m.ok('update', 'kms/writer', { ...cfg, credentials: { service_account_json: kms.credentialsJson } });
  });

  it('a service account Cloud KMS does not accept: 400, nothing created, no key material in the reply', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const forged = JSON.parse(kms.credentialsJson);
    forged.private_key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await m.ok('update', 'kms/forged', {
      provider: 'gcpckms',
      key_collection: ring(),
      endpoint: kms.endpoint,
      endpoint_ca: kms.caPem,
      credentials: { service_account_json: JSON.stringify(forged) },
    });
    await m.ok('create', 'key/k', { type: 'aes256-gcm96' });
    const before = kms.cryptoKeys.size;
    const r = await m.call('update', 'kms/forged/key/k', { purpose: 'encrypt' });
    expect(r.error).toMatch(/refused the credentials: .*invalid authentication credentials.*rolled back/);
    expect(JSON.stringify(r)).not.toMatch(/PRIVATE KEY/);
    expect(kms.cryptoKeys.size).toBe(before);
    expect(JSON.stringify(await m.ok('read', 'kms/forged'))).not.toMatch(/PRIVATE KEY|private_key/);
  });

  it('credentials given once on the CLI (one "k=v" string, as in Vault\'s gcpckms docs) configure the provider', async () => {
    // `vault write keymgmt/kms/x ... credentials=service_account_file=/path` sends a string, not a list.
    await m.ok('update', 'kms/cli', {
      provider: 'gcpckms',
      key_collection: ring(),
      endpoint: kms.endpoint,
      endpoint_ca: kms.caPem,
      credentials: `service_account_file=${saFile}`,
    });
    await m.ok('create', 'key/cli', { type: 'ecdsa-p256' });
    expect((await m.ok('update', 'kms/cli/key/cli', { purpose: 'sign' })).state).toBe('distributed');
    const bad = await m.call('update', 'kms/cli', { credentials: 'service_account_json' });
    expect(bad.error).toMatch(/credentials: each list item must be key=value/);
  });

  it('writing a software-protected distribution again without protection resumes it (no default hsm to refuse)', async () => {
    await m.ok('create', 'key/soft', { type: 'aes256-gcm96' });
    const d = await m.ok('update', 'kms/gcp/key/soft', { purpose: 'encrypt,decrypt', protection: 'software' });
    expect(d.protection).toBe('software');
    expect(await m.ok('update', 'kms/gcp/key/soft', { purpose: 'encrypt,decrypt' })).toMatchObject({ state: 'distributed', protection: 'software' });
    // Given explicitly, a different protection is still refused.
    expect((await m.call('update', 'kms/gcp/key/soft', { purpose: 'encrypt,decrypt', protection: 'hsm' })).error).toMatch(/cannot change/);
  });

  it('two key names sharing a long prefix get distinct, valid crypto key ids; a name that fits maps as before', async () => {
    // Key names are at most 128 characters: these two share their first 126 (and differ only where '.' and '-' both map to '-').
    const prefix = `cmek-${'p'.repeat(121)}`;
    const ids: string[] = [];
    for (const name of [`${prefix}-a`, `${prefix}.a`]) {
      await m.ok('create', `key/${name}`, { type: 'aes256-gcm96' });
      const d = await m.ok('update', `kms/gcp/key/${name}`, { purpose: 'encrypt,decrypt' });
      expect(d.state).toBe('distributed');
      const id = d.key_id.split('/cryptoKeys/')[1];
      expect(id).toMatch(/^[a-zA-Z0-9_-]{1,63}$/);
      expect(versionsOf(d.key_id)).toHaveLength(1);
      ids.push(id);
    }
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[0].slice(0, 50)).toBe(ids[1].slice(0, 50));
    // Stable: the recorded id is the one rotation imports into.
    await m.ok('update', `key/${prefix}-a/rotate`);
    const after = await m.ok('read', `kms/gcp/key/${prefix}-a`);
    expect(after.key_id.split('/cryptoKeys/')[1]).toBe(ids[0]);
    expect(versionsOf(after.key_id)).toHaveLength(2);
    expect(versionsOf(`${ring()}/cryptoKeys/${ids[1]}`)).toHaveLength(1);
    // A name that fits keeps its old id: the distribution's name itself.
    await m.ok('create', 'key/short_name.1', { type: 'aes256-gcm96' });
    const short = await m.ok('update', 'kms/gcp/key/short_name.1', { purpose: 'encrypt' });
    expect(short.key_id).toBe(`${ring()}/cryptoKeys/${short.name}`);
  });

  it('an import whose reply was lost: the resumed distribution finds that version by its import job instead of importing twice', async () => {
    await m.ok('create', 'key/lost', { type: 'aes256-gcm96' });
    kms.faultOn('ImportCryptoKeyVersion', 1, { when: 'after', code: grpc.status.UNAVAILABLE });
    const r = await m.call('update', 'kms/gcp/key/lost', { purpose: 'encrypt,decrypt' });
    expect(r.err).toMatchObject({ err_code: 502 });
    const failed = await m.ok('read', 'kms/gcp/key/lost');
    expect(failed).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/import crypto key version failed/) });
    expect(versionsOf(failed.key_id)).toHaveLength(1);
    const d = await m.ok('update', 'kms/gcp/key/lost', { purpose: 'encrypt,decrypt' });
    expect(d.state).toBe('distributed');
    expect(versionsOf(d.key_id)).toHaveLength(1);
    expect(d.versions['1']).toBe(versionsOf(d.key_id)[0].name);
  });

  it('RESOURCE_EXHAUSTED that outlasts the retries stops a rotation half-way; kms/<kms>/key/<key>/rotate finishes it', async () => {
    await m.ok('create', 'key/busy', { type: 'rsa-2048' });
    const d = await m.ok('update', 'kms/gcp/key/busy', { purpose: 'sign' });
    kms.faultOn('CreateImportJob', 4, { code: grpc.status.RESOURCE_EXHAUSTED }); // the first try and 3 retries
    const r = await m.call('update', 'key/busy/rotate');
    expect(r.warnings?.join('\n')).toMatch(/create import job failed/);
    expect((await m.ok('read', 'kms/gcp/key/busy')).state).toBe('failed');
    const fin = await m.ok('update', 'kms/gcp/key/busy/rotate');
    expect(fin.state).toBe('distributed');
    expect(versionsOf(d.key_id)).toHaveLength(2);
  });
});
