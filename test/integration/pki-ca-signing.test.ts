// Signing with the mount's CA as Vault's PKI does, beyond issue/ and sign/: root/sign-self-issued,
// sign-verbatim(/<role>) with its request fields, root/sign-intermediate's name, subject,
// format and Name Constraints fields, and tidy's tidy_revocation_list. Certificates read by openssl.
import { beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { opensslScratch } from '../support/openssl';
import { backendMount } from '../support/backend';

const { file, openssl } = opensslScratch('vpt-pki-casign-');
const text = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-text');

const { ok } = backendMount('pki');
const call = (op: string, p: string, d: Record<string, unknown> = {}) => ok(op, p, d, '');
const keyFile = (type: 'ec' | 'rsa') =>
  file(
    (type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 })).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string,
  );
const csrWith = (subj: string, san?: string) =>
  openssl('req', '-new', '-key', keyFile('ec'), '-subj', subj, ...(san ? ['-addext', `subjectAltName=${san}`] : []));
const selfIssued = (type: 'ec' | 'rsa', ca = true) =>
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile(type),
    '-subj',
    '/CN=Other Root/O=Other',
    '-days',
    '30',
    '-addext',
    `basicConstraints=critical,CA:${ca ? 'TRUE' : 'FALSE'}`,
    ...(ca ? ['-addext', 'keyUsage=critical,keyCertSign,cRLSign'] : []),
  );
const hoursLeft = (pem: string) => Math.round((new Date(new X509Certificate(pem).validTo).getTime() - Date.now()) / 3600_000);

