// Transit behaviour checked against Vault's built-in transit (current Vault where it differs
// from 1.8): the defects a side-by-side comparison found, one describe per finding.
import { describe, expect, it } from 'vitest';
import {
  constants,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  publicDecrypt,
  sign as edSign,
  verify as nodeVerify,
} from 'node:crypto';
import { transitPerTest } from '../support/backend';

const { mount, call, ok } = transitPerTest();
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

describe('upsert on first encrypt, as Vault', () => {
  it('a context makes the new key derived (HKDF per context)', async () => {
    const { ciphertext } = await ok('create', 'encrypt/up-ctx', { plaintext: b('hi'), context: b('tenant-1') });
    expect(await ok('read', 'keys/up-ctx')).toMatchObject({ derived: true, type: 'aes256-gcm96' });
    expect((await ok('update', 'decrypt/up-ctx', { ciphertext, context: b('tenant-1') })).plaintext).toBe(b('hi'));
    expect((await call('update', 'decrypt/up-ctx', { ciphertext, context: b('tenant-2') })).error).toMatch(/authentication failed/);
    expect((await call('update', 'encrypt/up-ctx', { plaintext: b('hi') })).error).toMatch(/missing context/);
    // Without a context the new key is not derived.
    await ok('create', 'encrypt/up-plain', { plaintext: b('hi') });
    expect((await ok('read', 'keys/up-plain')).derived).toBe(false);
    // A batch with contexts upserts a derived key too.
    await ok('create', 'encrypt/up-batch', {
      batch_input: [
        { plaintext: b('a'), context: b('c1') },
        { plaintext: b('b'), context: b('c2') },
      ],
    });
    expect((await ok('read', 'keys/up-batch')).derived).toBe(true);
  });
  it("config/keys disable_upsert (current Vault's): encrypt on a missing key is a 400 that creates nothing; existing keys still encrypt", async () => {
    expect(await ok('read', 'config/keys')).toEqual({ disable_upsert: false });
    await ok('create', 'keys/made');
    expect(await ok('update', 'config/keys', { disable_upsert: true })).toEqual({ disable_upsert: true });
    expect(await ok('read', 'config/keys')).toEqual({ disable_upsert: true });
    expect((await call('create', 'encrypt/typo', { plaintext: b('x') })).error).toBe('encryption key not found: typo');
    expect(await call('read', 'keys/typo')).toEqual({});
    expect((await ok('update', 'encrypt/made', { plaintext: b('x') })).ciphertext).toMatch(/^vault:v1:/);
    // A write sets every field: one without disable_upsert turns upsert back on, as Vault's.
    expect(await ok('update', 'config/keys', {})).toEqual({ disable_upsert: false });
    await ok('create', 'encrypt/typo', { plaintext: b('x') });
    expect((await ok('read', 'keys/typo')).type).toBe('aes256-gcm96');
    expect((await call('update', 'config/keys', { disable_upsert: 'sometimes' })).error).toMatch(/disable_upsert/);
  });
  it('only encryption types may be upserted; every refusal is a 400 that creates nothing', async () => {
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ type: 'rsa-2048' }, 'key type rsa-2048 not supported for this operation'],
      [{ type: 'ecdsa-p256' }, 'key type ecdsa-p256 not supported for this operation'],
      [{ type: 'ed25519' }, 'key type ed25519 not supported for this operation'],
      [{ type: 'hmac' }, 'key type hmac not supported for this operation'],
      [{ type: 'managed_key' }, 'key type managed_key not supported for this operation'],
      [{ type: 'des' }, 'unknown key type des'],
      [{ convergent_encryption: true }, 'convergent encryption requires derivation to be enabled, so context is required'],
      [{ convergent_encryption: true, derived: true }, 'convergent encryption requires derivation to be enabled, so context is required'],
      [{ derived: true }, 'a derived key needs a context: give context with the request that creates it'],
      [{ batch_input: [{ plaintext: b('a'), context: b('c') }, { plaintext: b('b') }] }, 'context should be set either in all the request blocks or in none'],
    ];
    for (const [extra, message] of refused) {
      expect((await call('create', 'encrypt/nope', { plaintext: b('x'), ...extra })).error, JSON.stringify(extra)).toBe(message);
      expect(await call('read', 'keys/nope')).toEqual({});
    }
    expect(mount.store.data.size).toBe(0);
    for (const type of ['aes128-gcm96', 'chacha20-poly1305']) {
      await ok('create', `encrypt/up-${type}`, { plaintext: b('x'), type });
      expect((await ok('read', `keys/up-${type}`)).type).toBe(type);
    }
    // Convergent with a context: a derived, convergent key; the same input encrypts the same.
    const c1 = await ok('create', 'encrypt/conv', { plaintext: b('x'), context: b('c'), convergent_encryption: true });
    expect(await ok('read', 'keys/conv')).toMatchObject({ derived: true, convergent_encryption: true });
    expect((await ok('update', 'encrypt/conv', { plaintext: b('x'), context: b('c') })).ciphertext).toBe(c1.ciphertext);
  });
  it('the all-or-none context check holds on existing keys too (encrypt and rewrap)', async () => {
    await ok('create', 'keys/d', { derived: true });
    const mixed = [{ plaintext: b('a'), context: b('c') }, { plaintext: b('b') }];
    expect((await call('update', 'encrypt/d', { batch_input: mixed })).error).toBe('context should be set either in all the request blocks or in none');
    const ct = (await ok('update', 'encrypt/d', { plaintext: b('a'), context: b('c') })).ciphertext;
    expect((await call('update', 'rewrap/d', { batch_input: [{ ciphertext: ct, context: b('c') }, { ciphertext: ct }] })).error).toBe(
      'context should be set either in all the request blocks or in none',
    );
  });
});

