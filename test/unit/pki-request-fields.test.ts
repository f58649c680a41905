// Request fields of current Vault's PKI (1.19–1.21) that change the certificate issued, beyond
// what Vault 1.8 took: key_usage on CA certificates (root/generate, sign-intermediate), and the
// rest added after it. Each is read back by openssl; bad input is a 400 with a message.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';

const { file, openssl, text, ext } = opensslScratch('vpt-pki-fields-');

/** An EC CSR with this subject and these -addext options. */
function csr(subj: string, addext: string[] = []): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const out = openssl('req', '-new', '-key', key, '-subj', subj, ...addext.flatMap((e) => ['-addext', e]));
  if (!out.includes('BEGIN CERTIFICATE REQUEST')) throw new Error(out);
  return out;
}

describe('PKI: key_usage of CA certificates (current Vault 1.19.2+)', () => {
  const { call, ok } = backendMount('pki');
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'KU Root', key_type: 'ec', ttl: '87600h' });
  });

  it('sign-intermediate: CertSign and CRLSign always, DigitalSignature when asked (both paths)', async () => {
    const plain = await call('update', 'root/sign-intermediate', { csr: csr('/CN=Int A'), ttl: '1h' });
    expect(ext(plain.data.certificate, 'X509v3 Key Usage')).toBe('critical Certificate Sign, CRL Sign');
    expect(plain.warnings ?? []).not.toContainEqual(expect.stringMatching(/key usage/i));
    for (const p of ['root/sign-intermediate', 'issuer/default/sign-intermediate']) {
      const r = await ok('update', p, { csr: csr('/CN=Int B'), ttl: '1h', key_usage: 'CertSign,CRLSign,DigitalSignature' });
      expect(ext(r.certificate, 'X509v3 Key Usage'), p).toBe('critical Digital Signature, Certificate Sign, CRL Sign');
    }
    // "Added to" the two a CA has: asking for DigitalSignature alone (or nothing) keeps them.
    const only = await ok('update', 'root/sign-intermediate', { csr: csr('/CN=Int C'), ttl: '1h', key_usage: ['digitalsignature'] });
    expect(ext(only.certificate, 'X509v3 Key Usage')).toBe('critical Digital Signature, Certificate Sign, CRL Sign');
    const none = await ok('update', 'root/sign-intermediate', { csr: csr('/CN=Int D'), ttl: '1h', key_usage: [] });
    expect(ext(none.certificate, 'X509v3 Key Usage')).toBe('critical Certificate Sign, CRL Sign');
  });

  it("a leaf-only usage is left out with Vault's warning; an unknown name is a 400", async () => {
    const r = await call('update', 'root/sign-intermediate', { csr: csr('/CN=Int E'), ttl: '1h', key_usage: 'CertSign,KeyEncipherment,DigitalSignature' });
    expect(r.error).toBeUndefined();
    expect(ext(r.data.certificate, 'X509v3 Key Usage')).toBe('critical Digital Signature, Certificate Sign, CRL Sign');
    expect(r.warnings?.at(-1)).toBe('Invalid key usage: key usage KeyEncipherment is only valid for non-Ca certs');
    const bad = await call('update', 'root/sign-intermediate', { csr: csr('/CN=Int F'), ttl: '1h', key_usage: 'CertSign,KeySigning' });
    expect(bad.error).toMatch(/key_usage: unknown key usage "KeySigning"/);
  });

  it('with use_csr_values the Key Usage the CSR asks for still replaces it (as before)', async () => {
    const asks = csr('/CN=Int G', ['keyUsage=critical,keyCertSign,cRLSign,nonRepudiation']);
    const r = await ok('update', 'root/sign-intermediate', { csr: asks, use_csr_values: true, ttl: '1h', key_usage: 'DigitalSignature' });
    expect(ext(r.certificate, 'X509v3 Key Usage')).toBe('critical Non Repudiation, Certificate Sign, CRL Sign');
  });

  it('root/generate and root/rotate take it too; intermediate/generate does not put it in a certificate', async () => {
    const root = await call('update', 'root/generate/internal', { common_name: 'KU Root 2', key_type: 'ec', key_usage: 'DigitalSignature,DataEncipherment' });
    expect(root.error).toBeUndefined();
    expect(ext(root.data.certificate, 'X509v3 Key Usage')).toBe('critical Digital Signature, Certificate Sign, CRL Sign');
    expect(root.warnings?.[0]).toBe('Invalid key usage will be ignored: key usage DataEncipherment is only valid for non-Ca certs');
    const rotated = await ok('update', 'root/rotate/internal', { common_name: 'KU Root 3', key_type: 'ec', key_usage: 'DigitalSignature' });
    expect(ext(rotated.certificate, 'X509v3 Key Usage')).toBe('critical Digital Signature, Certificate Sign, CRL Sign');
    const plain = await ok('update', 'root/generate/internal', { common_name: 'KU Root 4', key_type: 'ec' });
    expect(ext(plain.certificate, 'X509v3 Key Usage')).toBe('critical Certificate Sign, CRL Sign');
    expect((await call('update', 'root/generate/internal', { common_name: 'KU Root 5', key_usage: 'Bogus' })).error).toMatch(/unknown key usage "Bogus"/);
  });
});

