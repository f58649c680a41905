// Transit "bring your own key" (wrapping_key, keys/<name>/import, import_version,
// byok-export) through SecretsBackend. Keys are wrapped here as Vault's documentation and
// its CLI (`vault transit import`) wrap them, with Node's crypto and none of the plugin's
// code: RSA-OAEP (SHA-256 unless said) of a fresh AES-256 key under the mount's wrapping
// key, then AES-KWP (RFC 5649) of the key: raw bytes, or PKCS#8 DER for asymmetric keys.
// What the imported keys make is checked outside the plugin too.
import { describe, expect, it } from 'vitest';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { octets, oid, seq, tlv, uint } from '../../src/goplugin/der';
import { backendMount, transitPerTest, type Reply } from '../support/backend';

const { mount, call, ok } = transitPerTest();
const b = (s: string) => Buffer.from(s).toString('base64');
const KWP_IV = Buffer.from('a65959a6', 'hex');

/** AES-KWP (RFC 5649) with OpenSSL's id-aes256-wrap-pad. */
const kwp = (kek: Buffer, data: Buffer) => {
  const c = createCipheriv('id-aes256-wrap-pad', kek, KWP_IV);
  return Buffer.concat([c.update(data), c.final()]);
};

/** What `vault transit import` sends as ciphertext: OAEP(ephemeral AES key) || KWP(key), base64. */
function wrapLikeVault(wrappingPem: string, key: Buffer, opts: { hash?: string; ephemeral?: Buffer } = {}): string {
  const ephemeral = opts.ephemeral ?? randomBytes(32);
  const block = publicEncrypt({ key: wrappingPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: opts.hash ?? 'sha256' }, ephemeral);
  const kwpKey = ephemeral.length === 32 ? ephemeral : randomBytes(32);
  return Buffer.concat([block, kwp(kwpKey, key)]).toString('base64');
}

const pkcs8 = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'der' }) as Buffer;
const wrappingPem = async (ok_ = ok) => (await ok_('read', 'wrapping_key')).public_key as string;