describe('associated_data on a non-AEAD key', () => {
  it('is a 400 on RSA encrypt, decrypt and rewrap, not silently unbound', async () => {
    await ok('create', 'keys/rsa', { type: 'rsa-2048' });
    const message = 'associated_data provided for non-AEAD cipher suite rsa-2048';
    expect((await call('update', 'encrypt/rsa', { plaintext: b('x'), associated_data: b('row-1') })).error).toBe(message);
    const { ciphertext } = await ok('update', 'encrypt/rsa', { plaintext: b('x') });
    expect((await call('update', 'decrypt/rsa', { ciphertext, associated_data: b('row-1') })).error).toBe(message);
    expect((await call('update', 'rewrap/rsa', { ciphertext, associated_data: b('row-1') })).error).toBe(message);
    expect((await ok('update', 'decrypt/rsa', { ciphertext })).plaintext).toBe(b('x'));
  });
});

describe("keys/<name>/config: Vault's rules on the version floors, exportable", () => {
  it('after a trim, neither floor may go below min_available_version', async () => {
    await ok('create', 'keys/t');
    await ok('update', 'keys/t/rotate');
    await ok('update', 'keys/t/rotate');
    await ok('update', 'keys/t/config', { min_decryption_version: 2, min_encryption_version: 2 });
    await ok('update', 'keys/t/trim', { min_available_version: 2 });
    expect((await call('update', 'keys/t/config', { min_decryption_version: 1 })).error).toBe(
      'min decryption version should not be less then min available version',
    );
    expect((await call('update', 'keys/t/config', { min_encryption_version: 0 })).error).toBe(
      'min encryption version should not be less than min available version',
    );
    expect((await call('update', 'keys/t/config', { min_encryption_version: 1 })).error).toMatch(
      /min encryption version of 1 must be greater than or equal to min decryption version of 2/,
    );
    // Nothing was changed by the refused requests; the trimmed version stays unreachable.
    expect(await ok('read', 'keys/t')).toMatchObject({ min_decryption_version: 2, min_encryption_version: 2, min_available_version: 2 });
    await ok('update', 'keys/t/config', { min_decryption_version: 3, min_encryption_version: 3 });
    expect((await call('update', 'keys/t/config', { min_decryption_version: -1 })).error).toBe('min decryption version cannot be negative');
    expect((await call('update', 'keys/t/config', { min_encryption_version: 4 })).error).toBe(
      'cannot set min encryption version of 4, latest key version is 3',
    );
  });
  it('exportable=false on an exportable key is ignored, as Vault (it cannot be unset)', async () => {
    await ok('create', 'keys/e', { exportable: true });
    await ok('update', 'keys/e/config', { exportable: false, deletion_allowed: true });
    expect(await ok('read', 'keys/e')).toMatchObject({ exportable: true, deletion_allowed: true });
  });
});

