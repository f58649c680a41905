// Transit behaviour checked against Vault's built-in transit (current Vault where it differs
// from 1.8): the defects a side-by-side comparison found, one describe per finding.
import { beforeEach, describe, expect, it } from 'vitest';
import { SecretsBackend } from '../../src/secrets/backend';
import { MemoryStorage } from '../../src/storage/storage';
import { okData, quietLog, replyOf } from '../support/backend';

let store: MemoryStorage;
let be: SecretsBackend;
beforeEach(() => {
  store = new MemoryStorage();
  be = new SecretsBackend(store, quietLog);
});

const call = (op: string, path: string, data: Record<string, unknown> = {}) => replyOf(be, op, path, data, 'transit/');
const ok = async (op: string, path: string, data: Record<string, unknown> = {}) => okData(await call(op, path, data), op, path);
const b = (s: string) => Buffer.from(s).toString('base64');

describe('versions below min_decryption_version are out of reach (export, key reads)', () => {
  it('export leaves them out and refuses to export one; the key read does not list them', async () => {
    await ok('create', 'keys/ex', { exportable: true, type: 'ed25519' });
    await ok('update', 'keys/ex/rotate');
    await ok('update', 'keys/ex/rotate');
    await ok('update', 'keys/ex/config', { min_decryption_version: 2 });
    for (const type of ['signing-key', 'hmac-key', 'public-key']) {
      expect(Object.keys((await ok('read', `export/${type}/ex`)).keys)).toEqual(['2', '3']);
      expect((await call('read', `export/${type}/ex/1`)).error).toBe('version for export is below minimum decryption version');
      expect(Object.keys((await ok('read', `export/${type}/ex/2`)).keys)).toEqual(['2']);
    }
    expect((await call('read', 'export/signing-key/ex/4')).error).toBe('version does not exist or cannot be found');
    expect(Object.keys((await ok('read', 'keys/ex')).keys)).toEqual(['2', '3']);
    // Lowering the floor again brings version 1 back, as Vault's archive does.
    await ok('update', 'keys/ex/config', { min_decryption_version: 1 });
    expect(Object.keys((await ok('read', 'export/signing-key/ex')).keys)).toEqual(['1', '2', '3']);
    expect(Object.keys((await ok('read', 'keys/ex')).keys)).toEqual(['1', '2', '3']);
  });
});

describe('a negative key_version is a 400, not the latest version', () => {
  it('encrypt, rewrap, datakey, sign and hmac name the operation, as Vault', async () => {
    await ok('create', 'keys/aes');
    await ok('create', 'keys/ed', { type: 'ed25519' });
    const ct = (await ok('update', 'encrypt/aes', { plaintext: b('x') })).ciphertext;
    expect((await call('update', 'encrypt/aes', { plaintext: b('x'), key_version: -1 })).error).toBe('requested version for encryption is negative');
    expect((await call('update', 'rewrap/aes', { ciphertext: ct, key_version: -1 })).error).toBe('requested version for encryption is negative');
    expect((await call('update', 'datakey/wrapped/aes', { key_version: -2 })).error).toBe('requested version for encryption is negative');
    expect((await call('update', 'sign/ed', { input: b('m'), key_version: -1 })).error).toBe('requested version for signing is negative');
    expect((await call('update', 'hmac/aes', { input: b('m'), key_version: -1 })).error).toBe('requested version for HMAC is negative');
    // 0 still means the latest version.
    expect((await ok('update', 'encrypt/aes', { plaintext: b('x'), key_version: 0 })).key_version).toBe(1);
  });
});
