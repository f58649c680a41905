// Email, otherName and Certificate Policies in issued certificates, and the role fields that
// govern them (allowed_other_sans, policy_identifiers, allowed_serial_numbers,
// allow_token_displayname, not_before_duration, allowed_domains_template, generate_lease):
// each applied, or refused with a message. Certificates read back by openssl.
import { beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { SecretsBackend } from '../../src/secrets/backend';
import { toReply } from '../../src/secrets/plugin';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';
import { MemoryStorage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';

const { file, openssl } = opensslScratch('vpt-pki-san-');
const text = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-text');

const { ok } = backendMount('pki');
const call = (op: string, p: string, d: Record<string, unknown> = {}, displayName = '') => ok(op, p, d, displayName);
function csrWith(subj: string, san?: string): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return openssl(
    'req',
    '-new',
    '-key',
    file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    '-subj',
    subj,
    ...(san ? ['-addext', `subjectAltName=${san}`] : []),
  );
}

describe('PKI: email, other and policy SANs, and the role fields behind them', () => {
  let ca = '';
  beforeAll(async () => {
    ca = (await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'SAN Root', key_type: 'ec' })).certificate;
    await call('update', 'roles/mail', {
      allowed_domains: 'example.com',
      allow_subdomains: true,
      allow_bare_domains: true,
      key_type: 'ec',
      email_protection_flag: true,
    });
  });

  it('emails in alt_names and an email CN become rfc822Name SANs (not DNS), checked against allowed_domains', async () => {
    const r = await call('update', 'issue/mail', { common_name: 'alice@example.com', alt_names: 'bob@mx.example.com,www.example.com' });
    const t = text(r.certificate);
    expect(t).toMatch(/email:alice@example\.com/);
    expect(t).toMatch(/email:bob@mx\.example\.com/);
    expect(t).toMatch(/DNS:www\.example\.com/);
    expect(t).not.toMatch(/DNS:[a-z]+@/);
    expect(openssl('verify', '-CAfile', file(ca), file(r.certificate))).toMatch(/: OK/);
    await expect(call('update', 'issue/mail', { common_name: 'x.example.com', alt_names: 'eve@evil.org' })).rejects.toThrow(/not allowed by this role/);
    await expect(call('update', 'issue/mail', { common_name: 'x.example.com', alt_names: 'a@b@example.com' })).rejects.toThrow(/not allowed|not an email/);
    const excluded = await call('update', 'issue/mail', { common_name: 'carol@example.com', exclude_cn_from_sans: true, alt_names: 'www.example.com' });
    expect(text(excluded.certificate)).not.toMatch(/email:carol/);
  });

  it('a root\'s alt_names with an "@" are email SANs too', async () => {
    const other = new SecretsBackend(new MemoryStorage(), createLogger({ level: 'error', sink: () => undefined }), 'pki');
    const rep: any = toReply(
      await other.handle(
        'update' as never,
        'root/generate/internal',
        { ttl: '87600h', common_name: 'Mail Root', key_type: 'ec', alt_names: 'ca@example.com,ca.example.com' },
        { displayName: '', mountPoint: 'pki/' },
      ),
    );
    const t = text(JSON.parse(rep.response.data).certificate);
    expect(t).toMatch(/DNS:ca\.example\.com, email:ca@example\.com/);
  });

  it("emails in a CSR's SANs are taken with use_csr_sans and checked", async () => {
    const r = await call('update', 'sign/mail', { csr: csrWith('/CN=svc.example.com', 'email:ops@example.com,DNS:svc.example.com') });
    expect(text(r.certificate)).toMatch(/email:ops@example\.com/);
    await expect(call('update', 'sign/mail', { csr: csrWith('/CN=svc.example.com', 'email:ops@evil.org') })).rejects.toThrow(/not allowed by this role/);
  });

  it('other_sans: UTF8 otherNames allowed by allowed_other_sans (OID and value globs, or "*"); others refused', async () => {
    await call('update', 'roles/other', {
      allow_any_name: true,
      key_type: 'ec',
      allowed_other_sans: '1.3.6.1.4.1.311.20.2.3;UTF8:*@example.com,1.2.3.4;UTF8:fixed',
    });
    const r = await call('update', 'issue/other', {
      common_name: 'o.example.com',
      other_sans: '1.3.6.1.4.1.311.20.2.3;UTF8:alice@example.com,1.2.3.4;UTF8:fixed',
    });
    const t = text(r.certificate);
    expect(t).toMatch(/othername: UPN::alice@example\.com/); // OpenSSL's name for 1.3.6.1.4.1.311.20.2.3
    expect(t).toMatch(/othername: 1\.2\.3\.4::fixed/);
    // The value is [0] EXPLICIT UTF8String: a0 07 0c 05 "fixed" in the DER.
    expect(new X509Certificate(r.certificate).raw.includes(Buffer.concat([Buffer.from([0xa0, 0x07, 0x0c, 0x05]), Buffer.from('fixed')]))).toBe(true);
    await expect(call('update', 'issue/other', { common_name: 'o.example.com', other_sans: '1.2.3.4;UTF8:other' })).rejects.toThrow(/not allowed by this role/);
    await expect(call('update', 'issue/other', { common_name: 'o.example.com', other_sans: '1.2.3.5;UTF8:fixed' })).rejects.toThrow(/not allowed by this role/);
    await expect(call('update', 'issue/other', { common_name: 'o.example.com', other_sans: '1.2.3.4;IA5:fixed' })).rejects.toThrow(/UTF8 is the only type/);
    await expect(call('update', 'issue/mail', { common_name: 'x.example.com', other_sans: '1.2.3.4;UTF8:fixed' })).rejects.toThrow(/not allowed by this role/);
    await expect(call('update', 'roles/bad', { allowed_other_sans: 'not-an-oid;UTF8:x' })).rejects.toThrow(/<oid>;UTF8:<value>/);
    await call('update', 'roles/anyother', { allow_any_name: true, key_type: 'ec', allowed_other_sans: '*' });
    expect(text((await call('update', 'issue/anyother', { common_name: 'o', other_sans: '1.2.3.9;UTF8:whatever' })).certificate)).toMatch(
      /othername: 1\.2\.3\.9[^\n]*whatever/,
    );
  });

  it("policy_identifiers: OIDs, or current Vault's JSON form, go into Certificate Policies; qualifiers are refused", async () => {
    await call('update', 'roles/pol', { allow_any_name: true, key_type: 'ec', policy_identifiers: '1.3.6.1.4.1.7.8,2.23.140.1.2.1' });
    expect((await call('read', 'roles/pol')).policy_identifiers).toEqual(['1.3.6.1.4.1.7.8', '2.23.140.1.2.1']);
    const t = text((await call('update', 'issue/pol', { common_name: 'p' })).certificate);
    expect(t).toMatch(/X509v3 Certificate Policies:[\s\S]*Policy: 1\.3\.6\.1\.4\.1\.7\.8[\s\S]*Policy: 2\.23\.140\.1\.2\.1/);
    await call('update', 'roles/pol', { allow_any_name: true, key_type: 'ec', policy_identifiers: '[{"oid":"1.2.3.4.5"},{"oid":"1.2.3.4.6"}]' });
    expect((await call('read', 'roles/pol')).policy_identifiers).toEqual(['1.2.3.4.5', '1.2.3.4.6']);
    expect(text((await call('update', 'issue/pol', { common_name: 'p' })).certificate)).toMatch(/Policy: 1\.2\.3\.4\.5[\s\S]*Policy: 1\.2\.3\.4\.6/);
    await call('update', 'roles/pol', { allow_any_name: true, key_type: 'ec', policy_identifiers: [{ oid: '1.2.3.4.7' }] });
    expect((await call('read', 'roles/pol')).policy_identifiers).toEqual(['1.2.3.4.7']);
    await expect(call('update', 'roles/pol', { policy_identifiers: '[{"oid":"1.2.3","cps":"https://example.com/cps"}]' })).rejects.toThrow(
      /qualifiers \(cps, notice\) are not supported/,
    );
    await expect(call('update', 'roles/pol', { policy_identifiers: 'not.an.oid' })).rejects.toThrow(/is not an OID/);
    expect(text((await call('update', 'issue/mail', { common_name: 'm.example.com' })).certificate)).not.toMatch(/Certificate Policies/);
  });

  it("sign-verbatim takes Vault's fields: other_sans are added; common_name and serial_number are ignored (the subject is the CSR's, as Vault uses the CSR values)", async () => {
    const v = await call('update', 'sign-verbatim', {
      csr: csrWith('/O=NoCN'),
      common_name: 'given.example.net',
      serial_number: 'ANY-7',
      other_sans: '1.3.6.1.4.1.311.20.2.3;UTF8:v@example.net',
      exclude_cn_from_sans: true,
    });
    const t = text(v.certificate);
    expect(openssl('x509', '-in', file(v.certificate), '-noout', '-subject').trim()).toBe('subject=O = NoCN');
    expect(t).toMatch(/othername:.*v@example\.net/i);
    expect(t).not.toMatch(/DNS:given\.example\.net/);
  });

  it("allowed_serial_numbers governs the subject serialNumber; allow_token_displayname the token's display name; not_before_duration the start", async () => {
    await call('update', 'roles/ser', {
      allowed_domains: 'example.com',
      allow_subdomains: true,
      key_type: 'ec',
      allowed_serial_numbers: 'SN-*',
      allow_token_displayname: true,
      not_before_duration: '1h',
    });
    const r = await call('update', 'issue/ser', { common_name: 'a.example.com', serial_number: 'SN-42' });
    expect(openssl('x509', '-in', file(r.certificate), '-noout', '-subject')).toMatch(/serialNumber\s*=\s*SN-42/);
    const start = new Date(new X509Certificate(r.certificate).validFrom).getTime();
    expect(Date.now() - start).toBeGreaterThan(3500_000);
    await expect(call('update', 'issue/ser', { common_name: 'a.example.com', serial_number: 'XX-1' })).rejects.toThrow(
      'serial_number XX-1 not allowed by this role',
    );
    await expect(call('update', 'issue/mail', { common_name: 'a.example.com', serial_number: 'SN-1' })).rejects.toThrow(
      'serial_number SN-1 not allowed by this role',
    );
    expect(new X509Certificate((await call('update', 'issue/ser', { common_name: 'token-alice' }, 'token-alice')).certificate).subject).toContain(
      'CN=token-alice',
    );
    await expect(call('update', 'issue/ser', { common_name: 'token-alice' }, 'token-bob')).rejects.toThrow(/not allowed by this role/);
    await expect(call('update', 'issue/mail', { common_name: 'token-alice' }, 'token-alice')).rejects.toThrow(/not allowed by this role/);
  });

  it('role subject extras street_address and postal_code are issued (they failed in the name parser before)', async () => {
    await call('update', 'roles/addr', { allow_any_name: true, key_type: 'ec', street_address: '1 Main St', postal_code: '12345', country: 'DE' });
    const subject = openssl('x509', '-in', file((await call('update', 'issue/addr', { common_name: 'addr' })).certificate), '-noout', '-subject');
    expect(subject).toMatch(/street\s*=\s*1 Main St/);
    expect(subject).toMatch(/postalCode\s*=\s*12345/);
  });

  it('generate_lease=true and templated allowed_domains are refused with a message; literal domains with allowed_domains_template work', async () => {
    await expect(call('update', 'roles/lease', { allow_any_name: true, generate_lease: true })).rejects.toThrow(/generate_lease=true is not supported/);
    await expect(call('update', 'roles/tpl', { allowed_domains: '{{identity.entity.name}}.example.com', allowed_domains_template: true })).rejects.toThrow(
      /no entity data/,
    );
    await call('update', 'roles/tpl', { allowed_domains: 'example.com', allow_subdomains: true, allowed_domains_template: true, key_type: 'ec' });
    expect((await call('update', 'issue/tpl', { common_name: 't.example.com' })).certificate).toMatch(/BEGIN CERTIFICATE/);
  });

  describe('SAN order, as current Vault writes it', () => {
    const MIXED =
      'URI:spiffe://x/b,IP:10.0.0.9,email:zed@example.com,DNS:z.example.com,otherName:1.2.3.4;UTF8:zz,DNS:b.example.com,IP:10.0.0.1,email:abe@example.com,URI:spiffe://x/a,otherName:1.2.3.5;UTF8:aa,otherName:1.2.3.4;UTF8:yy';
    const MIXED_TEXT =
      'URI:spiffe://x/b, IP Address:10.0.0.9, email:zed@example.com, DNS:z.example.com, othername: 1.2.3.4::zz, DNS:b.example.com, IP Address:10.0.0.1, email:abe@example.com, URI:spiffe://x/a, othername: 1.2.3.5::aa, othername: 1.2.3.4::yy';
    const ONLY_NAMES = 'critical,URI:spiffe://x/b,IP:10.0.0.9,email:zed@example.com,DNS:z.example.com,DNS:b.example.com';
    /** openssl's SAN line, and whether the extension is critical. */
    const san = (pem: string) => {
      const m = /X509v3 Subject Alternative Name:( critical)? *\n\s*(.*)\n/.exec(text(pem));
      return { critical: Boolean(m?.[1]), names: m?.[2] ?? '' };
    };
    beforeAll(async () => {
      await call('update', 'roles/order', {
        allow_any_name: true,
        key_type: 'any',
        use_csr_sans: true,
        use_csr_common_name: true,
        allowed_other_sans: '*',
        allowed_uri_sans: '*',
      });
      await call('update', 'roles/orderec', { allow_any_name: true, key_type: 'ec' });
    });

    it('issue/, sign/ (use_csr_sans), root/generate: DNS and email SANs sorted, the CN among them; IPs and URIs in their order; other SANs by OID, first', async () => {
      const signed = await call('update', 'sign/order', { csr: csrWith('/CN=m.example.com', MIXED), other_sans: '1.2.3.5;UTF8:req' });
      expect(san(signed.certificate)).toEqual({
        critical: false,
        names:
          'othername: 1.2.3.5::req, othername: 1.2.3.5::aa, othername: 1.2.3.4::zz, othername: 1.2.3.4::yy, DNS:b.example.com, DNS:m.example.com, DNS:z.example.com, email:abe@example.com, email:zed@example.com, IP Address:10.0.0.9, IP Address:10.0.0.1, URI:spiffe://x/b, URI:spiffe://x/a',
      });
      // A critical SAN in the CSR is not copied by sign/: the SANs are built anew.
      expect(san((await call('update', 'sign/order', { csr: csrWith('/CN=m.example.com', ONLY_NAMES) })).certificate)).toEqual({
        critical: false,
        names: 'DNS:b.example.com, DNS:m.example.com, DNS:z.example.com, email:zed@example.com, IP Address:10.0.0.9, URI:spiffe://x/b',
      });
      const issued = await call('update', 'issue/orderec', {
        common_name: 'm.example.com',
        alt_names: 'z.example.com,b.example.com,zed@example.com,abe@example.com,b.example.com',
        ip_sans: '10.0.0.9,10.0.0.1',
      });
      expect(new X509Certificate(issued.certificate).subjectAltName).toBe(
        'DNS:b.example.com, DNS:m.example.com, DNS:z.example.com, email:abe@example.com, email:zed@example.com, IP Address:10.0.0.9, IP Address:10.0.0.1',
      );
      const { ok: other } = backendMount('pki');
      const root = await other('update', 'root/generate/internal', {
        common_name: 'm.example.com',
        alt_names: 'z.example.com,zz@example.com,b.example.com,aa@example.com',
        key_type: 'ec',
      });
      expect(new X509Certificate(root.certificate).subjectAltName).toBe(
        'DNS:b.example.com, DNS:m.example.com, DNS:z.example.com, email:aa@example.com, email:zz@example.com',
      );
    });

    it("sign-verbatim and sign-intermediate with use_csr_values: the CSR's SAN extension as it is; added other SANs make a new one, the CSR's names in its order", async () => {
      const onlyNames = csrWith('/CN=m.example.com', ONLY_NAMES);
      const mixed = csrWith('/CN=m.example.com', MIXED);
      const NAMES_TEXT = 'URI:spiffe://x/b, IP Address:10.0.0.9, email:zed@example.com, DNS:z.example.com, DNS:b.example.com';
      for (const [path, d] of [
        ['sign-verbatim', {}],
        ['root/sign-intermediate', { use_csr_values: true }],
      ] as const) {
        expect(san((await call('update', path, { csr: onlyNames, ...d })).certificate), path).toEqual({ critical: true, names: NAMES_TEXT });
        const other = await call('update', path, { csr: onlyNames, other_sans: '1.2.3.6;UTF8:req', ...d });
        expect(san(other.certificate), path).toEqual({
          critical: false,
          names: 'othername: 1.2.3.6::req, DNS:z.example.com, DNS:b.example.com, email:zed@example.com, IP Address:10.0.0.9, URI:spiffe://x/b',
        });
      }
      // sign-intermediate takes no other SAN from the CSR: its SAN goes in whole, its other SANs too.
      expect(san((await call('update', 'root/sign-intermediate', { csr: mixed, use_csr_values: true })).certificate)).toEqual({
        critical: false,
        names: MIXED_TEXT,
      });
      // sign-verbatim takes the CSR's other SANs (its role has use_csr_sans): a new extension, theirs first by OID.
      expect(san((await call('update', 'sign-verbatim', { csr: mixed })).certificate).names).toBe(
        'othername: 1.2.3.4::zz, othername: 1.2.3.4::yy, othername: 1.2.3.5::aa, DNS:z.example.com, DNS:b.example.com, email:zed@example.com, email:abe@example.com, IP Address:10.0.0.9, IP Address:10.0.0.1, URI:spiffe://x/b, URI:spiffe://x/a',
      );
      // Without use_csr_values sign-intermediate builds its SANs from the request, sorted.
      const asked = await call('update', 'root/sign-intermediate', { csr: mixed, common_name: 'm.example.com', alt_names: 'z.example.com,b.example.com' });
      expect(san(asked.certificate).names).toBe('DNS:b.example.com, DNS:m.example.com, DNS:z.example.com');
    });
  });
});