describe('batches where every item fails', () => {
  const rawBody = (r: any) => JSON.parse(Buffer.from(r.http_raw_body, 'base64').toString());
  it('sign, verify, hmac and rewrap answer 200 with each item error in batch_results', async () => {
    await ok('create', 'keys/ed', { type: 'ed25519' });
    await ok('create', 'keys/aes');
    const bad = [{ input: '%%%', reference: 'a' }, { input: '***' }];
    for (const path of ['sign/ed', 'hmac/aes']) {
      const r = await ok('update', path, { batch_input: bad });
      expect(r.batch_results).toHaveLength(2);
      expect(r.batch_results[0]).toMatchObject({ reference: 'a', error: expect.stringMatching(/base64/) });
    }
    const v = await ok('update', 'verify/ed', { batch_input: [{ input: b('m'), signature: 'nope' }] });
    expect(v.batch_results[0].error).toMatch(/invalid signature/);
    const rw = await ok('update', 'rewrap/aes', { batch_input: [{ ciphertext: 'x' }] });
    expect(rw.batch_results[0].error).toMatch(/invalid ciphertext/);
  });
  it('encrypt and decrypt answer 400 with batch_results, as current Vault', async () => {
    await ok('create', 'keys/aes');
    const enc = await ok('update', 'encrypt/aes', { batch_input: [{ plaintext: '%%%' }] });
    expect(enc.http_status_code).toBe(400);
    expect(rawBody(enc).data.batch_results[0].error).toMatch(/base64/);
    const dec = await ok('update', 'decrypt/aes', { batch_input: [{ ciphertext: 'x' }] });
    expect(dec.http_status_code).toBe(400);
    expect(rawBody(dec).data.batch_results[0].error).toMatch(/invalid ciphertext/);
  });
});

describe('empty input', () => {
  it('sign, verify, hmac and hash take "" as the empty string', async () => {
    await ok('create', 'keys/ed', { type: 'ed25519' });
    await ok('create', 'keys/ex', { type: 'aes256-gcm96', exportable: true });
    const { signature } = await ok('update', 'sign/ed', { input: '' });
    expect((await ok('update', 'verify/ed', { input: '', signature })).valid).toBe(true);
    expect((await ok('update', 'verify/ed', { input: b('x'), signature })).valid).toBe(false);
    // As Vault, a sign request without input signs the empty string too.
    const { signature: s2 } = await ok('update', 'sign/ed', {});
    expect((await ok('update', 'verify/ed', { input: '', signature: s2 })).valid).toBe(true);
    const hmacKey = Buffer.from((await ok('read', 'export/hmac-key/ex/1')).keys['1'], 'base64');
    expect((await ok('update', 'hmac/ex', { input: '' })).hmac).toBe(`vault:v1:${createHmac('sha256', hmacKey).digest('base64')}`);
    expect((await call('update', 'hmac/ex', {})).error).toBe('missing input for HMAC');
    expect((await ok('update', 'hash', { input: '' })).sum).toBe(createHash('sha256').digest('hex'));
    // In a batch, an item without input is that item's error.
    expect((await ok('update', 'sign/ed', { batch_input: [{ input: '' }, { reference: 'r' }] })).batch_results[1]).toEqual({
      error: 'missing input',
      reference: 'r',
    });
  });
});

