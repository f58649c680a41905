// The DER certificate writer (src/secrets/pki/cert-writer.ts) against openssl's, Node's and
// @peculiar/x509's readings of every field, across request shapes, key types, SAN kinds and
// extensions.
import { spawnSync } from 'node:child_process';
import { X509Certificate as NodeCert, createPrivateKey, createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oid, pem, readElement, seq } from '../../src/goplugin/der';
import { UserError } from '../../src/secrets/framework';
import { keyIdentifier, signerFor, x509, type CaSigner } from '../../src/secrets/pki/ca';
import { ipBytes, writeCertificate, writeCertificatePem, type WriteInput } from '../../src/secrets/pki/cert-writer';
import { makeCertificate, type CertRequest } from '../../src/secrets/pki/certificates';
import { generateKey, generateLeafKey, newP256Key, p256PrivateKeyDer } from '../../src/secrets/pki/keys';
import { dataOrError } from '../support/backend';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-certwriter-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, body: string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, body);
  return f;
};
const openssl = (args: string[], input?: string) => spawnSync('openssl', args, { encoding: 'utf8', input });
const text = (pemText: string) => {
  const r = openssl(['x509', '-noout', '-text'], pemText);
  if (r.status) throw new Error(r.stderr);
  return r.stdout;
};
const derOf = (pemText: string) => Buffer.from(pemText.replace(/-----[^-]+-----|\s/g, ''), 'base64');
const noManaged = async (): Promise<never> => {
  throw new Error('no managed keys here');
};
const storedSigner = async (type: 'ec' | 'rsa', bits: number) => signerFor({ kind: 'stored', pkcs8: (await generateKey(type, bits, true)).pkcs8 }, noManaged);

/** The top-level elements of a certificate's TBSCertificate, as DER slices. */
function tbsFields(der: Buffer): { tbs: Buffer; fields: Buffer[] } {
  const cert = readElement(der, 0);
  const tbs = readElement(der, cert.content);
  const fields: Buffer[] = [];
  for (let at = tbs.content; at < tbs.end; ) {
    const e = readElement(der, at);
    fields.push(der.subarray(at, e.end));
    at = e.end;
  }
  return { tbs: der.subarray(cert.content, tbs.end), fields };
}

const URLS = {
  issuing_certificates: ['http://ca.example/ca.der', 'ldap://ca.example/cn=ca'],
  ocsp_servers: ['http://ocsp.example'],
  crl_distribution_points: ['http://crl.example/a.crl', 'http://crl2.example/b.crl'],
};
const base = (over: Partial<CertRequest>): Omit<CertRequest, 'publicKey'> => ({
  commonName: 'svc.example.com',
  dnsNames: [],
  ips: [],
  ttlSeconds: 3600,
  isCa: false,
  serverAuth: false,
  clientAuth: false,
  leafKeyKind: 'ec',
  ...over,
});