/** A certificate's notAfter as openssl prints it, as a Date. */
const notAfterOf = (pem: string) =>
  new Date(
    openssl('x509', '-in', file(pem), '-noout', '-enddate')
      .trim()
      .replace(/^notAfter=/, ''),
  );
const notBeforeOf = (pem: string) =>
  new Date(
    openssl('x509', '-in', file(pem), '-noout', '-startdate')
      .trim()
      .replace(/^notBefore=/, ''),
  );

describe('PKI: not_after (current Vault) on issue/, sign/, sign-verbatim, sign-intermediate, root/generate and roles', () => {
  const { call, ok } = backendMount('pki');
  const end = new Date(Date.now() + 5 * 86400_000);
  end.setUTCMilliseconds(0);
  const endText = end.toISOString().replace('.000Z', 'Z');
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'NA Root', key_type: 'ec', ttl: '87600h' });
    await ok('update', 'roles/web', { allowed_domains: 'example.com', allow_subdomains: true, key_type: 'ec', max_ttl: '720h' });
  });

  it('sets the notAfter in place of a ttl on every issuing path', async () => {
    const issued = await ok('update', 'issue/web', { common_name: 'a.example.com', not_after: endText });
    expect(notAfterOf(issued.certificate)).toEqual(end);
    expect(issued.expiration).toBe(end.getTime() / 1000);
    const signed = await ok('update', 'issuer/default/sign/web', { csr: csr('/CN=b.example.com'), not_after: endText });
    expect(notAfterOf(signed.certificate)).toEqual(end);
    const verbatim = await ok('update', 'sign-verbatim', { csr: csr('/CN=c.example.com'), not_after: endText });
    expect(notAfterOf(verbatim.certificate)).toEqual(end);
    const inter = await ok('update', 'root/sign-intermediate', { csr: csr('/CN=Int NA'), not_after: endText });
    expect(notAfterOf(inter.certificate)).toEqual(end);
    // A numeric offset and fractional seconds, as Go's RFC 3339 parser takes them.
    const at2 = new Date(end.getTime() + 2 * 3600_000).toISOString().replace('.000Z', '.5+02:00');
    const offset = await ok('update', 'issue/web', { common_name: 'd.example.com', not_after: at2 });
    expect(notAfterOf(offset.certificate)).toEqual(end);
  });

  it("a root may end in 9999 (IEEE 802.1AR), written as a GeneralizedTime; root/generate's not_before_duration backdates it", async () => {
    const root = await ok('update', 'root/generate/internal', {
      common_name: 'Device Root',
      key_type: 'ec',
      not_after: '9999-12-31T23:59:59Z',
      not_before_duration: '1h',
    });
    expect(notAfterOf(root.certificate)).toEqual(new Date('9999-12-31T23:59:59Z'));
    const before = notBeforeOf(root.certificate).getTime();
    expect(Date.now() - before).toBeGreaterThan(3500_000);
    expect(Date.now() - before).toBeLessThan(3700_000);
  });

  it("a role's not_after wins over the request's; a role's max_ttl cuts a requested one, with a warning", async () => {
    await ok('update', 'roles/fixed', { allowed_domains: 'example.com', allow_subdomains: true, key_type: 'ec', not_after: endText });
    expect((await ok('read', 'roles/fixed')).not_after).toBe(endText);
    const r = await ok('update', 'issue/fixed', { common_name: 'e.example.com', not_after: '2030-01-01T00:00:00Z' });
    expect(notAfterOf(r.certificate)).toEqual(end);
    const far = await call('update', 'issue/web', { common_name: 'f.example.com', not_after: '2040-01-01T00:00:00Z' });
    expect(far.error).toBeUndefined();
    expect(notAfterOf(far.data.certificate).getTime()).toBeLessThanOrEqual(Date.now() + 720 * 3600_000);
    expect(far.warnings).toContainEqual(
      expect.stringMatching(/^not_after "2040-01-01T00:00:00.000Z" is beyond the role's max_ttl "720h0m0s", so max_ttl is being used$/),
    );
  });

  it('bad input is a 400: with a ttl too, a malformed time, one before notBefore, a bad role value', async () => {
    const both = await call('update', 'issue/web', { common_name: 'g.example.com', ttl: '1h', not_after: endText });
    expect(both.error).toBe('Either ttl or not_after should be provided. Both should not be provided in the same request.');
    for (const bad of ['2030-02-30T00:00:00Z', '2030-01-01 00:00:00Z', '2030-01-01T00:00:00', 'tomorrow', '9999-12-31T23:59:59-01:00'])
      expect((await call('update', 'issue/web', { common_name: 'h.example.com', not_after: bad })).error, bad).toMatch(
        /not_after: ".*" is not a time in the format YYYY-MM-DDTHH:MM:SSZ/,
      );
    expect((await call('update', 'root/sign-intermediate', { csr: csr('/CN=Int Past'), not_after: '2001-01-01T00:00:00Z' })).error).toMatch(
      /is not after the certificate's notBefore/,
    );
    expect((await call('update', 'roles/bad', { allow_any_name: true, not_after: 'soon' })).error).toMatch(/not_after: "soon" is not a time/);
    expect((await call('update', 'root/generate/internal', { common_name: 'X', not_before_duration: '-5s' })).error).toBeDefined();
  });
});

