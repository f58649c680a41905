// Current Vault's (1.11+) PKI management paths beyond issuers and keys themselves:
// keys/generate/<type> and keys/import, issuers/generate/root|intermediate/<type>,
// tidy-status, tidy-cancel and config/auto-tidy, revoke-with-key and issuer/<ref>/revoke.
// Keys and certificates that come out are checked by openssl.
import { describe, expect, it } from 'vitest';
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { backendMount, type Reply } from '../support/backend';
import { opensslScratch } from '../support/openssl';

const { file, openssl } = opensslScratch('vpt-pki-manage-');

function mount() {
  const m = backendMount('pki');
  return {
    ...m,
    call: (op: string, p: string, d: Record<string, unknown> = {}) => m.ok(op, p, d),
    reply: (op: string, p: string, d: Record<string, unknown> = {}) => m.call(op, p, d),
  };
}
/** A reply that must be a 400 (Vault's data.error), never a 500: its message. */
const bad = (r: Reply): string => {
  expect(r.err, JSON.stringify(r.err)).toBeUndefined();
  expect(r.error).toBeTypeOf('string');
  return r.error!;
};
const spkiOfCert = (pem: string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }) as Buffer;
const spkiOfKey = (pem: string) => createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' }) as Buffer;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('PKI keys/generate/<type>', () => {
  it('internal: a key with no certificate joins the mount (the default key when first); no private key is answered', async () => {
    const { call } = mount();
    const k = await call('update', 'keys/generate/internal', { key_type: 'ec', key_name: 'first' });
    expect(k).toEqual({ key_id: expect.stringMatching(UUID), key_name: 'first', key_type: 'ec' });
    expect((await call('list', 'keys')).keys).toEqual([k.key_id]);
    expect(await call('read', 'key/first')).toEqual({ key_id: k.key_id, key_name: 'first', key_type: 'ec' });
    expect((await call('read', 'config/keys')).default).toBe(k.key_id);
    expect((await call('list', 'issuers')).keys ?? []).toEqual([]);
    // A second key is not the default; root/generate/existing signs with the one named.
    const k2 = await call('update', 'keys/generate/internal', { key_type: 'rsa', key_bits: 3072 });
    expect(k2).toMatchObject({ key_name: '', key_type: 'rsa' });
    expect((await call('read', 'config/keys')).default).toBe(k.key_id);
    const root = await call('update', 'root/generate/existing', { key_ref: k2.key_id, common_name: 'On K2', ttl: '87600h' });
    expect(root.key_id).toBe(k2.key_id);
    expect(openssl('x509', '-in', file(root.certificate), '-noout', '-text')).toMatch(/Public-Key: \(3072 bit\)/);
  });

  it('exported: the private key is answered once, in its own structure, and is the key the mount signs with', async () => {
    const { call } = mount();
    const rsa = await call('update', 'keys/generate/exported', { key_type: 'rsa', key_bits: 2048, key_name: 'r' });
    expect(rsa.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----$/);
    expect(openssl('rsa', '-in', file(rsa.private_key), '-check', '-noout')).toMatch(/RSA key ok/);
    expect(await call('read', 'key/r')).toEqual({ key_id: rsa.key_id, key_name: 'r', key_type: 'rsa' });
    const ec = await call('update', 'keys/generate/exported', { key_type: 'ec', key_bits: 384 });
    expect(ec.private_key).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    expect(openssl('ec', '-in', file(ec.private_key), '-noout', '-text')).toMatch(/NIST CURVE: P-384/);
    const ed = await call('update', 'keys/generate/exported', { key_type: 'ed25519' });
    expect(ed).toMatchObject({ key_type: 'ed25519', private_key: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) });
    // The exported key is the one a certificate made with key_ref names: openssl's public key of each is the same.
    const root = await call('update', 'root/generate/existing', { key_ref: 'r', common_name: 'Exported key root', ttl: '8760h' });
    const fromCert = openssl('x509', '-in', file(root.certificate), '-noout', '-pubkey');
    const fromKey = openssl('pkey', '-in', file(rsa.private_key), '-pubout');
    expect(fromCert).toMatch(/BEGIN PUBLIC KEY/);
    expect(fromCert).toBe(fromKey);
    const edRoot = await call('update', 'root/generate/existing', { key_ref: ed.key_id, common_name: 'Ed root', ttl: '8760h' });
    expect(spkiOfCert(edRoot.certificate)).toEqual(spkiOfKey(ed.private_key));
    expect(openssl('verify', '-CAfile', file(edRoot.certificate), file(edRoot.certificate))).toMatch(/: OK/);
    // Reading the key never shows it again.
    expect(JSON.stringify(await call('read', `key/${rsa.key_id}`))).not.toMatch(/PRIVATE/);
  });

  it('kms: a managed key (software backend) becomes a key of the mount; the same managed key twice is one key', async () => {
    const { call } = mount();
    await call('update', 'managed-keys/software/mk', { key_type: 'ecdsa-p256' });
    const k = await call('update', 'keys/generate/kms', { managed_key_name: 'mk', key_name: 'hsm' });
    expect(k).toEqual({ key_id: expect.stringMatching(UUID), key_name: 'hsm', key_type: 'ec' });
    expect(k.private_key).toBeUndefined();
    expect(await call('read', 'key/hsm')).toMatchObject({ key_id: k.key_id, managed_key_name: 'mk' });
    expect((await call('update', 'keys/generate/kms', { managed_key_name: 'mk' })).key_id).toBe(k.key_id);
    expect((await call('list', 'keys')).keys).toEqual([k.key_id]);
    const root = await call('update', 'root/generate/existing', { key_ref: 'hsm', common_name: 'KMS root', ttl: '8760h' });
    expect(openssl('verify', '-CAfile', file(root.certificate), file(root.certificate))).toMatch(/: OK/);
  });

  it('bad input is a 400 with a clear message, never a 500, and leaves no key behind', async () => {
    const { reply, call } = mount();
    expect(bad(await reply('update', 'keys/generate/internal', { key_type: 'dsa' }))).toMatch(/key_type/);
    expect(bad(await reply('update', 'keys/generate/internal', { key_type: 'ec', key_bits: 255 }))).toMatch(/key_bits for ec keys must be/);
    expect(bad(await reply('update', 'keys/generate/internal', { key_type: 'rsa', key_bits: 1024 }))).toMatch(/key_bits for rsa keys must be/);
    expect(bad(await reply('update', 'keys/generate/internal', { key_name: 'default' }))).toMatch(/reserved/);
    expect(bad(await reply('update', 'keys/generate/internal', { key_name: 'has space' }))).toMatch(/key_name must be/);
    expect(bad(await reply('update', 'keys/generate/kms', {}))).toMatch(/managed_key_name is required/);
    expect(bad(await reply('update', 'keys/generate/kms', { managed_key_name: 'nope' }))).toMatch(/nope/);
    expect((await reply('update', 'keys/generate/other', {})).err?.err_msg).toBe('unsupported path');
    expect((await call('list', 'keys')).keys ?? []).toEqual([]);
    await call('update', 'keys/generate/internal', { key_type: 'ec', key_name: 'taken' });
    expect(bad(await reply('update', 'keys/generate/internal', { key_type: 'ec', key_name: 'taken' }))).toMatch(/"taken" already exists/);
    expect((await call('list', 'keys')).keys).toHaveLength(1);
  });
});