/** AES-GCM (or ChaCha20-Poly1305) as Vault lays it out: vault:v<N>:base64(nonce || ciphertext || tag). */
function sealOutside(alg: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305', key: Buffer, plaintext: Buffer, version = 1): string {
  const nonce = randomBytes(12);
  const c = createCipheriv(alg as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  return `vault:v${version}:${Buffer.concat([nonce, c.update(plaintext), c.final(), c.getAuthTag()]).toString('base64')}`;
}
function openOutside(alg: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305', key: Buffer, ciphertext: string): Buffer {
  const body = Buffer.from(ciphertext.split(':')[2], 'base64');
  const d = createDecipheriv(alg as 'aes-256-gcm', key, body.subarray(0, 12), { authTagLength: 16 });
  d.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([d.update(body.subarray(12, body.length - 16)), d.final()]);
}

/** A 400 with a message, never a 500, and no byte of `secret` in it (hex or base64). */
function refused(r: Reply, pattern: RegExp, secret?: Buffer): void {
  expect(r.err, JSON.stringify(r.err)).toBeUndefined();
  expect(r.error).toMatch(pattern);
  if (secret) {
    expect(r.error).not.toContain(secret.toString('hex').slice(0, 16));
    expect(r.error).not.toContain(secret.toString('base64').slice(0, 16));
  }
}

describe('wrapping_key', () => {
  it('is one RSA-4096 public key (PEM) per mount, made once, kept as Vault keeps it, out of the key list', async () => {
    const pem = await wrappingPem();
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    const k = createPublicKey(pem);
    expect(k.asymmetricKeyType).toBe('rsa');
    expect(k.asymmetricKeyDetails?.modulusLength).toBe(4096);
    expect(await wrappingPem()).toBe(pem);
    expect(mount.store.data.has('policy/import/wrapping-key')).toBe(true);
    expect((await call('list', 'keys/')).data?.keys ?? []).toEqual([]);
    // Another mount has its own.
    expect(await wrappingPem(backendMount('transit').ok)).not.toBe(pem);
  });
});

describe('import: symmetric keys', () => {
  it.each([
    ['aes128-gcm96', 'aes-128-gcm', 16],
    ['aes256-gcm96', 'aes-256-gcm', 32],
    ['chacha20-poly1305', 'chacha20-poly1305', 32],
  ] as const)('%s: decrypts what the same key encrypted outside, and the reverse', async (type, alg, size) => {
    const key = randomBytes(size);
    expect(await call('update', 'keys/k/import', { type, ciphertext: wrapLikeVault(await wrappingPem(), key) })).toEqual({});
    const read = await ok('read', 'keys/k');
    expect(read).toMatchObject({ type, latest_version: 1, imported_key: true, imported_key_allow_rotation: false, exportable: false, derived: false });
    const outside = sealOutside(alg, key, Buffer.from('made outside'));
    expect((await ok('update', 'decrypt/k', { ciphertext: outside })).plaintext).toBe(b('made outside'));
    const inside = (await ok('update', 'encrypt/k', { plaintext: b('made inside') })).ciphertext;
    expect(openOutside(alg, key, inside).toString()).toBe('made inside');
  });

  it('type is read case-insensitively and hash_function may be SHA1 to SHA512 (any case)', async () => {
    for (const [i, hash] of ['sha1', 'SHA224', 'sha384', 'Sha512'].entries()) {
      const key = randomBytes(32);
      const node = hash.toLowerCase();
      await ok('update', `keys/h${i}/import`, {
        type: 'AES256-GCM96',
        hash_function: hash,
        ciphertext: wrapLikeVault(await wrappingPem(), key, { hash: node }),
      });
      expect((await ok('read', `keys/h${i}`)).type).toBe('aes256-gcm96');
      expect((await ok('update', `decrypt/h${i}`, { ciphertext: sealOutside('aes-256-gcm', key, Buffer.from('x')) })).plaintext).toBe(b('x'));
    }
  });

  it("derived: Vault's counter-mode KDF for imported keys (HMAC-SHA256 of 0 || context || 256), shown as Vault shows it", async () => {
    const key = randomBytes(32);
    await ok('update', 'keys/d/import', { derived: true, ciphertext: wrapLikeVault(await wrappingPem(), key) });
    expect(await ok('read', 'keys/d')).toMatchObject({ derived: true, kdf: 'hmac-sha256-counter', kdf_mode: 'hmac-sha256-counter' });
    const context = Buffer.from('tenant-7');
    const derivedKey = createHmac('sha256', key)
      .update(Buffer.concat([Buffer.alloc(4), context, Buffer.from([0, 0, 1, 0])]))
      .digest();
    const outside = sealOutside('aes-256-gcm', derivedKey, Buffer.from('per tenant'));
    expect((await ok('update', 'decrypt/d', { ciphertext: outside, context: context.toString('base64') })).plaintext).toBe(b('per tenant'));
    refused(await call('update', 'decrypt/d', { ciphertext: outside, context: b('tenant-8') }), /authentication failed/);
  });

  it('hmac: the imported key is the HMAC key, its size the key_size', async () => {
    const key = randomBytes(48);
    await ok('update', 'keys/m/import', { type: 'hmac', ciphertext: wrapLikeVault(await wrappingPem(), key) });
    expect((await ok('read', 'keys/m')).key_size).toBe(48);
    const want = createHmac('sha256', key).update('message').digest('base64');
    expect((await ok('update', 'hmac/m', { input: b('message') })).hmac).toBe(`vault:v1:${want}`);
  });
});

describe('import: asymmetric keys (PKCS#8)', () => {
  const cases: Array<[string, () => { privateKey: KeyObject; publicKey: KeyObject }]> = [
    ['ecdsa-p256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['ecdsa-p384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ['ecdsa-p521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' })],
    ['ed25519', () => generateKeyPairSync('ed25519')],
    ['rsa-2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ];
  it.each(cases)("%s: Vault's public key in the read; its signatures verify with Node's crypto and the original public key", async (type, gen) => {
    const { privateKey, publicKey } = gen();
    await ok('update', 'keys/s/import', { type, ciphertext: wrapLikeVault(await wrappingPem(), pkcs8(privateKey)) });
    const shown = (await ok('read', 'keys/s')).keys['1'].public_key as string;
    const spki = publicKey.export({ type: 'spki', format: 'der' }) as Buffer;
    if (type === 'ed25519') expect(shown).toBe(spki.subarray(-32).toString('base64'));
    else expect(createPublicKey(shown).export({ type: 'spki', format: 'der' })).toEqual(spki);
    const input = Buffer.from('signed by an imported key');
    const sig = Buffer.from(((await ok('update', 'sign/s', { input: input.toString('base64') })).signature as string).split(':')[2], 'base64');
    const opts = type.startsWith('rsa') ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO } : publicKey;
    expect(nodeVerify(type === 'ed25519' ? null : 'sha256', input, opts, sig)).toBe(true);
    // And a signature made outside verifies inside.
    const signer = type.startsWith('rsa') ? { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING } : privateKey;
    const outside = nodeSign(type === 'ed25519' ? null : 'sha256', input, signer).toString('base64');
    expect((await ok('update', 'verify/s', { input: input.toString('base64'), signature: `vault:v1:${outside}` })).valid).toBe(true);
  });

  it('rsa: encrypts to the imported key (decrypted outside) and decrypts what was encrypted outside', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await ok('update', 'keys/r/import', { type: 'rsa-2048', ciphertext: wrapLikeVault(await wrappingPem(), pkcs8(privateKey)) });
    const ct = (await ok('update', 'encrypt/r', { plaintext: b('to the holder') })).ciphertext as string;
    expect(privateDecrypt({ key: privateKey, oaepHash: 'sha256' }, Buffer.from(ct.split(':')[2], 'base64')).toString()).toBe('to the holder');
    const outside = publicEncrypt({ key: publicKey, oaepHash: 'sha256' }, Buffer.from('from outside')).toString('base64');
    expect((await ok('update', 'decrypt/r', { ciphertext: `vault:v1:${outside}` })).plaintext).toBe(b('from outside'));
  });

  it('an RSA-PSS PKCS#8 key is taken as the RSA key it is, as Vault does', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });
    await ok('update', 'keys/p/import', { type: 'rsa-2048', ciphertext: wrapLikeVault(await wrappingPem(), pkcs8(privateKey)) });
    const sig = (await ok('update', 'sign/p', { input: b('x') })).signature as string;
    expect(
      nodeVerify(
        'sha256',
        Buffer.from('x'),
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
        Buffer.from(sig.split(':')[2], 'base64'),
      ),
    ).toBe(true);
  });

  it("an RSA-PSS PKCS#8 key whose DER has a non-minimal length is a 400, as Go's PKCS#8 parser refuses it (OpenSSL reads it)", async () => {
    const der = pkcs8(generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey);
    expect(der.subarray(0, 2).toString('hex')).toBe('3082');
    const ber = Buffer.concat([Uint8Array.of(0x30, 0x83, 0x00), der.subarray(2)]); // the length in three octets, the first 00
    expect(createPrivateKey({ key: ber, format: 'der', type: 'pkcs8' }).asymmetricKeyType).toBe('rsa-pss');
    refused(
      await call('update', 'keys/p/import', { type: 'rsa-2048', ciphertext: wrapLikeVault(await wrappingPem(), ber) }),
      /^error importing key: error parsing asymmetric key: not a PKCS#8 \(DER\) private key$/,
    );
  });
});

