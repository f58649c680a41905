// CSR reading: the strict DER walk (readPlainCsr) and @peculiar/x509's parser
// (readCsrWithX509) must read every CSR the same; the walk leaves anything unusual to the parser.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bits, oid, pem, seq, set, tlv, uint, utf8 } from '../../src/goplugin/der';
import { x509 } from '../../src/secrets/pki/ca';
import { readCsr, readCsrWithX509, readPlainCsr, type ParsedCsr } from '../../src/secrets/pki/csr';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-csr-'));
let n = 0;
/** An openssl CSR: key options, subject, extra -addext options, digest. */
function csr(keyOpts: string[], subj: string, addext: string[] = [], digest = '-sha256'): string {
  const out = path.join(dir, `r${n++}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      ...keyOpts,
      '-nodes',
      '-keyout',
      path.join(dir, 'k.pem'),
      '-subj',
      subj,
      '-utf8',
      ...(digest ? [digest] : []),
      ...addext.flatMap((e) => ['-addext', e]),
      '-out',
      out,
    ],
    { stdio: 'pipe' },
  );
  return fs.readFileSync(out, 'utf8');
}
const EC = (curve: string) => ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`];
const RSA = ['-newkey', 'rsa:2048'];
const ED = ['-newkey', 'ed25519'];
const view = (p: ParsedCsr) => ({
  key: p.key,
  spki: p.spki.toString('hex'),
  cn: p.cn,
  san: p.sanDer?.toString('hex'),
  sanCritical: p.sanCritical,
  basicConstraints: p.basicConstraints,
  extensions: p.extensions.map((e) => `${e.oid.toString('hex')}${e.critical ? ' critical' : ''} ${e.value.toString('hex')}`),
  publicKey: Buffer.from(p.publicKey.rawData).toString('hex'),
});
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => 'no error',
    (e: Error) => `${e.constructor.name}: ${e.message}`,
  );

