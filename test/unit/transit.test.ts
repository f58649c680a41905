// Transit and managed-key paths through SecretsBackend, checked at the reply Vault gets.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { SoftwareKey } from '../../src/keys/software';
import { createPublicKey, createHash, createHmac, createCipheriv, hkdfSync, verify as nodeVerify, constants } from 'node:crypto';
import { parseDuration, UserError } from '../../src/secrets/framework';
import { SecretsBackend } from '../../src/secrets/backend';
import { quietLog, transitPerTest } from '../support/backend';

const { mount, call, ok } = transitPerTest();
const b = (s: string) => Buffer.from(s).toString('base64');

describe('transit keys', () => {
  it('creates, reads, lists, rotates, configures and deletes keys', async () => {
    await ok('create', 'keys/app', { type: 'aes256-gcm96' });
    expect(await ok('read', 'keys/app')).toMatchObject({
      name: 'app',
      type: 'aes256-gcm96',
      latest_version: 1,
      supports_encryption: true,
      supports_signing: false,
      deletion_allowed: false,
    });
    expect((await ok('list', 'keys/')).keys).toEqual(['app']);
    await ok('update', 'keys/app/rotate');
    expect((await ok('read', 'keys/app')).latest_version).toBe(2);
    expect((await call('delete', 'keys/app')).error).toMatch(/deletion is not allowed/);
    await ok('update', 'keys/app/config', { deletion_allowed: true });
    await call('delete', 'keys/app');
    expect(await call('read', 'keys/app')).toEqual({});
    expect(mount.store.data.has('policy/app')).toBe(false);
  });
  it('concurrent rotations each add a version, and a delete among them is not undone by a later rotation', async () => {
    await ok('create', 'keys/busy', { type: 'aes256-gcm96' });
    await Promise.all(Array.from({ length: 10 }, () => ok('update', 'keys/busy/rotate')));
    expect((await ok('read', 'keys/busy')).latest_version).toBe(11);
    await ok('update', 'keys/busy/config', { deletion_allowed: true });
    const after = await Promise.all([call('delete', 'keys/busy'), call('update', 'keys/busy/rotate')]);
    expect(after[0]).toEqual({});
    expect(after[1].error).toMatch(/not found/);
    expect(mount.store.data.has('policy/busy')).toBe(false);
  });
  it('rejects bad key definitions with 400s', async () => {
    expect((await call('create', 'keys/x', { type: 'des' })).error).toMatch(/type: must be one of/);
    expect((await call('create', 'keys/x', { convergent_encryption: true })).error).toMatch(/requires derivation/);
    expect((await call('create', 'keys/x', { type: 'ecdsa-p256', derived: true })).error).toMatch(/not supported for ecdsa-p256/);
    expect((await call('create', 'keys/x', { type: 'managed_key' })).error).toMatch(/managed_key_name is required/);
    expect((await call('create', 'keys/x', { auto_rotate_period: '10m' })).error).toMatch(/at least 1h/);
  });
  it("unknown paths and operations map to Vault's 404 / 405 errors", async () => {
    expect((await call('read', 'nope/x')).err).toMatchObject({ err_type: 6 });
    expect((await call('delete', 'encrypt/app')).err).toMatchObject({ err_type: 5 });
  });
  it('help text comes from the path declarations', async () => {
    const h = (await ok('help', 'encrypt/app')).help as string;
    expect(h).toMatch(/associated_data \(string\)\n\s+Base64 associated data/);
    expect((await ok('help', '')).help).toMatch(/\^managed-keys\//);
  });
});

describe('encryption', () => {
  it('round-trips with vault:v1: ciphertexts; upserts the key on first use', async () => {
    const { ciphertext, key_version } = await ok('create', 'encrypt/auto', { plaintext: b('hello') });
    expect(ciphertext).toMatch(/^vault:v1:[A-Za-z0-9+/=]+$/);
    expect(key_version).toBe(1);
    expect(await ok('update', 'decrypt/auto', { ciphertext })).toEqual({ plaintext: b('hello') });
    expect((await call('update', 'encrypt/missing', { plaintext: b('x') })).error).toMatch(/encryption key not found/);
  });
  it.each(['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305', 'rsa-2048'])('%s: associated data is bound; tampering is a clear 400', async (type) => {
    await ok('create', 'keys/k', { type });
    const aad = type.startsWith('rsa') ? {} : { associated_data: b('row-17') };
    const { ciphertext } = await ok('update', 'encrypt/k', { plaintext: b('secret'), ...aad });
    expect((await ok('update', 'decrypt/k', { ciphertext, ...aad })).plaintext).toBe(b('secret'));
    const raw = Buffer.from(ciphertext.split(':')[2], 'base64');
    raw[raw.length - 3] ^= 1;
    expect((await call('update', 'decrypt/k', { ciphertext: `vault:v1:${raw.toString('base64')}`, ...aad })).error).toMatch(
      /message authentication failed|unable to decrypt/,
    );
    if (!type.startsWith('rsa'))
      expect((await call('update', 'decrypt/k', { ciphertext, associated_data: b('row-18') })).error).toMatch(/authentication failed/);
    expect((await call('update', 'decrypt/k', { ciphertext: 'not-a-ciphertext' })).error).toMatch(/invalid ciphertext/);
    expect((await call('update', 'decrypt/k', { ciphertext: 'vault:v9:AAAA' })).error).toMatch(/greater than the latest version/);
  });
  it('rotation: new ciphertexts use the new version, old ones decrypt until min_decryption_version; rewrap moves them', async () => {
    await ok('create', 'keys/r');
    const v1 = (await ok('update', 'encrypt/r', { plaintext: b('a') })).ciphertext;
    await ok('update', 'keys/r/rotate');
    const v2 = (await ok('update', 'encrypt/r', { plaintext: b('a') })).ciphertext;
    expect(v2.startsWith('vault:v2:')).toBe(true);
    const rewrapped = (await ok('update', 'rewrap/r', { ciphertext: v1 })).ciphertext;
    expect(rewrapped.startsWith('vault:v2:')).toBe(true);
    await ok('update', 'keys/r/config', { min_decryption_version: 2 });
    expect((await call('update', 'decrypt/r', { ciphertext: v1 })).error).toMatch(/disallowed by policy/);
    expect((await ok('update', 'decrypt/r', { ciphertext: rewrapped })).plaintext).toBe(b('a'));
    expect((await call('update', 'keys/r/config', { min_decryption_version: 5 })).error).toMatch(
      /cannot set min decryption version of 5, latest key version is 2/,
    );
  });
  it('derived keys need the right context; convergent encryption is deterministic per context', async () => {
    await ok('create', 'keys/d', { derived: true, convergent_encryption: true });
    const ctx = b('tenant-1');
    const a = (await ok('update', 'encrypt/d', { plaintext: b('same'), context: ctx })).ciphertext;
    const a2 = (await ok('update', 'encrypt/d', { plaintext: b('same'), context: ctx })).ciphertext;
    const other = (await ok('update', 'encrypt/d', { plaintext: b('same'), context: b('tenant-2') })).ciphertext;
    expect(a2).toBe(a);
    expect(other).not.toBe(a);
    expect((await call('update', 'decrypt/d', { ciphertext: a, context: b('tenant-2') })).error).toMatch(/authentication failed/);
    expect((await call('update', 'encrypt/d', { plaintext: b('x') })).error).toMatch(/missing context/);
    expect((await call('update', 'encrypt/d', { plaintext: b('x'), context: 'not base64!' })).error).toMatch(/context must be base64/);
  });
  it('batch_input: per-item results and errors, references echoed', async () => {
    await ok('create', 'keys/bt');
    // As current Vault: a batch with a failed item is a 400 that still carries batch_results
    // (partial_failure_response_code sets another status when some items succeeded).
    const raw = await ok('update', 'encrypt/bt', {
      batch_input: [{ plaintext: b('one'), reference: 'r1' }, { plaintext: '%%%' }, { plaintext: b('three') }],
      partial_failure_response_code: 207,
    });
    expect(raw.http_status_code).toBe(207);
    const enc = JSON.parse(Buffer.from(raw.http_raw_body, 'base64').toString()).data;
    expect(enc.batch_results).toHaveLength(3);
    expect(enc.batch_results[0]).toMatchObject({ reference: 'r1', key_version: 1 });
    expect(enc.batch_results[1].error).toMatch(/base64/);
    const dec = await ok('update', 'decrypt/bt', {
      batch_input: [{ ciphertext: enc.batch_results[0].ciphertext }, { ciphertext: enc.batch_results[2].ciphertext }],
    });
    expect(dec.batch_results.map((r: any) => Buffer.from(r.plaintext, 'base64').toString())).toEqual(['one', 'three']);
    const bad = await ok('update', 'decrypt/bt', { batch_input: [{ ciphertext: 'x' }], partial_failure_response_code: 207 });
    expect(bad.http_status_code).toBe(400);
    expect(JSON.parse(Buffer.from(bad.http_raw_body, 'base64').toString()).data.batch_results[0].error).toMatch(/invalid ciphertext/);
    const partial = await ok('update', 'decrypt/bt', { batch_input: [{ ciphertext: enc.batch_results[0].ciphertext }, { ciphertext: 'x' }] });
    expect(partial.http_status_code).toBe(400);
  });
  it('datakeys: the wrapped key decrypts to the plaintext key', async () => {
    await ok('create', 'keys/dk');
    const pt = await ok('update', 'datakey/plaintext/dk', { bits: 512 });
    expect(Buffer.from(pt.plaintext, 'base64')).toHaveLength(64);
    expect((await ok('update', 'decrypt/dk', { ciphertext: pt.ciphertext })).plaintext).toBe(pt.plaintext);
    const wrapped = await ok('update', 'datakey/wrapped/dk');
    expect(wrapped.plaintext).toBeUndefined();
    expect((await call('update', 'datakey/plaintext/dk', { bits: 100 })).error).toMatch(/bits must be/);
  });
});

describe('signing and HMAC', () => {
  it.each([
    ['ecdsa-p256', 'sha2-256'],
    ['ecdsa-p384', 'sha2-384'],
    ['ecdsa-p521', 'sha2-512'],
  ])('%s: ASN.1 and JWS signatures Node verifies', async (type, hash) => {
    await ok('create', 'keys/s', { type });
    const pub = createPublicKey((await ok('read', 'keys/s')).keys['1'].public_key);
    const input = b('document');
    const h = 'sha' + hash.slice(-3);
    const { signature } = await ok('update', `sign/s/${hash}`, { input });
    expect(nodeVerify(h, Buffer.from('document'), { key: pub, dsaEncoding: 'der' }, Buffer.from(signature.split(':')[2], 'base64'))).toBe(true);
    expect((await ok('update', `verify/s/${hash}`, { input, signature })).valid).toBe(true);
    expect((await ok('update', `verify/s/${hash}`, { input: b('other'), signature })).valid).toBe(false);
    const jws = (await ok('update', 'sign/s', { input, hash_algorithm: hash, marshaling_algorithm: 'jws' })).signature;
    expect(nodeVerify(h, Buffer.from('document'), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(jws.split(':')[2], 'base64url'))).toBe(true);
    expect((await ok('update', 'verify/s', { input, signature: jws, hash_algorithm: hash, marshaling_algorithm: 'jws' })).valid).toBe(true);
    const digest = createHash(h).update('document').digest().toString('base64');
    const pre = (await ok('update', `sign/s/${hash}`, { input: digest, prehashed: true })).signature;
    expect((await ok('update', `verify/s/${hash}`, { input, signature: pre })).valid).toBe(true);
  });
  it('RSA: PSS by default, PKCS#1 v1.5 on request', async () => {
    await ok('create', 'keys/rsa', { type: 'rsa-2048' });
    const pub = createPublicKey((await ok('read', 'keys/rsa')).keys['1'].public_key);
    for (const [alg, padding] of [
      ['pss', constants.RSA_PKCS1_PSS_PADDING],
      ['pkcs1v15', constants.RSA_PKCS1_PADDING],
    ] as const) {
      const { signature } = await ok('update', 'sign/rsa', { input: b('m'), signature_algorithm: alg });
      expect(
        nodeVerify(
          'sha256',
          Buffer.from('m'),
          { key: pub, padding, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
          Buffer.from(signature.split(':')[2], 'base64'),
        ),
      ).toBe(true);
    }
  });
  it('ed25519 signs messages', async () => {
    await ok('create', 'keys/ed', { type: 'ed25519' });
    const { signature } = await ok('update', 'sign/ed', { input: b('m') });
    expect((await ok('update', 'verify/ed', { input: b('m'), signature })).valid).toBe(true);
    // Prehashed is Ed25519ph, with hash_algorithm=sha2-512 only (transit-ed25519.test.ts).
    expect((await call('update', 'sign/ed', { input: b('m'), prehashed: true })).error).toMatch(/Ed25519ph, which requires hash_algorithm=sha2-512/);
  });
  it.each([
    ['ed25519', null],
    ['ecdsa-p256', 'sha256'],
  ] as const)('%s: short messages (signed on the event loop) and long ones (on the thread pool) both verify', async (type, h) => {
    await ok('create', 'keys/both', { type });
    const published: string = (await ok('read', 'keys/both')).keys['1'].public_key;
    // As Vault: an Ed25519 public key is published as its 32 bytes in base64, others as PEM.
    const pub = h
      ? createPublicKey(published)
      : createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(published, 'base64').toString('base64url') }, format: 'jwk' });
    for (const len of [1, 64, 4096, 4097, 100_000]) {
      const msg = Buffer.alloc(len, len % 251);
      const { signature } = await ok('update', 'sign/both', { input: msg.toString('base64') });
      const sig = Buffer.from(signature.split(':')[2], 'base64');
      expect(nodeVerify(h, msg, h ? { key: pub, dsaEncoding: 'der' } : pub, sig), `${len} bytes`).toBe(true);
      expect(nodeVerify(h, Buffer.concat([msg, Buffer.from('x')]), h ? { key: pub, dsaEncoding: 'der' } : pub, sig)).toBe(false);
    }
  });
  it('symmetric keys do not sign; unsupported hashes are named', async () => {
    await ok('create', 'keys/sym');
    expect((await call('update', 'sign/sym', { input: b('m') })).error).toMatch(/does not support signing/);
    await ok('create', 'keys/ec', { type: 'ecdsa-p256' });
    expect((await call('update', 'sign/ec/none', { input: b('m') })).error).toMatch(/hash_algorithm=none requires both prehashed=true/);
  });
  it('HMAC per key version, verified in constant time', async () => {
    await ok('create', 'keys/h');
    const { hmac } = await ok('update', 'hmac/h/sha2-512', { input: b('m') });
    expect(hmac).toMatch(/^vault:v1:/);
    expect((await ok('update', 'verify/h/sha2-512', { input: b('m'), hmac })).valid).toBe(true);
    expect((await ok('update', 'verify/h/sha2-512', { input: b('n'), hmac })).valid).toBe(false);
  });
});

