// The Key Management engine in a real Vault 1.8, typed as a newcomer would: CockroachDB's
// CMEK flow (create a key, configure the provider, distribute, read the provider's key id,
// use it at the provider, rotate, remove) for AWS KMS, Google Cloud KMS and Azure Key Vault,
// each an emulator on 127.0.0.1 reached by the real SDKs inside the plugin. That the
// provider holds Vault's key is shown by signatures the provider makes verifying with the
// public key Vault returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, createPublicKey, verify as nodeVerify, constants } from 'node:crypto';
import { DecryptCommand, EncryptCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { startAwsKms, type AwsKmsEmulator } from '../emulators/awskms';
import { startGcpKms, type GcpKmsEmulator } from '../emulators/gcpkms';
import { startAzureKv, type AzureKvEmulator } from '../emulators/azurekv';
import { makeServerCerts } from '../support/certs';
import { GcpKmsKey } from '../../src/keys/gcpckms';
import { AzureKeyVaultKey } from '../../src/keys/azurekeyvault';
import { parseKeyConfig } from '../../src/keys/config';
import { PLUGIN_NAME, startDevVault, vaultBin, type VaultNode } from '../support/vault';

describe.skipIf(!vaultBin())('Key Management engine in a real Vault (CockroachDB CMEK flow)', { timeout: 120_000 }, () => {
  let v: VaultNode;
  let aws: AwsKmsEmulator;
  let gcp: GcpKmsEmulator;
  let az: AzureKvEmulator;
  let dir: string;
  /** `vault write <path> @<json>`: nested fields (credentials) as an operator would pass them. */
  const writeJson = async (p: string, body: unknown) => {
    const f = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(f, JSON.stringify(body), { mode: 0o600 });
    return (await v.vault(['write', '-format=json', p, `@${f}`]))?.data;
  };
  const write = async (...args: string[]) => (await v.vault(['write', '-format=json', ...args]))?.data;
  const read = async (p: string) => (await v.vault(['read', '-format=json', p])).data;
  const publicKeyOf = async (name: string) => createPublicKey((await read(`keymgmt/key/${name}`)).keys['1'].public_key);
  /** Rotate in Vault: the provider gets version 2; then remove from the provider: gone there, kept in Vault. */
  const rotateAndRemove = async (kmsName: string, key: string) => {
    expect((await write('-f', `keymgmt/key/${key}/rotate`)).latest_version).toBe(2);
    expect(Object.keys((await read(`keymgmt/kms/${kmsName}/key/${key}`)).versions)).toEqual(['1', '2']);
    await v.vault(['delete', `keymgmt/kms/${kmsName}/key/${key}`]);
    await expect(read(`keymgmt/kms/${kmsName}/key/${key}`)).rejects.toThrow();
    expect((await read(`keymgmt/key/${key}`)).latest_version).toBe(2);
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-keymgmt-'));
    fs.chmodSync(dir, 0o755);
    const certs = makeServerCerts({ dns: ['localhost'], ips: [] });
    aws = await startAwsKms();
    gcp = await startGcpKms({ certPem: certs.certPem, keyPem: certs.keyPem, caPem: certs.caPem });
    az = await startAzureKv({ certPem: certs.certPem, keyPem: certs.keyPem, caPem: certs.caPem });
    fs.writeFileSync(path.join(dir, 'gcp-sa.json'), gcp.credentialsJson, { mode: 0o644 });
    v = await startDevVault();
    // The operator allows credential files from one directory (the only way a path is read),
    // and lists the Cloud KMS endpoint such a file's account may sign for.
    await v.registerPlugin({ VAULT_PLUGIN_CREDENTIAL_FILES: `${dir}/`, VAULT_PLUGIN_AMBIENT_ENDPOINTS: gcp.endpoint });
    await v.vault(['secrets', 'enable', '-path=keymgmt', '-options=engine=keymgmt', PLUGIN_NAME]);
  });
  afterAll(async () => {
    await v?.destroy();
    await Promise.all([aws?.close(), gcp?.close(), az?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('AWS KMS: create, configure, distribute, read the ARN, encrypt with it, rotate, remove', async () => {
    await write('keymgmt/key/crdb-cmek', 'type=aes256-gcm96');
    await writeJson('keymgmt/kms/aws', {
      provider: 'awskms',
      key_collection: aws.region,
      endpoint: aws.url,
      credentials: { access_key: aws.accessKeyId, secret_key: aws.secretAccessKey },
    });
    // Credentials are write-only.
    expect(JSON.stringify(await read('keymgmt/kms/aws'))).not.toContain(aws.secretAccessKey);
    const d = await write('keymgmt/kms/aws/key/crdb-cmek', 'purpose=encrypt,decrypt', 'protection=hsm');
    expect(d.key_id).toMatch(/^arn:aws:kms:us-east-1:\d+:key\//);
    expect((await read('keymgmt/kms/aws/key/crdb-cmek')).key_id).toBe(d.key_id);
    expect(await v.vault(['list', '-format=json', 'keymgmt/key/crdb-cmek/kms'])).toEqual(['aws']);

    // What CockroachDB does with the ARN: encrypt and decrypt at the provider.
    const sdk = new KMSClient({
      region: aws.region,
      endpoint: aws.url,
      credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey },
      maxAttempts: 1,
    });
    try {
      const ct = await sdk.send(new EncryptCommand({ KeyId: d.key_id, Plaintext: Buffer.from('store key') }));
      const pt = await sdk.send(new DecryptCommand({ CiphertextBlob: ct.CiphertextBlob, KeyId: d.key_id }));
      expect(Buffer.from(pt.Plaintext!).toString()).toBe('store key');

      // The provider holds Vault's key: its signature verifies with Vault's public key.
      await write('keymgmt/key/crdb-sign', 'type=ecdsa-p256');
      const s = await write('keymgmt/kms/aws/key/crdb-sign', 'purpose=sign,verify');
      const msg = Buffer.from('signed at the provider');
      const sig = await sdk.send(
        new SignCommand({ KeyId: s.key_id, Message: createHash('sha256').update(msg).digest(), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }),
      );
      expect(nodeVerify('sha256', msg, { key: await publicKeyOf('crdb-sign'), dsaEncoding: 'der' }, Buffer.from(sig.Signature!))).toBe(true);

      // Rotate: AWS takes imported material once per KMS key, so the new version is a new
      // KMS key and the alias (what a consumer should be given) moves to it; old
      // ciphertexts still decrypt with the old version's key.
      const r = await write('-f', 'keymgmt/key/crdb-cmek/rotate');
      expect(r.latest_version).toBe(2);
      const after = await read('keymgmt/kms/aws/key/crdb-cmek');
      expect(Object.keys(after.versions)).toEqual(['1', '2']);
      expect(after.key_id).toBe(after.versions['2']);
      expect(after.alias).toBe(d.alias);
      const viaAlias = await sdk.send(new EncryptCommand({ KeyId: d.alias.replace(/^arn:.*:alias\//, 'alias/'), Plaintext: Buffer.from('v2') }));
      expect(viaAlias.KeyId).toBe(after.versions['2']);
      expect(Buffer.from((await sdk.send(new DecryptCommand({ CiphertextBlob: ct.CiphertextBlob, KeyId: d.key_id }))).Plaintext!).toString()).toBe('store key');

      // Remove from the provider (scheduled deletion of every version's key), never from Vault.
      await v.vault(['delete', 'keymgmt/kms/aws/key/crdb-cmek']);
      for (const arn of Object.values(after.versions) as string[]) expect(aws.allKeys().find((k) => k.arn === arn)?.state).toBe('PendingDeletion');
      expect((await read('keymgmt/key/crdb-cmek')).latest_version).toBe(2);
    } finally {
      sdk.destroy();
    }
  });

  it('AWS KMS multi-Region key: replica_regions at creation, distribute, replicate, use the replica in its region, rotate, remove', async () => {
    await writeJson('keymgmt/kms/awsmr', {
      provider: 'awskms',
      key_collection: aws.region,
      endpoint: aws.url,
      credentials: { access_key: aws.accessKeyId, secret_key: aws.secretAccessKey },
    });
    // As the docs show it: one comma-separated string, fixed at creation.
    await write('keymgmt/key/crdb-mr', 'type=aes256-gcm96', 'replica_regions=eu-west-1,ap-southeast-2');
    expect((await read('keymgmt/key/crdb-mr')).replica_regions).toEqual(['eu-west-1', 'ap-southeast-2']);
    await expect(write('keymgmt/key/crdb-mr', 'replica_regions=eu-central-1')).rejects.toThrow(/Code: 400[\s\S]*cannot change/);
    await expect(write('keymgmt/key/crdb-rsa-mr', 'type=rsa-2048', 'replica_regions=eu-west-1')).rejects.toThrow(/Code: 400[\s\S]*aes256-gcm96/);
    const d = await write('keymgmt/kms/awsmr/key/crdb-mr', 'purpose=encrypt,decrypt');
    expect(d.key_id).toMatch(/^arn:aws:kms:us-east-1:\d+:key\/mrk-/);
    const r = await write('-f', 'keymgmt/kms/awsmr/key/crdb-mr/replicate');
    expect(Object.keys(r.replicas).sort()).toEqual(['ap-southeast-2', 'eu-west-1']);
    expect(r.replicas['eu-west-1'].key_id).toBe(d.key_id.replace(':us-east-1:', ':eu-west-1:'));
    const sdk = (region: string) =>
      new KMSClient({ region, endpoint: aws.url, credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey }, maxAttempts: 1 });
    const [east, eu] = [sdk('us-east-1'), sdk('eu-west-1')];
    try {
      // Encrypted in the primary region, decrypted by the replica: the same key material.
      const ct = await east.send(new EncryptCommand({ KeyId: d.key_id, Plaintext: Buffer.from('global cmek') }));
      const pt = await eu.send(new DecryptCommand({ CiphertextBlob: ct.CiphertextBlob, KeyId: r.replicas['eu-west-1'].key_id }));
      expect(Buffer.from(pt.Plaintext!).toString()).toBe('global cmek');
      expect((await write('-f', 'keymgmt/key/crdb-mr/rotate')).latest_version).toBe(2);
      const after = await read('keymgmt/kms/awsmr/key/crdb-mr');
      expect(Object.keys(after.replicas['ap-southeast-2'].versions)).toEqual(['1', '2']);
      const viaAlias = await eu.send(new EncryptCommand({ KeyId: `alias/hashicorp/${d.name}`, Plaintext: Buffer.from('v2') }));
      expect(viaAlias.KeyId).toBe(after.replicas['eu-west-1'].versions['2']);
      await v.vault(['delete', 'keymgmt/kms/awsmr/key/crdb-mr']);
      const all = [...Object.values(after.versions), ...Object.values(after.replicas).flatMap((x: any) => Object.values(x.versions))] as string[];
      expect(all).toHaveLength(6);
      for (const arn of all) expect(aws.allKeys().find((k) => k.arn === arn)?.state).toBe('PendingDeletion');
      // A key without replica_regions cannot be replicated: a clear 400.
      await write('keymgmt/key/single', 'type=aes256-gcm96');
      await write('keymgmt/kms/awsmr/key/single', 'purpose=encrypt');
      await expect(write('-f', 'keymgmt/kms/awsmr/key/single/replicate')).rejects.toThrow(/Code: 400[\s\S]*does not have replica_regions/);
    } finally {
      east.destroy();
      eu.destroy();
    }
  });

  it("Google Cloud KMS: distributed by import job; the provider signs with Vault's key; rotate, remove", async () => {
    const ring = `projects/${gcp.project}/locations/${gcp.location}/keyRings/${gcp.keyRing}`;
    await writeJson('keymgmt/kms/gcp', {
      provider: 'gcpckms',
      key_collection: ring,
      endpoint: gcp.endpoint,
      endpoint_ca: gcp.caPem,
      credentials: { service_account_file: path.join(dir, 'gcp-sa.json') },
    });
    await write('keymgmt/key/gsign', 'type=ecdsa-p256');
    const d = await write('keymgmt/kms/gcp/key/gsign', 'purpose=sign', 'protection=hsm');
    expect(d.key_id).toMatch(new RegExp(`^${ring}/cryptoKeys/`));
    const p = parseKeyConfig('gcpckms', 'gsign', {
      credentials: gcp.credentialsJson,
      project: gcp.project,
      region: gcp.location,
      key_ring: gcp.keyRing,
      crypto_key: d.key_id.split('/').pop(),
      crypto_key_version: '1',
      endpoint: gcp.endpoint,
      endpoint_ca: gcp.caPem,
    });
    const k = await GcpKmsKey.open('gsign', p.fields, p.common);
    try {
      const msg = Buffer.from('signed in cloud kms');
      const sig = await k.sign(msg, { hash: 'sha256' });
      expect(nodeVerify('sha256', msg, { key: await publicKeyOf('gsign'), dsaEncoding: 'der' }, sig)).toBe(true);
    } finally {
      await k.close();
    }
    await rotateAndRemove('gcp', 'gsign');
    // A path the operator did not allow is refused with a clear 400.
    await expect(
      writeJson('keymgmt/kms/gcp2', {
        provider: 'gcpckms',
        key_collection: ring,
        endpoint: gcp.endpoint,
        endpoint_ca: gcp.caPem,
        credentials: { service_account_file: '/etc/passwd' },
      }),
    ).rejects.toThrow(/Code: 400/);
  });

  it("Azure Key Vault: imported as a JWK; Key Vault signs with Vault's key; rotate, remove; bad input is a 400", async () => {
    await writeJson('keymgmt/kms/az', {
      provider: 'azurekeyvault',
      key_collection: 'vpt-vault',
      endpoint: az.vaultUrl,
      authority_host: az.base,
      endpoint_ca: az.caPem,
      credentials: { tenant_id: az.tenantId, client_id: az.clientId, client_secret: az.clientSecret },
    });
    await write('keymgmt/key/arsa', 'type=rsa-2048');
    const d = await write('keymgmt/kms/az/key/arsa', 'purpose=sign,verify', 'protection=hsm');
    expect(d.key_id).toBe(`${az.vaultUrl}/keys/${d.name}`);
    const p = parseKeyConfig('azurekeyvault', d.name, {
      tenant_id: az.tenantId,
      client_id: az.clientId,
      client_secret: az.clientSecret,
      vault_name: 'vpt-vault',
      key_name: d.name,
      vault_url: az.vaultUrl,
      authority_host: az.base,
      endpoint_ca: az.caPem,
    });
    const k = await AzureKeyVaultKey.open(d.name, p.fields, p.common);
    try {
      const msg = Buffer.from('signed in key vault');
      const sig = await k.sign(msg, { hash: 'sha256', padding: 'pss' });
      expect(nodeVerify('sha256', msg, { key: await publicKeyOf('arsa'), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)).toBe(true);
    } finally {
      await k.close();
    }
    await rotateAndRemove('az', 'arsa');
    await expect(write('keymgmt/kms/nope', 'provider=nokms', 'key_collection=x')).rejects.toThrow(/Code: 400/);
    await write('keymgmt/key/aes', 'type=aes256-gcm96');
    await expect(write('keymgmt/kms/az/key/aes', 'purpose=sign')).rejects.toThrow(/Code: 400[\s\S]*sign/);
  });
});
