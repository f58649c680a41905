// Ed25519's RFC 8032 variants on transit's ed25519 keys, as current Vault (Enterprise)
// offers them: Ed25519ph (prehashed=true, hash_algorithm=sha2-512, the input being the
// SHA-512 digest) and Ed25519ctx (signature_context), with the combinations Vault refuses.
// Checked against RFC 8032's test vectors and against @noble/curves' own ed25519ph and
// ed25519ctx (which hash the message themselves), not against the code under test.
import { describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ed25519, ed25519ctx, ed25519ph } from '@noble/curves/ed25519.js';
import { transitPerTest } from '../support/backend';

const { call, ok } = transitPerTest();
const b64 = (x: string | Buffer) => Buffer.from(x).toString('base64');
const hex = (s: string) => Buffer.from(s, 'hex');
const sha512 = (m: Buffer) => createHash('sha512').update(m).digest();
const sigOf = (s: string) => Buffer.from(s.split(':')[2], 'base64');

// RFC 8032 section 7.3 (Ed25519ph, message "abc") and 7.2 (Ed25519ctx, context "foo").
const RFC_PH = {
  seed: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
  pub: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
  msg: '616263',
  sig: '98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406',
};
const RFC_CTX = {
  seed: '0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6',
  pub: 'dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292',
  msg: 'f726936d19c800494e3fdaff20b276a8',
  ctx: '666f6f',
  sig: '55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d',
};

// The PKCS#8 header of an Ed25519 private key (RFC 8410); the 32-byte seed follows it.
const ED25519_PKCS8 = hex('302e020100300506032b657004220420');

/** A transit ed25519 key whose version 1 is `seed`: a generated key's backup with its material replaced, restored. */
async function keyWithSeed(name: string, seed: string): Promise<void> {
  await ok('create', `keys/${name}-src`, { type: 'ed25519', exportable: true, allow_plaintext_backup: true });
  const { backup } = await ok('read', `backup/${name}-src`);
  const doc = JSON.parse(Buffer.from(backup, 'base64').toString('utf8'));
  doc.policy.versions['1'].key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, hex(seed)]), format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  });
  await ok('update', `restore/${name}`, { backup: b64(JSON.stringify(doc)) });
}

/** A version's published public key (32 bytes). */
const publicKey = async (name: string) => Buffer.from((await ok('read', `keys/${name}`)).keys['1'].public_key, 'base64');