describe("PKI: a CSR's Authority Key Identifier where the CSR's extensions are copied (sign-verbatim, use_csr_values)", () => {
  const { call, ok } = backendMount('pki');
  let root: { certificate: string };
  let rootKeyId: string;
  beforeAll(async () => {
    root = await ok('update', 'root/generate/internal', { common_name: 'AKID Root', key_type: 'ec', ttl: '87600h' });
    const t = text(root.certificate).split('\n');
    rootKeyId = t[t.findIndex((l) => l.includes('X509v3 Subject Key Identifier')) + 1].trim().replace(/:/g, '').toLowerCase();
  });
  const verify = (cert: string) => openssl('verify', '-CAfile', file(root.certificate), '-partial_chain', file(cert));

  it("one naming another key gives way to the issuer's (with a warning), so the chain verifies", async () => {
    const asks = csr('/CN=akid.example.com', ['authorityKeyIdentifier=DER:300a80080102030405060708']);
    for (const [p, extra] of [
      ['sign-verbatim', {}],
      ['root/sign-intermediate', { use_csr_values: true }],
    ] as const) {
      const r = await call('update', p, { csr: asks, ttl: '1h', ...extra });
      expect(r.error, p).toBeUndefined();
      expect(ext(r.data.certificate, 'X509v3 Authority Key Identifier').replace(/:/g, '').toLowerCase(), p).toContain(rootKeyId);
      expect(r.warnings, p).toContainEqual(
        `the CSR's Authority Key Identifier (keyid 01:02:03:04:05:06:07:08) does not name the issuer's key (${rootKeyId.match(/../g)!.join(':')}), so the issuer's was used`,
      );
      expect(verify(r.data.certificate), p).toMatch(/: OK/);
    }
    // Without use_csr_values nothing of the CSR's is copied: no warning either.
    const plain = await call('update', 'root/sign-intermediate', { csr: asks, ttl: '1h' });
    expect(plain.warnings ?? []).not.toContainEqual(expect.stringMatching(/Authority Key Identifier/));
  });

  it("one naming the issuer's key is copied as it is (its issuer and serial too)", async () => {
    const serial = openssl('x509', '-in', file(root.certificate), '-noout', '-serial')
      .trim()
      .replace(/^serial=/, '');
    const der = Buffer.concat([Buffer.from([0x80, 20]), Buffer.from(rootKeyId, 'hex'), Buffer.from([0x82, serial.length / 2]), Buffer.from(serial, 'hex')]);
    const value = Buffer.concat([Buffer.from([0x30, der.length]), der]).toString('hex');
    const r = await call('update', 'sign-verbatim', { csr: csr('/CN=same.example.com', [`authorityKeyIdentifier=DER:${value}`]), ttl: '1h' });
    expect(r.error).toBeUndefined();
    expect(r.warnings ?? []).not.toContainEqual(expect.stringMatching(/Authority Key Identifier/));
    expect(text(r.data.certificate)).toMatch(/Authority Key Identifier:\s*\n\s*(keyid:)?[0-9A-F:]+\s*\n\s*serial:/);
    expect(verify(r.data.certificate)).toMatch(/: OK/);
  });
});

