// keys/<name>/csr, keys/<name>/set-certificate and export/certificate-chain (current Vault's
// transit certificates), with openssl as the judge of every request and certificate.
import { describe, expect, it } from 'vitest';
import { createPublicKey, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { transitPerTest } from '../support/backend';
import { opensslScratch } from '../support/openssl';

const { call, ok } = transitPerTest();
const { dir, file, openssl } = opensslScratch('transit-certs-');

/** A CA made by openssl (key + self-signed certificate with CA:TRUE). */
function opensslCa(): { cert: string; key: string } {
  const key = path.join(dir, `ca-${Math.random().toString(36).slice(2)}.key`);
  const cert = `${key}.pem`;
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=Test CA', '-days', '2');
  return { cert, key };
}
/** openssl signs `csrPem` as `ca` (a leaf; `ext` a line of x509v3 config, e.g. basicConstraints=CA:FALSE). */
function opensslSign(csrPem: string, ca: { cert: string; key: string }, ext?: string): string {
  const out = path.join(dir, `leaf-${Math.random().toString(36).slice(2)}.pem`);
  const args = ['x509', '-req', '-in', file(csrPem), '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '1', '-out', out];
  if (ext) args.push('-extfile', file(ext));
  openssl(...args);
  return fs.readFileSync(out, 'utf8');
}
const spkiOf = (pemText: string) => createPublicKey(pemText).export({ type: 'spki', format: 'der' }).toString('base64');

describe('keys/<name>/csr', () => {
  it.each(['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'ed25519'])(
    '%s: a request signed by the key, for its key, that openssl verifies',
    async (type) => {
      await ok('create', 'keys/k', { type });
      const res = await ok('update', 'keys/k/csr');
      expect(res).toMatchObject({ name: 'k', type });
      const csr = res.csr as string;
      expect(csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+-----END CERTIFICATE REQUEST-----$/);
      expect(openssl('req', '-in', file(csr), '-noout', '-verify')).toMatch(/verify OK|Certificate request self-signature verify OK/);
      const pub = openssl('req', '-in', file(csr), '-noout', '-pubkey');
      const key = await ok('read', 'keys/k');
      const mine = key.keys['1'].public_key as string;
      expect(spkiOf(pub)).toBe(
        type === 'ed25519'
          ? spkiOf(
              createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(mine, 'base64').toString('base64url') }, format: 'jwk' }).export({
                type: 'spki',
                format: 'pem',
              }) as string,
            )
          : spkiOf(mine),
      );
      // No template: an empty subject.
      expect(openssl('req', '-in', file(csr), '-noout', '-subject').trim()).toBe('subject=');
    },
  );

  it("keeps the template's subject and requested extensions, replaces its key, and signs with the version asked for", async () => {
    await ok('create', 'keys/svc', { type: 'ecdsa-p256' });
    await ok('update', 'keys/svc/rotate');
    const tkey = path.join(dir, 'template.key');
    const template = openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-384',
      '-nodes',
      '-keyout',
      tkey,
      '-subj',
      '/C=DE/O=Acme/CN=svc.example.com',
      '-addext',
      'subjectAltName=DNS:svc.example.com,IP:10.0.0.7',
      '-addext',
      'keyUsage=critical,digitalSignature',
    );
    const csr = (await ok('update', 'keys/svc/csr', { csr: template, version: 1 })).csr as string;
    const shown = openssl('req', '-in', file(csr), '-noout', '-text', '-verify');
    expect(shown).toMatch(/verify OK/);
    expect(shown).toMatch(/Subject: C\s?=\s?DE, O\s?=\s?Acme, CN\s?=\s?svc\.example\.com/);
    expect(shown).toMatch(/DNS:svc\.example\.com, IP Address:10\.0\.0\.7/);
    expect(shown).toMatch(/X509v3 Key Usage: critical\s+Digital Signature/);
    expect(shown).toMatch(/ASN1 OID: prime256v1/); // the key's curve, not the template's P-384
    const pub = openssl('req', '-in', file(csr), '-noout', '-pubkey');
    const versions = (await ok('read', 'keys/svc')).keys;
    expect(spkiOf(pub)).toBe(spkiOf(versions['1'].public_key));
    expect(spkiOf(pub)).not.toBe(spkiOf(versions['2'].public_key));
  });

  it('refuses what Vault refuses, with 400s', async () => {
    expect((await call('update', 'keys/none/csr')).error).toBe("key with provided name 'none' not found");
    await ok('create', 'keys/aes');
    expect((await call('update', 'keys/aes/csr')).error).toBe("key type 'aes256-gcm96' does not support signing");
    await ok('create', 'keys/d', { type: 'ed25519', derived: true });
    expect((await call('update', 'keys/d/csr')).error).toBe('operation not supported on keys with derivation enabled');
    await ok('create', 'keys/k1', { type: 'ecdsa-secp256k1' });
    expect((await call('update', 'keys/k1/csr')).error).toMatch(/cannot be named in an X.509 certificate/);
    await ok('create', 'keys/ec', { type: 'ecdsa-p256' });
    expect((await call('update', 'keys/ec/csr', { version: 2 })).error).toBe('key version 2 does not exist or cannot be found');
    expect((await call('update', 'keys/ec/csr', { version: -1 })).error).toBe('key version -1 does not exist or cannot be found');
    expect((await call('update', 'keys/ec/csr', { csr: 'not a pem' })).error).toBe('could not decode PEM certificate request');
    const notCsr = '-----BEGIN CERTIFICATE REQUEST-----\nMAMCAQA=\n-----END CERTIFICATE REQUEST-----';
    expect((await call('update', 'keys/ec/csr', { csr: notCsr })).error).toBe('csr is not a valid PEM certificate request');
  });
});