describe("base64 as Vault's Go decoder reads it", () => {
  it('line breaks are skipped anywhere, in inputs and in ciphertexts', async () => {
    await ok('create', 'keys/k');
    const wrapped = `${b('hello world, in a long ').slice(0, 12)}\n${b('hello world, in a long ').slice(12)}\r\n`;
    const { ciphertext } = await ok('update', 'encrypt/k', { plaintext: wrapped });
    expect((await ok('update', 'decrypt/k', { ciphertext })).plaintext).toBe(b('hello world, in a long '));
    const body = ciphertext.split(':')[2];
    const folded = `vault:v1:${body.slice(0, 10)}\r\n${body.slice(10)}\n`;
    expect((await ok('update', 'decrypt/k', { ciphertext: folded })).plaintext).toBe(b('hello world, in a long '));
    expect((await ok('update', 'hash', { input: 'aGVs\nbG8=' })).sum).toBe((await ok('update', 'hash', { input: b('hello') })).sum);
  });
  it('non-zero trailing bits are accepted, as Go (not Strict) does: aGVsbG9= reads "hello"', async () => {
    await ok('create', 'keys/k');
    const { ciphertext } = await ok('update', 'encrypt/k', { plaintext: 'aGVsbG9=' });
    expect((await ok('update', 'decrypt/k', { ciphertext })).plaintext).toBe(b('hello'));
    expect((await ok('update', 'hash', { input: 'QR==' })).sum).toBe((await ok('update', 'hash', { input: 'QQ==' })).sum);
  });
  it('what Go refuses stays a 400: other alphabet, missing or extra padding, spaces, junk', async () => {
    await ok('create', 'keys/k');
    for (const v of ['aGk', 'aGk==', 'aGk=x', 'a-_b', 'aG k=', 'aGk=\t', '=', 'a===']) {
      expect((await call('update', 'encrypt/k', { plaintext: v })).error, JSON.stringify(v)).toMatch(/plaintext must be base64/);
    }
  });
});

describe('derived ed25519 keys, as Vault derives them', () => {
  // Vault: HKDF-SHA256(key as Go holds it = seed || public key, no salt, info = context),
  // whose first 32 bytes Go's ed25519.GenerateKey takes as the seed. Computed here apart.
  const vaultDerived = (goKey: Buffer, context: string) => {
    const seed = Buffer.from(hkdfSync('sha256', goKey, Buffer.alloc(0), Buffer.from(context), 32));
    const priv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
    const pub = (createPublicKey(priv).export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32).toString('base64');
    return { priv, pub };
  };
  it('signs with the key derived for the context: the same signature and public key Vault computes', async () => {
    await ok('create', 'keys/ed', { type: 'ed25519', derived: true, exportable: true });
    const r = await ok('read', 'keys/ed');
    expect(r).toMatchObject({ derived: true, supports_derivation: true, kdf: 'hkdf_sha256', convergent_encryption: false });
    expect(r.keys['1']).toMatchObject({ name: 'ed25519', public_key: '' });
    const goKey = Buffer.from((await ok('read', 'export/signing-key/ed/1')).keys['1'], 'base64');
    const want = vaultDerived(goKey, 'user-7');
    const out = await ok('update', 'sign/ed', { input: b('message'), context: b('user-7') });
    expect(out.signature).toBe(`vault:v1:${edSign(null, Buffer.from('message'), want.priv).toString('base64')}`);
    expect(out.public_key).toBe(want.pub);
    expect((await ok('read', 'keys/ed', { context: b('user-7') })).keys['1'].public_key).toBe(want.pub);
    expect((await ok('update', 'verify/ed', { input: b('message'), signature: out.signature, context: b('user-7') })).valid).toBe(true);
    expect((await ok('update', 'verify/ed', { input: b('message'), signature: out.signature, context: b('user-8') })).valid).toBe(false);
    expect((await call('update', 'sign/ed', { input: b('message') })).error).toMatch(/missing context/);
    expect((await call('update', 'verify/ed', { input: b('message'), signature: out.signature })).error).toMatch(/missing context/);
    const batch = await ok('update', 'sign/ed', { batch_input: [{ input: b('message'), context: b('user-7') }] });
    expect(batch.batch_results[0]).toMatchObject({ signature: out.signature, publickey: want.pub });
  });
  it('convergent ed25519 keys are refused; a non-derived ed25519 key ignores context', async () => {
    expect((await call('create', 'keys/x', { type: 'ed25519', derived: true, convergent_encryption: true })).error).toBe(
      'convergent encryption not supported for keys of type ed25519',
    );
    await ok('create', 'keys/plain', { type: 'ed25519' });
    const r = await ok('read', 'keys/plain');
    expect(r).not.toHaveProperty('kdf');
    expect(r).not.toHaveProperty('convergent_encryption');
    const out = await ok('update', 'sign/plain', { input: b('m'), context: b('c') });
    expect(out).not.toHaveProperty('public_key');
    expect((await ok('update', 'verify/plain', { input: b('m'), signature: out.signature })).valid).toBe(true);
  });
  it('derived AES keys show kdf and convergent_encryption, as current Vault', async () => {
    await ok('create', 'keys/d', { derived: true });
    expect(await ok('read', 'keys/d')).toMatchObject({ kdf: 'hkdf_sha256', convergent_encryption: false });
  });
});

