// Making CAs as Vault's PKI does: root/generate and intermediate/generate with every subject
// and SAN field (the CSR carries them), exported keys in Vault's structures, Ed25519 CAs,
// sign-intermediate's path length rules, and validity from the mount's lease TTLs.
import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { SecretsBackend } from '../../src/secrets/backend';
import { MemoryStorage } from '../../src/storage/storage';
import { opensslScratch } from '../support/openssl';
import { okData, quietLog, replyOf } from '../support/backend';

const { file, openssl } = opensslScratch('vpt-pki-cagen-');
const text = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-text');

/** A PKI mount whose SystemView says: default lease TTL 2h, max 10h (vault secrets tune). */
function mount(defaultTtl = 7200, maxTtl = 36000) {
  const system = { maxLeaseTtl: async () => maxTtl, defaultLeaseTtl: async () => defaultTtl };
  const be = new SecretsBackend(new MemoryStorage(), quietLog, 'pki', system as never);
  const call = (op: string, p: string, d: Record<string, unknown> = {}) => replyOf(be, op, p, d, 'pki/');
  const ok = async (op: string, p: string, d: Record<string, unknown> = {}) => okData(await call(op, p, d), op, p);
  return { call, ok };
}
const hoursLeft = (pem: string) => Math.round((new Date(new X509Certificate(pem).validTo).getTime() - Date.now()) / 3600_000);
const SUBJECT = {
  organization: 'IO',
  ou: 'IOU',
  country: 'US',
  province: 'CA',
  locality: 'SF',
  street_address: '1 Main',
  postal_code: '94000',
  serial_number: 'S-7',
};