// Every shape of CertRequest the @peculiar/x509 path wrote: leaves (self-signed there, since the
// writer now takes every issued leaf) and CA certificates.
const SHAPES: Array<[string, Omit<CertRequest, 'publicKey'>]> = [
  ['leaf: CN only, server+client flags, Basic Constraints by default', base({ serverAuth: true, clientAuth: true })],
  [
    'leaf: rsa default key usage, no Basic Constraints, DNS/IP/URI SANs, O/OU, C/ST/L, AIA and CRL DP',
    base({
      leafKeyKind: 'rsa',
      leafBasicConstraints: false,
      dnsNames: ['a.example.com', '*.b.example.com'],
      ips: ['10.0.0.1', '2001:db8::1', '::1', 'fe80:0:0:0:1:2:3:4'],
      uris: ['spiffe://example.com/svc', 'https://x.example/p?q=1'],
      organization: ['Example', 'Other Org'],
      ou: ['Eng'],
      subjectExtra: [
        ['C', 'US'],
        ['ST', 'CA'],
        ['L', 'San Francisco'],
      ],
      urls: URLS,
      serverAuth: true,
    }),
  ],
  [
    'leaf: ed25519 default key usage, role EKU OIDs, empty subject (critical SAN)',
    base({
      commonName: '',
      leafKeyKind: 'ed25519',
      dnsNames: ['only.example.com'],
      extKeyUsageOids: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.4', '1.2.3.4.5.6'],
      leafBasicConstraints: true,
    }),
  ],
  [
    'leaf: role key usage (two octets), UTF8 and escaped subject values, OCSP only',
    base({
      commonName: 'bücher.example',
      organization: ['Acme, Inc. + "Co" <x>; y=z #1'],
      ou: ['a\\b'],
      keyUsage: 1 | 2 | 256,
      leafBasicConstraints: false,
      urls: { issuing_certificates: [], ocsp_servers: ['http://ocsp.example'], crl_distribution_points: [] },
    }),
  ],
  [
    'leaf: CRL DP only, CA Issuers only absent',
    base({ urls: { issuing_certificates: [], ocsp_servers: [], crl_distribution_points: ['http://crl.example/c.crl'] } }),
  ],
  ['CA: path length 0', base({ commonName: 'Example CA', isCa: true, maxPathLength: 0, organization: ['Example'] })],
  ['CA: path length 200 (an INTEGER that needs a leading zero)', base({ commonName: 'Example CA', isCa: true, maxPathLength: 200 })],
  ['CA: no path length, DNS and IP SANs', base({ commonName: 'Example CA', isCa: true, dnsNames: ['ca.example.com'], ips: ['192.0.2.1'] })],
];