describe('public keys alone, and import_version', () => {
  it('rsa public key: verifies and encrypts; signing and decrypting need the private key, which import_version adds to the same version', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await ok('update', 'keys/pub/import', { type: 'rsa-2048', public_key: publicKey.export({ type: 'spki', format: 'pem' }) });
    const input = Buffer.from('hello');
    const outside = nodeSign('sha256', input, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING }).toString('base64');
    expect((await ok('update', 'verify/pub', { input: input.toString('base64'), signature: `vault:v1:${outside}` })).valid).toBe(true);
    refused(await call('update', 'sign/pub', { input: b('x') }), /does not contain a private part/);
    const ct = (await ok('update', 'encrypt/pub', { plaintext: b('sealed') })).ciphertext;
    refused(await call('update', 'decrypt/pub', { ciphertext: ct }), /does not contain a private part/);
    await ok('update', 'keys/pub/config', { exportable: true });
    expect((await ok('read', 'export/signing-key/pub')).keys['1']).toBe('');
    // A public key cannot be added to a version that has one; the private key completes it.
    refused(
      await call('update', 'keys/pub/import_version', { version: 1, public_key: publicKey.export({ type: 'spki', format: 'pem' }) }),
      /cannot add a public key to a key version that already has a public key set/,
    );
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    refused(
      await call('update', 'keys/pub/import_version', { version: 1, ciphertext: wrapLikeVault(await wrappingPem(), pkcs8(other)) }),
      /key pair does not match/,
    );
    await ok('update', 'keys/pub/import_version', { ciphertext: wrapLikeVault(await wrappingPem(), pkcs8(privateKey)) });
    expect((await ok('read', 'keys/pub')).latest_version).toBe(1);
    expect(
      privateDecrypt(
        { key: privateKey, oaepHash: 'sha256' },
        Buffer.from((await ok('update', 'encrypt/pub', { plaintext: b('y') })).ciphertext.split(':')[2], 'base64'),
      ).toString(),
    ).toBe('y');
    expect((await ok('update', 'decrypt/pub', { ciphertext: ct })).plaintext).toBe(b('sealed'));
    refused(
      await call('update', 'keys/pub/import_version', { version: 1, ciphertext: wrapLikeVault(await wrappingPem(), pkcs8(privateKey)) }),
      /private key imported, key version cannot be updated/,
    );
  });

  it('ecdsa and ed25519 public keys; a derived ed25519 public key and symmetric public keys are refused as Vault refuses them', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await ok('update', 'keys/e/import', { type: 'ecdsa-p384', public_key: ec.publicKey.export({ type: 'spki', format: 'pem' }) });
    const sig = nodeSign('sha256', Buffer.from('m'), ec.privateKey).toString('base64');
    expect((await ok('update', 'verify/e', { input: b('m'), signature: `vault:v1:${sig}` })).valid).toBe(true);
    const ed = generateKeyPairSync('ed25519');
    await ok('update', 'keys/ed/import', { type: 'ed25519', public_key: ed.publicKey.export({ type: 'spki', format: 'pem' }) });
    expect((await ok('read', 'keys/ed')).keys['1'].public_key).toBe(
      (ed.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32).toString('base64'),
    );
    refused(
      await call('update', 'keys/edd/import', { type: 'ed25519', derived: true, public_key: ed.publicKey.export({ type: 'spki', format: 'pem' }) }),
      /unable to import only public key for derived Ed25519 key/,
    );
    refused(
      await call('update', 'keys/sym/import', { public_key: ec.publicKey.export({ type: 'spki', format: 'pem' }) }),
      /provided type does not support public_key import/,
    );
    refused(await call('update', 'keys/bad/import', { type: 'ecdsa-p256', public_key: 'not a pem' }), /error parsing public key: not in PEM format/);
    refused(
      await call('update', 'keys/bad/import', { type: 'ecdsa-p256', public_key: ec.publicKey.export({ type: 'spki', format: 'pem' }) }),
      /invalid curve: expected P-256, got P-384/,
    );
  });

  it('import_version adds a new latest version (ciphertexts of both decrypt); only on imported keys', async () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    await ok('update', 'keys/v/import', { ciphertext: wrapLikeVault(await wrappingPem(), k1) });
    await ok('update', 'keys/v/import_version', { ciphertext: wrapLikeVault(await wrappingPem(), k2) });
    expect((await ok('read', 'keys/v')).latest_version).toBe(2);
    expect((await ok('update', 'decrypt/v', { ciphertext: sealOutside('aes-256-gcm', k1, Buffer.from('one')) })).plaintext).toBe(b('one'));
    expect((await ok('update', 'decrypt/v', { ciphertext: sealOutside('aes-256-gcm', k2, Buffer.from('two'), 2) })).plaintext).toBe(b('two'));
    expect(openOutside('aes-256-gcm', k2, (await ok('update', 'encrypt/v', { plaintext: b('3') })).ciphertext).toString()).toBe('3');
    refused(
      await call('update', 'keys/v/import_version', { version: 1, ciphertext: wrapLikeVault(await wrappingPem(), k2) }),
      /provided type does not support importing key versions/,
    );
    refused(
      await call('update', 'keys/v/import_version', { ciphertext: wrapLikeVault(await wrappingPem(), randomBytes(16)) }),
      /invalid key size 16 bytes for key type aes256-gcm96/,
    );
    refused(
      await call('update', 'keys/none/import_version', { ciphertext: wrapLikeVault(await wrappingPem(), k2) }),
      /no key found with name none; to import a new key, use the import\/ endpoint/,
    );
    await ok('create', 'keys/generated');
    refused(
      await call('update', 'keys/generated/import_version', { ciphertext: wrapLikeVault(await wrappingPem(), k2) }),
      /can only be used with an imported key/,
    );
  });
});

