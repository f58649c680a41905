// Managed keys sign with every hash_algorithm transit hashes with, as Vault's transit (it
// hashes a managed key's input with any of them and passes the hash to the key's backend,
// which refuses what it cannot sign). Checked with software managed keys imported from
// keys made here, so Node's crypto verifies the signatures independently.
import { describe, expect, it } from 'vitest';
import { constants, createHash, generateKeyPairSync, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { transitPerTest } from '../support/backend';
import { hashMech } from '../../src/keys/pkcs11/mechanisms';

const { call, ok } = transitPerTest();
const b64 = (x: string | Buffer) => Buffer.from(x).toString('base64');
const sigOf = (s: string) => Buffer.from(s.split(':')[2], 'base64');

/** transit's hash_algorithm and Node's name for it. */
const HASHES = [
  ['sha2-224', 'sha224'],
  ['sha2-256', 'sha256'],
  ['sha2-384', 'sha384'],
  ['sha2-512', 'sha512'],
  ['sha3-224', 'sha3-224'],
  ['sha3-256', 'sha3-256'],
  ['sha3-384', 'sha3-384'],
  ['sha3-512', 'sha3-512'],
] as const;

/** A software managed key imported from a key pair made here, and a transit key over it. */
async function managed(name: string, type: 'ec' | 'rsa'): Promise<KeyObject> {
  const { privateKey, publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  await ok('update', `managed-keys/software/${name}`, {
    key_type: type === 'ec' ? 'ecdsa-p256' : 'rsa-2048',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });
  await ok('create', `keys/${name}`, { type: 'managed_key', managed_key_name: name });
  return publicKey;
}

describe('managed keys: every sha2-* and sha3-* hash_algorithm, as Vault hands them on', () => {
  it('ECDSA P-256: of the message and of a digest; Node verifies each, transit verifies with the same hash only', async () => {
    const pub = await managed('ec', 'ec');
    const msg = Buffer.from('a document');
    for (const [alg, node] of HASHES) {
      const digest = createHash(node).update(msg).digest();
      const { signature } = await ok('update', `sign/ec/${alg}`, { input: b64(msg) });
      expect(nodeVerify(node, msg, { key: pub, dsaEncoding: 'der' }, sigOf(signature)), alg).toBe(true);
      const pre = (await ok('update', 'sign/ec', { input: b64(digest), prehashed: true, hash_algorithm: alg })).signature;
      expect(nodeVerify(node, msg, { key: pub, dsaEncoding: 'der' }, sigOf(pre)), `${alg} prehashed`).toBe(true);
      expect((await ok('update', `verify/ec/${alg}`, { input: b64(msg), signature })).valid, alg).toBe(true);
      expect((await ok('update', `verify/ec/${alg}`, { input: b64(digest), prehashed: true, signature: pre })).valid).toBe(true);
      const other = alg === 'sha3-256' ? 'sha2-256' : 'sha3-256';
      expect((await ok('update', `verify/ec/${other}`, { input: b64(msg), signature })).valid, `${alg} as ${other}`).toBe(false);
    }
  });

  it('RSA: PKCS#1 v1.5 (the same bytes of message and digest) and PSS with sha2-224 and sha3-*; Node verifies', async () => {
    const pub = await managed('rsa', 'rsa');
    const msg = Buffer.from('a document');
    for (const [alg, node] of HASHES.filter(([a]) => a === 'sha2-224' || a.startsWith('sha3-'))) {
      const digest = createHash(node).update(msg).digest();
      const v15 = (await ok('update', `sign/rsa/${alg}`, { input: b64(msg), signature_algorithm: 'pkcs1v15' })).signature;
      expect(nodeVerify(node, msg, { key: pub, padding: constants.RSA_PKCS1_PADDING }, sigOf(v15)), alg).toBe(true);
      const v15pre = (await ok('update', `sign/rsa/${alg}`, { input: b64(digest), prehashed: true, signature_algorithm: 'pkcs1v15' })).signature;
      expect(v15pre).toBe(v15);
      const pss = (await ok('update', `sign/rsa/${alg}`, { input: b64(msg) })).signature;
      expect(nodeVerify(node, msg, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sigOf(pss))).toBe(true);
      const psspre = (await ok('update', `sign/rsa/${alg}`, { input: b64(digest), prehashed: true })).signature;
      expect(nodeVerify(node, msg, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sigOf(psspre))).toBe(
        true,
      );
      expect((await ok('update', `verify/rsa/${alg}`, { input: b64(msg), signature: pss })).valid).toBe(true);
      expect((await ok('update', `verify/rsa/${alg}`, { input: b64(msg), signature_algorithm: 'pkcs1v15', signature: v15 })).valid).toBe(true);
    }
  });

  it('a digest of the wrong size, and hash_algorithm=none, are 400s', async () => {
    await managed('ec2', 'ec');
    expect((await call('update', 'sign/ec2/sha3-384', { input: b64(Buffer.alloc(32)), prehashed: true })).error).toBe(
      'prehashed input must be 48 bytes for sha3-384, got 32',
    );
    expect((await call('update', 'sign/ec2/none', { input: b64(Buffer.alloc(32)), prehashed: true, signature_algorithm: 'pkcs1v15' })).error).toBe(
      'hash_algorithm none is not supported for managed keys (use sha2-* or sha3-*)',
    );
  });

  it('PKCS#11 offers sha224 for RSA-PSS and refuses SHA-3 (a PKCS#11 3.0 mechanism) clearly', () => {
    expect(hashMech('sha224').hashAlg).toBe(0x255); // CKM_SHA224
    expect(() => hashMech('sha3-256')).toThrow('pkcs11: RSA-PSS with sha3-256 is not supported (sha1, sha224, sha256, sha384 or sha512)');
  });
});
