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

describe('PKI tidy, tidy-status, tidy-cancel and config/auto-tidy', () => {
  const wait = (ms: number) => new Promise((res) => setTimeout(res, ms));
  const accepted = (d: any) => {
    expect(d.http_status_code).toBe(202);
    return JSON.parse(Buffer.from(d.http_raw_body, 'base64').toString()).warnings as string[];
  };
  /** A mount with a root and a role whose certificates may live one second. */
  async function withRoot() {
    const m = mount();
    const root = await m.call('update', 'root/generate/internal', { common_name: 'Tidy Root', key_type: 'ec', ttl: '87600h', issuer_name: 'root' });
    await m.call('update', 'roles/short', { allow_any_name: true, key_type: 'ec', ttl: '1s', max_ttl: '24h' });
    return { ...m, root };
  }

  it('tidy-status: Inactive before any tidy; after one, what it ran with and what it removed; the CRL loses the tidied serial', async () => {
    const { call, reply, root } = await withRoot();
    const idle = await call('read', 'tidy-status');
    expect(idle).toMatchObject({ state: 'Inactive', safety_buffer: null, time_started: null, cert_store_deleted_count: null, error: null });
    const expired = await call('update', 'issue/short', { common_name: 'gone.example.com', ttl: '1s' });
    const revoked = await call('update', 'issue/short', { common_name: 'revoked.example.com', ttl: '1s' });
    const live = await call('update', 'issue/short', { common_name: 'live.example.com', ttl: '1h' });
    await call('update', 'revoke', { serial_number: revoked.serial_number });
    await wait(2200);
    const before = Date.now();
    const warnings = accepted(await call('update', 'tidy', { tidy_cert_store: true, tidy_revoked_certs: true, safety_buffer: '1s' }));
    expect(warnings[0]).toMatch(/^Tidy operation successfully started/);
    const s = await call('read', 'tidy-status');
    expect(s).toMatchObject({
      state: 'Finished',
      safety_buffer: 1,
      issuer_safety_buffer: 31536000,
      tidy_cert_store: true,
      tidy_revoked_certs: true,
      tidy_revoked_cert_issuer_associations: false,
      tidy_expired_issuers: false,
      pause_duration: '0s',
      error: null,
      message: null,
      cert_store_deleted_count: 1,
      revoked_cert_deleted_count: 1,
      missing_issuer_cert_count: 0,
    });
    expect(Date.parse(s.time_started)).toBeGreaterThanOrEqual(before - 5);
    expect(Date.parse(s.time_finished)).toBeGreaterThanOrEqual(Date.parse(s.time_started));
    expect(Date.parse(s.last_auto_tidy_finished)).toBeGreaterThanOrEqual(Date.parse(s.time_started));
    expect((await reply('read', `cert/${expired.serial_number}`)).data).toBeUndefined();
    expect((await reply('read', `cert/${revoked.serial_number}`)).data).toBeUndefined();
    expect((await call('read', `cert/${live.serial_number}`)).certificate).toBe(live.certificate);
    const crl = (await call('read', 'cert/crl')).certificate;
    expect(openssl('crl', '-in', file(crl), '-noout', '-text')).not.toMatch(/Serial Number/);
    expect(openssl('verify', '-crl_check', '-CAfile', file(`${root.certificate}\n${crl}`), file(live.certificate))).toMatch(/: OK/);
    // No target: still 202, with Vault's warning; a run that removes nothing.
    expect(accepted(await call('update', 'tidy', {}))[0]).toMatch(/^No targets to tidy; specify tidy_cert_store=true or/);
    expect(await call('read', 'tidy-status')).toMatchObject({ state: 'Finished', tidy_cert_store: false, cert_store_deleted_count: 0, safety_buffer: 259200 });
  });

  it('bad tidy input is a 400; tidy-cancel with nothing running warns', async () => {
    const { reply } = await withRoot();
    expect(bad(await reply('update', 'tidy', { tidy_cert_store: true, safety_buffer: 0 }))).toBe('safety_buffer must be greater than zero');
    expect(bad(await reply('update', 'tidy', { tidy_cert_store: true, issuer_safety_buffer: '0s' }))).toBe('issuer_safety_buffer must be greater than zero');
    expect(bad(await reply('update', 'tidy', { tidy_cert_store: true, pause_duration: '-1s' }))).toBe('received invalid, negative pause_duration');
    expect(bad(await reply('update', 'tidy', { tidy_cert_store: true, pause_duration: 'soon' }))).toMatch(/^Error parsing pause_duration/);
    expect(bad(await reply('update', 'tidy', { safety_buffer: 'x' }))).toMatch(/safety_buffer/);
    expect((await reply('read', 'tidy-status')).data.state).toBe('Inactive');
    const c = await reply('update', 'tidy-cancel');
    expect(c.data).toBeUndefined();
    expect(c.warnings).toEqual(['Tidy operation cannot be cancelled as none is currently running.']);
  });

  it('a tidy with pause_duration runs in the background: Running, a second tidy is refused, tidy-cancel stops it', async () => {
    const { call, reply } = await withRoot();
    for (let i = 0; i < 6; i++) await call('update', 'issue/short', { common_name: `c${i}.example.com`, ttl: '1h' });
    accepted(await call('update', 'tidy', { tidy_cert_store: true, pause_duration: '1m' }));
    const running = await call('read', 'tidy-status');
    expect(running).toMatchObject({ state: 'Running', pause_duration: '1m0s', time_finished: null });
    expect(running.message).toMatch(/^Tidying certificate store: checking entry \d+ of \d+$/);
    const again = await reply('update', 'tidy', { tidy_cert_store: true });
    expect(again.data).toBeUndefined();
    expect(again.warnings).toEqual(['Tidy operation already in progress.']);
    expect((await call('update', 'tidy-cancel')).state).toBe('Cancelling');
    await wait(400); // the minute's pause is cut short
    const s = await call('read', 'tidy-status');
    expect(s.state).toBe('Cancelled');
    expect(Date.parse(s.time_finished)).toBeGreaterThan(0);
    expect(s.cert_store_deleted_count).toBe(0);
    // Stopped, not finished: the certificates it had not reached are all still there.
    expect((await call('list', 'certs')).keys.length).toBeGreaterThanOrEqual(7);
  });

  it('the mount going away (cleanup) stops a running tidy at once', async () => {
    const { call, be } = await withRoot();
    await call('update', 'issue/short', { common_name: 'c.example.com', ttl: '1h' });
    accepted(await call('update', 'tidy', { tidy_cert_store: true, pause_duration: '1h' }));
    const t0 = Date.now();
    await be.cleanup();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((await call('read', 'tidy-status')).state).toBe('Cancelled');
  });

  it('tidy_expired_issuers removes expired issuers past issuer_safety_buffer, never the default; their keys stay', async () => {
    const { call, root } = await withRoot();
    const old = await call('update', 'issuers/generate/root/internal', { common_name: 'Short-lived', key_type: 'ec', ttl: '1s', issuer_name: 'old' });
    await wait(2200);
    accepted(await call('update', 'tidy', { tidy_expired_issuers: true, issuer_safety_buffer: '3600s' }));
    expect((await call('list', 'issuers')).keys).toHaveLength(2); // inside its buffer: kept
    accepted(await call('update', 'tidy', { tidy_expired_issuers: true, issuer_safety_buffer: '1s' }));
    expect((await call('list', 'issuers')).keys).toEqual([root.issuer_id]);
    expect((await call('list', 'keys')).keys).toContain(old.key_id);
    // The default issuer, expired as well, stays.
    await call('update', 'config/issuers', { default: root.issuer_id });
    const m2 = mount();
    const d = await m2.call('update', 'root/generate/internal', { common_name: 'Default, expiring', key_type: 'ec', ttl: '1s' });
    const other = await m2.call('update', 'issuers/generate/root/internal', { common_name: 'Not default, expiring', key_type: 'ec', ttl: '1s' });
    await wait(2500);
    accepted(await m2.call('update', 'tidy', { tidy_expired_issuers: true, issuer_safety_buffer: '1s' }));
    // The other one, expired as long, goes: the default stays only for being the default.
    expect((await m2.call('list', 'issuers')).keys).toEqual([d.issuer_id]);
    expect(other.issuer_id).not.toBe(d.issuer_id);
  });

  it('tidy_revoked_cert_issuer_associations gives a revoked certificate that names no issuer its issuer again', async () => {
    const { call, store, root } = await withRoot();
    const leaf = await call('update', 'issue/short', { common_name: 'assoc.example.com', ttl: '1h' });
    await call('update', 'revoke', { serial_number: leaf.serial_number });
    const key = `pki/certs/${leaf.serial_number.replace(/:/g, '-')}`;
    const rec = JSON.parse((await store.get(key))!.toString());
    expect(rec.issuer_id).toBe(root.issuer_id);
    delete rec.issuer_id; // as records written before issuers existed
    await store.put(key, Buffer.from(JSON.stringify(rec)));
    accepted(await call('update', 'tidy', { tidy_revoked_cert_issuer_associations: true }));
    expect(await call('read', 'tidy-status')).toMatchObject({ state: 'Finished', missing_issuer_cert_count: 1, revoked_cert_deleted_count: 0 });
    expect(JSON.parse((await store.get(key))!.toString()).issuer_id).toBe(root.issuer_id);
    const crl = (await call('read', 'cert/crl')).certificate;
    expect(openssl('verify', '-crl_check', '-CAfile', file(`${root.certificate}\n${crl}`), file(leaf.certificate))).toMatch(/certificate revoked/);
  });

  it("config/auto-tidy: Vault's defaults and checks; when enabled, Vault's periodic call tidies once interval_duration has passed", async () => {
    const { call, reply, be } = await withRoot();
    expect(await call('read', 'config/auto-tidy')).toEqual({
      enabled: false,
      interval_duration: 43200,
      tidy_cert_store: false,
      tidy_revoked_certs: false,
      tidy_revoked_cert_issuer_associations: false,
      tidy_expired_issuers: false,
      tidy_move_legacy_ca_bundle: false,
      tidy_acme: false,
      safety_buffer: 259200,
      issuer_safety_buffer: 31536000,
      acme_account_safety_buffer: 2592000,
      pause_duration: '0s',
      publish_stored_certificate_count_metrics: false,
      maintain_stored_certificate_counts: false,
      tidy_revocation_queue: false,
      revocation_queue_safety_buffer: 172800,
      tidy_cross_cluster_revoked_certs: false,
    });
    expect(bad(await reply('update', 'config/auto-tidy', { enabled: true }))).toMatch(/^Auto-tidy enabled but no tidy operations were requested/);
    expect(bad(await reply('update', 'config/auto-tidy', { safety_buffer: 0 }))).toMatch(/safety_buffer must be at least one second/);
    expect(bad(await reply('update', 'config/auto-tidy', { pause_duration: '-5s' }))).toBe('received invalid, negative pause_duration');
    expect(bad(await reply('update', 'config/auto-tidy', { publish_stored_certificate_count_metrics: true }))).toMatch(/maintain_stored_certificate_counts/);
    const w = await call('update', 'config/auto-tidy', {
      enabled: true,
      tidy_cert_store: true,
      interval_duration: '2s',
      safety_buffer: '1s',
      pause_duration: '1.5s',
    });
    expect(w).toMatchObject({ enabled: true, tidy_cert_store: true, interval_duration: 2, safety_buffer: 1, pause_duration: '1.5s' });
    // A field left out keeps its value.
    expect(await call('update', 'config/auto-tidy', { pause_duration: '0s' })).toMatchObject({
      enabled: true,
      interval_duration: 2,
      safety_buffer: 1,
      pause_duration: '0s',
    });
    const gone = await call('update', 'issue/short', { common_name: 'auto.example.com', ttl: '1s' });
    const rollback = () => be.handle('rollback', '', {}, { displayName: '', mountPoint: 'pki/' });
    await rollback(); // the mount is younger than interval_duration: nothing yet
    expect((await call('read', 'tidy-status')).state).toBe('Inactive');
    await wait(2300);
    await rollback();
    const s = await call('read', 'tidy-status');
    expect(s).toMatchObject({ state: 'Finished', tidy_cert_store: true, safety_buffer: 1, cert_store_deleted_count: 1 });
    expect((await reply('read', `cert/${gone.serial_number}`)).data).toBeUndefined();
    await rollback(); // just ran: not again until interval_duration passes
    expect((await call('read', 'tidy-status')).time_started).toBe(s.time_started);
    await call('update', 'config/auto-tidy', { enabled: false });
    await wait(2100);
    await rollback();
    expect((await call('read', 'tidy-status')).time_started).toBe(s.time_started);
  });
});