describe('PKI: remove_roots_from_chain (current Vault) on issue/, sign/ and sign-verbatim', () => {
  const rootMount = backendMount('pki');
  const { call, ok } = backendMount('pki');
  let rootPem: string;
  let intPem: string;
  beforeAll(async () => {
    rootPem = (await rootMount.ok('update', 'root/generate/internal', { common_name: 'Chain Root', key_type: 'ec', ttl: '87600h' })).certificate;
    const { csr: intCsr } = await ok('update', 'intermediate/generate/internal', { common_name: 'Chain Int', key_type: 'ec' });
    intPem = (await rootMount.ok('update', 'root/sign-intermediate', { csr: intCsr, ttl: '8760h' })).certificate;
    await ok('update', 'intermediate/set-signed', { certificate: `${intPem}\n${rootPem}` });
    await ok('update', 'roles/web', { allowed_domains: 'example.com', allow_subdomains: true, key_type: 'ec' });
    await rootMount.ok('update', 'roles/web', { allowed_domains: 'example.com', allow_subdomains: true, key_type: 'ec' });
  });
  const same = (a: string, b: string) => a.trim() === b.trim();

  it('leaves the root out of the chain; a chain of the root alone is no chain', async () => {
    const full = await ok('update', 'issue/web', { common_name: 'a.example.com', ttl: '1h' });
    expect(full.ca_chain).toHaveLength(2);
    const trimmed = await ok('update', 'issue/web', { common_name: 'a.example.com', ttl: '1h', remove_roots_from_chain: true });
    expect(trimmed.ca_chain).toHaveLength(1);
    expect(same(trimmed.ca_chain[0], intPem)).toBe(true);
    const signed = await ok('update', 'sign/web', { csr: csr('/CN=b.example.com'), ttl: '1h', remove_roots_from_chain: true, format: 'der' });
    expect(signed.ca_chain).toEqual([Buffer.from(intPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64')]);
    const verbatim = await ok('update', 'sign-verbatim', { csr: csr('/CN=c.example.com'), ttl: '1h', remove_roots_from_chain: true });
    expect(verbatim.ca_chain).toHaveLength(1);
    const underRoot = await rootMount.ok('update', 'issue/web', { common_name: 'd.example.com', ttl: '1h', remove_roots_from_chain: true });
    expect(underRoot.ca_chain).toBeUndefined();
    expect(same(underRoot.issuing_ca, rootPem)).toBe(true);
    expect((await call('update', 'issue/web', { common_name: 'e.example.com', remove_roots_from_chain: 'maybe' })).error).toBeDefined();
  });
});

describe('PKI: user_ids and allowed_user_ids (current Vault 1.14+)', () => {
  const { call, ok } = backendMount('pki');
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'UID Root', key_type: 'ec', ttl: '87600h' });
    await ok('update', 'roles/people', { allow_any_name: true, key_type: 'ec', allowed_user_ids: 'alice,svc-*' });
    await ok('update', 'roles/none', { allow_any_name: true, key_type: 'ec' });
  });
  const subject = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-subject', '-nameopt', 'RFC2253').trim();

  it("puts each allowed one in the subject as a UID, after the CN; sign/ takes the CSR's when the request names none", async () => {
    const r = await ok('update', 'issue/people', { common_name: 'host.example.com', user_ids: 'ALICE,svc-build', ttl: '1h' });
    expect(subject(r.certificate)).toBe('subject=UID=svc-build,UID=ALICE,CN=host.example.com');
    expect((await ok('read', 'roles/people')).allowed_user_ids).toEqual(['alice', 'svc-*']);
    const fromCsr = await ok('update', 'sign/people', { csr: csr('/CN=c.example.com/UID=svc-deploy'), ttl: '1h' });
    expect(subject(fromCsr.certificate)).toBe('subject=UID=svc-deploy,CN=c.example.com');
    const overridden = await ok('update', 'sign/people', { csr: csr('/CN=c.example.com/UID=svc-deploy'), user_ids: ['alice'], ttl: '1h' });
    expect(subject(overridden.certificate)).toBe('subject=UID=alice,CN=c.example.com');
  });

  it("one the role does not allow is a 400 in Vault's words, the CSR's too; sign-verbatim keeps the CSR's subject", async () => {
    expect((await call('update', 'issue/people', { common_name: 'h.example.com', user_ids: 'bob' })).error).toBe('user_id bob is not allowed by this role');
    expect((await call('update', 'issue/none', { common_name: 'h.example.com', user_ids: 'alice' })).error).toBe('user_id alice is not allowed by this role');
    expect((await call('update', 'sign/none', { csr: csr('/CN=c.example.com/UID=mallory') })).error).toBe('user_id mallory is not allowed by this role');
    const v = await ok('update', 'sign-verbatim', { csr: csr('/CN=c.example.com/UID=mallory'), ttl: '1h' });
    expect(subject(v.certificate)).toBe('subject=UID=mallory,CN=c.example.com');
  });
});

