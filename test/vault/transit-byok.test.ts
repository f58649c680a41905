// Transit "bring your own key" in a real Vault 1.8 with the plugin mounted, through the
// `vault` CLI and Vault's HTTP API. Vault 1.8's CLI predates `vault transit import`, so the
// test does what that command does (reads wrapping_key, RSA-OAEP-SHA256 of a fresh AES-256
// key, AES-KWP of the key) with Node's crypto, then writes keys/<name>/import.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  verify as nodeVerify,
} from 'node:crypto';
import { startDevVault, vaultBin, type VaultNode } from '../support/vault';
import { b64, enableTransit, read, write } from './steps';

/** What `vault transit import` sends: OAEP-SHA256(ephemeral AES-256 key) || AES-KWP(key), base64. */
function wrapLikeVaultCli(wrappingPem: string, key: Buffer): string {
  const ephemeral = randomBytes(32);
  const block = publicEncrypt({ key: wrappingPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ephemeral);
  const c = createCipheriv('id-aes256-wrap-pad', ephemeral, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([block, c.update(key), c.final()]).toString('base64');
}

describe.skipIf(!vaultBin())('transit bring-your-own-key in a real Vault', { timeout: 120_000 }, () => {
  let v: VaultNode;

  beforeAll(async () => {
    v = await startDevVault();
    await v.registerPlugin();
    await enableTransit(v);
    await enableTransit(v, 'transit-b');
  });
  afterAll(async () => {
    await v?.destroy();
  });

  it('wrapping_key, import of an AES key, encrypt/decrypt both ways with the key held outside', async () => {
    const pem = (await read(v, 'transit/wrapping_key')).data.public_key as string;
    expect(createPublicKey(pem).asymmetricKeyDetails?.modulusLength).toBe(4096);
    const key = randomBytes(32);
    await write(v, 'transit/keys/byok/import', `ciphertext=${wrapLikeVaultCli(pem, key)}`, 'type=aes256-gcm96');
    expect((await read(v, 'transit/keys/byok')).data).toMatchObject({ type: 'aes256-gcm96', imported_key: true, imported_key_allow_rotation: false });

    const ct = (await write(v, 'transit/encrypt/byok', `plaintext=${b64('held outside too')}`)).ciphertext as string;
    const body = Buffer.from(ct.split(':')[2], 'base64');
    const d = createDecipheriv('aes-256-gcm', key, body.subarray(0, 12));
    d.setAuthTag(body.subarray(body.length - 16));
    expect(Buffer.concat([d.update(body.subarray(12, body.length - 16)), d.final()]).toString()).toBe('held outside too');

    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    const outside = `vault:v1:${Buffer.concat([nonce, c.update('made outside'), c.final(), c.getAuthTag()]).toString('base64')}`;
    const r = await v.http('POST', 'transit/decrypt/byok', { body: { ciphertext: outside } });
    expect(r.status).toBe(200);
    expect(Buffer.from(r.json().data.plaintext, 'base64').toString()).toBe('made outside');

    // Refusals reach the client as 400s with the reason.
    const bad = await v.http('POST', 'transit/keys/short/import', { body: { ciphertext: wrapLikeVaultCli(pem, randomBytes(16)) } });
    expect(bad.status).toBe(400);
    expect(bad.json().errors.join(' ')).toMatch(/invalid key size 16 bytes for key type aes256-gcm96/);
    const rot = await v.http('POST', 'transit/keys/byok/rotate');
    expect(rot.status).toBe(400);
  });

  it("an EC key imported over HTTP signs, and byok-export carries it to another mount's import", async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = (await v.http('GET', 'transit/wrapping_key')).json().data.public_key;
    const der = privateKey.export({ type: 'pkcs8', format: 'der' }) as Buffer;
    const imp = await v.http('POST', 'transit/keys/signer/import', { body: { type: 'ecdsa-p256', exportable: true, ciphertext: wrapLikeVaultCli(pem, der) } });
    expect(imp.status).toBe(204);
    const sig = (await write(v, 'transit/sign/signer', `input=${b64('m')}`)).signature as string;
    expect(nodeVerify('sha256', Buffer.from('m'), publicKey, Buffer.from(sig.split(':')[2], 'base64'))).toBe(true);

    const destPem = (await read(v, 'transit-b/wrapping_key')).data.public_key as string;
    await write(v, 'transit/keys/to-b/import', 'type=rsa-4096', `public_key=${destPem}`);
    const wrapped = (await read(v, 'transit/byok-export/to-b/signer/1')).data.keys['1'] as string;
    await write(v, 'transit-b/keys/signer/import', 'type=ecdsa-p256', `ciphertext=${wrapped}`);
    const sigB = (await write(v, 'transit-b/sign/signer', `input=${b64('m')}`)).signature as string;
    expect(nodeVerify('sha256', Buffer.from('m'), publicKey, Buffer.from(sigB.split(':')[2], 'base64'))).toBe(true);
  });
});
