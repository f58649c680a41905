// Several issuers per PKI mount, as current Vault (1.11+): root/generate adds an issuer,
// issuer_ref picks the signer, the default issuer serves ca/crl, CRLs are per issuer, and a
// mount written with one CA (pki/ca) is migrated when read. Certificates checked by openssl.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { backendMount } from '../support/backend';
import { opensslScratch } from '../support/openssl';
import { MemoryStorage } from '../../src/storage/storage';

const { dir: tmp, file, openssl } = opensslScratch('vpt-pki-iss-');
const verify = (ca: string, leaf: string, crl?: string) =>
  openssl('verify', '-CAfile', file(crl ? `${ca}\n${crl}` : ca), ...(crl ? ['-crl_check'] : []), file(leaf));

function mount(storage = new MemoryStorage()) {
  const { be, ok } = backendMount('pki', storage);
  return { be, storage, call: (op: string, p: string, d: Record<string, unknown> = {}, displayName = '') => ok(op, p, d, displayName) };
}
const raw = (d: any) => Buffer.from(d.http_raw_body, 'base64').toString('utf8');
const issuerCn = (pem: string) => new X509Certificate(pem).issuer;

describe("PKI: several issuers per mount (current Vault's multi-issuer API)", () => {
  it('root/generate on a mount with a CA adds an issuer; the first stays the default until config/issuers says otherwise', async () => {
    const { call } = mount();
    const a = await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root A', key_type: 'ec', issuer_name: 'a', key_name: 'ka' });
    expect(a.issuer_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).toMatchObject({ issuer_name: 'a', key_name: 'ka' });
    const b = await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root B', key_type: 'ec' });
    expect(b.issuer_id).not.toBe(a.issuer_id);
    expect(b.key_id).not.toBe(a.key_id);

    const list = await call('list', 'issuers');
    expect(list.keys.sort()).toEqual([a.issuer_id, b.issuer_id].sort());
    expect(list.key_info[a.issuer_id]).toEqual({ issuer_name: 'a', is_default: true });
    expect(list.key_info[b.issuer_id].is_default).toBe(false);
    expect((await call('read', 'config/issuers')).default).toBe(a.issuer_id);
    expect(raw(await call('read', 'ca/pem'))).toBe(a.certificate);

    // issuer/<ref>: by id, by name, "default"; update the name; json/pem/der.
    const read = await call('read', `issuer/${b.issuer_id}`);
    expect(read).toMatchObject({
      issuer_id: b.issuer_id,
      key_id: b.key_id,
      certificate: b.certificate,
      leaf_not_after_behavior: 'err',
      usage: 'read-only,issuing-certificates,crl-signing,ocsp-signing',
    });
    expect(read.ca_chain).toEqual([b.certificate]);
    await call('update', `issuer/${b.issuer_id}`, { issuer_name: 'b' });
    expect((await call('read', 'issuer/b')).issuer_id).toBe(b.issuer_id);
    expect((await call('read', 'issuer/default')).issuer_id).toBe(a.issuer_id);
    await expect(call('update', 'issuer/b', { issuer_name: 'a' })).rejects.toThrow(/already exists/);
    await expect(call('update', 'issuer/b', { issuer_name: 'default' })).rejects.toThrow(/reserved/);
    await expect(call('read', 'issuer/nope')).rejects.toThrow(/unable to resolve issuer/);
    expect(raw(await call('read', 'issuer/b/pem'))).toBe(b.certificate);
    expect(Buffer.from((await call('read', 'issuer/b/der')).http_raw_body, 'base64')).toEqual(new X509Certificate(b.certificate).raw);
    expect(await call('read', 'issuer/b/json')).toMatchObject({ issuer_id: b.issuer_id, issuer_name: 'b', certificate: b.certificate });

    // issuer_ref: on the role, on the request, in the path.
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec' });
    await call('update', 'roles/web-b', { allow_any_name: true, key_type: 'ec', issuer_ref: 'b' });
    await expect(call('update', 'roles/bad', { allow_any_name: true, issuer_ref: 'nope' })).rejects.toThrow(/unable to resolve issuer/);
    expect((await call('read', 'roles/web-b')).issuer_ref).toBe('b');
    const viaDefault = await call('update', 'issue/web', { common_name: 'x.example.com' });
    expect(issuerCn(viaDefault.certificate)).toContain('Root A');
    expect(viaDefault.issuing_ca).toBe(a.certificate);
    const viaRole = await call('update', 'issue/web-b', { common_name: 'x.example.com' });
    expect(issuerCn(viaRole.certificate)).toContain('Root B');
    expect(viaRole.ca_chain).toEqual([b.certificate]);
    expect(verify(b.certificate, viaRole.certificate)).toMatch(/: OK/);
    expect(issuerCn((await call('update', 'issue/web', { common_name: 'x.example.com', issuer_ref: 'b' })).certificate)).toContain('Root B');
    expect(issuerCn((await call('update', `issuer/${b.issuer_id}/issue/web`, { common_name: 'x.example.com' })).certificate)).toContain('Root B');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = openssl('req', '-new', '-key', file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), '-subj', '/CN=s.example.com');
    expect(issuerCn((await call('update', 'issuer/b/sign/web', { csr })).certificate)).toContain('Root B');
    expect(issuerCn((await call('update', 'sign/web', { csr })).certificate)).toContain('Root A');
    expect(issuerCn((await call('update', 'issuer/b/sign-verbatim', { csr })).certificate)).toContain('Root B');

    // The default moves with config/issuers: ca, cert/ca and issue/ follow.
    expect((await call('update', 'config/issuers', { default: 'b' })).default).toBe(b.issuer_id);
    expect(raw(await call('read', 'ca/pem'))).toBe(b.certificate);
    expect((await call('read', 'cert/ca')).certificate).toBe(b.certificate);
    expect(issuerCn((await call('update', 'issue/web', { common_name: 'x.example.com' })).certificate)).toContain('Root B');
  });

  it("CRLs are per issuer: a revoked leaf is on its issuer's CRL only; reads serve the stored CRL, not a new one", async () => {
    const { call } = mount();
    const a = await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root A', key_type: 'ec', issuer_name: 'a' });
    const b = await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root B', key_type: 'ec', issuer_name: 'b' });
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec' });
    const leafB = await call('update', 'issuer/b/issue/web', { common_name: 'x.example.com' });
    const leafA = await call('update', 'issue/web', { common_name: 'y.example.com' });
    await call('update', 'revoke', { serial_number: leafB.serial_number });
    const crlB = raw(await call('read', 'issuer/b/crl/pem'));
    const crlA = raw(await call('read', 'crl/pem'));
    expect(verify(b.certificate, leafB.certificate, crlB)).toMatch(/certificate revoked/);
    expect(verify(a.certificate, leafA.certificate, crlA)).toMatch(/: OK/);
    expect(openssl('crl', '-in', file(crlA), '-noout', '-text')).not.toMatch(/Serial Number/);
    expect((await call('read', `issuer/${b.issuer_id}/crl`)).crl).toBe(crlB);
    expect(Buffer.from((await call('read', 'issuer/b/crl/der')).http_raw_body, 'base64').length).toBeGreaterThan(100);
    // A second read is the same CRL (same bytes, not re-signed); crl/rotate makes a new one.
    expect(raw(await call('read', 'issuer/b/crl/pem'))).toBe(crlB);
    await call('read', 'crl/rotate');
    expect(raw(await call('read', 'issuer/b/crl/pem'))).not.toBe(crlB);
    await expect(call('update', 'revoke', { serial_number: b.serial_number })).rejects.toThrow(/issuer's own certificate/);
    expect(a.issuer_id).not.toBe(b.issuer_id);
  });

  it('root/rotate adds "next" without making it the default; root/replace does', async () => {
    const { call } = mount();
    const a = await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Old', key_type: 'ec' });
    const next = await call('update', 'root/rotate/internal', { common_name: 'New', key_type: 'ec' });
    expect(next.issuer_name).toBe('next');
    expect((await call('read', 'config/issuers')).default).toBe(a.issuer_id);
    expect((await call('update', 'root/replace', {})).default).toBe(next.issuer_id);
    expect(raw(await call('read', 'ca/pem'))).toBe(next.certificate);
    await expect(call('update', 'root/rotate/internal', { common_name: 'Again' })).rejects.toThrow(/"next" already exists/);
  });

  it('keys: list, read, rename; existing reuses one; a key in use cannot be deleted; deleting an issuer keeps its key', async () => {
    const { call } = mount();
    const a = await call('update', 'root/generate/exported', { ttl: '87600h', common_name: 'A', key_type: 'rsa', key_name: 'main' });
    expect(a.private_key).toMatch(/PRIVATE KEY/);
    const keys = await call('list', 'keys');
    expect(keys.keys).toEqual([a.key_id]);
    expect(keys.key_info[a.key_id]).toEqual({ key_name: 'main' });
    expect(await call('read', 'key/main')).toEqual({ key_id: a.key_id, key_name: 'main', key_type: 'rsa' });
    const again = await call('update', 'root/generate/existing', { common_name: 'A again', key_ref: 'main', issuer_name: 'again' });
    expect(again.key_id).toBe(a.key_id);
    expect(new X509Certificate(again.certificate).publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      new X509Certificate(a.certificate).publicKey.export({ type: 'spki', format: 'der' }),
    );
    await call('update', 'key/main', { key_name: 'renamed' });
    expect((await call('read', `key/${a.key_id}`)).key_name).toBe('renamed');
    await expect(call('delete', 'key/renamed')).rejects.toThrow(/in use by issuer/);
    const del = await call('delete', `issuer/${a.issuer_id}`);
    expect(del ?? undefined).toBeUndefined();
    await expect(call('read', `issuer/${a.issuer_id}`)).rejects.toThrow(/unable to resolve/);
    expect((await call('list', 'keys')).keys).toEqual([a.key_id]);
    await call('delete', 'issuer/again');
    await call('delete', 'key/renamed');
    expect((await call('list', 'keys')).keys ?? []).toEqual([]);
    // No CA left: what Vault answers on an empty mount — 204 for the raw CA, chain and CRL, no cert/ca or cert/crl (404).
    expect(await call('read', 'cert/ca')).toBeUndefined();
    expect(await call('read', 'cert/crl')).toBeUndefined();
    for (const [p, type] of [
      ['ca', 'application/pkix-cert'],
      ['ca_chain', 'application/pkix-cert'],
      ['crl', 'application/pkix-crl'],
      ['crl/pem', 'application/pkix-crl'],
    ])
      expect(await call('read', p), p).toEqual({ http_content_type: type, http_raw_body: '', http_status_code: 204 });
  });

  it('an intermediate: generate makes a key now; set-signed adds the issuer for it (twice: once); a foreign certificate is refused', async () => {
    const root = mount();
    await root.call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root', key_type: 'ec' });
    const inter = mount();
    const g = await inter.call('update', 'intermediate/generate/internal', { common_name: 'Inter', key_type: 'ec', key_name: 'ik' });
    expect((await inter.call('read', 'key/ik')).key_id).toBe(g.key_id);
    const signed = await root.call('update', 'root/sign-intermediate', { csr: g.csr, issuer_ref: 'default', ttl: '8760h' });
    const set = await inter.call('update', 'intermediate/set-signed', { certificate: signed.certificate + signed.issuing_ca });
    expect(set.imported_issuers).toHaveLength(1);
    expect(set.mapping[set.imported_issuers[0]]).toBe(g.key_id);
    expect((await inter.call('update', 'intermediate/set-signed', { certificate: signed.certificate })).existing_issuers).toEqual(set.imported_issuers);
    expect((await inter.call('read', 'config/issuers')).default).toBe(set.imported_issuers[0]);
    await expect(inter.call('update', 'intermediate/set-signed', { certificate: signed.issuing_ca })).rejects.toThrow(/not for any key of this mount/);
    await inter.call('update', 'roles/svc', { allow_any_name: true, key_type: 'ec' });
    const leaf = await inter.call('update', 'issue/svc', { common_name: 'svc.example.com' });
    expect(leaf.ca_chain).toEqual([signed.certificate, signed.issuing_ca]);
    expect(openssl('verify', '-CAfile', file(signed.issuing_ca), '-untrusted', file(signed.certificate), file(leaf.certificate))).toMatch(/: OK/);
    // The chain as one PEM (raw ca_chain, cert/ca_chain's certificate): two certificates openssl reads, one newline between.
    const raw = Buffer.from((await inter.call('read', 'ca_chain')).http_raw_body, 'base64').toString();
    const json = (await inter.call('read', 'cert/ca_chain')).certificate;
    expect(raw).toBe(json);
    expect(raw).toBe(`${signed.certificate.trim()}\n${signed.issuing_ca.trim()}`);
    expect(openssl('crl2pkcs7', '-nocrl', '-certfile', file(raw)).match(/BEGIN PKCS7/)).toBeTruthy();
    expect(openssl('storeutl', '-noout', '-certs', file(raw))).toMatch(/Total found: 2/);
  });

  it('leaf_not_after_behavior: err refuses, truncate cuts to the issuer, permit issues as asked; usage without issuing-certificates refuses', async () => {
    const { call } = mount();
    const a = await call('update', 'root/generate/internal', { common_name: 'Short', key_type: 'ec', ttl: '48h' });
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec', max_ttl: '8760h' });
    await expect(call('update', 'issue/web', { common_name: 'x', ttl: '100h' })).rejects.toThrow(/after the issuing CA certificate/);
    await call('update', 'issuer/default', { leaf_not_after_behavior: 'truncate' });
    const cut = await call('update', 'issue/web', { common_name: 'x', ttl: '100h' });
    expect(new X509Certificate(cut.certificate).validTo).toBe(new X509Certificate(a.certificate).validTo);
    await call('update', 'issuer/default', { leaf_not_after_behavior: 'permit' });
    const long = await call('update', 'issue/web', { common_name: 'x', ttl: '100h' });
    expect(new Date(new X509Certificate(long.certificate).validTo).getTime()).toBeGreaterThan(new Date(new X509Certificate(a.certificate).validTo).getTime());
    await call('update', 'issuer/default', { usage: 'read-only,crl-signing' });
    expect((await call('read', 'issuer/default')).usage).toBe('read-only,crl-signing');
    await expect(call('update', 'issue/web', { common_name: 'x' })).rejects.toThrow(/not allowed issuing-certificates/);
    await expect(call('update', 'issuer/default', { usage: 'everything' })).rejects.toThrow(/unknown usage/);
  });

  it('a mount written with one CA (pki/ca) is migrated when read: same CA, issuer "current", old serials on its CRL', async () => {
    // Write a single-CA mount as the previous version of this plugin stored it.
    const storage = new MemoryStorage();
    const old = mount(storage);
    const root = await old.call('update', 'root/generate/exported', { ttl: '87600h', common_name: 'Legacy Root', key_type: 'ec' });
    await old.call('update', 'roles/web', { allow_any_name: true, key_type: 'ec' });
    const leaf = await old.call('update', 'issue/web', { common_name: 'old.example.com' });
    for (const k of [...(await storage.list('pki/issuers/'))]) await storage.delete(`pki/issuers/${k}`);
    for (const k of [...(await storage.list('pki/keys/'))]) await storage.delete(`pki/keys/${k}`);
    for (const k of ['pki/config/issuers', 'pki/config/keys']) await storage.delete(k);
    for (const k of await storage.list('pki/crls/')) await storage.delete(`pki/crls/${k}`);
    await storage.put(
      'pki/ca',
      Buffer.from(JSON.stringify({ certificate: root.certificate, ca_chain: [], key: { kind: 'stored', pkcs8: root.private_key }, crl_number: 7 })),
    );
    const rec = JSON.parse((await storage.get(`pki/certs/${leaf.serial_number.replace(/:/g, '-')}`))!.toString());
    delete rec.issuer_id; // records written before issuers existed name none
    await storage.put(`pki/certs/${leaf.serial_number.replace(/:/g, '-')}`, Buffer.from(JSON.stringify(rec)));

    const { call } = mount(storage); // a new process on the same storage
    expect(raw(await call('read', 'ca/pem'))).toBe(root.certificate);
    const list = await call('list', 'issuers');
    expect(list.keys).toHaveLength(1);
    expect(list.key_info[list.keys[0]]).toEqual({ issuer_name: 'current', is_default: true });
    expect(await storage.get('pki/ca')).toBeUndefined();
    const again = mount(storage);
    expect((await again.call('list', 'issuers')).keys).toEqual(list.keys); // stable ids
    const fresh = await call('update', 'issue/web', { common_name: 'new.example.com' });
    expect(verify(root.certificate, fresh.certificate)).toMatch(/: OK/);
    await call('update', 'revoke', { serial_number: leaf.serial_number });
    const crl = raw(await call('read', 'crl/pem'));
    expect(verify(root.certificate, leaf.certificate, crl)).toMatch(/certificate revoked/);
    expect(openssl('crl', '-in', file(crl), '-noout', '-text')).toMatch(/X509v3 CRL Number:\s*\n\s*8/);
  });
});