describe('PKI revoke-with-key and issuer/<ref>/revoke', () => {
  const crlText = (crl: string) => openssl('crl', '-in', file(crl), '-noout', '-text');
  const opensslSerial = (s: string) => s.replace(/:/g, '').toUpperCase();

  it('revoke-with-key: by serial or by certificate, with the proof of its key; the wrong key, or none, is a 400', async () => {
    const { call, reply } = mount();
    const root = await call('update', 'root/generate/internal', { common_name: 'PoP Root', key_type: 'ec', ttl: '87600h' });
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec', max_ttl: '24h' });
    const a = await call('update', 'issue/web', { common_name: 'a.example.com', ttl: '1h' });
    const b = await call('update', 'issue/web', { common_name: 'b.example.com', ttl: '1h' });
    const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const r = (d: Record<string, unknown>) => reply('update', 'revoke-with-key', d);
    expect(bad(await r({ serial_number: a.serial_number }))).toBe('Must have private key to revoke via the /revoke-with-key path.');
    expect(bad(await r({ serial_number: a.serial_number, private_key: 'short' }))).toMatch(/^Provided data for private_key was too short/);
    expect(bad(await r({ private_key: a.private_key }))).toBe('The serial number or certificate to revoke must be provided.');
    expect(bad(await r({ private_key: a.private_key, serial_number: a.serial_number, certificate: a.certificate }))).toMatch(/not both/);
    expect(bad(await r({ serial_number: a.serial_number, private_key: b.private_key }))).toBe("provided private key does not match certificate's public key");
    expect(bad(await r({ serial_number: a.serial_number, private_key: rsaKey }))).toBe(
      "provided private key type does not match certificate's public key type",
    );
    expect(bad(await r({ serial_number: a.serial_number, private_key: 'x'.repeat(70) }))).toMatch(/contained no data or failed to parse/);
    expect(bad(await r({ serial_number: '01:02:03', private_key: a.private_key }))).toMatch(/not found/);
    expect(bad(await r({ serial_number: root.serial_number, private_key: a.private_key }))).toMatch(/does not match/);
    // Nothing so far was revoked.
    expect(crlText((await call('read', 'cert/crl')).certificate)).not.toMatch(/Serial Number/);
    const done = await call('update', 'revoke-with-key', { serial_number: a.serial_number, private_key: a.private_key });
    expect(done.revocation_time).toBeGreaterThan(0);
    expect(Date.parse(done.revocation_time_rfc3339)).toBe(done.revocation_time * 1000);
    const viaCert = await call('update', 'revoke-with-key', { certificate: b.certificate, private_key: b.private_key });
    expect(viaCert.revocation_time).toBeGreaterThan(0);
    const crl = (await call('read', 'cert/crl')).certificate;
    expect(crlText(crl)).toContain(opensslSerial(a.serial_number));
    expect(crlText(crl)).toContain(opensslSerial(b.serial_number));
    expect(openssl('verify', '-crl_check', '-CAfile', file(`${root.certificate}\n${crl}`), file(a.certificate))).toMatch(/certificate revoked/);
    // Again: the first revocation's time.
    expect((await call('update', 'revoke-with-key', { serial_number: a.serial_number, private_key: a.private_key })).revocation_time).toBe(
      done.revocation_time,
    );
  });

  it('revoke-with-key takes a certificate the mount signed but did not store (no_store), and refuses one from another CA', async () => {
    const { call, reply } = mount();
    const root = await call('update', 'root/generate/internal', { common_name: 'No-store Root', key_type: 'ec', ttl: '87600h' });
    await call('update', 'roles/ns', { allow_any_name: true, key_type: 'ec', no_store: true });
    const leaf = await call('update', 'issue/ns', { common_name: 'ns.example.com', ttl: '1h' });
    expect((await reply('read', `cert/${leaf.serial_number}`)).data).toBeUndefined();
    // A wrong key leaves no record behind.
    const other = await call('update', 'issue/ns', { common_name: 'other.example.com', ttl: '1h' });
    expect(bad(await reply('update', 'revoke-with-key', { certificate: leaf.certificate, private_key: other.private_key }))).toMatch(/does not match/);
    expect((await reply('read', `cert/${leaf.serial_number}`)).data).toBeUndefined();
    await call('update', 'revoke-with-key', { certificate: leaf.certificate, private_key: leaf.private_key });
    const crl = (await call('read', 'cert/crl')).certificate;
    expect(openssl('verify', '-crl_check', '-CAfile', file(`${root.certificate}\n${crl}`), file(leaf.certificate))).toMatch(/certificate revoked/);
    const foreign = mount();
    await foreign.call('update', 'root/generate/internal', { common_name: 'Foreign', key_type: 'ec', ttl: '8760h' });
    await foreign.call('update', 'roles/web', { allow_any_name: true, key_type: 'ec' });
    const f = await foreign.call('update', 'issue/web', { common_name: 'f.example.com', ttl: '1h' });
    expect(bad(await reply('update', 'revoke-with-key', { certificate: f.certificate, private_key: f.private_key }))).toMatch(
      /^unable to verify signature on presented cert/,
    );
    expect(bad(await reply('update', 'revoke-with-key', { certificate: 'x'.repeat(80), private_key: f.private_key }))).toBe('certificate contains no PEM data');
  });

  it("issuer/<ref>/revoke: the issuer stops issuing, is on its parent's CRL (openssl), and cannot get issuing back", async () => {
    const { call, reply } = mount();
    const root = await call('update', 'root/generate/internal', { common_name: 'Parent Root', key_type: 'ec', ttl: '87600h', issuer_name: 'root' });
    const g = await call('update', 'intermediate/generate/internal', { common_name: 'Child Intermediate', key_type: 'ec' });
    const signed = await call('update', 'issuer/root/sign-intermediate', { csr: g.csr, ttl: '8760h' });
    const set = await call('update', 'intermediate/set-signed', { certificate: signed.certificate, issuer_name: 'inter' });
    expect(set.imported_issuers).toHaveLength(1);
    await call('update', 'roles/web', { allow_any_name: true, key_type: 'ec', issuer_ref: 'inter' });
    const leaf = await call('update', 'issue/web', { common_name: 'leaf.example.com', ttl: '1h' });
    expect(bad(await reply('update', 'revoke', { serial_number: signed.serial_number }))).toMatch(/issuer's own certificate/);

    const rev = await reply('update', 'issuer/inter/revoke');
    expect(rev.data).toMatchObject({ issuer_name: 'inter', revoked: true, usage: 'read-only,crl-signing,ocsp-signing' });
    expect(rev.data.revocation_time).toBeGreaterThan(0);
    expect(Date.parse(rev.data.revocation_time_rfc3339)).toBe(rev.data.revocation_time * 1000);
    expect(rev.warnings).toBeUndefined(); // its parent is in the mount; not self-signed, not the default
    expect(await call('read', 'issuer/inter')).toMatchObject({ revoked: true, revocation_time: rev.data.revocation_time });
    const rootCrl = raw(await call('read', 'issuer/root/crl/pem'));
    expect(crlText(rootCrl)).toContain(opensslSerial(signed.serial_number));
    const interCrl = raw(await call('read', 'issuer/inter/crl/pem'));
    expect(crlText(interCrl)).not.toMatch(/Serial Number/); // its own CRL: still signed, its leaf not revoked
    expect(
      openssl(
        'verify',
        '-crl_check_all',
        '-CAfile',
        file(`${root.certificate}\n${rootCrl}`),
        '-untrusted',
        file(signed.certificate),
        '-CRLfile',
        file(interCrl),
        file(leaf.certificate),
      ),
    ).toMatch(/certificate revoked/);
    expect(bad(await reply('update', 'issue/web', { common_name: 'more.example.com' }))).toMatch(/not allowed issuing-certificates/);
    expect(bad(await reply('update', 'issuer/inter', { usage: 'read-only,issuing-certificates' }))).toMatch(/^This issuer was revoked/);
    // Revoking its leaf still works (its CRL is still signed by it).
    await call('update', 'revoke', { serial_number: leaf.serial_number });
    expect(crlText(raw(await call('read', 'issuer/inter/crl/pem')))).toContain(opensslSerial(leaf.serial_number));
    // Again: the same state, no warnings.
    const again = await reply('update', 'issuer/inter/revoke');
    expect(again.data.revocation_time).toBe(rev.data.revocation_time);
    expect(again.warnings).toBeUndefined();
    // The root: self-signed, no parent, the default: Vault's three warnings; on no CRL.
    const r2 = await reply('update', 'issuer/root/revoke');
    expect(r2.warnings).toHaveLength(3);
    expect(r2.warnings![0]).toMatch(/^This issuer is a self-signed/);
    expect(r2.warnings![1]).toMatch(/^This issuer lacks another parent issuer/);
    expect(r2.warnings![2]).toMatch(/^This issuer is currently configured as the default issuer/);
    expect(crlText(raw(await call('read', 'issuer/root/crl/pem')))).not.toContain(opensslSerial(root.serial_number));
    expect(bad(await reply('update', 'issuer/nope/revoke'))).toMatch(/unable to resolve issuer/);
  });

  it('an issuer whose certificate this mount has no record of (imported with its parent) is on the parent CRL all the same', async () => {
    const { call, store } = mount();
    const root = await call('update', 'root/generate/internal', { common_name: 'Parent 2', key_type: 'ec', ttl: '87600h', issuer_name: 'root' });
    const g = await call('update', 'intermediate/generate/internal', { common_name: 'Child 2', key_type: 'ec' });
    const signed = await call('update', 'issuer/root/sign-intermediate', { csr: g.csr, ttl: '8760h' });
    await call('update', 'intermediate/set-signed', { certificate: signed.certificate, issuer_name: 'inter' });
    await store.delete(`pki/certs/${signed.serial_number.replace(/:/g, '-')}`); // as if signed elsewhere and imported
    await call('update', 'issuer/inter/revoke');
    const rootCrl = raw(await call('read', 'issuer/root/crl/pem'));
    expect(crlText(rootCrl)).toContain(opensslSerial(signed.serial_number));
    expect(openssl('verify', '-crl_check', '-CAfile', file(`${root.certificate}\n${rootCrl}`), file(signed.certificate))).toMatch(/certificate revoked/);
  });
});

const raw = (d: any) => Buffer.from(d.http_raw_body, 'base64').toString('utf8');
