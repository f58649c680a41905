// cn_validations on roles (current Vault, 1.12+): what the common name may be. "email" and
// "hostname" pick the kinds of CN allowed (an "@" makes it an email address, anything else a
// hostname), each still checked against the role; "disabled" alone takes any CN unchecked,
// though a CN copied into the SANs is still checked there. Role writes refuse bad lists in
// Vault's words; roles written before the field read back with Vault's default.
import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { backendMount, failure } from '../support/backend';
import { opensslScratch } from '../support/openssl';
import { roleKey } from '../../src/secrets/pki/roles';

const { file, openssl, text } = opensslScratch('vpt-pki-cnv-');
const subjectCn = (pem: string) => /Subject:.*CN\s*=\s*([^,\n]+)/.exec(text(pem))?.[1].trim();
const sans = (pem: string) => {
  const lines = text(pem).split('\n');
  const i = lines.findIndex((l) => l.includes('X509v3 Subject Alternative Name'));
  return i < 0 ? '' : lines[i + 1].trim();
};
const csr = (cn: string) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return openssl('req', '-new', '-key', file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), '-subj', `/CN=${cn}`);
};

describe('PKI roles: cn_validations (current Vault)', () => {
  const { call, ok, store } = backendMount('pki');
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'CNV Root', key_type: 'ec', ttl: '87600h' });
  });

  it('defaults to email and hostname; a list is lower-cased; an empty one is the default', async () => {
    expect((await ok('update', 'roles/default', { allowed_domains: 'example.com', allow_subdomains: true })).cn_validations).toEqual(['email', 'hostname']);
    expect((await ok('read', 'roles/default')).cn_validations).toEqual(['email', 'hostname']);
    expect((await ok('update', 'roles/upper', { allow_any_name: true, cn_validations: 'Email' })).cn_validations).toEqual(['email']);
    expect((await ok('update', 'roles/empty', { allow_any_name: true, cn_validations: [] })).cn_validations).toEqual(['email', 'hostname']);
    // A role stored before the field reads back with Vault's default.
    const stored = JSON.parse((await store.get(roleKey('default')))!.toString());
    delete stored.cn_validations;
    await store.put(roleKey('old'), Buffer.from(JSON.stringify(stored)));
    expect((await ok('read', 'roles/old')).cn_validations).toEqual(['email', 'hostname']);
  });

  it("refuses unknown, repeated and mixed values in Vault's words", async () => {
    const err = async (v: unknown) => failure(await call('update', 'roles/bad', { allow_any_name: true, cn_validations: v }));
    expect(await err('email,uri')).toBe('cn_validations value incorrect: unknown type: `uri`');
    expect(await err(['hostname', 'Hostname'])).toBe('cn_validations value incorrect: `hostname` specified multiple times');
    expect(await err('disabled,email')).toBe('cn_validations value incorrect: cannot specify `disabled` along with `email` or `hostname`');
    expect(await call('read', 'roles/bad')).toEqual({});
  });

  it('email only: an email address CN passes the role; a hostname CN is refused', async () => {
    await ok('update', 'roles/mail', {
      allowed_domains: 'example.com',
      allow_bare_domains: true,
      allow_subdomains: true,
      key_type: 'ec',
      cn_validations: 'email',
    });
    const leaf = await ok('update', 'issue/mail', { common_name: 'jane@example.com', ttl: '1h' });
    expect(subjectCn(leaf.certificate)).toBe('jane@example.com');
    expect(sans(leaf.certificate)).toBe('email:jane@example.com');
    expect(failure(await call('update', 'issue/mail', { common_name: 'www.example.com', ttl: '1h' }))).toBe(
      'common name www.example.com not allowed by this role',
    );
    // sign/ takes the CN from the CSR: the same rule.
    expect(failure(await call('update', 'sign/mail', { csr: csr('www.example.com'), ttl: '1h' }))).toBe('common name www.example.com not allowed by this role');
    expect(subjectCn((await ok('update', 'sign/mail', { csr: csr('joe@example.com'), ttl: '1h' })).certificate)).toBe('joe@example.com');
    // Still checked against the role: an address under another domain is refused.
    expect(failure(await call('update', 'issue/mail', { common_name: 'jane@other.org', ttl: '1h' }))).toMatch(/not allowed by this role/);
  });

  it('hostname only: an email address CN is refused, a hostname passes', async () => {
    await ok('update', 'roles/host', { allowed_domains: 'example.com', allow_bare_domains: true, allow_subdomains: true, cn_validations: ['hostname'] });
    expect(subjectCn((await ok('update', 'issue/host', { common_name: 'a.example.com', ttl: '1h' })).certificate)).toBe('a.example.com');
    expect(failure(await call('update', 'issue/host', { common_name: 'jane@example.com', ttl: '1h' }))).toBe(
      'common name jane@example.com not allowed by this role',
    );
  });

  it('disabled: any CN (a service name, a name outside allowed_domains when not copied into the SANs); the SANs are still checked', async () => {
    await ok('update', 'roles/free', { allowed_domains: 'example.com', allow_subdomains: true, cn_validations: 'disabled' });
    const named = await ok('update', 'issue/free', { common_name: 'Billing Service', alt_names: 'billing.example.com', ttl: '1h' });
    expect(subjectCn(named.certificate)).toBe('Billing Service');
    expect(sans(named.certificate)).toBe('DNS:billing.example.com');
    // Under the default the same CN is refused (not a hostname the role allows).
    await ok('update', 'roles/strict', { allowed_domains: 'example.com', allow_subdomains: true });
    expect(failure(await call('update', 'issue/strict', { common_name: 'Billing Service', ttl: '1h' }))).toMatch(
      /not allowed by this role|control characters or spaces/,
    );
    // A CN that looks like a DNS name is copied into the SANs, where the role still applies (as Vault: "subject alternate name ... not allowed").
    expect(failure(await call('update', 'issue/free', { common_name: 'www.other.org', ttl: '1h' }))).toMatch(/not allowed by this role/);
    const excluded = await ok('update', 'issue/free', { common_name: 'www.other.org', exclude_cn_from_sans: true, alt_names: 'a.example.com', ttl: '1h' });
    expect(subjectCn(excluded.certificate)).toBe('www.other.org');
    expect(sans(excluded.certificate)).toBe('DNS:a.example.com');
    // Never control characters.
    expect(failure(await call('update', 'issue/free', { common_name: 'bad\nname', ttl: '1h' }))).toMatch(/control characters/);
  });
});