describe('tools and periodic work', () => {
  it('random and hash', async () => {
    expect(Buffer.from((await ok('update', 'random/48')).random_bytes, 'base64')).toHaveLength(48);
    expect((await ok('update', 'random', { bytes: 4, format: 'hex' })).random_bytes).toMatch(/^[0-9a-f]{8}$/);
    expect((await ok('update', 'hash/sha2-512', { input: b('abc') })).sum).toBe(createHash('sha512').update('abc').digest('hex'));
    expect((await call('update', 'random/0')).error).toMatch(/'bytes' cannot be less than 1/);
  });
  it('rollback rotates keys whose auto_rotate_period has passed', async () => {
    await ok('create', 'keys/auto', { auto_rotate_period: '1h' });
    const p = JSON.parse(mount.store.data.get('policy/auto')!.toString());
    p.last_rotated = new Date(Date.now() - 2 * 3600_000).toISOString();
    await mount.store.put('policy/auto', Buffer.from(JSON.stringify(p)));
    mount.be.invalidate('policy/auto');
    await mount.be.handle('rollback' as never, '', {}, { displayName: '', mountPoint: '' });
    expect((await ok('read', 'keys/auto')).latest_version).toBe(2);
  });
});

describe('managed keys in the mount', () => {
  it('configure a software key, test/sign it, use it from transit; secrets never read back', async () => {
    const cfg = await ok('update', 'managed-keys/software/mk', { key_type: 'ecdsa-p256' });
    expect(cfg).toMatchObject({ type: 'software', name: 'mk', hardware_backed: false });
    expect(cfg.private_key).toBeUndefined();
    expect(JSON.parse(mount.store.data.get('managed-keys/software/mk')!.toString()).private_key).toMatch(/PRIVATE KEY/);
    expect((await ok('read', 'managed-keys/software/mk')).private_key).toBeUndefined();
    expect((await ok('list', 'managed-keys/software/')).keys).toEqual(['mk']);
    expect(await ok('update', 'managed-keys/software/mk/test/sign')).toMatchObject({ ok: true, operation: 'sign', algorithm: 'ecdsa-sha256' });
    await ok('create', 'keys/via-mk', { type: 'managed_key', managed_key_name: 'mk' });
    const { signature } = await ok('update', 'sign/via-mk', { input: b('m') });
    expect((await ok('update', 'verify/via-mk', { input: b('m'), signature })).valid).toBe(true);
    expect((await call('update', 'keys/via-mk/rotate')).error).toMatch(/rotate in their own backend/);
    // a fresh backend on the same storage (plugin restart) serves the same key
    const again = new SecretsBackend(mount.store, quietLog);
    const r = await again.handle('update', 'verify/via-mk', { input: b('m'), signature }, { displayName: '', mountPoint: '' });
    expect(r?.data?.valid).toBe(true);
  });
  it('an opened managed key is used without reading storage again', async () => {
    await ok('update', 'managed-keys/software/hot', { key_type: 'ecdsa-p256' });
    await ok('create', 'keys/hot', { type: 'managed_key', managed_key_name: 'hot' });
    await ok('update', 'sign/hot', { input: b('warm') });
    const reads: string[] = [];
    const get = mount.store.get.bind(mount.store);
    mount.store.get = async (k: string) => {
      reads.push(k);
      return get(k);
    };
    await ok('update', 'sign/hot', { input: b('m') });
    expect(reads.filter((k) => k.startsWith('managed-keys/'))).toEqual([]);
  });

  it('encrypts through an AES managed key', async () => {
    await ok('update', 'managed-keys/software/aes', { key_type: 'aes256-gcm' });
    await ok('create', 'keys/env', { type: 'managed_key', managed_key_name: 'aes' });
    const { ciphertext } = await ok('update', 'encrypt/env', { plaintext: b('x'), associated_data: b('ad') });
    expect((await ok('update', 'decrypt/env', { ciphertext, associated_data: b('ad') })).plaintext).toBe(b('x'));
    expect((await call('update', 'decrypt/env', { ciphertext })).error).toMatch(/decryption failed/);
  });
  it('a managed key ignores context, as Vault (the key is not derived); ciphertexts that bound it before still decrypt', async () => {
    await ok('update', 'managed-keys/software/aes', { key_type: 'aes256-gcm' });
    await ok('create', 'keys/env', { type: 'managed_key', managed_key_name: 'aes' });
    const enc = vi.spyOn(SoftwareKey.prototype, 'encrypt');
    try {
      const { ciphertext } = await ok('update', 'encrypt/env', { plaintext: b('x'), context: b('ab') });
      // Context ignored: it decrypts without one, or with another.
      expect((await ok('update', 'decrypt/env', { ciphertext })).plaintext).toBe(b('x'));
      expect((await ok('update', 'decrypt/env', { ciphertext, context: b('zz') })).plaintext).toBe(b('x'));
      // Context and associated data were one joined string: context "ab" was context "a" with associated data "b".
      const { ciphertext: withAd } = await ok('update', 'encrypt/env', { plaintext: b('y'), associated_data: b('b') });
      expect((await call('update', 'decrypt/env', { ciphertext: withAd, context: b('ab') })).error).toMatch(/decryption failed/);
      expect((await ok('update', 'decrypt/env', { ciphertext: withAd, context: b('a'), associated_data: b('b') })).plaintext).toBe(b('y'));
      // A ciphertext made before (the key's associated data was context || associated_data) decrypts with that context.
      const key = enc.mock.contexts[0] as SoftwareKey;
      const legacy = `vault:v1:${(await key.encrypt(Buffer.from('z'), { aad: Buffer.from('ctxad') })).toString('base64')}`;
      expect((await ok('update', 'decrypt/env', { ciphertext: legacy, context: b('ctx'), associated_data: b('ad') })).plaintext).toBe(b('z'));
      expect((await call('update', 'decrypt/env', { ciphertext: legacy, context: b('ct'), associated_data: b('ad') })).error).toMatch(/decryption failed/);
    } finally {
      enc.mockRestore();
    }
  });
  it('bad managed key configs are 400s that name the field', async () => {
    expect((await call('update', 'managed-keys/software/bad', { key_type: 'dsa' })).error).toMatch(/key_type: must be one of/);
    expect((await call('update', 'managed-keys/pkcs11/hsm', { library: '/nonexistent.so', pin: '1234', token_label: 't', key_label: 'k' })).error).toMatch(
      /PLUGIN_PKCS11_LIBRARIES/,
    );
    expect((await call('update', 'managed-keys/awskms/a', {})).error).toMatch(/kms_key is required/);
    expect((await call('update', 'sign/nokey', { input: b('m') })).error).toMatch(/encryption key not found/);
    await ok('create', 'keys/dangling', { type: 'managed_key', managed_key_name: 'ghost' });
    expect((await call('update', 'sign/dangling', { input: b('m') })).error).toMatch(/managed key "ghost" is not configured/);
  });
});