describe('PKI: signing other CAs and CSRs as they are', () => {
  let root = '';
  beforeAll(async () => {
    root = (await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Signing Root', key_type: 'ec' })).certificate;
    await call('update', 'config/urls', { issuing_certificates: 'http://127.0.0.1:8200/v1/pki/ca' });
  });

  it("root/sign-self-issued re-signs a self-issued CA certificate with the mount's CA, keeping its subject, key, serial and validity", async () => {
    const other = selfIssued('ec');
    const r = await call('update', 'root/sign-self-issued', { certificate: other });
    expect(r.issuing_ca).toBe(root);
    const a = new X509Certificate(other),
      b = new X509Certificate(r.certificate);
    expect([b.subject, b.serialNumber, b.validTo, b.publicKey.export({ type: 'spki', format: 'pem' })]).toEqual([
      a.subject,
      a.serialNumber,
      a.validTo,
      a.publicKey.export({ type: 'spki', format: 'pem' }),
    ]);
    expect(b.issuer).toBe('CN=Signing Root');
    expect(b.ca).toBe(true);
    expect(openssl('verify', '-partial_chain', '-CAfile', file(root), file(r.certificate))).toMatch(/OK/);
    expect(text(r.certificate)).toMatch(/CA Issuers - URI:http:\/\/127.0.0.1:8200\/v1\/pki\/ca/);
    // Not stored: it keeps another CA's serial number.
    expect(await call('read', `cert/${b.serialNumber.toLowerCase().match(/../g)!.join(':')}`)).toBeUndefined();
  });

  it("root/sign-self-issued: another key type is signed with the issuer's algorithm unless require_matching_certificate_algorithms; non-CA and not self-issued certificates are refused", async () => {
    const rsa = selfIssued('rsa');
    const r = await call('update', 'root/sign-self-issued', { certificate: rsa });
    expect(text(r.certificate)).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    await expect(call('update', 'root/sign-self-issued', { certificate: rsa, require_matching_certificate_algorithms: true })).rejects.toThrow(
      /require_matching_certificate_algorithms/,
    );
    await expect(call('update', 'root/sign-self-issued', { certificate: selfIssued('ec', false) })).rejects.toThrow(/not a CA certificate/);
    await expect(call('update', 'root/sign-self-issued', { certificate: r.certificate })).rejects.toThrow(/not self-issued/);
    await expect(call('update', 'root/sign-self-issued', { certificate: 'junk' })).rejects.toThrow(/PEM certificate/);
  });

  it("sign-verbatim/<role>: the role's max_ttl caps and its no_store applies; usages come from the request; the name fields are ignored for the CSR's", async () => {
    await call('update', 'roles/short', { allow_any_name: true, max_ttl: '5h', no_store: true });
    const csr = csrWith('/CN=verbatim.example.com/O=Verbatim Org/C=DE', 'DNS:v1.example.com,IP:10.9.8.7');
    const r = await call('update', 'sign-verbatim/short', {
      csr,
      ttl: '100h',
      common_name: 'ignored.example.com',
      alt_names: 'ignored2.example.com',
      ip_sans: '1.1.1.1',
      serial_number: 'S-1',
      exclude_cn_from_sans: true,
      key_usage: 'DigitalSignature,ContentCommitment',
      ext_key_usage: 'CodeSigning',
      ext_key_usage_oids: '1.3.6.1.4.1.311.20.2.2',
      other_sans: '1.2.3.4;UTF8:badge',
    });
    expect(hoursLeft(r.certificate)).toBe(5);
    const t = text(r.certificate);
    // The CSR's order, as Vault keeps it for sign-verbatim (the CSR's names as Go's ExtraNames).
    expect(t).toMatch(/Subject: CN ?= ?verbatim.example.com, O ?= ?Verbatim Org, C ?= ?DE\n/);
    expect(new X509Certificate(r.certificate).subjectAltName).toBe('othername:<unsupported>, DNS:v1.example.com, IP Address:10.9.8.7');
    expect(t).toMatch(/othername: 1.2.3.4::badge/);
    expect(t).toMatch(/X509v3 Key Usage: critical\n\s*Digital Signature, Non Repudiation\n/);
    expect(t).toMatch(/X509v3 Extended Key Usage: \n\s*Code Signing, Microsoft Smartcard Login\n/);
    expect(t).not.toMatch(/serialNumber/);
    // no_store: nothing to read back.
    expect(await call('read', `cert/${r.serial_number}`)).toBeUndefined();
    // The role as a field does the same; an unknown role is refused.
    expect(hoursLeft((await call('update', 'sign-verbatim', { csr, role: 'short', ttl: '100h' })).certificate)).toBe(5);
    await expect(call('update', 'sign-verbatim/nope', { csr })).rejects.toThrow(/unknown role: nope/);
    // Without a role: stored, no extended key usage unless asked.
    const plain = await call('update', 'sign-verbatim', { csr, ttl: '100h' });
    expect(hoursLeft(plain.certificate)).toBe(100);
    expect(text(plain.certificate)).not.toMatch(/Extended Key Usage/);
    expect((await call('read', `cert/${plain.serial_number}`)).certificate).toBe(plain.certificate);
  });

  it("root/sign-intermediate: SANs, subject fields in Go's order, serial_number, permitted_dns_domains as Name Constraints, formats", async () => {
    const csr = csrWith('/CN=Int From CSR/O=CSR Org', 'DNS:csr.example.com');
    const r = await call('update', 'root/sign-intermediate', {
      csr,
      common_name: 'int.example.com',
      alt_names: 'int2.example.com,ca@example.com',
      ip_sans: '10.1.1.1',
      uri_sans: 'spiffe://example.org/ca',
      country: 'US',
      province: 'CA',
      locality: 'SF',
      street_address: '1 Main',
      postal_code: '94000',
      organization: 'Org',
      ou: 'Unit',
      serial_number: 'abc-1',
      permitted_dns_domains: 'example.com,.example.org',
      ttl: '720h',
    });
    const t = text(r.certificate);
    expect(t).toMatch(
      /Subject: C ?= ?US, ST ?= ?CA, L ?= ?SF, street ?= ?1 Main, postalCode ?= ?94000, O ?= ?Org, OU ?= ?Unit, CN ?= ?int.example.com, serialNumber ?= ?abc-1\n/,
    );
    expect(new X509Certificate(r.certificate).subjectAltName).toBe(
      'DNS:int.example.com, DNS:int2.example.com, email:ca@example.com, IP Address:10.1.1.1, URI:spiffe://example.org/ca',
    );
    // Critical, as RFC 5280 4.2.1.10 requires of CAs and Vault writes it.
    expect(t).toMatch(/X509v3 Name Constraints: critical\n\s*Permitted:\n\s*DNS:example.com\n\s*DNS:.example.org\n/);
    expect(new X509Certificate(r.certificate).ca).toBe(true);
    // exclude_cn_from_sans; use_csr_values (the CSR's subject and SANs, the request's names ignored).
    const x = await call('update', 'root/sign-intermediate', { csr, common_name: 'int.example.com', exclude_cn_from_sans: true });
    expect(new X509Certificate(x.certificate).subjectAltName).toBeUndefined();
    const u = await call('update', 'root/sign-intermediate', {
      csr,
      use_csr_values: true,
      common_name: 'ignored.example.com',
      alt_names: 'ignored2.example.com',
    });
    // The CSR's subject in the CSR's order, as Vault 1.8 was seen to keep it (Go's ExtraNames).
    expect(new X509Certificate(u.certificate).subject).toBe('CN=Int From CSR\nO=CSR Org');
    expect(new X509Certificate(u.certificate).subjectAltName).toBe('DNS:csr.example.com');
    // Formats: der (base64 DER), pem_bundle (certificate, then the issuing CA).
    const der = await call('update', 'root/sign-intermediate', { csr, format: 'der' });
    expect(new X509Certificate(Buffer.from(der.certificate, 'base64')).issuer).toBe('CN=Signing Root');
    const bundle = await call('update', 'root/sign-intermediate', { csr, format: 'pem_bundle', private_key_format: 'pkcs8' });
    expect(bundle.certificate.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(bundle.certificate).toContain(root.trim());
    // A bad domain is refused.
    await expect(call('update', 'root/sign-intermediate', { csr, permitted_dns_domains: 'bad domain' })).rejects.toThrow(/permitted_dns_domains/);
  });

  it('root/sign-intermediate takes other_sans, any OID (as current Vault; 1.8 refused them): otherName SANs with UTF8String values', async () => {
    const csr = csrWith('/CN=Other Int', 'DNS:csr.example.com');
    const upn = '1.3.6.1.4.1.311.20.2.3';
    const r = await call('update', 'root/sign-intermediate', {
      csr,
      common_name: 'int.example.com',
      other_sans: `${upn};UTF8:dev@example.com,1.2.3.4;UTF-8:hello`,
      ttl: '720h',
    });
    expect(openssl('verify', '-CAfile', file(root), file(r.certificate))).toMatch(/: OK/);
    // Other names first, then the rest, as Vault's certutil writes them.
    expect(text(r.certificate)).toMatch(
      /X509v3 Subject Alternative Name: \n\s*othername: UPN::dev@example.com, othername: 1.2.3.4::hello, DNS:int.example.com\n/,
    );
    // Read back by @peculiar/x509 too (it knows the UPN OID's value).
    const X = await import('@peculiar/x509');
    const san = new X.X509Certificate(r.certificate).getExtension(X.SubjectAlternativeNameExtension)!;
    expect(san.names.items.map((n) => n.toJSON())).toContainEqual({ type: 'upn', value: 'dev@example.com' });
    // The otherName's DER as openssl walks it: type-id, then [0] EXPLICIT with a UTF8String, as Vault writes it.
    const asn1 = openssl('asn1parse', '-in', file(r.certificate));
    const at = /^\s*(\d+):.*OCTET STRING/m.exec(asn1.slice(asn1.indexOf('X509v3 Subject Alternative Name')))![1];
    const sanDer = openssl('asn1parse', '-in', file(r.certificate), '-strparse', at);
    expect(sanDer).toMatch(/OBJECT\s+:1\.2\.3\.4\n.*cont \[ 0 \]\s*\n.*UTF8STRING\s+:hello\n/);
    // use_csr_values: the CSR's DNS names stay, the requested otherNames replace the CSR's own; without other_sans the CSR's stay.
    const withOther = csrWith('/CN=Other Int 2', 'DNS:csr.example.com,otherName:1.2.3.9;UTF8:from-csr');
    const u = await call('update', 'root/sign-intermediate', { csr: withOther, use_csr_values: true, other_sans: '1.2.3.4;UTF8:asked', ttl: '720h' });
    expect(text(u.certificate)).toMatch(/X509v3 Subject Alternative Name: \n\s*othername: 1.2.3.4::asked, DNS:csr.example.com\n/);
    const kept = text((await call('update', 'root/sign-intermediate', { csr: withOther, use_csr_values: true, ttl: '720h' })).certificate);
    expect(kept).toMatch(/othername: 1.2.3.9::from-csr/);
    expect(kept).toMatch(/DNS:csr.example.com/);
    // Only Vault's form: <oid>;UTF8:<value> (or UTF-8), a 400 otherwise.
    for (const bad of ['nope', 'abc;UTF8:x', '1.2.3.4;IA5:x', '1.2.3.4:UTF8:x'])
      await expect(call('update', 'root/sign-intermediate', { csr, other_sans: bad })).rejects.toThrow(/other_sans: .* is not of the form <oid>;UTF8:<value>/);
  });

  it('tidy: tidy_revocation_list, the older name of tidy_revoked_certs, removes expired revoked certificates', async () => {
    const r = await call('update', 'sign-verbatim', { csr: csrWith('/CN=gone.example.com'), ttl: '1s' });
    await call('update', 'revoke', { serial_number: r.serial_number });
    await new Promise((res) => setTimeout(res, 2500));
    await call('update', 'tidy', { tidy_revocation_list: true, safety_buffer: '1s' });
    expect(await call('read', `cert/${r.serial_number}`)).toBeUndefined();
  });
});
