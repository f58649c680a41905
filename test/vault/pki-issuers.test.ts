// Several issuers per PKI mount, and email/other/policy SANs, through the real Vault CLI.
// Vault 1.8 (the binary here) has no issuers API of its own, so nothing is compared with
// its built-in PKI: these follow current Vault's (1.11+) documented API, run through Vault.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault, vaultBin, type VaultNode } from '../support/vault';
import { enablePki, file, notAfter, openssl, read, verify, write } from './steps';

describe.skipIf(!vaultBin())("PKI issuers through the real Vault CLI (current Vault's multi-issuer API)", { timeout: 120_000 }, () => {
  let v: VaultNode;
  beforeAll(async () => {
    v = await startDevVault();
    await v.registerPlugin();
    await enablePki(v);
    await v.vault(['secrets', 'tune', '-max-lease-ttl=87600h', 'pki']);
  });
  afterAll(async () => {
    await v?.destroy();
  });

  it('a second root/generate adds an issuer; issuer_ref picks the signer; config/issuers moves ca and crl', async () => {
    const a = await write(v, 'pki/root/generate/internal', 'common_name=Root A', 'key_type=ec', 'issuer_name=root-a', 'ttl=87600h');
    const b = await write(v, 'pki/root/generate/internal', 'common_name=Root B', 'key_type=ec', 'issuer_name=root-b', 'ttl=87600h');
    expect(b.issuer_id).not.toBe(a.issuer_id);
    const list = await v.vault(['list', '-format=json', 'pki/issuers']);
    expect([...list].sort()).toEqual([a.issuer_id, b.issuer_id].sort());
    const issuerB = (await read(v, 'pki/issuer/root-b')).data;
    expect(issuerB).toMatchObject({ issuer_id: b.issuer_id, issuer_name: 'root-b', key_id: b.key_id });
    expect((await read(v, 'pki/config/issuers')).data.default).toBe(a.issuer_id);
    expect((await v.http('GET', 'pki/ca/pem', { token: null })).text.trim()).toBe(a.certificate.trim());

    await write(v, 'pki/roles/web', 'allowed_domains=example.com', 'allow_subdomains=true', 'key_type=ec', 'issuer_ref=root-b');
    const leaf = await write(v, 'pki/issue/web', 'common_name=app.example.com', 'ttl=1h');
    expect(verify(b.certificate, leaf.certificate)).toMatch(/: OK/);
    expect(verify(a.certificate, leaf.certificate)).not.toMatch(/: OK/);
    const leafA = await write(v, `pki/issuer/${a.issuer_id}/issue/web`, 'common_name=other.example.com', 'ttl=1h');
    expect(verify(a.certificate, leafA.certificate)).toMatch(/: OK/);

    await write(v, 'pki/revoke', `serial_number=${leaf.serial_number}`);
    const crlB = (await read(v, 'pki/issuer/root-b/crl')).data.crl;
    expect(verify(b.certificate, leaf.certificate, crlB)).toMatch(/certificate revoked/);
    const crlA = (await v.http('GET', 'pki/crl/pem', { token: null })).text;
    expect(verify(a.certificate, leafA.certificate, crlA)).toMatch(/: OK/);

    await write(v, 'pki/config/issuers', 'default=root-b');
    expect((await v.http('GET', 'pki/ca/pem', { token: null })).text.trim()).toBe(b.certificate.trim());
    expect(verify(b.certificate, leaf.certificate, (await v.http('GET', 'pki/crl/pem', { token: null })).text)).toMatch(/certificate revoked/);
    const keys = await v.vault(['list', '-format=json', 'pki/keys']);
    expect([...keys].sort()).toEqual([a.key_id, b.key_id].sort());
    await expect(v.vault(['read', 'pki/issuer/nope'])).rejects.toThrow(/unable to resolve issuer/);
  });

  it("sign-intermediate's key_usage and not_after (current Vault), and a CSR's Authority Key Identifier naming another key, through Vault 1.8", async () => {
    const root = await write(v, 'pki/root/generate/internal', 'common_name=KU Root', 'key_type=ec', 'issuer_name=ku-root', 'ttl=87600h');
    const key = file(openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256').out);
    const csr = openssl('req', '-new', '-key', key, '-subj', '/CN=KU Intermediate', '-addext', 'authorityKeyIdentifier=DER:300a80080102030405060708').out;
    const end = '2031-01-31T12:00:00Z';
    const r = await v.vault([
      'write',
      '-format=json',
      'pki/issuer/ku-root/sign-intermediate',
      `csr=@${file(csr)}`,
      'use_csr_values=true',
      'key_usage=CertSign,CRLSign,DigitalSignature,KeyEncipherment',
      `not_after=${end}`,
    ]);
    const cert: string = r.data.certificate;
    const text = openssl('x509', '-in', file(cert), '-noout', '-text').out;
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign\n/);
    expect(notAfter(cert)).toBe(new Date(end).getTime());
    expect(text).not.toMatch(/01:02:03:04:05:06:07:08/);
    expect(verify(root.certificate, cert)).toMatch(/: OK/);
    expect(r.warnings).toContain('Invalid key usage: key usage KeyEncipherment is only valid for non-Ca certs');
    expect(r.warnings).toContainEqual(
      expect.stringMatching(/^the CSR's Authority Key Identifier \(keyid 01:02:03:04:05:06:07:08\) does not name the issuer's key/),
    );
    await expect(v.vault(['write', 'pki/root/sign-intermediate', `csr=@${file(csr)}`, 'ttl=1h', `not_after=${end}`])).rejects.toThrow(
      /Either ttl or not_after/,
    );
    await expect(v.vault(['write', 'pki/root/sign-intermediate', `csr=@${file(csr)}`, 'key_usage=Nope'])).rejects.toThrow(/unknown key usage "Nope"/);
  });

  it('email, otherName and policy SANs reach the certificate (openssl reads them)', async () => {
    await write(
      v,
      'pki/roles/mail',
      'allowed_domains=example.com',
      'allow_subdomains=true',
      'allow_bare_domains=true',
      'key_type=ec',
      'allowed_other_sans=1.2.3.4;UTF8:*',
      'policy_identifiers=1.3.6.1.4.1.7.8',
    );
    const r = await write(v, 'pki/issue/mail', 'common_name=alice@example.com', 'alt_names=www.example.com', 'other_sans=1.2.3.4;UTF8:badge-7', 'ttl=1h');
    const text = openssl('x509', '-in', file(r.certificate), '-noout', '-text').out;
    expect(text).toMatch(/email:alice@example\.com/);
    expect(text).toMatch(/othername: 1\.2\.3\.4::badge-7/);
    expect(text).toMatch(/Policy: 1\.3\.6\.1\.4\.1\.7\.8/);
    await expect(write(v, 'pki/issue/mail', 'common_name=eve@evil.org')).rejects.toThrow(/not allowed by this role/);
  });
});