describe('PKI keys/import', () => {
  const ecKey = () => openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout'); // SEC 1 ("EC PRIVATE KEY")

  it('imports one key (SEC 1, PKCS#1, PKCS#8); the same key again is the same key_id, with a warning', async () => {
    const { call, reply } = mount();
    const pem = ecKey();
    const k = await call('update', 'keys/import', { pem_bundle: pem, key_name: 'imp' });
    expect(k).toEqual({ key_id: expect.stringMatching(UUID), key_name: 'imp', key_type: 'ec' });
    const again = await reply('update', 'keys/import', { pem_bundle: pem, key_name: 'other-name' });
    expect(again.data).toEqual(k);
    expect(again.warnings).toEqual(['Key already imported, use key/ endpoint to update name.']);
    // As Vault: a key_name in use is refused, even when it names this very key.
    expect(bad(await reply('update', 'keys/import', { pem_bundle: pem, key_name: 'imp' }))).toMatch(/"imp" already exists/);
    // The same key in another encoding (PKCS#8) is still the same key.
    const pkcs8 = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' }) as string;
    expect((await call('update', 'keys/import', { pem_bundle: pkcs8 })).key_id).toBe(k.key_id);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    expect(await call('update', 'keys/import', { pem_bundle: rsa })).toMatchObject({ key_type: 'rsa', key_name: '' });
    expect((await call('list', 'keys')).keys).toHaveLength(2);
    // The imported key signs: a root made with it carries its public key.
    const root = await call('update', 'root/generate/existing', { key_ref: 'imp', common_name: 'Imported key root', ttl: '8760h' });
    expect(spkiOfCert(root.certificate)).toEqual(spkiOfKey(pem));
    expect(openssl('verify', '-CAfile', file(root.certificate), file(root.certificate))).toMatch(/: OK/);
  });

  it('an issuer imported without its key (issuers/import/cert) signs once keys/import brings the key', async () => {
    const { call, reply } = mount();
    const keyPem = ecKey();
    const ca = openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      file(keyPem),
      '-subj',
      '/CN=Key Later CA',
      '-days',
      '30',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    const imp = await call('update', 'issuers/import/cert', { pem_bundle: ca });
    const issuerId = imp.imported_issuers[0];
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec', max_ttl: '24h' });
    expect(bad(await reply('update', 'issue/web', { common_name: 'x.example.com', ttl: '1h' }))).toMatch(/has no key in this mount/);
    const k = await call('update', 'keys/import', { pem_bundle: keyPem });
    expect((await call('read', `issuer/${issuerId}`)).key_id).toBe(k.key_id);
    const leaf = await call('update', 'issue/web', { common_name: 'x.example.com', ttl: '1h' });
    expect(openssl('verify', '-CAfile', file(ca), file(leaf.certificate))).toMatch(/: OK/);
  });

  it('refuses what is not exactly one usable private key: a 400 each, no key stored', async () => {
    const { call, reply } = mount();
    const pem = ecKey();
    expect(bad(await reply('update', 'keys/import', {}))).toMatch(/too short/);
    expect(bad(await reply('update', 'keys/import', { pem_bundle: '/etc/ssl/private/ca.key' }))).toMatch(/too short; perhaps a path/);
    expect(bad(await reply('update', 'keys/import', { pem_bundle: 'x'.repeat(80) }))).toMatch(/contained no data/);
    expect(bad(await reply('update', 'keys/import', { pem_bundle: `${pem}\n${ecKey()}` }))).toMatch(/only a single key/);
    const cert = openssl('req', '-x509', '-new', '-key', file(pem), '-subj', '/CN=c', '-days', '1');
    expect(bad(await reply('update', 'keys/import', { pem_bundle: cert }))).toMatch(/certificate, not a private key/);
    const p224 = openssl('ecparam', '-name', 'secp224r1', '-genkey', '-noout');
    expect(bad(await reply('update', 'keys/import', { pem_bundle: p224 }))).toMatch(/P-224/);
    const enc = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string;
    expect(bad(await reply('update', 'keys/import', { pem_bundle: enc }))).toMatch(/error parsing key/);
    const garbled = pem.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA');
    expect(bad(await reply('update', 'keys/import', { pem_bundle: garbled }))).toMatch(/error parsing key/);
    expect(bad(await reply('update', 'keys/import', { pem_bundle: pem, key_name: 'default' }))).toMatch(/reserved/);
    expect((await call('list', 'keys')).keys ?? []).toEqual([]);
    await call('update', 'keys/import', { pem_bundle: pem, key_name: 'one' });
    expect(bad(await reply('update', 'keys/import', { pem_bundle: ecKey(), key_name: 'one' }))).toMatch(/"one" already exists/);
    expect((await call('list', 'keys')).keys).toHaveLength(1);
  });
});