describe('keys/<name>/set-certificate', () => {
  it('stores a chain whose leaf certifies the version; keys/<name> shows it and export/certificate-chain returns it', async () => {
    await ok('create', 'keys/tls', { type: 'ecdsa-p256' });
    const ca = opensslCa();
    const leaf = opensslSign((await ok('update', 'keys/tls/csr')).csr, ca);
    const caPem = fs.readFileSync(ca.cert, 'utf8');
    const chain = `${leaf.trim()}\n${caPem.trim()}\n`;
    const res = await ok('update', 'keys/tls/set-certificate', { certificate_chain: chain });
    expect(res).toEqual({ name: 'tls', type: 'ecdsa-p256', 'certificate-chain': chain });
    const expected = `${new X509Certificate(leaf).toString().trim()}\n${new X509Certificate(caPem).toString().trim()}`;
    expect((await ok('read', 'keys/tls')).keys['1'].certificate_chain).toBe(expected);
    expect(await ok('read', 'export/certificate-chain/tls/1')).toEqual({ name: 'tls', type: 'ecdsa-p256', keys: { '1': expected } });
    // openssl checks the stored chain: the leaf verifies against the CA.
    expect(openssl('verify', '-CAfile', ca.cert, file(expected.split(/(?<=-----END CERTIFICATE-----)\n/)[0]))).toMatch(/: OK/);
    // A key that is not exportable still exports its (public) chain; a rotated version has none.
    await ok('update', 'keys/tls/rotate');
    expect((await ok('read', 'keys/tls')).keys['2'].certificate_chain).toBeUndefined();
    expect((await call('read', 'export/certificate-chain/tls/2')).error).toBe('selected key version does not have a certificate chain imported');
    expect((await call('read', 'export/certificate-chain/aes-none')).error ?? null).toBeNull();
  });

  it('refuses a chain that does not certify the version, or is not one leaf then CAs', async () => {
    await ok('create', 'keys/a', { type: 'ecdsa-p256' });
    await ok('create', 'keys/b', { type: 'ecdsa-p256' });
    await ok('create', 'keys/r', { type: 'rsa-2048' });
    const ca = opensslCa();
    const caPem = fs.readFileSync(ca.cert, 'utf8');
    const leafB = opensslSign((await ok('update', 'keys/b/csr')).csr, ca);
    const leafA = opensslSign((await ok('update', 'keys/a/csr')).csr, ca);
    const leafA2 = opensslSign((await ok('update', 'keys/a/csr')).csr, ca, 'basicConstraints=CA:FALSE');
    const set = async (name: string, chain: string) => (await call('update', `keys/${name}/set-certificate`, { certificate_chain: chain })).error;
    expect(await set('a', leafB)).toBe('leaf certificate public key does not match the key version selected');
    expect(await set('r', leafA)).toMatch(/provided leaf certificate public key algorithm 'ec' does not match the transit key type 'rsa-2048'/);
    expect(await set('a', `${caPem}${leafA}`)).toBe('certificate in the first position is not a leaf certificate');
    expect(await set('a', `${leafA}${leafA2}`)).toBe('provided certificate chain contains more than one leaf certificate');
    expect(await set('a', 'garbage')).toBe('could not decode PEM block in certificate chain');
    expect(await set('a', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toBe(
      'provided certificate chain did not contain any valid PEM certificate',
    );
    expect(await set('a', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toBe('failed to parse certificate in certificate chain');
    expect((await call('update', 'keys/a/set-certificate', {})).error).toBe('missing required field "certificate_chain"');
    // Nothing was stored by any refusal; a leaf without Basic Constraints then CAs is accepted.
    expect((await ok('read', 'keys/a')).keys['1'].certificate_chain).toBeUndefined();
    expect((await ok('update', 'keys/a/set-certificate', { certificate_chain: `${leafA2}${caPem}` }))['certificate-chain']).toContain('BEGIN CERTIFICATE');
  });

  it('a chain survives backup and restore; a backup with a malformed chain is refused', async () => {
    await ok('create', 'keys/bk', { type: 'ed25519', exportable: true, allow_plaintext_backup: true });
    const ca = opensslCa();
    const leaf = opensslSign((await ok('update', 'keys/bk/csr')).csr, ca);
    await ok('update', 'keys/bk/set-certificate', { certificate_chain: leaf });
    const { backup } = await ok('read', 'backup/bk');
    await ok('update', 'restore/bk2', { backup });
    expect((await ok('read', 'keys/bk2')).keys['1'].certificate_chain).toBe(new X509Certificate(leaf).toString().trim());
    const bad = JSON.parse(Buffer.from(backup, 'base64').toString());
    bad.policy.versions['1'].certificate_chain = 'not a list';
    expect((await call('update', 'restore/bk3', { backup: Buffer.from(JSON.stringify(bad)).toString('base64') })).error).toMatch(/invalid backup/);
  });
});