describe('random: Vault sources and paths, 128 KiB cap', () => {
  const len = (r: { random_bytes: string }) => Buffer.from(r.random_bytes, 'base64').length;
  it('random/<source>/<bytes>, random/<source>, random/<bytes>, source in the body', async () => {
    expect(len(await ok('update', 'random/platform/16'))).toBe(16);
    expect(len(await ok('update', 'random/all/24'))).toBe(24);
    expect(len(await ok('update', 'random/all'))).toBe(32);
    expect(len(await ok('update', 'random/platform', { bytes: 8 }))).toBe(8);
    expect(len(await ok('update', 'random/40'))).toBe(40);
    expect(len(await ok('update', 'random', { source: 'all', bytes: 12 }))).toBe(12);
    // seal: no seal entropy reaches a plugin; the platform's is used, with Vault's warning.
    const seal = await call('update', 'random/seal/8');
    expect(len(seal.data)).toBe(8);
    expect(seal.warnings).toContain('no seal/entropy augmentation available, using platform entropy source');
    // Any other source is a managed key's name, which must exist.
    expect((await call('update', 'random/nokey/8')).error).toMatch(/nokey/);
  });
  it('more than 131072 bytes (or fewer than 1) is a 400', async () => {
    expect(len(await ok('update', 'random/131072'))).toBe(131072);
    expect((await call('update', 'random/131073')).error).toBe("'bytes' should be less than 131072");
    expect((await call('update', 'random', { bytes: 1048576 })).error).toBe("'bytes' should be less than 131072");
    expect((await call('update', 'random/all/0')).error).toBe("'bytes' cannot be less than 1");
  });
});

describe('key_size for hmac keys', () => {
  it('sizes every version of an hmac key (32-512 bytes) and is shown on reads', async () => {
    await ok('create', 'keys/h', { type: 'hmac', key_size: 64, exportable: true });
    await ok('update', 'keys/h/rotate');
    expect((await ok('read', 'keys/h')).key_size).toBe(64);
    const keys = (await ok('read', 'export/hmac-key/h')).keys;
    expect(Object.values(keys).map((k) => Buffer.from(k as string, 'base64').length)).toEqual([64, 64]);
    // The HMAC really is made with that key.
    expect((await ok('update', 'hmac/h', { input: b('m') })).hmac).toBe(
      `vault:v2:${createHmac('sha256', Buffer.from(keys['2'], 'base64')).update('m').digest('base64')}`,
    );
    await ok('create', 'keys/h512', { type: 'hmac', key_size: 512, exportable: true });
    expect(Buffer.from((await ok('read', 'export/hmac-key/h512/1')).keys['1'], 'base64')).toHaveLength(512);
    await ok('create', 'keys/hdef', { type: 'hmac', exportable: true });
    expect(Buffer.from((await ok('read', 'export/hmac-key/hdef/1')).keys['1'], 'base64')).toHaveLength(32);
    expect(await ok('read', 'keys/hdef')).not.toHaveProperty('key_size');
  });
  it('other sizes, or key_size on another type, are 400s that create nothing', async () => {
    expect((await call('create', 'keys/x', { type: 'hmac', key_size: 31 })).error).toBe('invalid key_size 31');
    expect((await call('create', 'keys/x', { type: 'hmac', key_size: 513 })).error).toBe('invalid key_size 513');
    expect((await call('create', 'keys/x', { type: 'aes256-gcm96', key_size: 64 })).error).toBe('key_size is not valid for algorithm aes256-gcm96');
    expect(await call('read', 'keys/x')).toEqual({});
  });
});

describe('deleting a key that does not exist', () => {
  it('is a 400, as Vault', async () => {
    expect((await call('delete', 'keys/ghost')).error).toBe('error deleting policy ghost: could not delete key; not found');
    await ok('create', 'keys/real');
    await ok('update', 'keys/real/config', { deletion_allowed: true });
    expect(await call('delete', 'keys/real')).toEqual({});
    expect((await call('delete', 'keys/real')).error).toMatch(/not found/);
  });
});

