// A CSR's SAN names of kinds this PKI does not issue (directoryName, registeredID, x400Address,
// ediPartyName), as current Vault's PKI takes them: sign/ passes them over; sign-verbatim and
// sign-intermediate with use_csr_values copy the CSR's SAN extension as it is.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';

const { dir, file, openssl } = opensslScratch('vpt-pki-ext-');

/** An EC CSR with this subject and these -addext options (or, with `config`, an openssl config's [ext] section). */
function csr(subj: string, addext: string[], config?: string): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const args = ['req', '-new', '-key', key, '-subj', subj, ...addext.flatMap((e) => ['-addext', e])];
  if (config) {
    const cfg = path.join(dir, `c${Math.random().toString(36).slice(2)}.cnf`);
    fs.writeFileSync(cfg, `[req]\ndistinguished_name=dn\nreq_extensions=ext\n[dn]\n${config}`);
    args.push('-config', cfg);
  }
  const out = openssl(...args);
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

describe('PKI: SANs of kinds this PKI does not issue', () => {
  const { call, ok } = backendMount('pki');
  beforeAll(async () => {
    await ok('update', 'root/generate/internal', { common_name: 'Ext Root', key_type: 'ec', ttl: '87600h' });
    await ok('update', 'roles/any', { allow_any_name: true, key_type: 'any', ttl: '1h' });
  });

  it('a SAN of a kind this PKI does not issue: sign/ passes it over, sign-verbatim and sign-intermediate copy it (as current Vault and 1.8)', async () => {
    const rid = csr('/CN=rid.example.com', ['subjectAltName=DNS:rid.example.com,RID:1.2.3.4,email:a@example.com']);
    const dirName = csr('/CN=dir.example.com', [], 'CN=x\n[ext]\nsubjectAltName=DNS:dir.example.com,dirName:dir_sect\n[dir_sect]\nCN=Somebody\nO=Org\n');
    for (const [c, other] of [
      [rid, 'Registered ID:1.2.3.4'],
      [dirName, 'DirName:/CN=Somebody/O=Org'],
    ]) {
      const signed = await call('update', 'sign/any', { csr: c });
      expect(signed.error).toBeUndefined();
      expect(ext(signed.data.certificate, 'X509v3 Subject Alternative Name')).not.toContain(other);
      const verbatim = await call('update', 'sign-verbatim', { csr: c, ttl: '1h' });
      expect(verbatim.error).toBeUndefined();
      expect(ext(verbatim.data.certificate, 'X509v3 Subject Alternative Name')).toContain(other);
      const inter = await call('update', 'root/sign-intermediate', { csr: c, use_csr_values: true, ttl: '1h' });
      expect(inter.error).toBeUndefined();
      expect(ext(inter.data.certificate, 'X509v3 Subject Alternative Name')).toContain(other);
      // Other SANs asked for: Vault builds the SAN (the other SANs, then the DNS, email, IP and URI names); the rest is not kept.
      const built = await ok('update', 'root/sign-intermediate', { csr: c, use_csr_values: true, other_sans: '1.2.3.4;UTF8:x', ttl: '1h' });
      expect(ext(built.certificate, 'X509v3 Subject Alternative Name')).not.toContain(other);
      expect(ext(built.certificate, 'X509v3 Subject Alternative Name')).toContain('DNS:');
    }
    // sign/ with names only of such kinds: signed without SANs.
    const only = csr('/CN=only.example.com', ['subjectAltName=RID:1.2.3.4']);
    const r = await call('update', 'sign/any', { csr: only });
    expect(r.error).toBeUndefined();
    expect(ext(r.data.certificate, 'X509v3 Subject Alternative Name')).toBe('DNS:only.example.com');
  });

  it("an otherName that is not a UTF8String: a 400 where the CSR's other SANs are taken (sign/, sign-verbatim), copied by sign-intermediate", async () => {
    const odd = csr('/CN=odd.example.com', ['subjectAltName=DNS:odd.example.com,otherName:1.2.3.4;IA5STRING:abc']);
    for (const p of ['sign/any', 'sign-verbatim']) expect((await call('update', p, { csr: odd, ttl: '1h' })).error, p).toMatch(/otherName/);
    const inter = await ok('update', 'root/sign-intermediate', { csr: odd, use_csr_values: true, ttl: '1h' });
    expect(ext(inter.certificate, 'X509v3 Subject Alternative Name')).toContain('othername: 1.2.3.4::abc');
  });
});