// --- findings of the adversarial review (transit part) ----------------------------------

describe("durations: one parser, finite bounded whole seconds (Vault's ParseDurationSecond)", () => {
  it('accepts Go duration strings and integer seconds', () => {
    expect(parseDuration('2160h0m0s', 'ttl')).toBe(7_776_000);
    expect(parseDuration('30m', 'ttl')).toBe(1800);
    expect(parseDuration('1h30m', 'ttl')).toBe(5400);
    expect(parseDuration('1.5h', 'ttl')).toBe(5400);
    expect(parseDuration('90', 'ttl')).toBe(90);
    expect(parseDuration(90, 'ttl')).toBe(90);
    expect(parseDuration('', 'ttl')).toBe(0);
    expect(parseDuration('1500ms', 'ttl')).toBe(1); // whole seconds, truncated as Vault does
  });
  it.each([
    1e308,
    Infinity,
    -Infinity,
    NaN,
    -1,
    '-1',
    '-1h',
    'Infinity',
    '1e400s',
    `${'9'.repeat(400)}s`,
    '9'.repeat(30),
    '2562048h',
    9_223_372_037,
    '1h-5m',
    'h',
    '.s',
    '1x',
    true,
    {},
    [],
  ])('%s is a 400', (v) => {
    expect(() => parseDuration(v, 'ttl')).toThrow(UserError);
    try {
      parseDuration(v, 'ttl');
    } catch (e) {
      expect((e as UserError).status).toBe(400);
      expect((e as Error).message).toMatch(/^ttl: /);
    }
  });
  it('the largest Go duration (about 292 years) is the bound', () => {
    expect(parseDuration('2562047h', 'ttl')).toBe(2_562_047 * 3600);
  });
  it('a transit field with a non-finite duration is a 400', async () => {
    expect((await call('create', 'keys/x', { auto_rotate_period: 1e308 })).error).toMatch(/auto_rotate_period: /);
    expect((await call('create', 'keys/x', { auto_rotate_period: `${'9'.repeat(400)}h` })).error).toMatch(/auto_rotate_period: /);
  });
});