describe("sign: current Vault's hash algorithms and RSA-PSS salt_length", () => {
  const sigOf = (s: string) => Buffer.from(s.split(':')[2], 'base64');
  const SHA3 = ['sha3-224', 'sha3-256', 'sha3-384', 'sha3-512'];
  it('ECDSA signs with sha3-* and sha2-224, of messages and of digests', async () => {
    await ok('create', 'keys/ec', { type: 'ecdsa-p384' });
    const pub = createPublicKey((await ok('read', 'keys/ec')).keys['1'].public_key);
    for (const alg of [...SHA3, 'sha2-224']) {
      const h = alg === 'sha2-224' ? 'sha224' : alg;
      const { signature } = await ok('update', `sign/ec/${alg}`, { input: b('doc') });
      expect(nodeVerify(h, Buffer.from('doc'), { key: pub, dsaEncoding: 'der' }, sigOf(signature)), alg).toBe(true);
      expect((await ok('update', `verify/ec/${alg}`, { input: b('doc'), signature })).valid).toBe(true);
      const digest = createHash(h).update('doc').digest('base64');
      const pre = (await ok('update', 'sign/ec', { input: digest, prehashed: true, hash_algorithm: alg })).signature;
      expect(nodeVerify(h, Buffer.from('doc'), { key: pub, dsaEncoding: 'der' }, sigOf(pre)), `${alg} prehashed`).toBe(true);
      expect((await ok('update', 'verify/ec', { input: digest, prehashed: true, hash_algorithm: alg, signature: pre })).valid).toBe(true);
    }
  });
  it('RSA PKCS#1 v1.5 with sha3-* and sha2-224: prehashed signatures equal the ones over the message (deterministic)', async () => {
    await ok('create', 'keys/rsa', { type: 'rsa-2048' });
    const pub = createPublicKey((await ok('read', 'keys/rsa')).keys['1'].public_key);
    for (const alg of [...SHA3, 'sha2-224', 'sha2-256']) {
      const h = alg.startsWith('sha2') ? `sha${alg.slice(-3)}` : alg;
      const { signature } = await ok('update', `sign/rsa/${alg}`, { input: b('doc'), signature_algorithm: 'pkcs1v15' });
      expect(nodeVerify(h, Buffer.from('doc'), { key: pub, padding: constants.RSA_PKCS1_PADDING }, sigOf(signature)), alg).toBe(true);
      const digest = createHash(h).update('doc').digest('base64');
      const pre = await ok('update', `sign/rsa/${alg}`, { input: digest, prehashed: true, signature_algorithm: 'pkcs1v15' });
      expect(pre.signature, alg).toBe(signature);
      expect((await ok('update', `verify/rsa/${alg}`, { input: digest, prehashed: true, signature_algorithm: 'pkcs1v15', signature })).valid).toBe(true);
    }
    expect((await call('update', 'sign/rsa/sha3-256', { input: b('short'), prehashed: true, signature_algorithm: 'pkcs1v15' })).error).toMatch(
      /prehashed input must be 32 bytes/,
    );
  });
  it('hash_algorithm=none signs the input as given with PKCS#1 v1.5 (prehashed) and nothing else', async () => {
    await ok('create', 'keys/rsa', { type: 'rsa-2048' });
    const pub = createPublicKey((await ok('read', 'keys/rsa')).keys['1'].public_key);
    const raw = Buffer.from('any bytes the caller prepared');
    const { signature } = await ok('update', 'sign/rsa/none', { input: raw.toString('base64'), prehashed: true, signature_algorithm: 'pkcs1v15' });
    expect(publicDecrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, sigOf(signature)).equals(raw)).toBe(true);
    expect((await ok('update', 'verify/rsa/none', { input: raw.toString('base64'), prehashed: true, signature_algorithm: 'pkcs1v15', signature })).valid).toBe(
      true,
    );
    const message = 'hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15';
    expect((await call('update', 'sign/rsa/none', { input: b('x'), prehashed: true })).error).toBe(message);
    expect((await call('update', 'sign/rsa/none', { input: b('x'), signature_algorithm: 'pkcs1v15' })).error).toBe(message);
    expect((await call('update', 'verify/rsa/none', { input: b('x'), signature })).error).toBe(message);
  });
  it('RSA-PSS honours salt_length: auto (the default: the longest salt), hash, or a number; verify checks it', async () => {
    await ok('create', 'keys/rsa', { type: 'rsa-2048' });
    const pub = createPublicKey((await ok('read', 'keys/rsa')).keys['1'].public_key);
    // The salt length of a PSS signature: verifies with exactly that length only.
    const verifiesWith = (sig: string, salt: number, hash = 'sha256') =>
      nodeVerify(hash, Buffer.from('doc'), { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: salt }, sigOf(sig));
    const dflt = (await ok('update', 'sign/rsa', { input: b('doc') })).signature;
    expect(verifiesWith(dflt, 256 - 2 - 32)).toBe(true);
    const hash = (await ok('update', 'sign/rsa', { input: b('doc'), salt_length: 'hash' })).signature;
    expect(verifiesWith(hash, 32)).toBe(true);
    const n = (await ok('update', 'sign/rsa/sha3-384', { input: b('doc'), salt_length: 20 })).signature;
    expect(verifiesWith(n, 20, 'sha3-384')).toBe(true);
    // Prehashed PSS too.
    const digest = createHash('sha512').update('doc').digest('base64');
    const pre = (await ok('update', 'sign/rsa/sha2-512', { input: digest, prehashed: true, salt_length: 'hash' })).signature;
    expect(verifiesWith(pre, 64, 'sha512')).toBe(true);
    expect((await ok('update', 'verify/rsa/sha2-512', { input: digest, prehashed: true, signature: pre })).valid).toBe(true);
    expect((await ok('update', 'verify/rsa/sha2-512', { input: digest, prehashed: true, salt_length: 'hash', signature: pre })).valid).toBe(true);
    expect((await ok('update', 'verify/rsa/sha2-512', { input: digest, prehashed: true, salt_length: 10, signature: pre })).valid).toBe(false);
    // verify: auto accepts any salt; a given length must match.
    expect((await ok('update', 'verify/rsa', { input: b('doc'), signature: hash })).valid).toBe(true);
    expect((await ok('update', 'verify/rsa', { input: b('doc'), signature: hash, salt_length: 'hash' })).valid).toBe(true);
    expect((await ok('update', 'verify/rsa', { input: b('doc'), signature: dflt, salt_length: 'hash' })).valid).toBe(false);
    // Vault's refusals.
    expect((await call('update', 'sign/rsa', { input: b('doc'), salt_length: 'big' })).error).toBe("salt length neither 'auto', 'hash', nor an int: big");
    expect((await call('update', 'sign/rsa', { input: b('doc'), salt_length: -2 })).error).toBe('salt length is invalid: -2');
    expect((await call('update', 'sign/rsa', { input: b('doc'), salt_length: 223 })).error).toBe('requested salt length 223 is invalid');
    expect(verifiesWith((await ok('update', 'sign/rsa', { input: b('doc'), salt_length: 222 })).signature, 222)).toBe(true);
  });
});

