// A CSR's requested extensions, as current Vault's PKI takes them: sign-verbatim and
// sign-intermediate with use_csr_values copy every one of them into the certificate (Basic
// Constraints aside, and the SAN when other SANs make Vault build its own), each replacing
// the certificate's own extension of that type; sign/ and sign-intermediate without
// use_csr_values copy none. A SAN of a kind this PKI does not issue is passed over by sign/
// and copied with the rest by the copying paths. What cannot be copied (a malformed value, a
// critical extension no verifier understands) is a 400 with a message, never a 500.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';

const { dir, file, openssl, text, ext } = opensslScratch('vpt-pki-ext-');

/** An EC CSR with this subject and these -addext options (or, with `config`, an openssl config's [ext] section). */
function csr(subj: string, addext: string[], config?: string): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const args = ['req', '-new', '-key', key, '-subj', subj, ...addext.flatMap((e) => ['-addext', e])];
  if (config) {
    const cfg = path.join(dir, `c${Math.random().toString(36).slice(2)}.cnf`);
    fs.writeFileSync(cfg, `[req]\ndistinguished_name=dn\nreq_extensions=ext\n[dn]\n${config}`);
    args.push('-config', cfg);
  }
  const out = openssl(...args);
  if (!out.includes('BEGIN CERTIFICATE REQUEST')) throw new Error(out);
  return out;
}

// A CSR asking for a key usage, extended key usage, subject key identifier, authority key
// identifier, CRL distribution point, certificate policy and an extension of no known type.
const ASKS = [
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=codeSigning',
  'subjectKeyIdentifier=0102030405',
  'authorityKeyIdentifier=DER:30078005aabbccddee',
  'crlDistributionPoints=URI:http://csr.example/crl',
  'certificatePolicies=1.2.3.99',
  '1.2.3.4.5.6=ASN1:UTF8String:hello',
  'subjectAltName=DNS:asks.example.com',
];

