// keymgmt → AWS KMS through the backend, against the emulator over real HTTP with the
// real @aws-sdk/client-kms: the import protocol (CreateKey Origin=EXTERNAL,
// GetParametersForImport, ImportKeyMaterial), and proof that the KMS key is Vault's key.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash, createPublicKey, verify as nodeVerify, constants } from 'node:crypto';
import { DecryptCommand, EncryptCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { startAwsKms, type AwsKmsEmulator } from '../emulators/awskms';
import { aesGcmOpen, keymgmtMount } from './keymgmt-harness';

let kms: AwsKmsEmulator;
let sdk: KMSClient;
beforeAll(async () => {
  kms = await startAwsKms();
  sdk = new KMSClient({
    region: kms.region,
    endpoint: kms.url,
    credentials: { accessKeyId: kms.accessKeyId, secretAccessKey: kms.secretAccessKey },
    maxAttempts: 1,
  });
});
afterAll(async () => {
  sdk.destroy();
  await kms.close();
});

let m: ReturnType<typeof keymgmtMount>;
const awsConfig = () => ({
  provider: 'awskms',
  key_collection: kms.region,
  endpoint: kms.url,
  credentials: { access_key: kms.accessKeyId, secret_key: kms.secretAccessKey },
});
beforeEach(async () => {
  m = keymgmtMount();
  await m.ok('update', 'kms/aws', awsConfig());
});

/** The emulator's own ciphertext layout: [id length][key id][iv 12][ciphertext][tag 16], AAD = the sorted context. */
function openAwsCiphertext(key: Buffer, blob: Buffer): Buffer {
  const rest = blob.subarray(1 + blob[0]);
  return aesGcmOpen(key, rest.subarray(0, 12), rest.subarray(12), Buffer.from(JSON.stringify([])));
}
const ours = (d: any) => kms.allKeys().filter((k) => k.description.includes(`${'aws'}/${d}`));

describe('keymgmt → AWS KMS', () => {
  it("aes256-gcm96: distributed by import; what KMS encrypts, Vault's copy decrypts; the alias names the key", async () => {
    await m.ok('create', 'key/crdb-cmek', { type: 'aes256-gcm96' });
    const d = await m.ok('update', 'kms/aws/key/crdb-cmek', { purpose: 'encrypt,decrypt', protection: 'hsm' });
    expect(d).toMatchObject({
      state: 'distributed',
      purpose: 'encrypt,decrypt',
      protection: 'hsm',
      key_id: expect.stringMatching(/^arn:aws:kms:us-east-1:\d+:key\//),
    });
    expect(d.alias).toMatch(/^arn:aws:kms:us-east-1:\d+:alias\/hashicorp\/crdb-cmek-\d+$/);
    const k = kms.allKeys().find((x) => x.arn === d.key_id)!;
    expect(k).toMatchObject({ origin: 'EXTERNAL', state: 'Enabled', spec: 'SYMMETRIC_DEFAULT', usage: 'ENCRYPT_DECRYPT' });
    expect(kms.calls).toEqual(expect.arrayContaining(['CreateKey', 'GetParametersForImport', 'ImportKeyMaterial', 'CreateAlias']));

    const out = await sdk.send(new EncryptCommand({ KeyId: d.alias.replace(/^arn:.*:alias\//, 'alias/'), Plaintext: Buffer.from('cockroach data key') }));
    expect(openAwsCiphertext(m.material('crdb-cmek').aes!, Buffer.from(out.CiphertextBlob!)).toString()).toBe('cockroach data key');
    expect(await m.ok('read', 'kms/aws/key/crdb-cmek')).toEqual(d);
    expect((await m.ok('list', 'kms/aws/key/')).keys).toEqual(['crdb-cmek']);
    expect((await m.ok('list', 'key/crdb-cmek/kms')).keys).toEqual(['aws']);
  });

  it("RSA and ECDSA: KMS signatures verify with the public key key/<name> returns; RSA decrypts what Vault's public key encrypted", async () => {
    for (const [type, alg, hash] of [
      ['rsa-3072', 'RSASSA_PSS_SHA_256', 'sha256'],
      ['ecdsa-p384', 'ECDSA_SHA_384', 'sha384'],
      ['ecdsa-p521', 'ECDSA_SHA_512', 'sha512'],
    ] as const) {
      await m.ok('create', `key/${type}`, { type });
      const d = await m.ok('update', `kms/aws/key/${type}`, { purpose: 'sign,verify' });
      const msg = Buffer.from(`signed by ${type}`);
      const sig = await sdk.send(
        new SignCommand({ KeyId: d.key_id, Message: createHash(hash).update(msg).digest(), MessageType: 'DIGEST', SigningAlgorithm: alg }),
      );
      const pub = createPublicKey((await m.ok('read', `key/${type}`)).keys['1'].public_key);
      const opts = type.startsWith('rsa') ? { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : { key: pub, dsaEncoding: 'der' as const };
      expect(nodeVerify(hash, msg, opts, Buffer.from(sig.Signature!))).toBe(true);
    }
    await m.ok('create', 'key/rsa-enc', { type: 'rsa-2048' });
    const d = await m.ok('update', 'kms/aws/key/rsa-enc', { purpose: 'decrypt' });
    const { publicEncrypt } = await import('node:crypto');
    const ct = publicEncrypt(
      { key: (await m.ok('read', 'key/rsa-enc')).keys['1'].public_key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from('to kms'),
    );
    const pt = await sdk.send(new DecryptCommand({ KeyId: d.key_id, CiphertextBlob: ct, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    expect(Buffer.from(pt.Plaintext!).toString()).toBe('to kms');
  });

  it('rotation imports the new version as a new KMS key and moves the alias; min_enabled_version disables old versions in KMS', async () => {
    await m.ok('create', 'key/rot', { type: 'aes256-gcm96' });
    const d1 = await m.ok('update', 'kms/aws/key/rot', { purpose: 'encrypt,decrypt' });
    const rotated = await m.ok('update', 'key/rot/rotate');
    expect(rotated.latest_version).toBe(2);
    const d2 = await m.ok('read', 'kms/aws/key/rot');
    expect(Object.keys(d2.versions)).toEqual(['1', '2']);
    expect(d2.key_id).toBe(d2.versions['2']);
    expect(kms.aliasTarget(`alias/hashicorp/${d1.name}`)).toBe(d2.versions['2'].split('/').pop());
    const out = await sdk.send(new EncryptCommand({ KeyId: `alias/hashicorp/${d1.name}`, Plaintext: Buffer.from('v2 data') }));
    expect(openAwsCiphertext(m.material('rot', 2).aes!, Buffer.from(out.CiphertextBlob!)).toString()).toBe('v2 data');

    await m.ok('update', 'key/rot', { min_enabled_version: 2 });
    const state = (arn: string) => kms.allKeys().find((k) => k.arn === arn)!.state;
    expect(state(d2.versions['1'])).toBe('Disabled');
    expect(state(d2.versions['2'])).toBe('Enabled');
    await m.ok('update', 'key/rot', { min_enabled_version: 0 });
    expect(state(d2.versions['1'])).toBe('Enabled');
  });

  it("removal schedules deletion (7 days) of every version's key and drops the alias; the key stays in Vault; deletion rules follow Vault", async () => {
    await m.ok('create', 'key/gone', { type: 'aes256-gcm96' });
    const d = await m.ok('update', 'kms/aws/key/gone', { purpose: 'encrypt' });
    await m.ok('update', 'key/gone/rotate');
    const versions = (await m.ok('read', 'kms/aws/key/gone')).versions;
    expect(m.failure(await m.call('delete', 'key/gone'))).toMatch(/deletion is not allowed/);
    await m.ok('update', 'key/gone', { deletion_allowed: true });
    expect(m.failure(await m.call('delete', 'key/gone'))).toMatch(/distributed to kms aws: remove it/);
    expect(m.failure(await m.call('delete', 'kms/aws'))).toMatch(/still holds keys gone/);
    await m.call('delete', 'kms/aws/key/gone');
    for (const arn of Object.values(versions) as string[]) expect(kms.allKeys().find((k) => k.arn === arn)!.state).toBe('PendingDeletion');
    expect(kms.aliasTarget(`alias/hashicorp/${d.name}`)).toBeUndefined();
    expect((await m.ok('read', 'key/gone')).latest_version).toBe(2);
    expect(await m.call('read', 'kms/aws/key/gone')).toEqual({});
    await m.call('delete', 'key/gone');
    expect(await m.call('read', 'key/gone')).toEqual({});
    expect(m.store.data.has('key/gone')).toBe(false);
  });

  it('bad input is a 400 with a clear message, before anything reaches KMS', async () => {
    await m.ok('create', 'key/aes', { type: 'aes256-gcm96' });
    await m.ok('create', 'key/ec', { type: 'ecdsa-p256' });
    await m.ok('create', 'key/rsa', { type: 'rsa-2048' });
    const before = kms.calls.length;
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['kms/aws/key/aes', { purpose: 'sign' }, /purpose sign is not possible for aes256-gcm96 keys/],
      ['kms/aws/key/ec', { purpose: 'encrypt' }, /purpose encrypt is not possible for ecdsa-p256 keys/],
      ['kms/aws/key/rsa', { purpose: 'wrap' }, /awskms offers no purpose wrap for rsa-2048/],
      ['kms/aws/key/rsa', { purpose: 'sign,decrypt' }, /one KeyUsage: encrypt\/decrypt or sign\/verify/],
      ['kms/aws/key/aes', { purpose: 'encrypt', protection: 'software' }, /protection=hsm/],
      ['kms/aws/key/aes', { purpose: 'encrypt,fly' }, /purpose: unknown "fly"/],
      ['kms/aws/key/aes', {}, /missing required field "purpose"/],
      ['kms/aws/key/nokey', { purpose: 'encrypt' }, /key "nokey" not found/],
      ['kms/none/key/aes', { purpose: 'encrypt' }, /kms "none" not found/],
    ];
    for (const [path, data, re] of cases) {
      const r = await m.call('update', path, data);
      expect(r.error, path).toMatch(re);
    }
    expect(kms.calls.length).toBe(before);
    expect((await m.call('update', 'kms/x', { provider: 'oraclekms', key_collection: 'x' })).error).toMatch(
      /provider: must be one of awskms, gcpckms, azurekeyvault/,
    );
    expect((await m.call('update', 'kms/x', { provider: 'awskms', key_collection: 'Mars' })).error).toMatch(/must be an AWS region/);
    expect((await m.call('update', 'kms/x', { provider: 'awskms', key_collection: 'us-east-1', credentials: { access_key: 'A' } })).error).toMatch(
      /access_key and secret_key must be given together/,
    );
    expect((await m.call('update', 'kms/x', { provider: 'awskms', key_collection: 'us-east-1', credentials: { token: 'A' } })).error).toMatch(
      /unknown name "token"/,
    );
    expect((await m.call('update', 'kms/aws', { provider: 'gcpckms' })).error).toMatch(/provider cannot change/);
    expect((await m.call('update', 'kms/aws', { key_collection: 'eu-west-1' })).error).toMatch(/key_collection cannot change/);
    expect((await m.call('create', 'key/x', { type: 'des' })).error).toMatch(/type: must be one of/);
  });

  it("credentials are write-only; without any, ambient credentials need the operator's setting", async () => {
    const r = await m.ok('read', 'kms/aws');
    expect(r).toEqual({ name: 'aws', provider: 'awskms', key_collection: 'us-east-1', endpoint: kms.url });
    expect(JSON.stringify(r)).not.toContain(kms.secretAccessKey);
    delete process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS;
    expect((await m.call('update', 'kms/amb', { provider: 'awskms', key_collection: 'us-east-1' })).error).toMatch(
      /ambient credentials .* not allowed: .*VAULT_PLUGIN_AMBIENT_CREDENTIALS=true/,
    );
    process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS = 'true';
    try {
      expect((await m.ok('update', 'kms/amb', { provider: 'awskms', key_collection: 'us-east-1' })).provider).toBe('awskms');
      // The host's identity never goes to an endpoint the writer of the config chose.
      expect((await m.call('update', 'kms/amb2', { provider: 'awskms', key_collection: 'us-east-1', endpoint: 'https://attacker.example' })).error).toMatch(
        /ambient credentials are not sent to a configured endpoint .*VAULT_PLUGIN_AMBIENT_ENDPOINTS/,
      );
    } finally {
      delete process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS;
    }
    // Vault's CLI form: credentials=access_key=... credentials=secret_key=...
    await m.ok('update', 'kms/cli', {
      provider: 'awskms',
      key_collection: 'us-east-1',
      credentials: [`access_key=${kms.accessKeyId}`, `secret_key=${kms.secretAccessKey}`],
    });
  });

  it('credentials KMS refuses: a 400 naming the refusal, rolled back, the secret nowhere in the reply', async () => {
    const wrong = 'wrongSecretKeyValue0000000000000000000000';
    await m.ok('update', 'kms/bad', { ...awsConfig(), credentials: { access_key: kms.accessKeyId, secret_key: wrong } });
    await m.ok('create', 'key/k', { type: 'aes256-gcm96' });
    const keysBefore = kms.allKeys().length;
    const r = await m.call('update', 'kms/bad/key/k', { purpose: 'encrypt' });
    expect(r.error).toMatch(/refused the credentials: .*signature.*rolled back/);
    expect(JSON.stringify(r)).not.toContain(wrong);
    expect(kms.allKeys().length).toBe(keysBefore);
    expect(await m.call('read', 'kms/bad/key/k')).toEqual({});
  });

  it('deleting the kms (or the key) while a distribution starts leaves no distribution Vault cannot remove', async () => {
    for (const target of ['kms/aws', 'key/race'] as const) {
      await m.ok('update', 'kms/aws', awsConfig());
      await m.ok('create', 'key/race', { type: 'aes256-gcm96', deletion_allowed: true });
      const [dist, del] = await Promise.all([m.call('update', 'kms/aws/key/race', { purpose: 'encrypt,decrypt' }), m.call('delete', target)]);
      const recorded = await m.call('read', 'kms/aws/key/race');
      if (recorded.data) {
        // The distribution won: the delete was refused and the record is whole and removable.
        expect(m.failure(del)).toMatch(/remove|distributed/);
        expect(recorded.data.state).toBe('distributed');
        await m.ok('delete', 'kms/aws/key/race');
      } else {
        // The delete won: the distribution was refused, and nothing reached KMS.
        expect(m.failure(dist)).toMatch(/not found/);
        expect(ours('race')).toEqual([]);
      }
      expect(ours('race').filter((k) => k.state !== 'PendingDeletion')).toEqual([]);
    }
  });

  it('a failure half-way (ImportKeyMaterial keeps failing) is recorded; writing again resumes with the same KMS key', async () => {
    await m.ok('create', 'key/half', { type: 'rsa-2048' });
    kms.faultOn('ImportKeyMaterial', 4, { status: 500 });
    const r = await m.call('update', 'kms/aws/key/half', { purpose: 'sign,verify' });
    expect(r.err).toMatchObject({ err_code: 502 });
    expect(r.err!.err_msg).toMatch(/import key material failed.*write kms\/aws\/key\/half again/);
    const state = await m.ok('read', 'kms/aws/key/half');
    expect(state).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/import key material failed/) });
    expect(ours('half')).toHaveLength(1);
    expect(ours('half')[0].state).toBe('PendingImport');
    const d = await m.ok('update', 'kms/aws/key/half', { purpose: 'sign,verify' });
    expect(d.state).toBe('distributed');
    expect(ours('half')).toHaveLength(1);
    expect(ours('half')[0]).toMatchObject({ state: 'Enabled', arn: d.key_id });
    expect((await m.call('update', 'kms/aws/key/half', { purpose: 'decrypt' })).error).toMatch(/cannot change after distribution/);
  });

  it('a CreateKey whose reply was lost: the resumed distribution adopts that key instead of leaving it orphaned', async () => {
    await m.ok('create', 'key/lost', { type: 'aes256-gcm96' });
    kms.faultOn('CreateKey', 1, { when: 'after', status: 503 });
    const r = await m.call('update', 'kms/aws/key/lost', { purpose: 'encrypt,decrypt' });
    expect(r.err).toMatchObject({ err_code: 502 });
    expect(ours('lost')).toHaveLength(1); // in KMS, unknown to Vault's record so far
    expect((await m.ok('read', 'kms/aws/key/lost')).versions).toEqual({});
    const d = await m.ok('update', 'kms/aws/key/lost', { purpose: 'encrypt,decrypt' });
    expect(ours('lost')).toHaveLength(1);
    expect(d.key_id).toBe(ours('lost')[0].arn);
  });

  it('a removal that stops half-way finishes when deleted again; a lost CreateKey found by the removal is deleted too', async () => {
    await m.ok('create', 'key/rm', { type: 'aes256-gcm96' });
    kms.faultOn('CreateKey', 1, { when: 'after', status: 503 });
    await m.call('update', 'kms/aws/key/rm', { purpose: 'encrypt' });
    kms.faultOn('ScheduleKeyDeletion', 4, { status: 500 });
    const r = await m.call('delete', 'kms/aws/key/rm');
    expect(r.err?.err_msg).toMatch(/removing key "rm" from kms "aws" stopped: .*Delete again to finish/);
    expect((await m.ok('read', 'kms/aws/key/rm')).state).toBe('removing');
    expect((await m.call('update', 'kms/aws/key/rm', { purpose: 'encrypt' })).error).toMatch(/being removed/);
    await m.call('delete', 'kms/aws/key/rm');
    expect(ours('rm').map((k) => k.state)).toEqual(['PendingDeletion']);
    expect(await m.call('read', 'kms/aws/key/rm')).toEqual({});
  });

  it('rotation while KMS throttles: the key rotates in Vault, the reply warns, and kms/<kms>/key/<key>/rotate catches up', async () => {
    await m.ok('create', 'key/thr', { type: 'aes256-gcm96' });
    await m.ok('update', 'kms/aws/key/thr', { purpose: 'encrypt,decrypt' });
    kms.faultOn('CreateKey', 1, { status: 400, type: 'ThrottlingException' });
    const r = await m.call('update', 'key/thr/rotate');
    expect(r.data.latest_version).toBe(2);
    expect(r.warnings?.join('\n')).toMatch(/distributing key "thr" to kms "aws" stopped: .*Rate exceeded|injected throttling/);
    expect((await m.ok('read', 'kms/aws/key/thr')).state).toBe('failed');
    const d = await m.ok('update', 'kms/aws/key/thr/rotate');
    expect(d).toMatchObject({ state: 'distributed' });
    expect(Object.keys(d.versions)).toEqual(['1', '2']);
    expect(ours('thr')).toHaveLength(2);
  });
});

describe('keymgmt → AWS KMS multi-Region keys (replica_regions, .../replicate)', () => {
  const regionSdk = (region: string) =>
    new KMSClient({ region, endpoint: kms.url, credentials: { accessKeyId: kms.accessKeyId, secretAccessKey: kms.secretAccessKey }, maxAttempts: 1 });
  const keyAt = (arn: string) => kms.allKeys().find((k) => k.arn === arn)!;
  let seen = 0;
  beforeEach(() => {
    seen = kms.requests.length;
  });
  /** Requests of `op` (in `region`) since the test began. */
  const count = (op: string, region?: string) => kms.requests.slice(seen).filter((r) => r.op === op && (region === undefined || r.region === region)).length;
  /** Every KMS key (any region) this distribution made, and every one its record names. */
  const made = (key: string) =>
    ours(key)
      .map((k) => k.arn)
      .sort();
  const recorded = (d: any) =>
    [
      ...Object.values(d.versions as Record<string, string>),
      ...Object.values((d.replicas ?? {}) as Record<string, { versions: Record<string, string> }>).flatMap((r) => Object.values(r.versions)),
    ].sort();

  it('distributes a multi-Region primary, replicates it with the same material, and keeps replicas through rotation, min_enabled_version and removal', async () => {
    const created = await m.ok('create', 'key/mrk', { type: 'aes256-gcm96', replica_regions: 'eu-west-1, ap-southeast-2' });
    expect(created.replica_regions).toEqual(['eu-west-1', 'ap-southeast-2']);
    expect((await m.ok('read', 'key/mrk')).replica_regions).toEqual(['eu-west-1', 'ap-southeast-2']);

    const d = await m.ok('update', 'kms/aws/key/mrk', { purpose: 'encrypt,decrypt' });
    expect(d).toMatchObject({ state: 'distributed', replica_regions: ['eu-west-1', 'ap-southeast-2'] });
    expect(d.key_id).toMatch(/^arn:aws:kms:us-east-1:\d+:key\/mrk-[0-9a-f]{32}$/);
    expect(d.replicas).toBeUndefined();
    expect(keyAt(d.key_id)).toMatchObject({ multiRegion: 'PRIMARY', origin: 'EXTERNAL', state: 'Enabled' });
    expect(count('ReplicateKey')).toBe(0);

    const r = await m.ok('update', 'kms/aws/key/mrk/replicate');
    const id = d.key_id.split('/').pop();
    for (const region of ['eu-west-1', 'ap-southeast-2']) {
      const arn = `arn:aws:kms:${region}:111122223333:key/${id}`;
      expect(r.replicas[region]).toEqual({ versions: { 1: arn }, key_id: arn, alias: `arn:aws:kms:${region}:111122223333:alias/hashicorp/${d.name}` });
      expect(keyAt(arn)).toMatchObject({ multiRegion: 'REPLICA', state: 'Enabled', region });
      expect(kms.aliasTarget(`alias/hashicorp/${d.name}`, region)).toBe(id);
    }
    expect(count('ImportKeyMaterial')).toBe(3);
    expect(await m.ok('read', 'kms/aws/key/mrk')).toEqual(r);

    // The same key in both regions: what us-east-1 encrypts (by alias), eu-west-1 decrypts, and Vault's copy opens.
    const eu = regionSdk('eu-west-1');
    try {
      const ct = await sdk.send(new EncryptCommand({ KeyId: `alias/hashicorp/${d.name}`, Plaintext: Buffer.from('one key, two regions') }));
      const pt = await eu.send(new DecryptCommand({ CiphertextBlob: ct.CiphertextBlob, KeyId: r.replicas['eu-west-1'].key_id }));
      expect(Buffer.from(pt.Plaintext!).toString()).toBe('one key, two regions');
      expect(openAwsCiphertext(m.material('mrk').aes!, Buffer.from(ct.CiphertextBlob!)).toString()).toBe('one key, two regions');

      // Writing replicate again changes nothing.
      const before = count('ReplicateKey');
      expect(await m.ok('update', 'kms/aws/key/mrk/replicate')).toEqual(r);
      expect(count('ReplicateKey')).toBe(before);

      // Rotation: version 2 is a new multi-Region primary, replicated too; every region's alias moves to it.
      await m.ok('update', 'key/mrk/rotate');
      const r2 = await m.ok('read', 'kms/aws/key/mrk');
      expect(r2.state).toBe('distributed');
      const id2 = r2.versions['2'].split('/').pop();
      expect(id2).toMatch(/^mrk-/);
      expect(id2).not.toBe(id);
      for (const region of ['eu-west-1', 'ap-southeast-2']) {
        expect(r2.replicas[region].versions).toEqual({ 1: r.replicas[region].key_id, 2: `arn:aws:kms:${region}:111122223333:key/${id2}` });
        expect(r2.replicas[region].key_id).toBe(r2.replicas[region].versions['2']);
        expect(kms.aliasTarget(`alias/hashicorp/${d.name}`, region)).toBe(id2);
      }
      const ct2 = await eu.send(new EncryptCommand({ KeyId: `alias/hashicorp/${d.name}`, Plaintext: Buffer.from('v2 in eu') }));
      expect(openAwsCiphertext(m.material('mrk', 2).aes!, Buffer.from(ct2.CiphertextBlob!)).toString()).toBe('v2 in eu');

      // min_enabled_version disables version 1 in every region, and enables it again.
      await m.ok('update', 'key/mrk', { min_enabled_version: 2 });
      const v1 = [r2.versions['1'], r2.replicas['eu-west-1'].versions['1'], r2.replicas['ap-southeast-2'].versions['1']];
      expect(v1.map((a) => keyAt(a).state)).toEqual(['Disabled', 'Disabled', 'Disabled']);
      await m.ok('update', 'key/mrk', { min_enabled_version: 0 });
      expect(v1.map((a) => keyAt(a).state)).toEqual(['Enabled', 'Enabled', 'Enabled']);

      // Removal: replicas, then primaries, scheduled for deletion; the alias gone in every region.
      expect(made('mrk')).toEqual(recorded(r2));
      await m.ok('delete', 'kms/aws/key/mrk');
      expect(ours('mrk').map((k) => k.state)).toEqual(Array(6).fill('PendingDeletion'));
      for (const region of ['us-east-1', 'eu-west-1', 'ap-southeast-2']) expect(kms.aliasTarget(`alias/hashicorp/${d.name}`, region)).toBeUndefined();
      expect(await m.call('read', 'kms/aws/key/mrk')).toEqual({});
    } finally {
      eu.destroy();
    }
  });

  it('bad input is a 400 with a clear message, before anything reaches KMS', async () => {
    await m.ok('create', 'key/plain', { type: 'aes256-gcm96' });
    await m.ok('create', 'key/home', { type: 'aes256-gcm96', replica_regions: ['us-east-1', 'eu-west-1'] });
    await m.ok('create', 'key/mr', { type: 'aes256-gcm96', replica_regions: 'eu-west-1' });
    await m.ok('update', 'kms/gcp', { provider: 'gcpckms', key_collection: 'projects/p/locations/l/keyRings/r', credentials: { service_account_json: '{}' } });
    const before = kms.calls.length;
    const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
      ['create', 'key/rsa', { type: 'rsa-2048', replica_regions: 'eu-west-1' }, /replica_regions: multi-Region keys are aes256-gcm96 keys only, not rsa-2048/],
      ['create', 'key/mars', { type: 'aes256-gcm96', replica_regions: 'eu-west-1,Mars' }, /replica_regions: "Mars" is not an AWS region/],
      ['create', 'key/obj', { type: 'aes256-gcm96', replica_regions: [{ r: 1 }] }, /replica_regions: expected a list of strings/],
      ['update', 'key/mr', { replica_regions: 'eu-central-1' }, /replica_regions cannot change after the key is created \(key "mr" has eu-west-1\)/],
      ['update', 'key/plain', { replica_regions: 'eu-west-1' }, /replica_regions cannot change .*has none/],
      [
        'update',
        'kms/aws/key/home',
        { purpose: 'encrypt' },
        /replica_regions us-east-1,eu-west-1, which include us-east-1: that is kms "aws"'s key_collection/,
      ],
      ['update', 'kms/aws/key/plain/replicate', {}, /key "plain" does not have replica_regions/],
      ['update', 'kms/aws/key/mr/replicate', {}, /key "mr" is not distributed to kms "aws": distribute it first/],
      ['update', 'kms/gcp/key/mr/replicate', {}, /replication is for AWS KMS \(awskms\) providers only; kms "gcp" is gcpckms/],
      ['update', 'kms/none/key/mr/replicate', {}, /kms "none" not found/],
    ];
    for (const [op, path, data, re] of cases) {
      const r = await m.call(op, path, data);
      expect(r.error, path).toMatch(re);
    }
    expect(kms.calls.length).toBe(before);
    // The same regions again (any order) are not a change.
    expect((await m.ok('update', 'key/mr', { replica_regions: ['eu-west-1'], deletion_allowed: true })).deletion_allowed).toBe(true);
    expect((await m.ok('read', 'key/plain')).replica_regions).toBeUndefined();
  });

  it('a replica region that refuses: a clear 400 naming it, every replica made so far recorded; writing replicate again finishes', async () => {
    kms.disableRegion('ap-southeast-2');
    try {
      await m.ok('create', 'key/mhalf', { type: 'aes256-gcm96', replica_regions: 'eu-west-1,ap-southeast-2' });
      const d = await m.ok('update', 'kms/aws/key/mhalf', { purpose: 'encrypt,decrypt' });
      const r = await m.call('update', 'kms/aws/key/mhalf/replicate');
      expect(r.error).toMatch(
        /replicating key "mhalf" to kms "aws" stopped: .*replicate key to ap-southeast-2 failed: Region ap-southeast-2 is not enabled.*write .*\.\.\.\/replicate\) again to resume, or delete kms\/aws\/key\/mhalf/,
      );
      expect(JSON.stringify(r)).not.toContain(kms.secretAccessKey);
      const state = await m.ok('read', 'kms/aws/key/mhalf');
      expect(state).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/ap-southeast-2/) });
      expect(Object.keys(state.replicas)).toEqual(['eu-west-1']);
      // Nothing in KMS that the record does not name.
      expect(made('mhalf')).toEqual(recorded(state));
      expect(ours('mhalf').filter((k) => k.region === 'ap-southeast-2')).toEqual([]);

      kms.disableRegion('ap-southeast-2', false);
      const fin = await m.ok('update', 'kms/aws/key/mhalf/replicate');
      expect(fin.state).toBe('distributed');
      expect(Object.keys(fin.replicas)).toEqual(['eu-west-1', 'ap-southeast-2']);
      // Sent to the primary's region: eu-west-1 once (never again), ap-southeast-2 refused once, then made.
      expect(count('ReplicateKey', 'us-east-1')).toBe(3);
      expect(d.key_id).toBe(fin.key_id);
      expect(made('mhalf')).toEqual(recorded(fin));
      expect(keyAt(fin.replicas['ap-southeast-2'].key_id).state).toBe('Enabled');
    } finally {
      kms.disableRegion('ap-southeast-2', false);
    }
  });

  it('a replica region that keeps refusing holds back neither the other regions nor rotation and min_enabled_version where KMS answers', async () => {
    kms.disableRegion('ap-southeast-2');
    try {
      // The refusing region first: the regions after it are still replicated.
      await m.ok('create', 'key/mstuck', { type: 'aes256-gcm96', replica_regions: 'ap-southeast-2,eu-west-1' });
      const d = await m.ok('update', 'kms/aws/key/mstuck', { purpose: 'encrypt,decrypt' });
      const r = await m.call('update', 'kms/aws/key/mstuck/replicate');
      expect(r.error).toMatch(/replicate key to ap-southeast-2 failed/);
      const v1 = await m.ok('read', 'kms/aws/key/mstuck');
      expect(v1.state).toBe('failed');
      expect(Object.keys(v1.replicas)).toEqual(['eu-west-1']);

      // Rotation: version 2 is current in us-east-1 and eu-west-1; the failure is still reported.
      const rot = await m.call('update', 'key/mstuck/rotate');
      expect(rot.warnings?.join(' ')).toMatch(/ap-southeast-2/);
      const v2 = await m.ok('read', 'kms/aws/key/mstuck');
      expect(v2.state).toBe('failed');
      const id2 = v2.versions['2'].split('/').pop();
      expect(kms.aliasTarget(`alias/hashicorp/${d.name}`)).toBe(id2);
      expect(v2.replicas['eu-west-1'].key_id).toBe(`arn:aws:kms:eu-west-1:111122223333:key/${id2}`);
      expect(kms.aliasTarget(`alias/hashicorp/${d.name}`, 'eu-west-1')).toBe(id2);

      // min_enabled_version retires version 1 wherever it is.
      const min = await m.call('update', 'key/mstuck', { min_enabled_version: 2 });
      expect(min.warnings?.join(' ')).toMatch(/ap-southeast-2/);
      expect([v2.versions['1'], v2.replicas['eu-west-1'].versions['1']].map((a) => keyAt(a).state)).toEqual(['Disabled', 'Disabled']);
      expect(keyAt(v2.versions['2']).state).toBe('Enabled');

      kms.disableRegion('ap-southeast-2', false);
      const fin = await m.ok('update', 'kms/aws/key/mstuck/replicate');
      expect(fin.state).toBe('distributed');
      expect(keyAt(fin.replicas['ap-southeast-2'].versions['1']).state).toBe('Disabled');
      expect(keyAt(fin.replicas['ap-southeast-2'].versions['2']).state).toBe('Enabled');
      expect(kms.aliasTarget(`alias/hashicorp/${d.name}`, 'ap-southeast-2')).toBe(id2);
      expect(made('mstuck')).toEqual(recorded(fin));
      await m.ok('delete', 'kms/aws/key/mstuck');
    } finally {
      kms.disableRegion('ap-southeast-2', false);
    }
  });

  it('a ReplicateKey whose reply was lost, and an import into a replica that keeps failing: recorded (502), resumed without a second replica', async () => {
    await m.ok('create', 'key/lostrep', { type: 'aes256-gcm96', replica_regions: 'eu-west-1' });
    await m.ok('update', 'kms/aws/key/lostrep', { purpose: 'encrypt,decrypt' });
    kms.faultOn('ReplicateKey', 1, { when: 'after', status: 503 });
    const r = await m.call('update', 'kms/aws/key/lostrep/replicate');
    expect(r.err).toMatchObject({ err_code: 502 });
    expect(r.err!.err_msg).toMatch(/replicate key to eu-west-1 failed/);
    expect(ours('lostrep').filter((k) => k.region === 'eu-west-1')).toHaveLength(1); // in KMS, not yet in the record
    kms.faultOn('ImportKeyMaterial', 4, { status: 500, region: 'eu-west-1' });
    const r2 = await m.call('update', 'kms/aws/key/lostrep/replicate');
    expect(r2.err).toMatchObject({ err_code: 502 });
    expect(r2.err!.err_msg).toMatch(/import key material \(eu-west-1\) failed/);
    const failed = await m.ok('read', 'kms/aws/key/lostrep');
    expect(failed.state).toBe('failed');
    expect(keyAt(ours('lostrep').find((k) => k.region === 'eu-west-1')!.arn).state).toBe('PendingImport');
    const fin = await m.ok('update', 'kms/aws/key/lostrep/rotate');
    expect(fin.state).toBe('distributed');
    expect(count('ReplicateKey')).toBe(1);
    expect(
      ours('lostrep')
        .filter((k) => k.region === 'eu-west-1')
        .map((k) => k.state),
    ).toEqual(['Enabled']);
    expect(made('lostrep')).toEqual(recorded(fin));
    // Removing a half-replicated distribution leaves nothing behind either.
    await m.ok('delete', 'kms/aws/key/lostrep');
    expect(ours('lostrep').map((k) => k.state)).toEqual(['PendingDeletion', 'PendingDeletion']);

    // Removed right after a lost ReplicateKey reply: the replica the record never saw is found (by its primary) and deleted.
    await m.ok('create', 'key/lost2', { type: 'aes256-gcm96', replica_regions: 'eu-west-1' });
    await m.ok('update', 'kms/aws/key/lost2', { purpose: 'encrypt' });
    kms.faultOn('ReplicateKey', 1, { when: 'after', status: 503 });
    expect((await m.call('update', 'kms/aws/key/lost2/replicate')).err).toMatchObject({ err_code: 502 });
    expect((await m.ok('read', 'kms/aws/key/lost2')).replicas).toEqual({});
    await m.ok('delete', 'kms/aws/key/lost2');
    expect(ours('lost2').map((k) => `${k.region} ${k.state}`)).toEqual(['us-east-1 PendingDeletion', 'eu-west-1 PendingDeletion']);
  });
});