describe('rotation of imported keys', () => {
  it('refused without allow_rotation; with it, a rotation makes the key no longer imported (import_version then refused), as current Vault', async () => {
    await ok('update', 'keys/fixed/import', { ciphertext: wrapLikeVault(await wrappingPem(), randomBytes(32)) });
    refused(await call('update', 'keys/fixed/rotate'), /imported key fixed does not allow rotation within Vault/);
    await ok('update', 'keys/free/import', {
      allow_rotation: true,
      auto_rotate_period: '24h',
      ciphertext: wrapLikeVault(await wrappingPem(), randomBytes(32)),
    });
    expect(await ok('read', 'keys/free')).toMatchObject({ imported_key: true, imported_key_allow_rotation: true, auto_rotate_period: 86400 });
    const rotated = await ok('update', 'keys/free/rotate');
    expect(rotated.latest_version).toBe(2);
    expect(rotated.imported_key).toBe(false);
    expect(rotated).not.toHaveProperty('imported_key_allow_rotation');
    refused(
      await call('update', 'keys/free/import_version', { ciphertext: wrapLikeVault(await wrappingPem(), randomBytes(32)) }),
      /can only be used with an imported key/,
    );
    // Generated keys say imported_key false, as current Vault.
    expect((await ok('create', 'keys/gen')).imported_key).toBe(false);
  });
});