describe('convergent encryption binds associated_data into the nonce', () => {
  const nonceOf = (ct: string) => Buffer.from(ct.split(':')[2], 'base64').subarray(0, 12).toString('hex');
  it('different associated_data never reuses a nonce (GCM nonce reuse lets an attacker forge tags)', async () => {
    await ok('create', 'keys/conv', { derived: true, convergent_encryption: true });
    const base = { plaintext: b('card 4111'), context: b('tenant-1') };
    const a = (await ok('update', 'encrypt/conv', { ...base, associated_data: b('row-1') })).ciphertext;
    const a2 = (await ok('update', 'encrypt/conv', { ...base, associated_data: b('row-1') })).ciphertext;
    const c = (await ok('update', 'encrypt/conv', { ...base, associated_data: b('row-2') })).ciphertext;
    const none = (await ok('update', 'encrypt/conv', base)).ciphertext;
    expect(a2).toBe(a); // still convergent for equal (plaintext, context, associated_data)
    expect(nonceOf(c)).not.toBe(nonceOf(a));
    expect(nonceOf(none)).not.toBe(nonceOf(a));
    expect((await ok('update', 'decrypt/conv', { ciphertext: c, context: base.context, associated_data: b('row-2') })).plaintext).toBe(base.plaintext);
    expect((await call('update', 'decrypt/conv', { ciphertext: c, context: base.context, associated_data: b('row-1') })).error).toMatch(
      /authentication failed/,
    );
  });
  it('ciphertexts made before the change (nonce from the plaintext only) still decrypt', async () => {
    await ok('create', 'keys/old', { derived: true, convergent_encryption: true });
    const stored = JSON.parse(mount.store.data.get('policy/old')!.toString());
    const master = Buffer.from(stored.versions['1'].key, 'base64');
    const key = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.from('tenant-1'), 32));
    const nonce = createHmac('sha256', key).update('legacy').digest().subarray(0, 12);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(Buffer.from('row-1'));
    const body = Buffer.concat([nonce, c.update('legacy'), c.final(), c.getAuthTag()]);
    const ciphertext = `vault:v1:${body.toString('base64')}`;
    expect((await ok('update', 'decrypt/old', { ciphertext, context: b('tenant-1'), associated_data: b('row-1') })).plaintext).toBe(b('legacy'));
    // and without associated_data the derivation is unchanged: same bytes as before
    const n2 = createHmac('sha256', key).update('legacy').digest().subarray(0, 12).toString('hex');
    expect(nonceOf((await ok('update', 'encrypt/old', { plaintext: b('legacy'), context: b('tenant-1') })).ciphertext)).toBe(n2);
  });
});

describe('base64 as Go reads it, and strict vault:v<N>: decoding', () => {
  let ct = '';
  beforeEach(async () => {
    await ok('create', 'keys/s1');
    ct = (await ok('update', 'encrypt/s1', { plaintext: b('hello world!!') })).ciphertext;
  });
  const body = () => ct.split(':')[2];
  it('refuses non-canonical ciphertexts: base64url characters, padding, junk, version forms', async () => {
    const raw = Buffer.from(body(), 'base64');
    const mangled = [
      `vault:v1:${raw.toString('base64url')}`, // URL alphabet, no padding
      `vault:v1:${body().replace(/=+$/, '')}`, // missing padding
      `vault:v1:${body()}==`, // extra padding
      `vault:v1:${body()}A`, // junk after the padding
      `vault:v01:${body()}`,
      `vault:v+1:${body()}`,
      `vault:v0:${body()}`,
      `vault:v1 :${body()}`,
      `vault:v${'9'.repeat(20)}:${body()}`,
    ];
    expect(body().endsWith('=')).toBe(true); // 13-byte plaintext: the ciphertext has padding to play with
    for (const c of mangled) expect((await call('update', 'decrypt/s1', { ciphertext: c })).error, c).toMatch(/invalid ciphertext|base64/);
    expect((await ok('update', 'decrypt/s1', { ciphertext: ct })).plaintext).toBe(b('hello world!!'));
  });

  it.each(['plaintext', 'context', 'associated_data'])('%s: missing padding or URL alphabet is a 400', async (field) => {
    for (const v of ['aGk', 'aGk=x', 'a-_b', 'aGk=\t', ' aGk=']) {
      const base: Record<string, unknown> = { plaintext: b('x'), [field]: v };
      expect((await call('update', 'encrypt/s1', base)).error, `${field}=${v}`).toMatch(new RegExp(`${field} must be base64`));
    }
  });
  it('signatures, HMACs and input decode strictly; JWS signatures are unpadded base64url only', async () => {
    await ok('create', 'keys/sg', { type: 'ecdsa-p256' });
    // A signature whose base64 has padding and a + or / (ECDSA DER lengths vary): every mangling below changes it.
    let signature = '';
    do signature = (await ok('update', 'sign/sg', { input: b('m') })).signature;
    while (!/[+/].*=$/.test(signature));
    const sb = signature.split(':')[2];
    for (const s of [
      `vault:v1:${Buffer.from(sb, 'base64').toString('base64url')}`,
      `vault:v01:${sb}`,
      `vault:v1:${sb}=`,
      `vault:v1:${sb}x`,
      `vault:v1:${sb.replace(/=+$/, '')}`,
    ]) {
      expect((await call('update', 'verify/sg', { input: b('m'), signature: s })).error, s).toMatch(/invalid signature|base64/);
    }
    expect((await call('update', 'sign/sg', { input: 'bQ' })).error).toMatch(/input must be base64/);
    expect((await call('update', 'verify/sg', { input: 'bQ', signature })).error).toMatch(/input must be base64/);
    const jws = (await ok('update', 'sign/sg', { input: b('m'), marshaling_algorithm: 'jws' })).signature;
    expect((await ok('update', 'verify/sg', { input: b('m'), signature: jws, marshaling_algorithm: 'jws' })).valid).toBe(true);
    const jb = jws.split(':')[2];
    expect(
      (
        await call('update', 'verify/sg', {
          input: b('m'),
          signature: `vault:v1:${Buffer.from(jb, 'base64url').toString('base64')}`,
          marshaling_algorithm: 'jws',
        })
      ).error,
    ).toMatch(/invalid signature/);
    expect((await call('update', 'verify/sg', { input: b('m'), signature: `vault:v1:${jb}=`, marshaling_algorithm: 'jws' })).error).toMatch(
      /invalid signature/,
    );
    const { hmac } = await ok('update', 'hmac/s1', { input: b('m') });
    expect((await call('update', 'verify/s1', { input: b('m'), hmac: hmac.replace(/=$/, '') })).error).toMatch(/invalid hmac/);
    expect((await call('update', 'verify/s1', { input: b('m'), hmac: hmac.replace('vault:v1:', 'vault:v01:') })).error).toMatch(/invalid hmac/);
  });
  it('batch items are validated like top-level fields (a string "false" is false, a bad key_version a clear error)', async () => {
    await ok('create', 'keys/bv', { type: 'ecdsa-p256' });
    const digest = createHash('sha256').update('m').digest('base64');
    const r = await ok('update', 'sign/bv', {
      batch_input: [
        { input: b('m'), prehashed: 'false' },
        { input: digest, prehashed: 'true' },
        { input: b('m'), key_version: 1e308 },
        { input: b('m'), key_version: 'abc' },
      ],
    });
    expect((await ok('update', 'verify/bv', { input: b('m'), signature: r.batch_results[0].signature })).valid).toBe(true);
    expect((await ok('update', 'verify/bv', { input: b('m'), signature: r.batch_results[1].signature })).valid).toBe(true);
    expect(r.batch_results[2].error).toMatch(/key_version: expected an integer/);
    expect(r.batch_results[3].error).toMatch(/key_version: expected an integer/);
  });
});

