// Imported certificates and keys are read as Go reads them: strict DER all through (isDer in
// src/goplugin/der.ts). OpenSSL alone also reads BER's longer length forms, so without the
// check a certificate or key that Vault refuses at import was taken here.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isDer, pem, pemDer, seq, octets, strictDer, tlv } from '../../src/goplugin/der';
import { parsePrivateKey } from '../../src/secrets/transit/material';
import { backendMount, failure } from '../support/backend';

/** The same DER with its outer length (two octets, 0x82) written in three, the first 00: BER, not DER. */
function nonMinimal(der: Buffer): Buffer {
  expect(der[1]).toBe(0x82);
  return Buffer.concat([Uint8Array.of(der[0], 0x83, 0x00), der.subarray(2)]);
}

describe('isDer', () => {
  it('takes one strict element with nothing after it, every constructed element inside filled exactly', () => {
    const good = seq(seq(tlv(0x02, Buffer.from([1]))), octets(Buffer.from('not DER inside, not looked at: \x30\x85')));
    expect(isDer(good)).toBe(true);
    expect(isDer(Buffer.concat([good, Buffer.from([0])]))).toBe(false); // trailing data
    expect(isDer(Buffer.from('3080020101 0000'.replace(/ /g, ''), 'hex'))).toBe(false); // indefinite length
    expect(isDer(Buffer.from('3004 020101 00'.replace(/ /g, ''), 'hex'))).toBe(false); // a child overruns its parent
    expect(isDer(Buffer.from('3004 02810101'.replace(/ /g, ''), 'hex'))).toBe(false); // a nested non-minimal length
    let deep = tlv(0x02, Buffer.from([1]));
    for (let i = 0; i < 70; i++) deep = seq(deep);
    expect(isDer(deep)).toBe(false); // deeper than any certificate: refused, not recursed into
  });
});

describe('strictDer', () => {
  it('answers the DER of a PEM block or of DER bytes when it is strict, and throws otherwise', () => {
    const der = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }) as Buffer;
    expect(strictDer(der)).toBe(der);
    expect(strictDer(pem(der, 'PUBLIC KEY')).equals(der)).toBe(true);
    const ber = Buffer.concat([Uint8Array.of(der[0], 0x81), der.subarray(1)]); // 30 59 as 30 81 59
    expect(() => strictDer(ber)).toThrow(/^not DER: /);
    expect(() => strictDer(pem(ber, 'PUBLIC KEY'))).toThrow(/^not DER: /);
    expect(() => strictDer(Buffer.concat([der, Buffer.from([0])]))).toThrow(/^not DER: /);
    expect(() => strictDer('')).toThrow(/^not DER: /);
  });
});

describe('imports refuse a non-minimal DER length, as Vault (Go) does', () => {
  it('PKI: config/ca, issuers/import/bundle and intermediate/set-signed', async () => {
    const root = backendMount('pki');
    const made = await root.ok('update', 'root/generate/exported', { common_name: 'BER root', key_type: 'rsa', key_bits: 2048, ttl: '8760h' });
    const certDer = pemDer(made.certificate);
    expect(isDer(certDer)).toBe(true);
    const berCert = pem(nonMinimal(certDer), 'CERTIFICATE');
    const keyDer = pemDer(made.private_key);
    const berKey = pem(nonMinimal(keyDer), made.private_key.includes('RSA PRIVATE KEY') ? 'RSA PRIVATE KEY' : 'PRIVATE KEY');

    const other = backendMount('pki');
    expect(failure(await other.call('update', 'config/ca', { pem_bundle: berCert }))).toBe('pem_bundle: a certificate cannot be read');
    expect(failure(await other.call('update', 'issuers/import/bundle', { pem_bundle: `${made.certificate}\n${berKey}` }))).toBe(
      'pem_bundle: a private key cannot be read (PKCS#8, PKCS#1 or SEC 1 PEM, unencrypted)',
    );
    await other.ok('update', 'issuers/import/bundle', { pem_bundle: `${made.certificate}\n${made.private_key}` }); // the DER forms are taken

    const int = backendMount('pki');
    const csr = await int.ok('update', 'intermediate/generate/internal', { common_name: 'BER int', key_type: 'rsa', key_bits: 2048 });
    const signed = await root.ok('update', 'root/sign-intermediate', { csr: csr.csr, ttl: '87h' });
    const berSigned = pem(nonMinimal(pemDer(signed.certificate)), 'CERTIFICATE');
    expect(failure(await int.call('update', 'intermediate/set-signed', { certificate: berSigned }))).toBe('certificate is not a valid PEM certificate');
    await int.ok('update', 'intermediate/set-signed', { certificate: signed.certificate });
  });

  it('transit: a public key (keys/:name/import public_key)', async () => {
    const t = backendMount('transit');
    const spki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }) as Buffer;
    expect(failure(await t.call('update', 'keys/ber/import', { type: 'rsa-2048', public_key: pem(nonMinimal(spki), 'PUBLIC KEY') }))).toMatch(
      /error parsing public key: not a SubjectPublicKeyInfo of a supported key type$/,
    );
    await t.ok('update', 'keys/der/import', { type: 'rsa-2048', public_key: pem(spki, 'PUBLIC KEY') });
  });

  it('transit: a private key (the PKCS#8 DER an import unwraps)', () => {
    const pkcs8 = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'der' }) as Buffer;
    expect(() => parsePrivateKey('rsa-2048', nonMinimal(pkcs8))).toThrow('error parsing asymmetric key: not a PKCS#8 (DER) private key');
    expect(parsePrivateKey('rsa-2048', pkcs8).asymmetricKeyType).toBe('rsa');
  });
});