describe('DER certificate writer: every request shape, read back by openssl, Node and @peculiar/x509', () => {
  // (These once compared the writer with the @peculiar/x509 generator it replaced, byte for
  // byte; every certificate is now written here, so they read each field back instead.)
  let rsa: CaSigner;
  let rsaRootPem = '';
  beforeAll(async () => {
    rsa = await storedSigner('rsa', 2048);
    rsaRootPem = (await makeCertificate({ ...base({ commonName: 'RSA Root', isCa: true }), publicKey: rsa.publicKey }, rsa)).pem;
  });

  /** What the certificate says, by independent parsers, against what was asked. */
  function readBack(certPem: string, req: CertRequest, signerPem: string): void {
    const X = x509();
    const c = new X.X509Certificate(certPem);
    expect(text(certPem)).toMatch(/Signature Algorithm: sha256WithRSAEncryption/); // openssl reads it whole
    expect(new NodeCert(certPem).verify(new NodeCert(signerPem).publicKey)).toBe(true);
    const cn = c.subjectName.getField('CN');
    expect(cn).toEqual(req.commonName ? [req.commonName] : []);
    expect(c.subjectName.getField('O')).toEqual(req.organization ?? []);
    expect(c.subjectName.getField('OU')).toEqual(req.ou ?? []);
    const bc = c.getExtension(X.BasicConstraintsExtension);
    if (req.isCa) {
      expect(bc?.ca).toBe(true);
      expect(bc?.critical).toBe(true);
      expect(bc?.pathLength).toBe(req.maxPathLength === undefined || req.maxPathLength < 0 ? undefined : req.maxPathLength);
    } else expect(bc === null ? false : bc.ca).toBe(false);
    const sans = (c.getExtension(X.SubjectAlternativeNameExtension)?.names.toJSON() ?? []).map((n) => `${n.type}:${n.value}`);
    const ip6 = (ip: string) => (ip.includes(':') ? new NodeCert(certPem).subjectAltName?.includes('IP Address:') : true);
    expect(sans.filter((n) => n.startsWith('dns:'))).toEqual((req.dnsNames ?? []).map((d) => `dns:${d}`));
    expect(sans.filter((n) => n.startsWith('url:'))).toEqual((req.uris ?? []).map((u) => `url:${u}`));
    expect(sans.filter((n) => n.startsWith('ip:'))).toHaveLength((req.ips ?? []).length);
    for (const ip of req.ips ?? []) expect(ip6(ip)).toBe(true);
    const eku = c.getExtension(X.ExtendedKeyUsageExtension)?.usages.map(String) ?? [];
    for (const o of req.extKeyUsageOids ?? []) expect(eku).toContain(o);
    if (req.serverAuth) expect(eku).toContain('1.3.6.1.5.5.7.3.1');
    if (req.clientAuth) expect(eku).toContain('1.3.6.1.5.5.7.3.2');
    const ku = c.getExtension(X.KeyUsagesExtension);
    if (req.isCa) expect(ku && (ku.usages & X.KeyUsageFlags.keyCertSign) !== 0).toBe(true);
    else if (req.keyUsage) expect(ku?.usages).toBe(req.keyUsage);
    const t = text(certPem);
    for (const u of req.urls?.ocsp_servers ?? []) expect(t).toContain(`OCSP - URI:${u}`);
    for (const u of req.urls?.issuing_certificates ?? []) expect(t).toContain(`CA Issuers - URI:${u}`);
    for (const u of req.urls?.crl_distribution_points ?? []) expect(t).toContain(`URI:${u}`);
  }

  it.each(SHAPES)('self-signed with an RSA key: %s', async (_name, shape) => {
    const req = { ...shape, publicKey: rsa.publicKey };
    const made = await makeCertificate(req, rsa);
    readBack(made.pem, req, made.pem);
    const c = new NodeCert(made.pem);
    expect(c.issuer).toBe(c.subject);
  });

  it.each(SHAPES.filter(([, s]) => s.isCa))('signed by a root (issuer name, authority key id): %s', async (_name, shape) => {
    const inter = await storedSigner('ec', 256);
    const req = { ...shape, publicKey: inter.publicKey };
    const made = await makeCertificate(req, rsa, { cert: rsaRootPem, notAfter: new Date(Date.now() + 86400_000) });
    readBack(made.pem, req, rsaRootPem);
    const X = x509();
    const root = new X.X509Certificate(rsaRootPem);
    const c = new X.X509Certificate(made.pem);
    expect(Buffer.from(c.issuerName.toArrayBuffer()).equals(Buffer.from(root.subjectName.toArrayBuffer()))).toBe(true);
    const aki = c.getExtension(X.AuthorityKeyIdentifierExtension)?.keyId;
    expect(aki).toBe(root.getExtension(X.SubjectKeyIdentifierExtension)?.keyId);
    expect(openssl(['verify', '-CAfile', write('root-r.pem', rsaRootPem), write('inter-r.pem', made.pem)]).stdout).toMatch(/: OK/);
  });

  it("the PEM has no final newline, as the mount's certificates always had", async () => {
    const req = { ...base({}), publicKey: rsa.publicKey };
    const made = await makeCertificate(req, rsa);
    expect(made.pem.endsWith('-----END CERTIFICATE-----')).toBe(true);
    const o = new (x509().X509Certificate)(made.pem);
    expect(await writeCertificatePem({ req, signer: rsa, serialHex: o.serialNumber, notBefore: o.notBefore, notAfter: o.notAfter })).toBe(made.pem);
  });
});

