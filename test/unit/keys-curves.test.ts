// The one table of curve names (src/keys/curves.ts) against Node's own names and encodings,
// and the call sites that map between names through it: PKI's key kinds and key_bits,
// transit's curve check on imported keys, the CA signer's digest.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readElement } from '../../src/goplugin/der';
import {
  curveBytes,
  curveFacts,
  curveOfOid,
  curveOfOpenssl,
  type CurveName,
  ecdsaHash,
  MANAGED_CURVES,
  NIST_CURVES,
  nistCurveOfBits,
} from '../../src/keys/curves';
import { signingAlgorithm } from '../../src/secrets/pki/ca';
import { generateKey, keyInfo, roleKeyBits } from '../../src/secrets/pki/keys';

const ALL: CurveName[] = ['P-224', 'P-256', 'P-384', 'P-521', 'secp256k1'];

describe('curves', () => {
  it("each curve's OpenSSL name, coordinate size and OID are Node's", () => {
    for (const name of ALL) {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: name });
      const f = curveFacts(name);
      expect(publicKey.asymmetricKeyDetails?.namedCurve, name).toBe(f.openssl);
      expect(curveBytes(name)).toBe(f.bytes);
      // SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { id-ecPublicKey, namedCurve OID }, BIT STRING { 00, 04 || x || y } }
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const alg = readElement(spki, readElement(spki, 0).content);
      expect(spki.toString('hex', alg.content, alg.end), name).toBe(`06072a8648ce3d0201${f.oid}`);
      const point = readElement(spki, alg.end);
      expect(point.end - point.content, name).toBe(2 + 2 * f.bytes);
      if (name !== 'secp256k1') expect(f.bits).toBe(Number(name.slice(2)));
    }
  });

  it('lookups answer only among the curves asked about', () => {
    expect(curveOfOpenssl('prime256v1', MANAGED_CURVES)).toBe('P-256');
    expect(curveOfOpenssl('secp224r1', MANAGED_CURVES)).toBeUndefined();
    expect(curveOfOpenssl('secp224r1', NIST_CURVES)).toBe('P-224');
    expect(curveOfOpenssl('secp256k1', NIST_CURVES)).toBeUndefined();
    expect(curveOfOpenssl(undefined, NIST_CURVES)).toBeUndefined();
    expect(curveOfOid('06052b81040022', MANAGED_CURVES)).toBe('P-384');
    expect(curveOfOid('06052b81040021', MANAGED_CURVES)).toBeUndefined(); // P-224: no managed key is on it
    expect([224, 256, 384, 521, 192, 0].map(nistCurveOfBits)).toEqual(['P-224', 'P-256', 'P-384', 'P-521', undefined, undefined]);
    expect(MANAGED_CURVES.map(ecdsaHash)).toEqual(['sha256', 'sha384', 'sha512']);
  });

  it("PKI: key kinds and key_bits by the table (NIST curves only; a CA's not P-224); a CA signs with the curve's digest", async () => {
    const ec = (namedCurve: string) => keyInfo(createPublicKey(generateKeyPairSync('ec', { namedCurve }).privateKey));
    expect(['P-224', 'P-256', 'P-384', 'P-521'].map(ec)).toEqual([224, 256, 384, 521].map((bits) => ({ type: 'ec', bits })));
    expect(() => ec('secp256k1')).toThrow('unsupported key: EC curve secp256k1 is not supported (P-224, P-256, P-384 or P-521)');
    expect(roleKeyBits('ec', 0)).toBe(256);
    expect(roleKeyBits('ec', 224)).toBe(224);
    expect(() => roleKeyBits('ec', 192)).toThrow('key_bits for ec must be 224, 256, 384 or 521');
    expect(createPublicKey((await generateKey('ec', 224, false)).pkcs8).asymmetricKeyDetails?.namedCurve).toBe('secp224r1');
    await expect(generateKey('ec', 224, true)).rejects.toThrow('key_bits for ec keys must be 256, 384 or 521');
    await expect(generateKey('ec', 192, false)).rejects.toThrow('key_bits for ec keys must be 224, 256, 384 or 521');
    expect(MANAGED_CURVES.map((curve) => signingAlgorithm({ kind: 'ec', curve }))).toEqual([
      { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
      { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
      { name: 'ECDSA', namedCurve: 'P-521', hash: 'SHA-512' },
    ]);
  });
});