describe('PKI: intermediate/generate add_basic_constraints and key_usage (current Vault)', () => {
  const { call, ok } = backendMount('pki');
  const rootMount = backendMount('pki');
  beforeAll(async () => {
    await rootMount.ok('update', 'root/generate/internal', { common_name: 'CSR Root', key_type: 'ec', ttl: '87600h' });
  });
  const reqText = (pem: string) => openssl('req', '-in', file(pem), '-noout', '-text');

  it('asks for Basic Constraints CA:TRUE and the key usages in the CSR (both critical); none by default', async () => {
    const { csr: asked } = await ok('update', 'intermediate/generate/internal', {
      common_name: 'Int CSR',
      key_type: 'ec',
      add_basic_constraints: true,
      key_usage: 'CertSign,CRLSign,DigitalSignature',
    });
    const t = reqText(asked);
    expect(t).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(t).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign\n/);
    expect(openssl('req', '-in', file(asked), '-noout', '-verify')).toMatch(/verify OK|Certificate request self-signature verify OK/);
    // Signed with use_csr_values, the key usage is the CSR's and the Basic Constraints the signer's.
    const signed = await rootMount.ok('update', 'root/sign-intermediate', { csr: asked, use_csr_values: true, ttl: '1h' });
    expect(ext(signed.certificate, 'X509v3 Key Usage')).toBe('critical Digital Signature, Certificate Sign, CRL Sign');
    expect(ext(signed.certificate, 'X509v3 Basic Constraints')).toBe('critical CA:TRUE');
    const { csr: plain } = await ok('update', 'intermediate/generate/internal', { common_name: 'Int CSR 2', key_type: 'ec' });
    expect(reqText(plain)).not.toMatch(/Basic Constraints|Key Usage/);
  });

  it('an unknown key usage is a 400, and leaves no key behind', async () => {
    const before = (await ok('list', 'keys')).keys.length;
    expect((await call('update', 'intermediate/generate/internal', { common_name: 'X', key_type: 'ec', key_usage: 'CertSign,Nope' })).error).toMatch(
      /key_usage: unknown key usage "Nope"/,
    );
    expect((await ok('list', 'keys')).keys).toHaveLength(before);
  });
});