describe('CSR reading', () => {
  const plain = [
    csr(EC('P-256'), '/CN=svc.example.com'),
    csr(EC('P-256'), '/O=Org Inc/CN=a.example.com/OU=Team', [
      'subjectAltName=DNS:a.example.com,DNS:b.example.com,IP:10.0.0.1,IP:::1,email:me@example.com,URI:spiffe://example.org/x',
    ]),
    csr(EC('P-256'), '/CN=crit.example.com', ['subjectAltName=critical,DNS:crit.example.com', 'keyUsage=digitalSignature']),
    csr(EC('P-256'), '/O=No CN Org', ['subjectAltName=DNS:nocn.example.com']),
    csr(EC('P-256'), '/CN=other.example.com', ['subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com']),
    csr(EC('P-384'), '/CN=p384.example.com', [], '-sha384'),
    csr(EC('P-521'), '/CN=p521.example.com', [], '-sha512'),
    csr(RSA, '/CN=rsa.example.com', ['subjectAltName=DNS:rsa.example.com']),
    csr(ED, '/CN=ed.example.com', ['subjectAltName=DNS:ed.example.com'], ''),
    csr(EC('P-256'), '/CN=*.wild.example.com'),
    csr(EC('P-224'), '/CN=p224.example.com'), // no JWK curve: its key goes through the DER decoder
    // Several extensions, one of no known type: both paths list them all, in order (what sign-verbatim copies).
    csr(EC('P-256'), '/CN=exts.example.com', [
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=codeSigning',
      '1.2.3.4.5.6=ASN1:UTF8String:hello',
      'subjectAltName=DNS:exts.example.com',
    ]),
    csr(EC('P-256'), '/CN=bc.example.com', ['basicConstraints=critical,CA:TRUE,pathlen:1', 'subjectAltName=DNS:bc.example.com']),
  ];
  const unusual = [
    csr(EC('P-256'), '/CN=x\\,y'), // a comma in the CN: @peculiar/x509 escapes it in its subject text
    csr(EC('P-256'), '/CN= lead'),
    csr(EC('P-256'), '/CN=c1/CN=c2'),
    csr(EC('P-256'), '/O=a\\, CN=evil/CN=good'),
    csr(EC('P-256'), '/CN=caf\u00e9.example.com'),
    csr(EC('P-256'), '/CN=a.example.com+O=multi'),
    csr(EC('P-256'), '/CN=sha1.example.com', [], '-sha1'),
    csr(['-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048'], '/CN=pss.example.com'),
  ];
  it('the DER walk reads the CSRs tools write, and reads them as @peculiar/x509 does', async () => {
    for (const p of plain) {
      expect(readPlainCsr(p), p).toBeDefined();
      expect(view(await readCsr(p))).toEqual(view(await readCsrWithX509(p)));
    }
  });
  it('anything unusual is left to @peculiar/x509 (the same answer or the same error as before)', async () => {
    for (const [i, p] of unusual.entries()) {
      expect(readPlainCsr(p), `unusual[${i}]`).toBeUndefined();
      const general = await readCsrWithX509(p).then(view, (e: Error) => e.message);
      expect(await readCsr(p).then(view, (e: Error) => e.message)).toEqual(general);
    }
  });
  it('a bad signature, a truncated or padded CSR, and garbage get the same 400 on both paths', async () => {
    const good = plain[1];
    const der = Buffer.from(good.replace(/-----[^-]+-----/g, ''), 'base64');
    const pemOf = (b: Buffer) =>
      `-----BEGIN CERTIFICATE REQUEST-----\n${b
        .toString('base64')
        .match(/.{1,64}/g)!
        .join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    const flipped = Buffer.from(der);
    flipped[flipped.length - 5] ^= 1;
    const inInfo = Buffer.from(der);
    inInfo[40] ^= 1;
    const bad = [pemOf(flipped), pemOf(inInfo), pemOf(der.subarray(0, der.length - 1)), 'garbage', '', pemOf(Buffer.from('3000', 'hex'))];
    for (const [i, p] of bad.entries()) {
      const e = await errorOf(readCsr(p));
      expect(e, `bad[${i}]`).toMatch(/^UserError: /);
      expect(e).toEqual(await errorOf(readCsrWithX509(p)));
    }
    // A trailing byte after the DER: @peculiar/x509 reads the CSR; the walk leaves it to it.
    const padded = pemOf(Buffer.concat([der, Buffer.from([0])]));
    expect(readPlainCsr(padded)).toBeUndefined();
    expect(await errorOf(readCsr(padded))).toBe('no error');
  });

  it('Basic Constraints and the SAN critical flag are read on both paths; a malformed Basic Constraints value is no 500', async () => {
    const withBc = await readCsr(plain[plain.length - 1]);
    expect(withBc.basicConstraints).toBe(true);
    expect(withBc.sanCritical).toBe(false);
    expect((await readCsr(plain[2])).sanCritical).toBe(true);
    expect((await readCsr(plain[0])).basicConstraints).toBe(false);
    // A value that is no BasicConstraints (a UTF8String): Vault never decodes it, and signs with a
    // warning. @peculiar/x509 throws when it decodes it: the extensions are read without it.
    for (const subj of ['/CN=junk.example.com', '/CN=x\\,y']) {
      const p = csr(EC('P-256'), subj, ['basicConstraints=DER:0c0161', 'subjectAltName=critical,DNS:junk.example.com']);
      const r = await readCsr(p);
      expect(r.basicConstraints).toBe(true);
      expect(r.sanCritical).toBe(true);
      expect(view(r)).toEqual(view(await readCsrWithX509(p)));
    }
  });

  it("a non-minimal DER length is a 400 where Go's x509 refuses the CSR: in the request (read by the general path) or inside its SAN", async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const signed = (info: Buffer) => pem(seq(info, seq(oid('1.2.840.10045.4.3.2')), bits(nodeSign('sha256', info, privateKey))), 'CERTIFICATE REQUEST');
    const request = (subject: Buffer) => signed(seq(uint(Uint8Array.of(0)), subject, spki, tlv(0xa0, Buffer.alloc(0))));
    const subject = seq(set(seq(oid('2.5.4.3'), utf8('x.example.com'))));
    expect((await readCsr(request(subject))).cn).toBe('x.example.com');
    // The subject's length in the long form (30 81 xx): BER, not DER.
    const p = request(Buffer.concat([Uint8Array.of(0x30, 0x81, subject[1]), subject.subarray(2)]));
    expect(readPlainCsr(p)).toBeUndefined();
    expect(new (x509().Pkcs10CertificateRequest)(p).subject).toBe('CN=x.example.com'); // @peculiar/x509 reads BER
    expect(await errorOf(readCsr(p))).toBe('UserError: csr is not a valid PEM certificate request');
    // A SAN whose DNS name has a long-form length (82 81 0d): the request itself is DER, on the walk's path.
    const san = csr(EC('P-256'), '/CN=san.example.com', ['subjectAltName=DER:301082810d612e6578616d706c652e636f6d']);
    expect(readPlainCsr(san)?.sanDer?.toString('hex')).toBe('301082810d612e6578616d706c652e636f6d');
    expect(await errorOf(readCsr(san))).toBe('UserError: csr is not a valid PEM certificate request');
    expect(await errorOf(readCsrWithX509(san))).toBe('UserError: csr is not a valid PEM certificate request');
  });

  it('an extension asked for twice is a 400 on both paths (Go, and so current Vault, refuses such a CSR)', async () => {
    const p = csr(EC('P-256'), '/CN=twice.example.com', ['subjectAltName=DNS:a.example.com', '2.5.29.17=DER:300f820d622e6578616d706c652e636f6d']);
    expect(readPlainCsr(p)).toBeUndefined();
    expect(await errorOf(readCsr(p))).toBe('UserError: certificate request could not be parsed: it asks for the extension 2.5.29.17 more than once');
  });
});