describe('PKI: migrating a single-CA mount where storage refuses writes', () => {
  it('serves the migrated view from memory (same issuer_id as a written migration) and writes nothing', async () => {
    const storage = new MemoryStorage();
    const { call } = mount(storage);
    const root = await call('update', 'root/generate/exported', { ttl: '87600h', common_name: 'RO Root', key_type: 'ec' });
    for (const k of await storage.list('pki/issuers/')) await storage.delete(`pki/issuers/${k}`);
    for (const k of await storage.list('pki/keys/')) await storage.delete(`pki/keys/${k}`);
    for (const k of ['pki/config/issuers', 'pki/config/keys']) await storage.delete(k);
    await storage.put(
      'pki/ca',
      Buffer.from(JSON.stringify({ certificate: root.certificate, ca_chain: [], key: { kind: 'stored', pkcs8: root.private_key }, crl_number: 0 })),
    );
    const readOnly = Object.assign(Object.create(storage), {
      put: async () => {
        throw new Error('read-only');
      },
      delete: async () => {
        throw new Error('read-only');
      },
    });
    const ro = mount(readOnly);
    expect(raw(await ro.call('read', 'ca/pem'))).toBe(root.certificate);
    const ids = (await ro.call('list', 'issuers')).keys;
    expect(await storage.get('pki/ca')).toBeDefined();
    expect(await storage.list('pki/issuers/')).toEqual([]);
    expect((await mount(storage).call('list', 'issuers')).keys).toEqual(ids);
  });
});