describe('DER certificate writer: leaves under a CA, read back by openssl and @peculiar/x509', () => {
  let ca: CaSigner;
  let caPem = '';
  beforeAll(async () => {
    ca = await storedSigner('ec', 256);
    caPem = (await makeCertificate({ ...base({ commonName: 'Leaf CA', isCa: true }), publicKey: ca.publicKey }, ca)).pem;
  });

  const LEAF_KEYS: Array<[string, 'rsa' | 'ec' | 'ed25519', number, string]> = [
    ['RSA 2048', 'rsa', 2048, 'Public-Key: (2048 bit)'],
    ['EC P-256', 'ec', 256, 'NIST CURVE: P-256'],
    ['EC P-224', 'ec', 224, 'NIST CURVE: P-224'],
    ['Ed25519', 'ed25519', 0, 'ED25519 Public-Key'],
  ];

  it.each(LEAF_KEYS)('%s leaf with every SAN kind, key usage, EKU, AIA, CRL DP, Basic Constraints, policies', async (_n, type, bits, keyLine) => {
    const X = x509();
    const key = await generateKey(type, bits, false);
    const req: WriteInput['req'] = {
      ...base({
        commonName: 'leaf.example.com',
        dnsNames: ['leaf.example.com', 'alt.example.com'],
        ips: ['10.1.2.3', '2001:db8::5', '::ffff:192.0.2.7'],
        uris: ['spiffe://example.com/leaf'],
        organization: ['Example'],
        ou: ['Ops'],
        subjectExtra: [
          ['C', 'DE'],
          ['street', '1 Main St'],
          ['postalCode', '10115'],
        ],
        leafKeyKind: type,
        keyUsage: 1 | 4 | 16,
        extKeyUsageOids: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
        leafBasicConstraints: true,
        urls: URLS,
      }),
      publicKey: key.spki,
      emails: ['ops@example.com'],
      otherSans: [
        { oid: '1.3.6.1.4.1.311.20.2.3', value: 'upn@example.com' },
        { oid: '1.2.3.4', value: 'ünï' },
      ],
      policyOids: ['2.5.29.32.0', '1.3.6.1.4.1.44947.1.1.1'],
    };
    const now = Date.now();
    const pemText = await writeCertificatePem({
      req,
      signer: ca,
      issuerPem: caPem,
      serialHex: '4a0f' + 'ab'.repeat(18),
      notBefore: new Date(now - 30_000),
      notAfter: new Date(now + 3600_000),
    });
    expect(openssl(['verify', '-CAfile', write('ca.pem', caPem), '-purpose', 'sslserver', write('leaf.pem', pemText)]).stdout).toMatch(/leaf.pem: OK/);

    const t = text(pemText);
    const caCert = new X.X509Certificate(caPem);
    expect(t).toContain('Serial Number:\n            4a:0f:ab:ab');
    expect(t).toContain(`Issuer: ${text(caPem).match(/Subject: (.*)/)![1]}`);
    // Go's pkix.Name order, as Vault's leaves: C, ST, L, street, postalCode, O, OU, CN.
    expect(t).toContain('Subject: C = DE, street = 1 Main St, postalCode = 10115, O = Example, OU = Ops, CN = leaf.example.com\n');
    expect(t).toContain(keyLine);
    expect(t).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    expect(t).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment, Key Agreement\n/);
    expect(t).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    // Vault's order: other SANs first, then DNS, email, IP, URI.
    expect(t).toContain(
      'othername: UPN::upn@example.com, othername: 1.2.3.4::ünï, DNS:leaf.example.com, DNS:alt.example.com, email:ops@example.com, IP Address:10.1.2.3, IP Address:2001:DB8:0:0:0:0:0:5, IP Address:192.0.2.7, URI:spiffe://example.com/leaf',
    );
    expect(t).toMatch(
      /Authority Information Access: \n\s+OCSP - URI:http:\/\/ocsp.example\n\s+CA Issuers - URI:http:\/\/ca.example\/ca.der\n\s+CA Issuers - URI:ldap:\/\/ca.example\/cn=ca\n/,
    );
    expect(t).toMatch(/CRL Distribution Points: \n\s+Full Name:\n\s+URI:http:\/\/crl.example\/a.crl\n\s+Full Name:\n\s+URI:http:\/\/crl2.example\/b.crl/);
    expect(t).toMatch(/Certificate Policies: \n\s+Policy: X509v3 Any Policy\n\s+Policy: 1.3.6.1.4.1.44947.1.1.1\n/);
    const hex = (b: Buffer) => b.toString('hex').toUpperCase().match(/../g)!.join(':');
    expect(t).toMatch(new RegExp(`Subject Key Identifier: \\n\\s+${hex(keyIdentifier(key.spki))}\\n`));
    expect(t).toMatch(new RegExp(`Authority Key Identifier: \\n\\s+${hex(keyIdentifier(Buffer.from(caCert.publicKey.rawData)))}\\n`));

    const c = new X.X509Certificate(pemText);
    expect(c.issuer).toBe(caCert.subject);
    expect(c.subject).toBe('C=DE, 2.5.4.9=1 Main St, 2.5.4.17=10115, O=Example, OU=Ops, CN=leaf.example.com');
    expect(Buffer.from(c.publicKey.rawData).equals(key.spki)).toBe(true);
    expect(c.getExtension(X.BasicConstraintsExtension)?.ca).toBe(false);
    expect(c.getExtension(X.KeyUsagesExtension)?.usages).toBe(1 | 4 | 16);
    expect(c.getExtension(X.ExtendedKeyUsageExtension)?.usages).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(c.getExtension(X.SubjectAlternativeNameExtension)?.names.toJSON()).toEqual([
      { type: 'upn', value: 'upn@example.com' },
      { type: 'dns', value: 'leaf.example.com' },
      { type: 'dns', value: 'alt.example.com' },
      { type: 'email', value: 'ops@example.com' },
      { type: 'ip', value: '10.1.2.3' },
      { type: 'ip', value: '2001:db8::5' },
      { type: 'ip', value: '192.0.2.7' },
      { type: 'url', value: 'spiffe://example.com/leaf' },
    ]);
    expect(c.getExtension(X.SubjectKeyIdentifierExtension)?.keyId).toBe(keyIdentifier(key.spki).toString('hex'));
    expect(c.getExtension(X.AuthorityKeyIdentifierExtension)?.keyId).toBe(caCert.getExtension(X.SubjectKeyIdentifierExtension)?.keyId);
    expect(c.getExtension(X.CertificatePolicyExtension)?.policies).toEqual(['2.5.29.32.0', '1.3.6.1.4.1.44947.1.1.1']);
    const aia = c.getExtension(X.AuthorityInfoAccessExtension)!;
    expect([aia.ocsp.map((g) => g.value), aia.caIssuers.map((g) => g.value)]).toEqual([URLS.ocsp_servers, URLS.issuing_certificates]);
    expect(c.notBefore.getTime()).toBe(Math.floor((now - 30_000) / 1000) * 1000);
    expect(await c.verify({ publicKey: caCert.publicKey, signatureOnly: true })).toBe(true);
  });

  it("keyUsage 0 writes no Key Usage extension (as Go's x509; @peculiar/x509 wrote an empty bit string)", async () => {
    const key = await generateKey('ec', 256, false);
    const pemText = await writeCertificatePem({
      req: { ...base({ keyUsage: 0 }), publicKey: key.spki },
      signer: ca,
      issuerPem: caPem,
      serialHex: '01',
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 60_000),
    });
    expect(text(pemText)).not.toContain('Key Usage: critical');
    expect(text(pemText)).toContain('Subject Key Identifier');
  });

  it("an issuer certificate whose DER has a non-minimal length (which Go's x509 refuses; OpenSSL reads it) is not read, rather than copied into a leaf", async () => {
    const key = await generateKey('ec', 256, false);
    const der = derOf(caPem);
    const { fields } = tbsFields(der);
    const subject = fields[5]; // version, serial, signature, issuer, validity, subject
    expect(subject[1]).toBeLessThan(0x80);
    const longForm = Buffer.concat([Uint8Array.of(0x30, 0x81, subject[1]), subject.subarray(2)]);
    const cert = readElement(der, 0);
    const tbs = readElement(der, cert.content);
    const ber = seq(seq(...fields.slice(0, 5), longForm, ...fields.slice(6)), der.subarray(tbs.end, cert.end));
    const issuerPem = pem(ber, 'CERTIFICATE');
    expect(new NodeCert(issuerPem).subject).toBe(new NodeCert(caPem).subject);
    const input = { req: { ...base({}), publicKey: key.spki }, signer: ca, serialHex: '01', notBefore: new Date(), notAfter: new Date(Date.now() + 60_000) };
    await expect(writeCertificate({ ...input, issuerPem: caPem })).resolves.toBeInstanceOf(Buffer);
    await expect(writeCertificate({ ...input, issuerPem })).rejects.toThrow(/^the CA certificate cannot be read$/);
  });

  it('validity from 2050 on is a GeneralizedTime without fractions (RFC 5280 4.1.2.5.2)', async () => {
    const key = await generateKey('ec', 256, false);
    const der = await writeCertificate({
      req: { ...base({}), publicKey: key.spki },
      signer: ca,
      issuerPem: caPem,
      serialHex: '01',
      notBefore: new Date('2049-12-31T23:59:59.900Z'),
      notAfter: new Date('2050-01-01T00:00:00.750Z'),
    });
    const validity = tbsFields(der).fields[4];
    expect(validity.toString('hex')).toBe(`3020170d${Buffer.from('491231235959Z').toString('hex')}180f${Buffer.from('20500101000000Z').toString('hex')}`);
  });

  it('refuses what cannot be encoded, with a clear 400: non-ASCII DNS names, emails and URIs, IP zones, bad OIDs', async () => {
    const key = await generateKey('ec', 256, false);
    const go = (extra: Partial<WriteInput['req']>) =>
      writeCertificate({
        req: { ...base({}), publicKey: key.spki, ...extra },
        signer: ca,
        issuerPem: caPem,
        serialHex: '01',
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 60_000),
      });
    const refused = async (extra: Partial<WriteInput['req']>, msg: RegExp) => {
      const e = await go(extra).then(
        () => undefined,
        (x) => x,
      );
      expect(e).toBeInstanceOf(UserError);
      expect(e.message).toMatch(msg);
    };
    await refused({ dnsNames: ['bücher.example'] }, /DNS name "bücher.example" cannot be encoded as an IA5String/);
    await refused({ emails: ['ü@example.com'] }, /email address .* IA5String/);
    await refused({ uris: ['https://ü.example/'] }, /URI .* IA5String/);
    await refused({ ips: ['fe80::1%eth0'] }, /not an IP address/);
    await refused({ ips: ['1.2.3'] }, /not an IP address/);
    await refused({ otherSans: [{ oid: '1.2.x', value: 'v' }] }, /other_sans: "1.2.x" is not an OID/);
    await refused({ otherSans: [{ oid: '1.40', value: 'v' }] }, /is not an OID/);
    await refused({ policyOids: ['3.1'] }, /policy_identifiers: "3.1" is not an OID/);
  });
});