describe("PKI: sign-intermediate's skid (current Vault)", () => {
  const { call, ok } = backendMount('pki');
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'SKID Root', key_type: 'ec', ttl: '87600h' });
  });

  it("writes the Subject Key Identifier asked for (hex; colons, dashes and spaces allowed as Vault strips them: OpenSSL's, Vault's and Chromium's separators); bad hex is a 400", async () => {
    for (const skid of ['0a:1b:2c:3d:4e:5f', '0A1B2C3D4E5F', '0a-1b-2c-3d-4e-5f', '0a 1b 2c 3d 4e 5f'])
      for (const p of ['root/sign-intermediate', 'issuer/default/sign-intermediate']) {
        const r = await ok('update', p, { csr: csr('/CN=Cross'), ttl: '1h', skid });
        expect(ext(r.certificate, 'X509v3 Subject Key Identifier'), `${p} ${skid}`).toBe('0A:1B:2C:3D:4E:5F');
      }
    const plain = await ok('update', 'root/sign-intermediate', { csr: csr('/CN=Plain'), ttl: '1h' });
    expect(ext(plain.certificate, 'X509v3 Subject Key Identifier')).not.toBe('0A:1B:2C:3D:4E:5F');
    for (const bad of ['xyz', '0a1', 'zz:zz'])
      expect((await call('update', 'root/sign-intermediate', { csr: csr('/CN=Bad'), skid: bad })).error, bad).toMatch(
        /skid: unable to parse requested SKID value as hex/,
      );
  });
});

describe('PKI: Name Constraints beyond permitted_dns_domains (current Vault) on root/generate and sign-intermediate', () => {
  const { call, ok } = backendMount('pki');

  it("writes them in Go's order, critical, and issuing under the CA keeps to them", async () => {
    const root = await ok('update', 'root/generate/internal', {
      common_name: 'NC Root',
      key_type: 'ec',
      ttl: '87600h',
      permitted_dns_domains: 'example.com',
      excluded_dns_domains: 'secret.example.com',
      permitted_ip_ranges: '10.0.0.0/8,2001:db8::/32',
      excluded_ip_ranges: '10.9.0.0/16',
      permitted_email_addresses: 'example.com',
      excluded_email_addresses: 'boss@example.com',
      permitted_uri_domains: '.example.com',
      excluded_uri_domains: 'admin.example.com',
    });
    const t = text(root.certificate);
    expect(t).toMatch(/X509v3 Name Constraints: critical/);
    expect(t.replace(/\s+/g, ' ')).toContain(
      'Permitted: DNS:example.com IP:10.0.0.0/255.0.0.0 IP:2001:DB8:0:0:0:0:0:0/FFFF:FFFF:0:0:0:0:0:0 email:example.com URI:.example.com Excluded: DNS:secret.example.com IP:10.9.0.0/255.255.0.0 email:boss@example.com URI:admin.example.com',
    );
    await ok('update', 'roles/any', { allow_any_name: true, key_type: 'ec', allowed_uri_sans: '*' });
    expect((await call('update', 'issue/any', { common_name: 'a.example.com', ip_sans: '10.1.2.3', ttl: '1h' })).error).toBeUndefined();
    expect((await call('update', 'issue/any', { common_name: 'x.secret.example.com', ttl: '1h' })).error).toMatch(/excluded by the Name Constraints/);
    expect((await call('update', 'issue/any', { common_name: 'a.example.com', ip_sans: '10.9.1.1', ttl: '1h' })).error).toMatch(
      /IP address "10.9.1.1" is excluded/,
    );
    expect((await call('update', 'issue/any', { common_name: 'a.example.com', ip_sans: '192.0.2.1', ttl: '1h' })).error).toMatch(
      /IP address "192.0.2.1" is outside/,
    );
    expect((await call('update', 'issue/any', { common_name: 'a.example.com', uri_sans: 'https://admin.example.com/x', ttl: '1h' })).error).toMatch(/URI host/);
  });

  it('sign-intermediate takes them too; a bad range, domain or address is a 400 naming the field', async () => {
    const r = await ok('update', 'root/sign-intermediate', {
      csr: csr('/CN=NC Int'),
      ttl: '1h',
      excluded_ip_ranges: '192.168.0.0/16',
      excluded_dns_domains: 'corp.example.com',
    });
    expect(text(r.certificate).replace(/\s+/g, ' ')).toContain('Excluded: DNS:corp.example.com IP:192.168.0.0/255.255.0.0');
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ permitted_ip_ranges: '10.0.0.0' }, /permitted_ip_ranges: "10.0.0.0" is not an IP range in CIDR notation/],
      [{ excluded_ip_ranges: '10.0.0.0/33' }, /excluded_ip_ranges: "10.0.0.0\/33" is not an IP range/],
      [{ excluded_dns_domains: 'bad domain' }, /excluded_dns_domains: "bad domain" is not a DNS domain/],
      [{ permitted_email_addresses: 'é@example.com' }, /permitted_email_addresses: ".*" must be printable ASCII/],
    ];
    for (const [fields, message] of cases) {
      expect((await call('update', 'root/sign-intermediate', { csr: csr('/CN=Bad NC'), ...fields })).error, JSON.stringify(fields)).toMatch(message);
      expect((await call('update', 'root/generate/internal', { common_name: 'Bad NC', key_type: 'ec', ...fields })).error, JSON.stringify(fields)).toMatch(
        message,
      );
    }
  });
});