describe('large inputs', () => {
  it('a 9 MB plaintext encrypts and decrypts (the base64 and envelope checks scan it, no regexp over the whole input)', async () => {
    await ok('create', 'keys/big', {});
    const plain = Buffer.alloc(9_000_000, 'x').toString('base64');
    const enc = await ok('update', 'encrypt/big', { plaintext: plain });
    expect(enc.ciphertext).toMatch(/^vault:v1:/);
    expect((await ok('update', 'decrypt/big', { ciphertext: enc.ciphertext })).plaintext).toBe(plain);
    // The same checks still refuse malformed input of that size.
    expect((await call('update', 'encrypt/big', { plaintext: `${plain.slice(0, -4)}a=b=` })).error).toMatch(/base64/);
    expect((await call('update', 'decrypt/big', { ciphertext: `${enc.ciphertext}!` })).error).toMatch(/invalid ciphertext/);
  });

  it('base64 form: padding only at the end, whole groups; \\r and \\n skipped', async () => {
    await ok('create', 'keys/f', {});
    for (const bad of ['a===', 'ab=c', 'abc', 'ab==ab==', '=abc', 'ab c'])
      expect((await call('update', 'encrypt/f', { plaintext: bad })).error, bad).toMatch(/base64/);
    for (const good of ['aGk=', 'aGVsbG8=', 'aGVs\nbG8=', 'AAAA']) expect((await call('update', 'encrypt/f', { plaintext: good })).error, good).toBeUndefined();
  });
});