describe('DER helpers', () => {
  it('IP address bytes: IPv4, IPv6 (compressed, embedded IPv4), IPv4-mapped IPv6 as 4 bytes (as Go writes them)', () => {
    expect(ipBytes('192.0.2.1').toString('hex')).toBe('c0000201');
    expect(ipBytes('::1').toString('hex')).toBe('00000000000000000000000000000001');
    expect(ipBytes('2001:db8::a:b').toString('hex')).toBe('20010db80000000000000000000a000b');
    expect(ipBytes('fe80:0:0:0:1:2:3:4').toString('hex')).toBe('fe800000000000000001000200030004');
    expect(ipBytes('::').toString('hex')).toBe('0'.repeat(32));
    expect(ipBytes('64:ff9b::192.0.2.33').toString('hex')).toBe('0064ff9b0000000000000000c0000221');
    expect(ipBytes('::ffff:192.0.2.7').toString('hex')).toBe('c0000207');
  });

  it('OIDs of any arc size encode as openssl encodes them', () => {
    for (const id of ['1.2.840.113549.1.1.11', '2.5.29.32.0', '2.999.1', '2.25.329800735698586629295641978511506172918', '1.3.6.1.4.1.4294967296.1']) {
      const r = spawnSync('openssl', ['asn1parse', '-genstr', `OID:${id}`, '-noout', '-out', path.join(tmp, 'oid.der')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(oid(id).toString('hex')).toBe(fs.readFileSync(path.join(tmp, 'oid.der')).toString('hex'));
    }
    expect(() => oid('1.2.03')).toThrow(/not an OID/);
    expect(() => oid('0.40')).toThrow(/not an OID/);
  });
});

// Through the backend: what the writer changes for issue/ and sign/.
const mount = () => dataOrError('pki');
const must = async (m: ReturnType<typeof mount>, op: string, p: string, d?: Record<string, unknown>) => {
  const r = await m(op, p, d);
  if (r.error) throw new Error(`${op} ${p}: ${r.error}`);
  return r.data;
};

describe('leaf keys', () => {
  it("generateLeafKey: the SPKI is the private key's public key, and the private key is in the structure asked for", async () => {
    for (const [type, bits, structure] of [
      ['ec', 256, 'sec1'],
      ['ec', 224, 'sec1'],
      ['ec', 384, 'sec1'],
      ['ec', 521, 'sec1'],
      ['ed25519', 0, 'pkcs8'],
      ['rsa', 2048, 'pkcs1'],
    ] as const) {
      for (const format of ['der', 'pkcs8'] as const) {
        const g = await generateLeafKey(type, bits, format);
        const want = format === 'pkcs8' ? 'pkcs8' : structure;
        expect(g.structure).toBe(want);
        const priv = createPrivateKey({ key: g.privateKeyDer, format: 'der', type: want });
        expect(g.spki.equals(createPublicKey(priv).export({ type: 'spki', format: 'der' }))).toBe(true);
        expect([g.type, g.bits]).toEqual([type, bits]);
      }
    }
  });
});

describe('P-256 leaf keys written here', () => {
  it('are byte for byte what OpenSSL writes for the same key, short scalars included (one key in 256 has a leading zero byte)', () => {
    let short = 0;
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const { d, q } = newP256Key();
      expect(d.length).toBe(32);
      if (d[0] === 0) short++;
      seen.add(d.toString('hex'));
      const key = createPrivateKey({
        key: { kty: 'EC', crv: 'P-256', d: d.toString('base64url'), x: q.toString('base64url', 1, 33), y: q.toString('base64url', 33) },
        format: 'jwk',
      });
      for (const type of ['sec1', 'pkcs8'] as const) expect(p256PrivateKeyDer(d, q, type).equals(key.export({ format: 'der', type }) as Buffer)).toBe(true);
    }
    expect(seen.size).toBe(3000); // a fresh key every time from the one generator
    expect(short).toBeGreaterThan(0); // 3000 keys without one leading zero byte: p ≈ 8e-6
  });

  it('refuses what is not a P-256 scalar and point', () => {
    const { d, q } = newP256Key();
    expect(() => p256PrivateKeyDer(d.subarray(1), q, 'sec1')).toThrow('not a P-256 key');
    expect(() => p256PrivateKeyDer(d, q.subarray(1), 'pkcs8')).toThrow('not a P-256 key');
  });
});

describe('issue/ and sign/ with the DER writer', () => {
  it("roles with street_address and postal_code issue (their attributes were unknown to @peculiar/x509's name parser)", async () => {
    const pki = mount();
    await must(pki, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root', key_type: 'ec' });
    await must(pki, 'update', 'roles/addr', { allow_any_name: true, key_type: 'ec', country: 'US', street_address: '1 Main St', postal_code: '94105' });
    const r = await must(pki, 'update', 'issue/addr', { common_name: 'a.example.com' });
    expect(text(r.certificate)).toContain('Subject: C = US, street = 1 Main St, postalCode = 94105, CN = a.example.com\n');
  });

  it("several values of one attribute share one RDN, sorted as DER sorts a SET OF, in Go's pkix.Name order (as Vault's leaves)", async () => {
    const pki = mount();
    await must(pki, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root', key_type: 'ec' });
    await must(pki, 'update', 'roles/multi', { allow_any_name: true, key_type: 'ec', country: 'US,DE', ou: 'Zeta,Alpha', organization: 'Org' });
    const r = await must(pki, 'update', 'issue/multi', { common_name: 'm.example.com' });
    // DER orders a SET OF by the encodings: the shorter "Zeta" (its length octet) before "Alpha".
    expect(text(r.certificate)).toContain('Subject: C = DE + C = US, O = Org, OU = Zeta + OU = Alpha, CN = m.example.com\n');
  });

  it('a DNS SAN that is not ASCII is issued in its IDNA form, or is a 400 (never a certificate with mangled bytes)', async () => {
    const pki = mount();
    await must(pki, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root', key_type: 'ec' });
    await must(pki, 'update', 'roles/any', { allow_any_name: true, enforce_hostnames: false, key_type: 'ec' });
    const idn = await must(pki, 'update', 'issue/any', { common_name: 'x', alt_names: 'bücher.example' });
    expect(new NodeCert(idn.certificate).subjectAltName).toBe('DNS:x, DNS:xn--bcher-kva.example');
    // Not a domain name at all ("<" is no host character): nothing to convert it to.
    expect((await pki('update', 'issue/any', { common_name: 'x', alt_names: 'bü<cher.example' })).error).toMatch(
      /"bü<cher.example" cannot be encoded as an IA5String/,
    );
  });

  it("under an imported intermediate: the leaf's issuer is the CA's subject byte for byte and its AKI the CA's own SKI", async () => {
    // An openssl root signs the mount's intermediate with a UTF8String subject and a Subject
    // Key Identifier that is not the SHA-1 of its key (RFC 5280 allows any method).
    const rootKey = path.join(tmp, 'root.key');
    const rootCrt = path.join(tmp, 'root.crt');
    expect(
      openssl([
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=Outside Root',
        '-days',
        '2',
        '-keyout',
        rootKey,
        '-out',
        rootCrt,
      ]).status,
    ).toBe(0);
    const inter = mount();
    const { csr } = await must(inter, 'update', 'intermediate/generate/internal', { common_name: 'Imported Intermediate', key_type: 'ec' });
    const ext = write(
      'inter.ext',
      'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=0102030405060708\nauthorityKeyIdentifier=keyid\n',
    );
    const interCrt = path.join(tmp, 'inter.crt');
    const signed = openssl([
      'x509',
      '-req',
      '-in',
      write('inter.csr', csr),
      '-CA',
      rootCrt,
      '-CAkey',
      rootKey,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      ext,
      '-subj',
      '/CN=Imported Intermediate/O=Example',
      '-out',
      interCrt,
    ]);
    expect(signed.status, signed.stderr).toBe(0);
    const interPem = fs.readFileSync(interCrt, 'utf8');
    await must(inter, 'update', 'intermediate/set-signed', { certificate: interPem });
    await must(inter, 'update', 'roles/svc', { allow_any_name: true, key_type: 'ec' });
    const leaf = await must(inter, 'update', 'issue/svc', { common_name: 'db.example.com', ttl: '1h' });
    const caSubject = tbsFields(derOf(interPem)).fields[5];
    expect(caSubject.includes(Buffer.from('0c15496d706f7274656420496e7465726d656469617465', 'hex'))).toBe(true); // UTF8String CN
    expect(tbsFields(derOf(leaf.certificate)).fields[3].equals(caSubject)).toBe(true);
    expect(text(leaf.certificate)).toMatch(/Authority Key Identifier: \n\s+01:02:03:04:05:06:07:08\n/);
    const v = openssl(['verify', '-CAfile', rootCrt, '-untrusted', interCrt, write('leaf-imported.pem', leaf.certificate)]);
    expect(v.stdout + v.stderr).toMatch(/leaf-imported.pem: OK/);
  });
});