describe('Ed25519ph: prehashed=true with hash_algorithm=sha2-512', () => {
  it("signs RFC 8032's Ed25519ph test vector exactly, and verifies it", async () => {
    await keyWithSeed('rfc', RFC_PH.seed);
    expect((await publicKey('rfc')).toString('hex')).toBe(RFC_PH.pub);
    const digest = b64(sha512(hex(RFC_PH.msg)));
    const { signature } = await ok('update', 'sign/rfc', { input: digest, prehashed: true, hash_algorithm: 'sha2-512' });
    expect(sigOf(signature).toString('hex')).toBe(RFC_PH.sig);
    // The hash in the path, as Vault's sign/<name>/<hash>.
    expect((await ok('update', 'sign/rfc/sha2-512', { input: digest, prehashed: true })).signature).toBe(signature);
    expect((await ok('update', 'verify/rfc/sha2-512', { input: digest, prehashed: true, signature })).valid).toBe(true);
    const other = b64(sha512(Buffer.from('abd')));
    expect((await ok('update', 'verify/rfc/sha2-512', { input: other, prehashed: true, signature })).valid).toBe(false);
    // An Ed25519ph signature is no PureEdDSA signature of the digest, nor of the message.
    expect((await ok('update', 'verify/rfc', { input: digest, signature })).valid).toBe(false);
    expect((await ok('update', 'verify/rfc', { input: b64(hex(RFC_PH.msg)), signature })).valid).toBe(false);
  });

  it("with a signature_context: noble's ed25519ph (hashing the message itself) verifies it, and signs the same bytes", async () => {
    await ok('create', 'keys/ph', { type: 'ed25519', exportable: true });
    const pub = await publicKey('ph');
    const message = Buffer.from('a message too long to send, so only its digest is sent');
    const context = Buffer.from('vault-plugin-ts tests');
    const { signature } = await ok('update', 'sign/ph/sha2-512', { input: b64(sha512(message)), prehashed: true, signature_context: b64(context) });
    const sig = sigOf(signature);
    expect(ed25519ph.verify(sig, message, pub, { context })).toBe(true);
    expect(ed25519ph.verify(sig, message, pub)).toBe(false);
    expect(ed25519ph.verify(sig, message, pub, { context: Buffer.from('other') })).toBe(false);
    expect(ed25519.verify(sig, sha512(message), pub)).toBe(false);
    // Ed25519 is deterministic: the exported key signs the same bytes in noble.
    // As Vault, the exported ed25519 signing key is Go's seed || public key, in base64.
    const seed = Buffer.from((await ok('read', 'export/signing-key/ph/1')).keys['1'], 'base64').subarray(0, 32);
    expect(Buffer.from(ed25519ph.sign(message, seed, { context })).equals(sig)).toBe(true);
    const verifyWith = (signature_context?: string) =>
      ok('update', 'verify/ph/sha2-512', {
        input: b64(sha512(message)),
        prehashed: true,
        signature,
        ...(signature_context === undefined ? {} : { signature_context }),
      });
    expect((await verifyWith(b64(context))).valid).toBe(true);
    expect((await verifyWith()).valid).toBe(false);
    expect((await verifyWith(b64('other'))).valid).toBe(false);
  });

  it('a derived key signs with the key derived for its context, and returns that public key', async () => {
    await ok('create', 'keys/dph', { type: 'ed25519', derived: true });
    const message = Buffer.from('derived');
    const r = await ok('update', 'sign/dph/sha2-512', { input: b64(sha512(message)), prehashed: true, context: b64('tenant-1') });
    expect(ed25519ph.verify(sigOf(r.signature), message, Buffer.from(r.public_key, 'base64'))).toBe(true);
    const verify = (context: string) =>
      ok('update', 'verify/dph/sha2-512', { input: b64(sha512(message)), prehashed: true, context: b64(context), signature: r.signature });
    expect((await verify('tenant-1')).valid).toBe(true);
    expect((await verify('tenant-2')).valid).toBe(false);
  });
});

describe('Ed25519ctx: signature_context without prehashing', () => {
  it("signs RFC 8032's Ed25519ctx test vector exactly; the context must match to verify", async () => {
    await keyWithSeed('ctx', RFC_CTX.seed);
    expect((await publicKey('ctx')).toString('hex')).toBe(RFC_CTX.pub);
    const input = b64(hex(RFC_CTX.msg));
    const { signature } = await ok('update', 'sign/ctx', { input, signature_context: b64(hex(RFC_CTX.ctx)) });
    expect(sigOf(signature).toString('hex')).toBe(RFC_CTX.sig);
    expect(ed25519ctx.verify(sigOf(signature), hex(RFC_CTX.msg), hex(RFC_CTX.pub), { context: hex(RFC_CTX.ctx) })).toBe(true);
    expect((await ok('update', 'verify/ctx', { input, signature, signature_context: b64(hex(RFC_CTX.ctx)) })).valid).toBe(true);
    expect((await ok('update', 'verify/ctx', { input, signature, signature_context: b64('bar') })).valid).toBe(false);
    expect((await ok('update', 'verify/ctx', { input, signature })).valid).toBe(false);
  });

  it('an empty signature_context is PureEdDSA, as before (Node verifies it)', async () => {
    await ok('create', 'keys/pure', { type: 'ed25519' });
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: (await publicKey('pure')).toString('base64url') }, format: 'jwk' });
    for (const extra of [{}, { signature_context: '' }, { hash_algorithm: 'sha2-384' }]) {
      const { signature } = await ok('update', 'sign/pure', { input: b64('m'), ...extra });
      expect(nodeVerify(null, Buffer.from('m'), pub, sigOf(signature)), JSON.stringify(extra)).toBe(true);
    }
  });

  it('batch items carry their own signature_context and inputs; a bad item gets its own error', async () => {
    await ok('create', 'keys/bat', { type: 'ed25519' });
    const pub = await publicKey('bat');
    const { batch_results } = await ok('update', 'sign/bat', {
      batch_input: [
        { input: b64('one'), signature_context: b64('c1') },
        { input: b64('two') },
        { input: b64('three'), signature_context: b64(Buffer.alloc(256, 1)) },
      ],
    });
    expect(ed25519ctx.verify(sigOf(batch_results[0].signature), Buffer.from('one'), pub, { context: Buffer.from('c1') })).toBe(true);
    expect(ed25519.verify(sigOf(batch_results[1].signature), Buffer.from('two'), pub)).toBe(true);
    expect(batch_results[2].error).toBe('signature_context must be at most 255 bytes, got 256');
    const verified = await ok('update', 'verify/bat', {
      batch_input: [
        { input: b64('one'), signature_context: b64('c1'), signature: batch_results[0].signature },
        { input: b64('one'), signature: batch_results[0].signature },
      ],
    });
    expect(verified.batch_results.map((r: { valid: boolean }) => r.valid)).toEqual([true, false]);
  });
});