describe('sign: hash_algorithm before the deprecated algorithm field', () => {
  it('hash_algorithm wins when both are given; algorithm alone still names the hash; the path wins over both', async () => {
    await ok('create', 'keys/p', { type: 'ecdsa-p256' });
    const input = b('doc');
    const verifies = async (sig: string, alg: string) => (await ok('update', 'verify/p', { input, signature: sig, hash_algorithm: alg })).valid;
    const both = (await ok('update', 'sign/p', { input, hash_algorithm: 'sha2-512', algorithm: 'sha2-384' })).signature;
    expect(await verifies(both, 'sha2-512')).toBe(true);
    expect(await verifies(both, 'sha2-384')).toBe(false);
    const old = (await ok('update', 'sign/p', { input, algorithm: 'sha2-384' })).signature;
    expect(await verifies(old, 'sha2-384')).toBe(true);
    const path = (await ok('update', 'sign/p/sha2-256', { input, hash_algorithm: 'sha2-512' })).signature;
    expect(await verifies(path, 'sha2-256')).toBe(true);
  });
});

describe('sha1 for sign, verify and hmac (Vault 1.8 and current Vault take it; hash does not)', () => {
  it('RSA (PSS, PKCS#1 v1.5, prehashed) and ECDSA signatures over SHA-1 verify with Node and here', async () => {
    await ok('create', 'keys/r', { type: 'rsa-2048' });
    await ok('create', 'keys/e', { type: 'ecdsa-p256' });
    const pub = async (k: string) => createPublicKey((await ok('read', `keys/${k}`)).keys['1'].public_key);
    const msg = Buffer.from('legacy');
    const raw = (s: string) => Buffer.from(s.split(':')[2], 'base64');
    for (const padding of ['pss', 'pkcs1v15']) {
      const sig = (await ok('update', 'sign/r', { input: msg.toString('base64'), hash_algorithm: 'sha1', signature_algorithm: padding })).signature;
      const nodePadding = padding === 'pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      expect(nodeVerify('sha1', msg, { key: await pub('r'), padding: nodePadding, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, raw(sig))).toBe(true);
      expect((await ok('update', 'verify/r/sha1', { input: msg.toString('base64'), signature: sig, signature_algorithm: padding })).valid).toBe(true);
    }
    const digest = createHash('sha1').update(msg).digest();
    const pre = (await ok('update', 'sign/r', { input: digest.toString('base64'), hash_algorithm: 'sha1', prehashed: true, signature_algorithm: 'pkcs1v15' }))
      .signature;
    expect(nodeVerify('sha1', msg, { key: await pub('r'), padding: constants.RSA_PKCS1_PADDING }, raw(pre))).toBe(true);
    const ec = (await ok('update', 'sign/e/sha1', { input: msg.toString('base64') })).signature;
    expect(nodeVerify('sha1', msg, await pub('e'), raw(ec))).toBe(true);
  });

  it('hmac with sha1 is HMAC-SHA1 of the key; the hash endpoint refuses sha1 with a 400', async () => {
    await ok('create', 'keys/h', { type: 'hmac', exportable: true });
    const key = Buffer.from((await ok('read', 'export/hmac-key/h/1')).keys['1'], 'base64');
    const mac = (await ok('update', 'hmac/h', { input: b('m'), algorithm: 'sha1' })).hmac;
    expect(Buffer.from(mac.split(':')[2], 'base64')).toEqual(createHmac('sha1', key).update('m').digest());
    expect((await ok('update', 'verify/h/sha1', { input: b('m'), hmac: mac })).valid).toBe(true);
    expect((await call('update', 'hash', { input: b('m'), algorithm: 'sha1' })).error).toMatch(/sha1/);
    expect((await call('update', 'hash/sha1', { input: b('m') })).error).toMatch(/sha1/);
  });
});