describe("PKI: serial_number_source (current Vault): sign/ takes the CSR's subject serialNumber", () => {
  const { call, ok } = backendMount('pki');
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'SN Root', key_type: 'ec', ttl: '87600h' });
    await ok('update', 'roles/devices', { allow_any_name: true, key_type: 'ec', allowed_serial_numbers: 'dev-*' });
    await ok('update', 'roles/json', { allow_any_name: true, key_type: 'ec', allowed_serial_numbers: 'dev-*', serial_number_source: 'json' });
    await ok('update', 'roles/plain', { allow_any_name: true, key_type: 'ec' });
  });
  const subject = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-subject', '-nameopt', 'RFC2253').trim();

  it("json-csr (the default): the request's serial_number, else the CSR's; json: the request's only", async () => {
    expect((await ok('read', 'roles/devices')).serial_number_source).toBe('json-csr');
    const fromCsr = await ok('update', 'sign/devices', { csr: csr('/CN=d1/serialNumber=dev-001'), ttl: '1h' });
    expect(subject(fromCsr.certificate)).toBe('subject=serialNumber=dev-001,CN=d1');
    const fromJson = await ok('update', 'sign/devices', { csr: csr('/CN=d1/serialNumber=dev-001'), serial_number: 'dev-002', ttl: '1h' });
    expect(subject(fromJson.certificate)).toBe('subject=serialNumber=dev-002,CN=d1');
    const jsonOnly = await ok('update', 'sign/json', { csr: csr('/CN=d1/serialNumber=dev-001'), ttl: '1h' });
    expect(subject(jsonOnly.certificate)).toBe('subject=CN=d1');
    const none = await ok('update', 'sign/plain', { csr: csr('/CN=d2'), ttl: '1h' });
    expect(subject(none.certificate)).toBe('subject=CN=d2');
  });

  it("the CSR's is checked against allowed_serial_numbers like the request's, refused in Vault's words; a bad source is a 400", async () => {
    expect((await call('update', 'sign/plain', { csr: csr('/CN=d3/serialNumber=dev-003') })).error).toBe('serial_number dev-003 not allowed by this role');
    expect((await call('update', 'issue/devices', { common_name: 'd4', serial_number: 'xx-1' })).error).toBe('serial_number xx-1 not allowed by this role');
    expect((await call('update', 'roles/bad', { allow_any_name: true, serial_number_source: 'csr' })).error).toBeDefined();
  });
});