describe('PKI: the extensions a CSR asks for', () => {
  const { call, ok } = backendMount('pki');
  const asks = csr('/CN=asks.example.com', ASKS);
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'Ext Root', key_type: 'ec', ttl: '87600h' });
    await ok('update', 'config/urls', { crl_distribution_points: 'http://ours.example/crl' });
    await ok('update', 'roles/any', { allow_any_name: true, key_type: 'any', ttl: '1h' });
  });

  it('sign-verbatim copies each one in place of its own (as current Vault and 1.8)', async () => {
    for (const p of ['sign-verbatim', 'sign-verbatim/any', 'issuer/default/sign-verbatim', 'issuer/default/sign-verbatim/any']) {
      const r = await call('update', p, { csr: asks, ttl: '1h' });
      expect(r.error, p).toBeUndefined();
      const cert = r.data.certificate;
      // The request's key_usage (default DigitalSignature, KeyAgreement, KeyEncipherment) gives way to the CSR's.
      expect(ext(cert, 'X509v3 Key Usage')).toBe('critical Digital Signature');
      expect(ext(cert, 'X509v3 Extended Key Usage')).toBe('Code Signing');
      expect(ext(cert, 'X509v3 Subject Key Identifier')).toBe('01:02:03:04:05');
      // Its Authority Key Identifier names no key of this mount: the issuer's own is used, and the answer says so.
      expect(ext(cert, 'X509v3 Authority Key Identifier')).not.toMatch(/AA:BB:CC:DD:EE$/);
      expect(r.warnings).toContainEqual(expect.stringMatching(/^the CSR's Authority Key Identifier \(keyid aa:bb:cc:dd:ee\) does not name the issuer's key/));
      expect(ext(cert, 'X509v3 CRL Distribution Points')).toBe('Full Name:');
      expect(text(cert)).toContain('URI:http://csr.example/crl');
      expect(text(cert)).not.toContain('ours.example');
      expect(ext(cert, 'X509v3 Certificate Policies')).toBe('Policy: 1.2.3.99');
      expect(ext(cert, '1.2.3.4.5.6')).toBe('..hello');
      expect(ext(cert, 'X509v3 Subject Alternative Name')).toBe('DNS:asks.example.com');
      // Each extension once: the certificate's own of that type is left out.
      const der = Buffer.from(cert.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      for (const oid of ['0603551d0f', '0603551d25', '0603551d0e', '0603551d23', '0603551d1f']) expect(der.toString('hex').split(oid).length, oid).toBe(2);
    }
  });

  it('sign-intermediate copies them with use_csr_values (the key usage too: the CSR asked for no CRL signing), and none without', async () => {
    const withValues = (await ok('update', 'root/sign-intermediate', { csr: asks, use_csr_values: true, ttl: '1h' })).certificate;
    expect(ext(withValues, 'X509v3 Key Usage')).toBe('critical Digital Signature');
    expect(ext(withValues, 'X509v3 Extended Key Usage')).toBe('Code Signing');
    expect(ext(withValues, 'X509v3 Subject Key Identifier')).toBe('01:02:03:04:05');
    expect(ext(withValues, '1.2.3.4.5.6')).toBe('..hello');
    // Its Basic Constraints stay the intermediate's own.
    expect(ext(withValues, 'X509v3 Basic Constraints')).toBe('critical CA:TRUE');
    const issuerRef = (await ok('update', 'issuer/default/sign-intermediate', { csr: asks, use_csr_values: true, ttl: '1h' })).certificate;
    expect(ext(issuerRef, '1.2.3.4.5.6')).toBe('..hello');
    const without = (await ok('update', 'root/sign-intermediate', { csr: asks, ttl: '1h' })).certificate;
    expect(ext(without, 'X509v3 Key Usage')).toBe('critical Certificate Sign, CRL Sign');
    expect(ext(without, 'X509v3 Extended Key Usage')).toBe('(absent)');
    expect(ext(without, '1.2.3.4.5.6')).toBe('(absent)');
    expect(text(without)).toContain('ours.example');
  });

  it('sign/ copies none', async () => {
    const cert = (await ok('update', 'sign/any', { csr: asks })).certificate;
    expect(ext(cert, 'X509v3 Key Usage')).toBe('critical Digital Signature, Key Encipherment, Key Agreement');
    expect(ext(cert, 'X509v3 Extended Key Usage')).toBe('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(ext(cert, '1.2.3.4.5.6')).toBe('(absent)');
    expect(ext(cert, 'X509v3 Subject Key Identifier')).not.toBe('01:02:03:04:05');
  });

  it('a malformed value of a type certificates parse, or a critical one of no known type, is a 400 where it would be copied', async () => {
    const cases: Array<[string, RegExp]> = [
      ['keyUsage=critical,DER:0500', /Key Usage extension \(2\.5\.29\.15\) is malformed/],
      ['keyUsage=DER:030207', /Key Usage extension \(2\.5\.29\.15\) is malformed/],
      ['extendedKeyUsage=DER:3003020101', /Extended Key Usage extension \(2\.5\.29\.37\) is malformed/],
      ['subjectKeyIdentifier=DER:0303000102', /Subject Key Identifier extension \(2\.5\.29\.14\) is malformed/],
      ['authorityKeyIdentifier=DER:3005800301', /Authority Key Identifier extension \(2\.5\.29\.35\) is malformed/],
      ['crlDistributionPoints=DER:3003020101', /CRL Distribution Points extension \(2\.5\.29\.31\) is malformed/],
      ['certificatePolicies=DER:30023000', /Certificate Policies extension \(2\.5\.29\.32\) is malformed/],
      ['nameConstraints=critical,DER:3008a0063004870201', /Name Constraints extension \(2\.5\.29\.30\) is malformed/],
      ['authorityInfoAccess=DER:30053003020101', /Authority Information Access extension \(1\.3\.6\.1\.5\.5\.7\.1\.1\) is malformed/],
      ['authorityInfoAccess=DER:3000', /Authority Information Access extension \(1\.3\.6\.1\.5\.5\.7\.1\.1\) is malformed/],
      ['1.2.3.4.5.7=critical,ASN1:NULL', /critical extension 1\.2\.3\.4\.5\.7/],
      ['policyConstraints=critical,requireExplicitPolicy:0', /critical extension 2\.5\.29\.36/],
    ];
    for (const [asked, message] of cases) {
      const bad = csr('/CN=bad.example.com', [asked]);
      for (const [p, extra] of [
        ['sign-verbatim', {}],
        ['root/sign-intermediate', { use_csr_values: true }],
      ] as const) {
        const r = await call('update', p, { csr: bad, ttl: '1h', ...extra });
        expect(r.err, `${p} ${asked}`).toBeUndefined();
        expect(r.error, `${p} ${asked}`).toMatch(message);
      }
      // Where nothing is copied, nothing is read: signed.
      expect((await call('update', 'sign/any', { csr: bad })).error, asked).toBeUndefined();
      expect((await call('update', 'root/sign-intermediate', { csr: bad, ttl: '1h' })).error, asked).toBeUndefined();
    }
    // The same extensions well formed, or the unknown one not critical, are copied.
    const fine = csr('/CN=fine.example.com', [
      '1.2.3.4.5.7=ASN1:NULL',
      'nameConstraints=critical,permitted;DNS:.example.com',
      'policyConstraints=requireExplicitPolicy:0',
    ]);
    const r = await ok('update', 'root/sign-intermediate', { csr: fine, use_csr_values: true, ttl: '1h' });
    expect(ext(r.certificate, 'X509v3 Name Constraints')).toBe('critical Permitted:');
    expect(ext(r.certificate, 'X509v3 Policy Constraints')).toBe('Require Explicit Policy:0');
    expect(ext(r.certificate, '1.2.3.4.5.7')).toBe('..');
  });

  it('a SAN of a kind this PKI does not issue: sign/ passes it over, sign-verbatim and sign-intermediate copy it (as current Vault and 1.8)', async () => {
    const rid = csr('/CN=rid.example.com', ['subjectAltName=DNS:rid.example.com,RID:1.2.3.4,email:a@example.com']);
    const dirName = csr('/CN=dir.example.com', [], 'CN=x\n[ext]\nsubjectAltName=DNS:dir.example.com,dirName:dir_sect\n[dir_sect]\nCN=Somebody\nO=Org\n');
    for (const [c, other] of [
      [rid, 'Registered ID:1.2.3.4'],
      [dirName, 'DirName:/CN=Somebody/O=Org'],
    ]) {
      const signed = await call('update', 'sign/any', { csr: c });
      expect(signed.error).toBeUndefined();
      expect(ext(signed.data.certificate, 'X509v3 Subject Alternative Name')).not.toContain(other);
      const verbatim = await call('update', 'sign-verbatim', { csr: c, ttl: '1h' });
      expect(verbatim.error).toBeUndefined();
      expect(ext(verbatim.data.certificate, 'X509v3 Subject Alternative Name')).toContain(other);
      const inter = await call('update', 'root/sign-intermediate', { csr: c, use_csr_values: true, ttl: '1h' });
      expect(inter.error).toBeUndefined();
      expect(ext(inter.data.certificate, 'X509v3 Subject Alternative Name')).toContain(other);
      // Other SANs asked for: Vault builds the SAN (the other SANs, then the DNS, email, IP and URI names); the rest is not kept.
      const built = await ok('update', 'root/sign-intermediate', { csr: c, use_csr_values: true, other_sans: '1.2.3.4;UTF8:x', ttl: '1h' });
      expect(ext(built.certificate, 'X509v3 Subject Alternative Name')).not.toContain(other);
      expect(ext(built.certificate, 'X509v3 Subject Alternative Name')).toContain('DNS:');
    }
    // sign/ with names only of such kinds: signed without SANs.
    const only = csr('/CN=only.example.com', ['subjectAltName=RID:1.2.3.4']);
    const r = await call('update', 'sign/any', { csr: only });
    expect(r.error).toBeUndefined();
    expect(ext(r.data.certificate, 'X509v3 Subject Alternative Name')).toBe('DNS:only.example.com');
    // A critical SAN of such names only: no verifier understands it, so it is not copied (a 400; current Vault fails the verification of what it signed).
    const critical = csr('/CN=crit.example.com', ['subjectAltName=critical,RID:1.2.3.4']);
    expect((await call('update', 'sign-verbatim', { csr: critical, ttl: '1h' })).error).toMatch(/critical extension 2\.5\.29\.17/);
  });

  it("a malformed SAN is a 400 on every path, whether the CSR's names are used or not (Go's CSR parser reads it, so Vault refuses the CSR)", async () => {
    await ok('update', 'roles/own-names', { allow_any_name: true, key_type: 'any', use_csr_sans: false, use_csr_common_name: false, ttl: '1h' });
    for (const san of ['subjectAltName=DER:3003820141ff', 'subjectAltName=DER:30048702ffff', 'subjectAltName=DER:3003820180']) {
      const bad = csr('/CN=bad.example.com', [san]);
      for (const [p, extra] of [
        ['sign/any', {}],
        ['sign/own-names', { common_name: 'own.example.com' }],
        ['sign-verbatim', {}],
        ['root/sign-intermediate', {}],
        ['root/sign-intermediate', { use_csr_values: true }],
      ] as const) {
        const r = await call('update', p, { csr: bad, ttl: '1h', ...extra });
        expect(r.error, `${san} ${p} ${JSON.stringify(extra)}`).toMatch(
          /Subject Alternative Name extension is malformed|SAN that is not ASCII|IP SAN of a length that is neither IPv4 nor IPv6/,
        );
      }
    }
  });

  it("an otherName that is not a UTF8String: a 400 where the CSR's other SANs are taken (sign/, sign-verbatim), copied by sign-intermediate", async () => {
    const odd = csr('/CN=odd.example.com', ['subjectAltName=DNS:odd.example.com,otherName:1.2.3.4;IA5STRING:abc']);
    for (const p of ['sign/any', 'sign-verbatim']) expect((await call('update', p, { csr: odd, ttl: '1h' })).error, p).toMatch(/otherName/);
    const inter = await ok('update', 'root/sign-intermediate', { csr: odd, use_csr_values: true, ttl: '1h' });
    expect(ext(inter.certificate, 'X509v3 Subject Alternative Name')).toContain('othername: 1.2.3.4::abc');
  });
});