describe('combinations Vault refuses are 400s that say why', () => {
  it('prehashed without sha2-512, sha2-512 without prehashed, a digest of the wrong size, a context too long or not base64', async () => {
    await ok('create', 'keys/ed', { type: 'ed25519' });
    const digest = b64(sha512(Buffer.from('m')));
    for (const path of ['sign/ed', 'verify/ed']) {
      const sig = path.startsWith('verify') ? { signature: `vault:v1:${b64(Buffer.alloc(64))}` } : {};
      expect((await call('update', path, { input: digest, prehashed: true, ...sig })).error).toBe(
        'prehashed=true with an ed25519 key is Ed25519ph, which requires hash_algorithm=sha2-512 (the input being the SHA-512 digest)',
      );
      expect((await call('update', `${path}/sha2-256`, { input: digest, prehashed: true, ...sig })).error).toMatch(/requires hash_algorithm=sha2-512/);
      expect((await call('update', `${path}/sha2-512`, { input: b64('m'), ...sig })).error).toBe(
        'hash_algorithm=sha2-512 requires prehashed=true for ed25519 keys (Ed25519ph)',
      );
      expect((await call('update', `${path}/sha2-512`, { input: b64(Buffer.alloc(63)), prehashed: true, ...sig })).error).toBe(
        'Ed25519ph input must be the 64-byte SHA-512 digest of the message, got 63 bytes',
      );
      expect((await call('update', path, { input: b64('m'), signature_context: b64(Buffer.alloc(256)), ...sig })).error).toBe(
        'signature_context must be at most 255 bytes, got 256',
      );
      expect((await call('update', path, { input: b64('m'), signature_context: 'not base64!', ...sig })).error).toBe(
        'signature_context must be base64-encoded (standard alphabet, with padding)',
      );
    }
    // 255 bytes is RFC 8032's limit, and allowed.
    expect((await ok('update', 'sign/ed', { input: b64('m'), signature_context: b64(Buffer.alloc(255, 7)) })).signature).toMatch(/^vault:v1:/);
  });

  it('managed ed25519 keys sign messages only: no Ed25519ph, no signature_context', async () => {
    await ok('update', 'managed-keys/software/med', { key_type: 'ed25519' });
    await ok('create', 'keys/med', { type: 'managed_key', managed_key_name: 'med' });
    expect((await ok('update', 'sign/med', { input: b64('m') })).signature).toMatch(/^vault:v1:/);
    expect((await call('update', 'sign/med', { input: b64('m'), signature_context: b64('c') })).error).toBe(
      'signature_context is not supported for managed keys',
    );
    expect((await call('update', 'sign/med/sha2-512', { input: b64(sha512(Buffer.from('m'))), prehashed: true })).error).toMatch(
      /prehashed input is not supported/,
    );
  });

  it('other key types ignore signature_context, as Vault', async () => {
    await ok('create', 'keys/ec', { type: 'ecdsa-p256' });
    const { signature } = await ok('update', 'sign/ec', { input: b64('m'), signature_context: b64('c') });
    expect((await ok('update', 'verify/ec', { input: b64('m'), signature })).valid).toBe(true);
  });
});
