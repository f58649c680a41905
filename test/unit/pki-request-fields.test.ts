// Request fields of current Vault's PKI (1.19–1.21) that change the certificate issued, beyond
// what Vault 1.8 took: key_usage on CA certificates (root/generate, sign-intermediate), and the
// rest added after it. Each is read back by openssl; bad input is a 400 with a message.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';

const { file, openssl } = opensslScratch('vpt-pki-fields-');

/** An EC CSR with this subject and these -addext options. */
function csr(subj: string, addext: string[] = []): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const out = openssl('req', '-new', '-key', key, '-subj', subj, ...addext.flatMap((e) => ['-addext', e]));
  if (!out.includes('BEGIN CERTIFICATE REQUEST')) throw new Error(out);
  return out;
}
const text = (pem: string) => openssl('x509', '-in', file(pem), '-noout', '-text');
/** The line after an extension's title in openssl's text ("(absent)" without it), and whether it is critical. */
function ext(pem: string, title: string): string {
  const lines = text(pem)
    .split('\n')
    .map((l) => l.trim());
  const i = lines.findIndex((l) => l.startsWith(title));
  return i < 0 ? '(absent)' : `${lines[i].includes('critical') ? 'critical ' : ''}${lines[i + 1]}`;
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