describe('PKI issuers/generate/root|intermediate/<type>', () => {
  it('root: adds an issuer without replacing the default; issuer_name, key_name and key_ref as root/generate', async () => {
    const { call, reply } = mount();
    const first = await call('update', 'issuers/generate/root/internal', { common_name: 'First', key_type: 'ec', issuer_name: 'first', ttl: '87600h' });
    expect(first).toMatchObject({ issuer_name: 'first', issuer_id: expect.stringMatching(UUID), key_id: expect.stringMatching(UUID) });
    // The first issuer of an empty mount is its default, as in Vault; a later one is not.
    expect((await call('read', 'config/issuers')).default).toBe(first.issuer_id);
    const k = await call('update', 'keys/generate/internal', { key_type: 'rsa', key_name: 'pre' });
    const second = await call('update', 'issuers/generate/root/existing', { common_name: 'Second', key_ref: 'pre', issuer_name: 'second', ttl: '8760h' });
    expect(second).toMatchObject({ issuer_name: 'second', key_id: k.key_id, key_name: 'pre' });
    expect((await call('read', 'config/issuers')).default).toBe(first.issuer_id);
    const exp = await call('update', 'issuers/generate/root/exported', { common_name: 'Third', key_type: 'ec', key_name: 'third-key', ttl: '8760h' });
    expect(exp).toMatchObject({ key_name: 'third-key', private_key_type: 'ec', private_key: expect.stringMatching(/^-----BEGIN EC PRIVATE KEY-----/) });
    expect(spkiOfCert(exp.certificate)).toEqual(spkiOfKey(exp.private_key));
    for (const c of [first, second, exp]) {
      expect(openssl('verify', '-CAfile', file(c.certificate), file(c.certificate))).toMatch(/: OK/);
      expect(openssl('x509', '-in', file(c.certificate), '-noout', '-ext', 'basicConstraints')).toMatch(/CA:TRUE/);
    }
    expect((await call('list', 'issuers')).keys).toHaveLength(3);
    expect(bad(await reply('update', 'issuers/generate/root/internal', { common_name: 'Dup', issuer_name: 'first' }))).toMatch(/"first" already exists/);
    expect(bad(await reply('update', 'issuers/generate/root/existing', { common_name: 'No key', key_ref: 'nope' }))).toMatch(/unable to resolve key/);
    expect((await reply('update', 'issuers/generate/root/bogus', { common_name: 'x' })).err?.err_msg).toBe('unsupported path');
    // With default_follows_latest_issuer, a new issuer becomes the default, as root/generate.
    await call('update', 'config/issuers', { default_follows_latest_issuer: true });
    const fourth = await call('update', 'issuers/generate/root/internal', { common_name: 'Fourth', key_type: 'ec', ttl: '8760h' });
    expect((await call('read', 'config/issuers')).default).toBe(fourth.issuer_id);
  });

  it('intermediate: a key and a CSR (openssl verifies it); signed by a root and set-signed, it issues', async () => {
    const root = mount();
    const r = await root.call('update', 'issuers/generate/root/internal', { common_name: 'Root', key_type: 'ec', ttl: '87600h' });
    const inter = mount();
    const g = await inter.call('update', 'issuers/generate/intermediate/internal', { common_name: 'Inter', key_type: 'ec', key_name: 'ik' });
    expect(g.key_id).toMatch(UUID);
    expect((await inter.call('read', 'key/ik')).key_id).toBe(g.key_id);
    expect(openssl('req', '-in', file(g.csr), '-noout', '-verify', '-subject')).toMatch(/subject=CN ?= ?Inter\n[\s\S]*(verify OK|verification OK)/);
    const signed = await root.call('update', 'root/sign-intermediate', { csr: g.csr, ttl: '8760h' });
    const set = await inter.call('update', 'intermediate/set-signed', { certificate: `${signed.certificate}\n${r.certificate}` });
    expect(set.mapping[set.imported_issuers[0]]).toBe(g.key_id);
    await inter.call('update', 'roles/svc', { allow_any_name: true, key_type: 'ec' });
    const leaf = await inter.call('update', 'issue/svc', { common_name: 'svc.example.com', ttl: '1h' });
    expect(openssl('verify', '-CAfile', file(r.certificate), '-untrusted', file(signed.certificate), file(leaf.certificate))).toMatch(/: OK/);
    // existing: a CSR for a key the mount already has (keys/generate), no new key.
    const k = await inter.call('update', 'keys/generate/internal', { key_type: 'rsa' });
    const g2 = await inter.call('update', 'issuers/generate/intermediate/existing', { common_name: 'Inter 2', key_ref: k.key_id });
    expect(g2.key_id).toBe(k.key_id);
    expect((await inter.call('list', 'keys')).keys).toHaveLength(2);
    const exported = await inter.call('update', 'issuers/generate/intermediate/exported', { common_name: 'Inter 3', key_type: 'ec' });
    expect(openssl('req', '-in', file(exported.csr), '-noout', '-pubkey')).toBe(openssl('pkey', '-in', file(exported.private_key), '-pubout'));
  });
});