describe('byok-export', () => {
  it("moves keys between mounts wrapped, never in plaintext: the destination's wrapping key imported by public key", async () => {
    const dest = backendMount('transit');
    await ok('update', 'keys/dest-wrap/import', { type: 'rsa-4096', public_key: await wrappingPem(dest.ok) });
    await ok('create', 'keys/shared', { exportable: true });
    await ok('update', 'keys/shared/rotate');
    await ok('create', 'keys/signer', { type: 'ecdsa-p256', exportable: true });
    const all = await ok('read', 'byok-export/dest-wrap/shared');
    expect(all).toMatchObject({ name: 'shared', type: 'aes256-gcm96' });
    expect(Object.keys(all.keys)).toEqual(['1', '2']);
    const latest = await ok('read', 'byok-export/dest-wrap/shared/latest');
    expect(Object.keys(latest.keys)).toEqual(['2']);
    expect(Object.keys((await ok('read', 'byok-export/dest-wrap/shared/v1')).keys)).toEqual(['1']);
    await dest.ok('update', 'keys/shared/import', { ciphertext: all.keys['1'] });
    await dest.ok('update', 'keys/shared/import_version', { ciphertext: all.keys['2'] });
    const ct = (await ok('update', 'encrypt/shared', { plaintext: b('across mounts') })).ciphertext;
    expect((await dest.ok('update', 'decrypt/shared', { ciphertext: ct })).plaintext).toBe(b('across mounts'));
    // An asymmetric key travels as PKCS#8, with another OAEP hash.
    const signer = await ok('read', 'byok-export/dest-wrap/signer/1', { hash: 'SHA512' });
    await dest.ok('update', 'keys/signer/import', { type: 'ecdsa-p256', hash_function: 'SHA512', ciphertext: signer.keys['1'] });
    const sig = (await dest.ok('update', 'sign/signer', { input: b('m') })).signature;
    expect((await ok('update', 'verify/signer', { input: b('m'), signature: sig })).valid).toBe(true);
  });

  it("refusals in Vault's words", async () => {
    await ok('create', 'keys/wrapper', { type: 'rsa-2048' });
    await ok('create', 'keys/secret');
    await ok('create', 'keys/open', { exportable: true });
    refused(await call('read', 'byok-export/nope/open'), /no such destination key to export to/);
    refused(await call('read', 'byok-export/wrapper/nope'), /no such source key for export/);
    refused(await call('read', 'byok-export/wrapper/secret'), /key is not exportable/);
    refused(await call('read', 'byok-export/wrapper/open/x1'), /invalid key version/);
    refused(await call('read', 'byok-export/wrapper/open/7'), /version does not exist or cannot be found/);
    refused(await call('read', 'byok-export/wrapper/open', { hash: 'MD5' }), /unknown hash function: MD5/);
    refused(await call('read', 'byok-export/open/open'), /must be a rsa key/);
    await ok('create', 'keys/pq', { type: 'ml-dsa', parameter_set: '44', exportable: true });
    refused(await call('read', 'byok-export/wrapper/pq'), /unable to export to unknown key type: ml-dsa/);
  });
});

