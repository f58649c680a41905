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
    await expect(call('update', 'issue/ser', { common_name: 'a.example.com', serial_number: 'XX-1' })).rejects.toThrow(/allowed_serial_numbers/);
    await expect(call('update', 'issue/mail', { common_name: 'a.example.com', serial_number: 'SN-1' })).rejects.toThrow(/allowed_serial_numbers/);
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
});