describe('PKI: signature_bits and use_pss (current Vault)', () => {
  const { call, ok } = backendMount('pki');
  const sigAlg = (pem: string, what = 'x509') => /Signature Algorithm: (\S+)/.exec(openssl(what, '-in', file(pem), '-noout', '-text'))?.[1];
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'Sig Root', key_type: 'ec', ttl: '87600h' });
  });

  it("picks the hash of the signature on every signing path; 0 keeps the key's own", async () => {
    const rsa = await ok('update', 'root/generate/internal', { common_name: 'RSA Root', key_type: 'rsa', signature_bits: 384, issuer_name: 'rsa' });
    expect(sigAlg(rsa.certificate)).toBe('sha384WithRSAEncryption');
    const plainRsa = await ok('update', 'root/generate/internal', { common_name: 'RSA Root 2', key_type: 'rsa', issuer_name: 'rsa2' });
    expect(sigAlg(plainRsa.certificate)).toBe('sha256WithRSAEncryption');
    const inter = await ok('update', 'root/sign-intermediate', { csr: csr('/CN=Sig Int'), ttl: '1h', signature_bits: 512 });
    expect(sigAlg(inter.certificate)).toBe('ecdsa-with-SHA512');
    await ok('update', 'roles/sha384', { allow_any_name: true, key_type: 'ec', signature_bits: 384 });
    expect((await ok('read', 'roles/sha384')).signature_bits).toBe(384);
    const leaf = await ok('update', 'issue/sha384', { common_name: 'a.example.com', ttl: '1h' });
    expect(sigAlg(leaf.certificate)).toBe('ecdsa-with-SHA384');
    const verbatim = await ok('update', 'sign-verbatim/sha384', { csr: csr('/CN=v.example.com'), ttl: '1h', signature_bits: 512 });
    expect(sigAlg(verbatim.certificate)).toBe('ecdsa-with-SHA512');
    const { csr: intCsr } = await ok('update', 'intermediate/generate/internal', { common_name: 'CSR 512', key_type: 'ec', signature_bits: 512 });
    expect(sigAlg(intCsr, 'req')).toBe('ecdsa-with-SHA512');
    expect(openssl('req', '-in', file(intCsr), '-noout', '-verify')).toMatch(/verify OK/);
  });

  it('another size is a 400, on roles too; use_pss=true is taken (RSASSA-PSS: pki-pss.test.ts), and ignored by this EC issuer', async () => {
    expect((await call('update', 'root/sign-intermediate', { csr: csr('/CN=Bad'), signature_bits: 1024 })).error).toMatch(
      /signature_bits: 1024 is not supported/,
    );
    const pss = await ok('update', 'root/generate/internal', { common_name: 'PSS', key_type: 'rsa', use_pss: true, issuer_name: 'pss' });
    expect(sigAlg(pss.certificate)).toBe('rsassaPss');
    expect((await ok('update', 'roles/pss', { allow_any_name: true, use_pss: true })).use_pss).toBe(true);
    expect((await call('update', 'roles/bits', { allow_any_name: true, signature_bits: 100 })).error).toMatch(/signature_bits: 100/);
    expect(sigAlg((await ok('update', 'sign-verbatim', { csr: csr('/CN=x'), use_pss: true })).certificate)).toBe('ecdsa-with-SHA256');
  });
});

describe('PKI: allowed_uri_sans_template on roles (current Vault)', () => {
  const { call, ok } = backendMount('pki');
  it('is kept; an identity template in allowed_uri_sans is a 400 with the reason (no entity data reaches a plugin)', async () => {
    await ok('update', 'roles/uris', { allow_any_name: true, allowed_uri_sans: 'spiffe://example.org/*', allowed_uri_sans_template: true });
    expect((await ok('read', 'roles/uris')).allowed_uri_sans_template).toBe(true);
    expect((await ok('read', 'roles/uris')).allowed_uri_sans).toEqual(['spiffe://example.org/*']);
    const templated = await call('update', 'roles/t', { allowed_uri_sans: 'spiffe://example.org/{{identity.entity.name}}', allowed_uri_sans_template: true });
    expect(templated.error).toMatch(/allowed_uri_sans_template: identity templates .* cannot be filled here/);
  });
});