describe('deeply nested request data', () => {
  const nested = (depth: number) => {
    let v: unknown = 'leaf';
    for (let i = 0; i < depth; i++) v = { r: v };
    return v;
  };
  it.each([5_000, 200_000])('a batch reference %i levels deep is a clear 400, and the reply serialises', async (depth) => {
    await ok('create', 'keys/deep');
    const r = await call('update', 'encrypt/deep', { batch_input: [{ plaintext: b('x'), reference: nested(depth) }] });
    expect(r.error).toMatch(/nested more than \d+ levels/);
  });
  it('ordinary nesting (a reference object, a list) still works', async () => {
    await ok('create', 'keys/shallow');
    const r = await ok('update', 'encrypt/shallow', { batch_input: [{ plaintext: b('x'), reference: nested(20) }] });
    expect(r.batch_results[0].reference).toEqual(nested(20));
  });
});

describe('heavy work stays off the event loop', () => {
  it('an RSA-4096 sign batch and parallel RSA-4096 key creations leave the event loop responsive; results stay valid', async () => {
    await ok('create', 'keys/big', { type: 'rsa-4096' });
    const pub = createPublicKey((await ok('read', 'keys/big')).keys['1'].public_key);
    // The longest gap between ticks of a 5 ms interval timer is the longest time the event
    // loop was held. (perf_hooks' monitorEventLoopDelay under-reports a loop that stays
    // blocked for seconds: it records only the few samples its timer gets to take.)
    const t0 = performance.now();
    let last = t0;
    let maxDelay = 0;
    const probe = setInterval(() => {
      const now = performance.now();
      maxDelay = Math.max(maxDelay, now - last);
      last = now;
    }, 5);
    const [signed] = await Promise.all([
      ok('update', 'sign/big', { batch_input: Array.from({ length: 200 }, (_, i) => ({ input: b(`doc ${i}`) })) }),
      ...Array.from({ length: 4 }, (_, i) => ok('create', `keys/par${i}`, { type: 'rsa-4096' })),
    ]);
    await new Promise((r) => setTimeout(r, 20));
    clearInterval(probe);
    const elapsed = performance.now() - t0;
    maxDelay = Math.max(maxDelay, performance.now() - last);
    // With synchronous crypto the loop is blocked for whole key generations and the whole
    // batch (seconds); off the loop, it is only ever held for a few milliseconds at a time.
    expect(maxDelay, `max event-loop delay ${maxDelay.toFixed(0)} ms over ${elapsed.toFixed(0)} ms`).toBeLessThan(elapsed / 10);
    expect(signed.batch_results).toHaveLength(200);
    signed.batch_results.forEach((r: any, i: number) => {
      expect(
        nodeVerify(
          'sha256',
          Buffer.from(`doc ${i}`),
          { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
          Buffer.from(r.signature.split(':')[2], 'base64'),
        ),
      ).toBe(true);
    });
    for (let i = 0; i < 4; i++) {
      const k = createPublicKey((await ok('read', `keys/par${i}`)).keys['1'].public_key);
      expect(k.asymmetricKeyDetails?.modulusLength).toBe(4096);
      const { signature } = await ok('update', `sign/par${i}`, { input: b('m'), signature_algorithm: 'pkcs1v15' });
      expect(nodeVerify('sha256', Buffer.from('m'), { key: k, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(signature.split(':')[2], 'base64'))).toBe(
        true,
      );
    }
  }, 120_000);
});

describe("drop-in compatibility with Vault's transit", () => {
  it("key reads carry Vault's fields: min_available_version, allow_plaintext_backup; convergent_encryption only when set", async () => {
    await ok('create', 'keys/plain');
    const r = await ok('read', 'keys/plain');
    expect(r).toMatchObject({ min_available_version: 0, allow_plaintext_backup: false });
    expect(r).not.toHaveProperty('convergent_encryption');
    await ok('create', 'keys/conv', { derived: true, convergent_encryption: true });
    expect(await ok('read', 'keys/conv')).toMatchObject({ convergent_encryption: true, convergent_encryption_version: 2 });
    await ok('update', 'keys/plain/config', { allow_plaintext_backup: true });
    // As Vault: once set it stays set; false is ignored, not refused.
    await ok('update', 'keys/plain/config', { allow_plaintext_backup: false });
    expect((await ok('read', 'keys/plain')).allow_plaintext_backup).toBe(true);
  });
  it("asymmetric versions have Vault's name; Ed25519 public keys are raw base64, ECDSA PEM", async () => {
    await ok('create', 'keys/ed', { type: 'ed25519' });
    await ok('create', 'keys/ec', { type: 'ecdsa-p384' });
    const ed = (await ok('read', 'keys/ed')).keys['1'];
    expect(ed.name).toBe('ed25519');
    expect(Buffer.from(ed.public_key, 'base64')).toHaveLength(32);
    const sig = (await ok('update', 'sign/ed', { input: b('m') })).signature.split(':')[2];
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(ed.public_key, 'base64')]);
    expect(nodeVerify(null, Buffer.from('m'), createPublicKey({ key: spki, format: 'der', type: 'spki' }), Buffer.from(sig, 'base64'))).toBe(true);
    const ec = (await ok('read', 'keys/ec')).keys['1'];
    expect(ec.name).toBe('P-384');
    expect(ec.public_key).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  });
  it('encrypt without plaintext is a 400; "" encrypts the empty string; context on a non-derived key is ignored', async () => {
    await ok('create', 'keys/k');
    expect((await call('update', 'encrypt/k', {})).error).toMatch(/missing plaintext to encrypt/);
    const empty = await ok('update', 'encrypt/k', { plaintext: '' });
    expect((await ok('update', 'decrypt/k', { ciphertext: empty.ciphertext })).plaintext).toBe('');
    const ct = (await ok('update', 'encrypt/k', { plaintext: b('x'), context: b('ctx') })).ciphertext;
    expect((await ok('update', 'decrypt/k', { ciphertext: ct })).plaintext).toBe(b('x'));
  });
  it('fields Vault\'s OpenAPI lists are accepted without an "ignored" warning: nonce on decrypt/rewrap/datakey, context on a key read', async () => {
    await ok('create', 'keys/n');
    const { ciphertext } = await ok('update', 'encrypt/n', { plaintext: b('x') });
    const nonce = Buffer.alloc(12).toString('base64');
    const dec = await call('update', 'decrypt/n', { ciphertext, nonce });
    expect(dec).toEqual({ data: { plaintext: b('x') } });
    expect((await call('update', 'rewrap/n', { ciphertext, nonce })).warnings).toBeUndefined();
    expect((await call('update', 'datakey/wrapped/n', { nonce })).warnings).toBeUndefined();
    expect((await call('read', 'keys/n', { context: b('c') })).warnings).toBeUndefined();
  });
  it('ECDSA signs with sha2-224; hmac answers carry only the hmac', async () => {
    await ok('create', 'keys/ec', { type: 'ecdsa-p256' });
    const s = await ok('update', 'sign/ec/sha2-224', { input: b('m') });
    expect((await ok('update', 'verify/ec/sha2-224', { input: b('m'), signature: s.signature })).valid).toBe(true);
    expect((await ok('update', 'verify/ec/sha2-256', { input: b('m'), signature: s.signature })).valid).toBe(false);
    await ok('create', 'keys/k');
    expect(Object.keys(await ok('update', 'hmac/k', { input: b('m') }))).toEqual(['hmac']);
  });
  it("export: only exportable keys, Vault's encodings, one version or all", async () => {
    await ok('create', 'keys/nx');
    expect((await call('read', 'export/encryption-key/nx')).error).toMatch(/not exportable/);
    await ok('create', 'keys/ex', { exportable: true });
    await ok('update', 'keys/ex/rotate');
    const all = await ok('read', 'export/encryption-key/ex');
    expect(Object.keys(all.keys)).toEqual(['1', '2']);
    expect(Buffer.from(all.keys['1'], 'base64')).toHaveLength(32);
    const ct = (await ok('update', 'encrypt/ex', { plaintext: b('secret') })).ciphertext;
    // The exported key really is the key: decrypt the ciphertext locally.
    const body = Buffer.from(ct.split(':')[2], 'base64');
    const { createDecipheriv } = await import('node:crypto');
    const d = createDecipheriv('aes-256-gcm', Buffer.from(all.keys['2'], 'base64'), body.subarray(0, 12));
    d.setAuthTag(body.subarray(body.length - 16));
    expect(Buffer.concat([d.update(body.subarray(12, body.length - 16)), d.final()]).toString()).toBe('secret');
    expect(Object.keys((await ok('read', 'export/hmac-key/ex/latest')).keys)).toEqual(['2']);
    expect((await call('read', 'export/signing-key/ex')).error).toMatch(/signing key not supported/);
    expect((await call('read', 'export/encryption-key/ex/9')).error).toMatch(/version does not exist or cannot be found/);
    await ok('create', 'keys/edx', { type: 'ed25519', exportable: true });
    expect(Buffer.from((await ok('read', 'export/signing-key/edx/1')).keys['1'], 'base64')).toHaveLength(64);
  });
  it('backup and restore: only with exportable + allow_plaintext_backup; restore refuses to overwrite unless forced', async () => {
    await ok('create', 'keys/nb', { exportable: true });
    expect((await call('read', 'backup/nb')).error).toMatch(/plaintext backup is disallowed/);
    await ok('create', 'keys/bk', { exportable: true, allow_plaintext_backup: true });
    const ct = (await ok('update', 'encrypt/bk', { plaintext: b('keep') })).ciphertext;
    const { backup } = await ok('read', 'backup/bk');
    expect((await call('update', 'restore', { backup })).error).toMatch(/already exists/);
    await ok('update', 'restore/copy', { backup });
    expect((await ok('update', 'decrypt/copy', { ciphertext: ct })).plaintext).toBe(b('keep'));
    // Key reads show the last backup and restore, as Vault's do.
    expect((await ok('read', 'keys/bk')).backup_info).toMatchObject({ version: 1 });
    expect(await ok('read', 'keys/copy')).toMatchObject({ backup_info: { version: 1 }, restore_info: { version: 1 } });
    expect((await call('update', 'restore/bad', { backup: b('{"nope":1}') })).error).toMatch(/invalid backup/);
  });
  it("trim deletes old versions within Vault's rules; cache-config reads and writes", async () => {
    await ok('create', 'keys/t');
    await ok('update', 'keys/t/rotate');
    await ok('update', 'keys/t/rotate');
    expect((await call('update', 'keys/t/trim', { min_available_version: 1 })).error).toMatch(/minimum encryption version is not set/);
    await ok('update', 'keys/t/config', { min_decryption_version: 2, min_encryption_version: 3 });
    expect((await call('update', 'keys/t/trim', { min_available_version: 3 })).error).toMatch(/greater than minimum decryption version/);
    await ok('update', 'keys/t/trim', { min_available_version: 2 });
    const r = await ok('read', 'keys/t');
    expect(Object.keys(r.keys)).toEqual(['2', '3']);
    expect(r.min_available_version).toBe(2);
    expect((await call('update', 'keys/t/trim', { min_available_version: 1 })).error).toMatch(/cannot be decremented/);
    expect(await ok('read', 'cache-config')).toEqual({ size: 0 });
    expect((await call('update', 'cache-config', { size: 5 })).error).toMatch(/size must be 0 or/);
    expect((await call('update', 'cache-config', { size: 100 })).warnings?.[0]).toMatch(/recorded/);
    expect(await ok('read', 'cache-config')).toEqual({ size: 100 });
  });
});