describe("refused imports: Vault's checks, each a 400 that shows no key material", () => {
  it('sizes, types, curves and moduli', async () => {
    const pem = await wrappingPem();
    const short = randomBytes(16);
    refused(
      await call('update', 'keys/a/import', { ciphertext: wrapLikeVault(pem, short) }),
      /^error importing key: invalid key size 16 bytes for key type aes256-gcm96$/,
      short,
    );
    refused(
      await call('update', 'keys/a/import', { type: 'hmac', ciphertext: wrapLikeVault(pem, randomBytes(16)) }),
      /invalid key size 16 bytes for key type hmac/,
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    refused(
      await call('update', 'keys/a/import', { type: 'ecdsa-p256', ciphertext: wrapLikeVault(pem, pkcs8(rsa)) }),
      /invalid key type: expected ecdsa-p256, got an RSA key/,
    );
    refused(
      await call('update', 'keys/a/import', { type: 'rsa-2048', ciphertext: wrapLikeVault(pem, pkcs8(rsa)) }),
      /invalid key size: expected 256 bytes, got 384 bytes/,
    );
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    refused(
      await call('update', 'keys/a/import', { type: 'ecdsa-p256', ciphertext: wrapLikeVault(pem, pkcs8(p384)) }),
      /invalid curve: expected P-256, got P-384/,
    );
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    refused(
      await call('update', 'keys/a/import', { type: 'ecdsa-p256', ciphertext: wrapLikeVault(pem, pkcs8(k1)) }),
      /invalid curve: expected P-256, got secp256k1/,
    );
    // A curve transit has no key type on: by OpenSSL's name.
    const p224 = generateKeyPairSync('ec', { namedCurve: 'P-224' }).privateKey;
    refused(
      await call('update', 'keys/a/import', { type: 'ecdsa-p384', ciphertext: wrapLikeVault(pem, pkcs8(p224)) }),
      /invalid curve: expected P-384, got secp224r1/,
    );
    const junk = randomBytes(64);
    refused(await call('update', 'keys/a/import', { type: 'ed25519', ciphertext: wrapLikeVault(pem, junk) }), /error parsing asymmetric key/, junk);
    refused(await call('update', 'keys/a/import', { type: 'des', ciphertext: wrapLikeVault(pem, randomBytes(32)) }), /^unknown key type: des$/);
    // A PKCS#8 RSA key whose parts disagree (a prime changed) is refused, as Go's Validate refuses it.
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const part = (name: 'n' | 'e' | 'd' | 'p' | 'q' | 'dp' | 'dq' | 'qi') => uint(Buffer.from(jwk[name]!, 'base64url'));
    const badP = Buffer.from(jwk.p!, 'base64url');
    badP[badP.length - 1] ^= 2;
    const pkcs1 = seq(uint(Uint8Array.of(0)), part('n'), part('e'), part('d'), uint(badP), part('q'), part('dp'), part('dq'), part('qi'));
    const bad = seq(uint(Uint8Array.of(0)), seq(oid('1.2.840.113549.1.1.1'), tlv(0x05, new Uint8Array(0))), octets(pkcs1));
    refused(await call('update', 'keys/a/import', { type: 'rsa-2048', ciphertext: wrapLikeVault(pem, bad) }), /crypto\/rsa: invalid modulus/);
    expect(mount.store.data.has('policy/a')).toBe(false);
  });

  it('the wrapping: length, base64, hash, wrapping key, AES-KWP integrity, ephemeral key size', async () => {
    const pem = await wrappingPem();
    const key = randomBytes(32);
    refused(await call('update', 'keys/w/import', { ciphertext: Buffer.alloc(512).toString('base64') }), /^provided ciphertext is too short$/);
    refused(await call('update', 'keys/w/import', { ciphertext: 'not base64!' }), /ciphertext must be base64-encoded/);
    refused(await call('update', 'keys/w/import', { hash_function: 'MD5', ciphertext: wrapLikeVault(pem, key) }), /^unknown hash function: MD5$/);
    refused(await call('update', 'keys/w/import', { hash_function: 'SHA384', ciphertext: wrapLikeVault(pem, key) }), /crypto\/rsa: decryption error/, key);
    refused(
      await call('update', 'keys/w/import', { ciphertext: wrapLikeVault(await wrappingPem(backendMount('transit').ok), key) }),
      /crypto\/rsa: decryption error/,
      key,
    );
    const good = Buffer.from(wrapLikeVault(pem, key), 'base64');
    good[good.length - 1] ^= 1;
    refused(await call('update', 'keys/w/import', { ciphertext: good.toString('base64') }), /^kwp: unwrap failed integrity check$/, key);
    refused(
      await call('update', 'keys/w/import', { ciphertext: good.subarray(0, good.length - 3).toString('base64') }),
      /kwp: wrapped key size must be a multiple of 8 bytes/,
    );
    refused(
      await call('update', 'keys/w/import', { ciphertext: wrapLikeVault(pem, key, { ephemeral: randomBytes(16) }) }),
      /^expected ephemeral AES key to be 256-bit$/,
    );
  });

  it('the request: existing key, convergent, auto-rotation without allow_rotation, no key given, derived ed25519', async () => {
    const pem = await wrappingPem();
    await ok('create', 'keys/there');
    refused(
      await call('update', 'keys/there/import', { ciphertext: wrapLikeVault(pem, randomBytes(32)) }),
      /the import path cannot be used with an existing key; use import-version/,
    );
    refused(
      await call('update', 'keys/c/import', { convergent_encryption: true, ciphertext: wrapLikeVault(pem, randomBytes(32)) }),
      /import cannot be used on keys with convergent encryption enabled/,
    );
    refused(
      await call('update', 'keys/c/import', { auto_rotate_period: '1h', ciphertext: wrapLikeVault(pem, randomBytes(32)) }),
      /allow_rotation must be set to true if auto-rotation is enabled/,
    );
    refused(await call('update', 'keys/c/import', {}), /ciphertext xor public_key, has to be set/);
    const ed = generateKeyPairSync('ed25519').privateKey;
    refused(
      await call('update', 'keys/c/import', { type: 'ed25519', derived: true, ciphertext: wrapLikeVault(pem, pkcs8(ed)) }),
      /derived ed25519 keys cannot be imported/,
    );
    expect(mount.store.data.has('policy/c')).toBe(false);
  });

  it('random and mutated ciphertexts and public keys: always a 400, never a 500', async () => {
    const pem = await wrappingPem();
    const valid = Buffer.from(wrapLikeVault(pem, pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)), 'base64');
    const types = ['aes256-gcm96', 'ecdsa-p256', 'ed25519', 'rsa-2048', 'hmac'];
    for (let i = 0; i < 60; i++) {
      const mutated = Buffer.from(valid);
      if (i % 3 === 0) mutated[Math.floor(Math.random() * mutated.length)] ^= 1 << (i % 8);
      const ciphertext =
        i % 3 === 2 ? randomBytes(Math.floor(Math.random() * 900)).toString('base64') : mutated.subarray(0, mutated.length - (i % 5) * 8).toString('base64');
      const r = await call('update', `keys/f${i}/import`, { type: types[i % types.length], ciphertext });
      if (r.error === undefined) expect(i % 3, JSON.stringify(r)).toBe(1);
      expect(r.err).toBeUndefined();
      const p = await call('update', `keys/g${i}/import`, {
        type: types[i % types.length],
        public_key: `-----BEGIN PUBLIC KEY-----\n${randomBytes(i * 3).toString('base64')}\n-----END PUBLIC KEY-----\n`,
      });
      expect(p.err).toBeUndefined();
      expect(p.error).toBeDefined();
    }
  });
});