describe('PKI: generating CAs', () => {
  it('intermediate/generate: the CSR has the whole subject in Go order and a SAN extension (the CN among the DNS names)', async () => {
    const { ok } = mount();
    const r = await ok('update', 'intermediate/generate/exported', {
      common_name: 'inter.example.com',
      alt_names: 'inter2.example.com,ca@example.com',
      ip_sans: '10.0.0.2',
      uri_sans: 'spiffe://example.org/inter',
      other_sans: '1.2.3.4;UTF8:hello',
      ...SUBJECT,
    });
    const t = openssl('req', '-in', file(r.csr), '-noout', '-text', '-verify');
    expect(t).toMatch(
      /Subject: C ?= ?US, ST ?= ?CA, L ?= ?SF, street ?= ?1 Main, postalCode ?= ?94000, O ?= ?IO, OU ?= ?IOU, CN ?= ?inter.example.com, serialNumber ?= ?S-7\n/,
    );
    expect(t).toMatch(
      /X509v3 Subject Alternative Name: \n\s*othername: 1.2.3.4::hello, DNS:inter.example.com, DNS:inter2.example.com, email:ca@example.com, IP Address:10.0.0.2, URI:spiffe:\/\/example.org\/inter\n/,
    );
    // Vault's default private_key_format: the key's own structure (PKCS#1 for RSA).
    expect(r.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    // exclude_cn_from_sans, der format.
    const d = await ok('update', 'intermediate/generate/internal', { common_name: 'x.example.com', exclude_cn_from_sans: true, format: 'der' });
    const dt = openssl('req', '-in', file(Buffer.from(d.csr, 'base64') as never), '-inform', 'DER', '-noout', '-text');
    expect(dt).toMatch(/Subject: CN ?= ?x.example.com\n/);
    expect(dt).not.toMatch(/Subject Alternative Name/);
  });

  it('root/generate: subject fields, SANs with the CN, critical Name Constraints; bad input is a 400', async () => {
    const { ok, call } = mount();
    const r = await ok('update', 'root/generate/internal', {
      ttl: '87600h',
      common_name: 'root.example.com',
      alt_names: 'r2.example.com',
      uri_sans: 'spiffe://example.org/root',
      permitted_dns_domains: 'example.com',
      key_type: 'ec',
      ...SUBJECT,
    });
    const t = text(r.certificate);
    expect(t).toMatch(
      /Subject: C ?= ?US, ST ?= ?CA, L ?= ?SF, street ?= ?1 Main, postalCode ?= ?94000, O ?= ?IO, OU ?= ?IOU, CN ?= ?root.example.com, serialNumber ?= ?S-7\n/,
    );
    // The DNS SANs sorted, the CN among them, as Vault lists them.
    expect(new X509Certificate(r.certificate).subjectAltName).toBe('DNS:r2.example.com, DNS:root.example.com, URI:spiffe://example.org/root');
    expect(t).toMatch(/X509v3 Name Constraints: critical\n\s*Permitted:\n\s*DNS:example.com\n/);
    expect((await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'R', other_sans: 'nope' })).error).toMatch(/other_sans/);
    expect((await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'R', permitted_dns_domains: 'bad domain' })).error).toMatch(
      /permitted_dns_domains/,
    );
    expect((await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'R', max_path_length: -2 })).error).toMatch(
      /max_path_length -2 is invalid/,
    );
  });

  it("root/generate: the root carries the mount's config/urls (AIA and CRL distribution points), as Vault's", async () => {
    const { ok } = mount();
    const plain = await ok('update', 'root/generate/internal', { common_name: 'No URLs', key_type: 'ec', issuer_name: 'plain' });
    expect(text(plain.certificate)).not.toMatch(/Authority Information Access|CRL Distribution Points/);
    await ok('update', 'config/urls', {
      issuing_certificates: 'http://pki.example/ca',
      crl_distribution_points: 'http://pki.example/crl',
      ocsp_servers: 'http://pki.example/ocsp',
    });
    const t = text((await ok('update', 'root/generate/internal', { common_name: 'With URLs', key_type: 'ec', issuer_name: 'urls' })).certificate);
    expect(t).toMatch(/OCSP - URI:http:\/\/pki.example\/ocsp/);
    expect(t).toMatch(/CA Issuers - URI:http:\/\/pki.example\/ca/);
    expect(t).toMatch(/X509v3 CRL Distribution Points:[\s\S]*URI:http:\/\/pki.example\/crl/);
  });

  it('exported keys: PKCS#1 / SEC 1 by default (pem or der), PKCS#8 with private_key_format=pkcs8; pem_bundle puts the key first', async () => {
    const { ok } = mount();
    const rsa = await ok('update', 'root/generate/exported', { ttl: '87600h', common_name: 'R1', issuer_name: 'r1' });
    expect(rsa.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const ec = await ok('update', 'root/generate/exported', { ttl: '87600h', common_name: 'R2', key_type: 'ec', issuer_name: 'r2' });
    expect(ec.private_key).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    const p8 = await ok('update', 'root/generate/exported', {
      ttl: '87600h',
      common_name: 'R3',
      key_type: 'ec',
      private_key_format: 'pkcs8',
      issuer_name: 'r3',
    });
    expect(p8.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const der = await ok('update', 'root/generate/exported', { ttl: '87600h', common_name: 'R4', key_type: 'ec', format: 'der', issuer_name: 'r4' });
    expect(new X509Certificate(Buffer.from(der.certificate, 'base64')).subject).toBe('CN=R4');
    expect(openssl('ec', '-inform', 'DER', '-in', file(Buffer.from(der.private_key, 'base64') as never), '-noout', '-check')).toMatch(/EC Key valid/);
    const bundle = await ok('update', 'root/generate/exported', { ttl: '87600h', common_name: 'R5', key_type: 'ec', format: 'pem_bundle', issuer_name: 'r5' });
    expect(bundle.certificate).toMatch(/^-----BEGIN EC PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/);
    const inter = await ok('update', 'intermediate/generate/exported', { common_name: 'I', key_type: 'ec' });
    expect(inter.private_key).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
  });

  it('Ed25519: a root and an intermediate, a leaf under them, and openssl verifies the chain', async () => {
    const { ok } = mount();
    const root = await ok('update', 'root/generate/internal', { common_name: 'Ed Root', key_type: 'ed25519', ttl: '9h' });
    expect(text(root.certificate)).toMatch(/Signature Algorithm: ED25519/);
    const pki2 = mount();
    const csr = (await pki2.ok('update', 'intermediate/generate/exported', { common_name: 'Ed Inter', key_type: 'ed25519' })).csr;
    expect(openssl('req', '-in', file(csr), '-noout', '-verify', '-text')).toMatch(/ED25519/);
    const inter = await ok('update', 'root/sign-intermediate', { csr, ttl: '8h' });
    await pki2.ok('update', 'intermediate/set-signed', { certificate: inter.certificate });
    await pki2.ok('update', 'roles/web', { allow_any_name: true, key_type: 'ed25519' });
    const leaf = await pki2.ok('update', 'issue/web', { common_name: 'leaf.example.com', ttl: '1h' });
    expect(openssl('verify', '-CAfile', file(root.certificate), '-untrusted', file(inter.certificate), file(leaf.certificate))).toMatch(/OK/);
    // The Ed25519 issuer signs its CRL too.
    await pki2.ok('read', 'crl/rotate');
  });

  it("sign-intermediate: the child's pathlen is the issuer's less one; under pathlen 0 nothing is signed; a too large max_path_length is a 400", async () => {
    const { ok, call } = mount();
    await ok('update', 'root/generate/internal', { ttl: '87600h', common_name: 'PL Root', key_type: 'ec', max_path_length: 2 });
    const other = mount();
    const csr = (await other.ok('update', 'intermediate/generate/internal', { common_name: 'PL Inter', key_type: 'ec' })).csr;
    const child = await call('update', 'root/sign-intermediate', { csr });
    expect(text(child.data.certificate)).toMatch(/CA:TRUE, pathlen:1/);
    expect((await call('update', 'root/sign-intermediate', { csr, max_path_length: 2 })).error).toMatch(/pathLenConstraint of 2/);
    expect((await call('update', 'root/sign-intermediate', { csr, max_path_length: -1 })).error).toMatch(/pathLenConstraint of 2/);
    const zero = await call('update', 'root/sign-intermediate', { csr, max_path_length: 0 });
    expect(text(zero.data.certificate)).toMatch(/CA:TRUE, pathlen:0/);
    // Vault's words (1.8 and current).
    expect(zero.warnings).toContain(
      'Max path length of the signed certificate is zero. This certificate cannot be used to issue intermediate CA certificates.',
    );
    // Under a pathlen:0 CA: refused, as Vault.
    const leafOnly = mount();
    await leafOnly.ok('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Zero Root', key_type: 'ec', max_path_length: 0 });
    expect((await leafOnly.call('update', 'root/sign-intermediate', { csr })).error).toBe(
      'signing certificate has a max path length of zero, and cannot issue further CA certificates',
    );
  });

  it("validity: the mount's default lease TTL without ttl, capped at its max with Vault's warning; an intermediate is cut to its issuer's notAfter", async () => {
    const { call } = mount(7200, 36000);
    const root = await call('update', 'root/generate/internal', { common_name: 'TTL Root', key_type: 'ec' });
    expect(hoursLeft(root.data.certificate)).toBe(2);
    const capped = await call('update', 'root/generate/internal', { common_name: 'TTL Root 2', key_type: 'ec', ttl: '100h', issuer_name: 'long' });
    expect(hoursLeft(capped.data.certificate)).toBe(10);
    expect(capped.warnings).toContain('TTL "100h0m0s" is longer than permitted maxTTL "10h0m0s", so maxTTL is being used');
    const csr = (await mount().ok('update', 'intermediate/generate/internal', { common_name: 'TTL Inter', key_type: 'ec' })).csr;
    // Default issuer: the first root (2h); 5h is cut to it, with current Vault's warning.
    const inter = await call('update', 'root/sign-intermediate', { csr, ttl: '5h' });
    expect(inter.data.certificate).toBeDefined();
    expect(new X509Certificate(inter.data.certificate).validTo).toBe(new X509Certificate(root.data.certificate).validTo);
    expect(inter.warnings).toContain("the signed intermediary CA certificate's notAfter was truncated to the issuer's notAfter");
    // enforce_leaf_not_after_behavior: the issuer's own behaviour (err by default).
    expect((await call('update', 'root/sign-intermediate', { csr, ttl: '5h', enforce_leaf_not_after_behavior: true })).error).toMatch(/cannot satisfy request/);
    const under = await call('update', 'issuer/long/sign-intermediate', { csr });
    expect(hoursLeft(under.data.certificate)).toBe(2);
  });
});