describe('beyond Vault: ecdsa-secp256k1, ml-dsa (FIPS 204), x25519 key agreement', () => {
  const sigBytes = (s: string, jws = false) => Buffer.from(s.split(':')[2], jws ? 'base64url' : 'base64');

  it('ecdsa-secp256k1: PEM public key named secp256k1; ASN.1 low-S signatures OpenSSL verifies; JWS r||s; prehashed; rotation', async () => {
    await ok('create', 'keys/k1', { type: 'ecdsa-secp256k1' });
    const key = await ok('read', 'keys/k1');
    expect(key).toMatchObject({ type: 'ecdsa-secp256k1', supports_signing: true, supports_encryption: false, supports_decryption: false });
    expect(key.keys['1'].name).toBe('secp256k1');
    const pub = createPublicKey(key.keys['1'].public_key);
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('secp256k1');
    const input = b('pay 1 BTC');
    const N = BigInt('0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141');
    for (let i = 0; i < 8; i++) {
      const { signature } = await ok('update', 'sign/k1', { input });
      const der = sigBytes(signature);
      expect(nodeVerify('sha256', Buffer.from('pay 1 BTC'), { key: pub, dsaEncoding: 'der' }, der)).toBe(true);
      const raw = (await import('../../src/keys/crypto')).derToRaw(der, 32);
      expect(BigInt(`0x${raw.subarray(32).toString('hex')}`) <= N / 2n).toBe(true); // low-S
      expect((await ok('update', 'verify/k1', { input, signature })).valid).toBe(true);
    }
    const { signature } = await ok('update', 'sign/k1/sha2-384', { input });
    expect(nodeVerify('sha384', Buffer.from('pay 1 BTC'), { key: pub, dsaEncoding: 'der' }, sigBytes(signature))).toBe(true);
    expect((await ok('update', 'verify/k1', { input: b('pay 2 BTC'), signature, hash_algorithm: 'sha2-384' })).valid).toBe(false);
    const jws = (await ok('update', 'sign/k1', { input, marshaling_algorithm: 'jws' })).signature;
    expect(sigBytes(jws, true)).toHaveLength(64);
    expect(nodeVerify('sha256', Buffer.from('pay 1 BTC'), { key: pub, dsaEncoding: 'ieee-p1363' }, sigBytes(jws, true))).toBe(true);
    expect((await ok('update', 'verify/k1', { input, signature: jws, marshaling_algorithm: 'jws' })).valid).toBe(true);
    const digest = createHash('sha256').update('pay 1 BTC').digest('base64');
    const pre = (await ok('update', 'sign/k1', { input: digest, prehashed: true })).signature;
    expect(nodeVerify('sha256', Buffer.from('pay 1 BTC'), { key: pub, dsaEncoding: 'der' }, sigBytes(pre))).toBe(true);
    // OpenSSL, a verifier independent of this plugin and of noble, accepts the ASN.1 signature.
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/k1-');
    writeFileSync(`${dir}/pub.pem`, key.keys['1'].public_key);
    writeFileSync(`${dir}/sig`, sigBytes(signature));
    writeFileSync(`${dir}/msg`, 'pay 1 BTC');
    expect(execFileSync('openssl', ['dgst', '-sha384', '-verify', `${dir}/pub.pem`, '-signature', `${dir}/sig`, `${dir}/msg`]).toString()).toMatch(
      /Verified OK/,
    );
    await ok('update', 'keys/k1/rotate');
    expect((await ok('update', 'sign/k1', { input })).signature).toMatch(/^vault:v2:/);
    expect((await ok('update', 'verify/k1', { input: digest, prehashed: true, signature: pre })).valid).toBe(true);
    expect((await call('update', 'encrypt/k1', { plaintext: b('x') })).error).toMatch(/does not support encryption/);
  });

  it.each([
    ['44', 1312, 2420],
    ['65', 1952, 3309],
    ['87', 2592, 4627],
  ])("ml-dsa parameter_set %s: Vault Enterprise's shape; signatures the library verifies; JWS; rotation; refusals", async (set, pkLen, sigLen) => {
    const { ml_dsa44, ml_dsa65, ml_dsa87 } = await import('@noble/post-quantum/ml-dsa.js');
    const lib = { '44': ml_dsa44, '65': ml_dsa65, '87': ml_dsa87 }[set]!;
    await ok('create', 'keys/pq', { type: 'ml-dsa', parameter_set: set });
    const key = await ok('read', 'keys/pq');
    expect(key).toMatchObject({ type: 'ml-dsa', parameter_set: set, supports_signing: true, supports_encryption: false });
    expect(key.keys['1'].name).toBe(`ml-dsa-${set}`);
    const pub = Buffer.from(key.keys['1'].public_key, 'base64');
    expect(pub).toHaveLength(pkLen);
    const input = b('a document for the next 30 years');
    const { signature, key_version } = await ok('update', 'sign/pq', { input });
    expect(key_version).toBe(1);
    expect(sigBytes(signature)).toHaveLength(sigLen);
    expect(lib.verify(sigBytes(signature), Buffer.from('a document for the next 30 years'), pub)).toBe(true);
    expect((await ok('update', 'verify/pq', { input, signature })).valid).toBe(true);
    expect((await ok('update', 'verify/pq', { input: b('another document'), signature })).valid).toBe(false);
    const bad = sigBytes(signature);
    bad[10] ^= 1;
    expect((await ok('update', 'verify/pq', { input, signature: `vault:v1:${bad.toString('base64')}` })).valid).toBe(false);
    expect((await ok('update', 'verify/pq', { input, signature: 'vault:v1:AAAA' })).valid).toBe(false);
    const jws = (await ok('update', 'sign/pq', { input, marshaling_algorithm: 'jws' })).signature;
    expect(jws).toMatch(/^vault:v1:[A-Za-z0-9_-]+$/);
    expect((await ok('update', 'verify/pq', { input, signature: jws, marshaling_algorithm: 'jws' })).valid).toBe(true);
    expect((await call('update', 'sign/pq', { input: createHash('sha256').update('x').digest('base64'), prehashed: true })).error).toMatch(
      /prehashed input is not supported/,
    );
    expect((await call('update', 'encrypt/pq', { plaintext: b('x') })).error).toMatch(/does not support encryption/);
    await ok('update', 'keys/pq/rotate');
    const v2 = await ok('read', 'keys/pq');
    expect(v2.keys['2'].public_key).not.toBe(v2.keys['1'].public_key);
    expect((await ok('update', 'sign/pq', { input })).signature).toMatch(/^vault:v2:/);
    expect((await ok('update', 'verify/pq', { input, signature })).valid).toBe(true);
  });

  it('ml-dsa: parameter_set required and checked; export (seed) and backup/restore keep the key', async () => {
    expect((await call('create', 'keys/x', { type: 'ml-dsa' })).error).toMatch(/invalid parameter set/);
    expect((await call('create', 'keys/x', { type: 'ml-dsa', parameter_set: '128' })).error).toMatch(/invalid parameter set/);
    expect((await call('create', 'keys/x', { type: 'ed25519', parameter_set: '65' })).error).toMatch(/only valid with type ml-dsa/);
    const { ml_dsa65 } = await import('@noble/post-quantum/ml-dsa.js');
    await ok('create', 'keys/pqx', { type: 'ml-dsa', parameter_set: '65', exportable: true, allow_plaintext_backup: true });
    const pub = (await ok('read', 'keys/pqx')).keys['1'].public_key;
    expect((await ok('read', 'export/public-key/pqx/1')).keys['1']).toBe(pub);
    const seed = Buffer.from((await ok('read', 'export/signing-key/pqx/1')).keys['1'], 'base64');
    expect(seed).toHaveLength(32);
    expect(Buffer.from(ml_dsa65.keygen(seed).publicKey).toString('base64')).toBe(pub);
    const { signature } = await ok('update', 'sign/pqx', { input: b('m') });
    const { backup } = await ok('read', 'backup/pqx');
    await ok('update', 'restore/pqy', { backup });
    expect((await ok('read', 'keys/pqy')).parameter_set).toBe('65');
    expect((await ok('update', 'verify/pqy', { input: b('m'), signature })).valid).toBe(true);
  });

  it("ml-dsa-44 derives the public key of NIST's ACVP keyGen vector (tcId 1) from its seed", async () => {
    const seed = Buffer.from('D71361C000F9A7BC99DFB425BCB6BB27C32C36AB444FF3708B2D93B4E66D5B5B', 'hex').toString('base64');
    const now = new Date().toISOString();
    const policy = {
      name: 'kat',
      type: 'ml-dsa',
      parameter_set: '44',
      versions: { 1: { creation_time: now, key: seed, hmac_key: b('h'.repeat(32)) } },
      latest_version: 1,
      min_decryption_version: 1,
      min_encryption_version: 0,
      derived: false,
      convergent_encryption: false,
      exportable: false,
      deletion_allowed: false,
      auto_rotate_period: 0,
      last_rotated: now,
    };
    await ok('update', 'restore/kat', { backup: b(JSON.stringify({ format: 'vault-plugin-ts/transit-backup/v1', policy })) });
    const pub = Buffer.from((await ok('read', 'keys/kat')).keys['1'].public_key, 'base64');
    expect(createHash('sha256').update(pub).digest('hex')).toBe('451a808c522218fadbdab146fc12004b0741c7d069f238f43ad77216159f6a34');
    expect(pub.subarray(0, 8).toString('hex')).toBe('b845fa2881407a59');
    // A backup naming no (or a bad) parameter set is refused, not a key that crashes on use.
    for (const bad of [
      { ...policy, parameter_set: '99' },
      { ...policy, parameter_set: undefined },
      { ...policy, versions: { 1: { ...policy.versions[1], key: b('short seed') } } },
    ]) {
      expect((await call('update', 'restore/kat2', { backup: b(JSON.stringify({ format: 'vault-plugin-ts/transit-backup/v1', policy: bad })) })).error).toMatch(
        /invalid backup/,
      );
    }
  });

  it('x25519: raw public key, refused for sign/encrypt/private export; derive-key agrees with a peer inside and outside the mount', async () => {
    const { generateKeyPairSync, diffieHellman, hkdfSync, createDecipheriv } = await import('node:crypto');
    await ok('create', 'keys/alice', { type: 'x25519', exportable: true });
    await ok('create', 'keys/bob', { type: 'x25519' });
    const alice = await ok('read', 'keys/alice');
    expect(alice).toMatchObject({ type: 'x25519', supports_signing: false, supports_encryption: false });
    expect(alice.keys['1'].name).toBe('x25519');
    expect(Buffer.from(alice.keys['1'].public_key, 'base64')).toHaveLength(32);
    expect((await call('update', 'sign/alice', { input: b('m') })).error).toMatch(/does not support signing/);
    expect((await call('update', 'encrypt/alice', { plaintext: b('m') })).error).toMatch(/does not support encryption/);
    expect((await call('read', 'export/signing-key/alice')).error).toMatch(/not supported/);
    expect((await call('read', 'export/encryption-key/alice')).error).toMatch(/not supported/);
    expect((await ok('read', 'export/public-key/alice/1')).keys['1']).toBe(alice.keys['1'].public_key);
    // Inside the mount: alice+bob's public key and bob+alice's public key give one key.
    const bobPub = (await ok('read', 'keys/bob')).keys['1'].public_key;
    const context = b('session 7');
    const ab = await ok('update', 'derive-key/ab', { base_key_name: 'alice', peer_public_key: bobPub, context });
    expect(ab).toMatchObject({ name: 'ab', type: 'aes256-gcm96', imported_key: true, exportable: false });
    await ok('update', 'derive-key/ba', { base_key_name: 'bob', peer_public_key: alice.keys['1'].public_key, context });
    const { ciphertext } = await ok('update', 'encrypt/ab', { plaintext: b('agreed') });
    expect((await ok('update', 'decrypt/ba', { ciphertext })).plaintext).toBe(b('agreed'));
    await ok('update', 'derive-key/other', { base_key_name: 'bob', peer_public_key: alice.keys['1'].public_key, context: b('session 8') });
    expect((await call('update', 'decrypt/other', { ciphertext })).error).toMatch(/authentication failed/);
    // Outside: a peer with its own X25519 key (SPKI PEM) derives the same key as documented.
    const peer = generateKeyPairSync('x25519');
    await ok('update', 'derive-key/withpeer', {
      base_key_name: 'alice',
      peer_public_key: peer.publicKey.export({ type: 'spki', format: 'pem' }),
      derived_key_type: 'aes128-gcm96',
    });
    const ct = Buffer.from((await ok('update', 'encrypt/withpeer', { plaintext: b('to the peer') })).ciphertext.split(':')[2], 'base64');
    const alicePub = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), Buffer.from(alice.keys['1'].public_key, 'base64')]),
      format: 'der',
      type: 'spki',
    });
    const k = Buffer.from(
      hkdfSync(
        'sha256',
        diffieHellman({ privateKey: peer.privateKey, publicKey: alicePub }),
        Buffer.from('vault-plugin-ts transit derive-key x25519'),
        Buffer.alloc(0),
        16,
      ),
    );
    const d = createDecipheriv('aes-128-gcm', k, ct.subarray(0, 12));
    d.setAuthTag(ct.subarray(ct.length - 16));
    expect(Buffer.concat([d.update(ct.subarray(12, ct.length - 16)), d.final()]).toString()).toBe('to the peer');
  });

  it('derive-key refusals are clear 400s; a derived key never rotates', async () => {
    await ok('create', 'keys/xa', { type: 'x25519' });
    await ok('create', 'keys/ed', { type: 'ed25519' });
    const pub = (await ok('read', 'keys/xa')).keys['1'].public_key;
    expect((await call('update', 'derive-key/d', { base_key_name: 'nope', peer_public_key: pub })).error).toMatch(/base key not found/);
    expect((await call('update', 'derive-key/d', { base_key_name: 'ed', peer_public_key: pub })).error).toMatch(/does not support key agreement/);
    expect((await call('update', 'derive-key/d', { base_key_name: 'xa' })).error).toMatch(/peer_public_key/);
    for (const bad of [
      'not a key',
      b('short'),
      (await ok('read', 'keys/ed')).keys['1'].public_key.replace(/.$/, 'x'),
      createPublicKey(createPrivateKeyPem()).export({ type: 'spki', format: 'pem' }),
    ]) {
      expect((await call('update', 'derive-key/d', { base_key_name: 'xa', peer_public_key: bad })).error, String(bad).slice(0, 30)).toMatch(
        /must be an X25519 public key/,
      );
    }
    expect((await call('update', 'derive-key/d', { base_key_name: 'xa', peer_public_key: Buffer.alloc(32).toString('base64') })).error).toMatch(
      /low-order point/,
    );
    expect((await call('update', 'derive-key/d', { base_key_name: 'xa', peer_public_key: pub, derived_key_type: 'rsa-2048' })).error).toMatch(
      /derived_key_type/,
    );
    expect((await call('update', 'derive-key/d', { base_key_name: 'xa', peer_public_key: pub, key_derivation_algorithm: 'kdf' })).error).toMatch(
      /key_derivation_algorithm/,
    );
    await ok('update', 'derive-key/d', { base_key_name: 'xa', peer_public_key: pub });
    expect((await call('update', 'derive-key/d', { base_key_name: 'xa', peer_public_key: pub })).error).toMatch(/already exists/);
    expect((await call('update', 'keys/d/rotate')).error).toMatch(/cannot be rotated/);
  });

  it('ecdsa-secp256k1 and x25519 keep working through export, backup and restore', async () => {
    await ok('create', 'keys/kb', { type: 'ecdsa-secp256k1', exportable: true, allow_plaintext_backup: true });
    const pem = (await ok('read', 'export/signing-key/kb/1')).keys['1'];
    expect(pem).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    const pub = (await ok('read', 'keys/kb')).keys['1'].public_key;
    expect(createPublicKey(pem).export({ type: 'spki', format: 'pem' })).toBe(pub);
    const { signature } = await ok('update', 'sign/kb', { input: b('m') });
    await ok('update', 'restore/kb2', { backup: (await ok('read', 'backup/kb')).backup });
    expect((await ok('update', 'verify/kb2', { input: b('m'), signature })).valid).toBe(true);
    expect((await ok('read', 'keys/kb2')).keys['1'].public_key).toBe(pub);

    await ok('create', 'keys/xb', { type: 'x25519', exportable: true, allow_plaintext_backup: true });
    await ok('create', 'keys/xp', { type: 'x25519' });
    const peer = (await ok('read', 'keys/xp')).keys['1'].public_key;
    await ok('update', 'derive-key/before', { base_key_name: 'xb', peer_public_key: peer });
    await ok('update', 'restore/xb2', { backup: (await ok('read', 'backup/xb')).backup });
    await ok('update', 'derive-key/after', { base_key_name: 'xb2', peer_public_key: peer });
    const { ciphertext } = await ok('update', 'encrypt/before', { plaintext: b('same secret') });
    expect((await ok('update', 'decrypt/after', { ciphertext })).plaintext).toBe(b('same secret'));
    // Rotation gives a new agreement key; version 1 still agrees as before.
    await ok('update', 'keys/xb/rotate');
    await ok('update', 'derive-key/v1', { base_key_name: 'xb', base_key_version: 1, peer_public_key: peer });
    await ok('update', 'derive-key/v2', { base_key_name: 'xb', peer_public_key: peer });
    expect((await ok('update', 'decrypt/v1', { ciphertext })).plaintext).toBe(b('same secret'));
    expect((await call('update', 'decrypt/v2', { ciphertext })).error).toMatch(/authentication failed/);
  });

  it('JWS marshaling is unpadded base64url for every key type, as Vault (Ed25519 included)', async () => {
    await ok('create', 'keys/edj', { type: 'ed25519' });
    const { signature } = await ok('update', 'sign/edj', { input: b('m'), marshaling_algorithm: 'jws' });
    expect(signature).toMatch(/^vault:v1:[A-Za-z0-9_-]{86}$/);
    expect((await ok('update', 'verify/edj', { input: b('m'), signature, marshaling_algorithm: 'jws' })).valid).toBe(true);
  });
});

function createPrivateKeyPem(): string {
  // An EC key: a well-formed public key of the wrong kind for X25519.
  return require('node:crypto').generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
}