describe('PKI: config/ca and issuers/import imports CA bundles as issuers and keys', () => {
  it('an openssl CA and its key become an issuer that signs; again: existing; a certificate alone cannot sign; a leaf is refused', async () => {
    const keyFile = path.join(tmp, 'ca.key');
    spawnSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
    const caPem = openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile,
      '-subj',
      '/CN=Imported CA',
      '-days',
      '30',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    const keyPem = fs.readFileSync(keyFile, 'utf8'); // SEC 1 ("EC PRIVATE KEY")
    const { call } = mount();
    const r = await call('update', 'config/ca', { pem_bundle: `${keyPem}\n${caPem}` });
    expect(r.imported_issuers).toHaveLength(1);
    expect(r.imported_keys).toHaveLength(1);
    expect(r.mapping[r.imported_issuers[0]]).toBe(r.imported_keys[0]);
    expect(raw(await call('read', 'ca/pem')).trim()).toBe(caPem.trim());
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec', max_ttl: '24h' });
    const leaf = await call('update', 'issue/web', { common_name: 'imp.example.com', ttl: '1h' });
    expect(verify(caPem, leaf.certificate)).toMatch(/: OK/);
    const again = await call('update', 'issuers/import/bundle', { pem_bundle: `${caPem}\n${keyPem}` });
    expect(again).toMatchObject({ imported_issuers: [], imported_keys: [], existing_issuers: r.imported_issuers, existing_keys: r.imported_keys });

    const other = mount();
    const certOnly = await other.call('update', 'issuers/import/cert', { pem_bundle: caPem });
    expect(certOnly.mapping[certOnly.imported_issuers[0]]).toBe('');
    await other.call('update', 'roles/web', { allow_any_name: true, key_type: 'ec' });
    await expect(other.call('update', 'issue/web', { common_name: 'x' })).rejects.toThrow(/has no key in this mount/);
    await expect(other.call('update', 'issuers/import/cert', { pem_bundle: keyPem })).rejects.toThrow(/certificates only/);
    await expect(other.call('update', 'config/ca', { pem_bundle: leaf.certificate })).rejects.toThrow(/not a CA certificate/);
    await expect(other.call('update', 'config/ca', { pem_bundle: 'junk' })).rejects.toThrow(/no PEM certificate/);
  });
});
