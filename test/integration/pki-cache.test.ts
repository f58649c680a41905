// The PKI mount keeps its CA (parsed, key imported) and its roles between requests. These
// tests pin down when that cache must let go: on writes through the mount itself, and on
// Vault's InvalidateKey when another node or a replica wrote the same storage.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backendMount } from '../support/backend';
import { MemoryStorage, type Storage } from '../../src/storage/storage';
import { keyIdentifier, x509 } from '../../src/secrets/pki/ca';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-pki-cache-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, body: string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, body);
  return f;
};
const verifies = (caPem: string, leafPem: string) =>
  spawnSync('openssl', ['verify', '-CAfile', write('ca.pem', caPem), write('leaf.pem', leafPem)], { encoding: 'utf8' }).stdout.includes('OK');

/** A backend over `storage`, counting the storage reads it makes. */
function mount(storage: Storage) {
  let reads = 0;
  const counted: Storage = {
    ...storage,
    get: (k) => {
      reads++;
      return storage.get(k);
    },
    put: (k, v) => storage.put(k, v),
    delete: (k) => storage.delete(k),
    list: (p) => storage.list(p),
  };
  const { be, ok } = backendMount('pki', counted);
  return { be, call: (op: string, p: string, d: Record<string, unknown> = {}) => ok(op, p, d, ''), reads: () => reads };
}
const issuerOf = (pemText: string) => new X509Certificate(pemText).issuer;

describe('PKI caches', () => {
  it('issuing reads neither the CA nor the role from storage again (one certificate write per issue)', async () => {
    const { call, reads } = mount(new MemoryStorage());
    const root = (await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Cache Root' })).certificate;
    await call('update', 'roles/web', { allow_any_name: true, max_ttl: '24h' });
    const first = await call('update', 'issue/web', { common_name: 'a.example.com' });
    const before = reads();
    const again = await call('update', 'issue/web', { common_name: 'b.example.com' });
    expect(reads()).toBe(before);
    expect(verifies(root, first.certificate) && verifies(root, again.certificate)).toBe(true);
    expect((await call('read', `cert/${again.serial_number}`)).certificate).toBe(again.certificate);
  });

  it('writes through the mount take effect at once: a new root, a changed role', async () => {
    const { call } = mount(new MemoryStorage());
    const root1 = (await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root One' })).certificate;
    await call('update', 'roles/web', { allow_any_name: true, organization: 'Before' });
    expect(issuerOf((await call('update', 'issue/web', { common_name: 'x.example.com' })).certificate)).toContain('Root One');
    await call('delete', 'root');
    await expect(call('update', 'issue/web', { common_name: 'x.example.com' })).rejects.toThrow(/no default issuer is configured/);
    const root2 = (await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Root Two' })).certificate;
    await call('update', 'roles/web', { allow_any_name: true, organization: 'After' });
    const leaf = (await call('update', 'issue/web', { common_name: 'x.example.com' })).certificate;
    expect(issuerOf(leaf)).toContain('Root Two');
    expect(new X509Certificate(leaf).subject).toContain('O=After');
    expect(verifies(root2, leaf) && !verifies(root1, leaf)).toBe(true);
    await call('delete', 'roles/web');
    await expect(call('update', 'issue/web', { common_name: 'x.example.com' })).rejects.toThrow(/unknown role/);
  });

  it("Vault's InvalidateKey drops the CA and the role another node changed in the same storage", async () => {
    const storage = new MemoryStorage();
    const a = mount(storage);
    const b = mount(storage); // another node (or a replica) of the same mount
    await a.call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Old Root' });
    await a.call('update', 'roles/web', { allow_any_name: true, organization: 'Old' });
    expect(issuerOf((await a.call('update', 'issue/web', { common_name: 'x.example.com' })).certificate)).toContain('Old Root');

    await b.call('delete', 'root');
    const newRoot = (await b.call('update', 'root/generate/exported', { ttl: '87600h', common_name: 'New Root', key_type: 'rsa' })).certificate;
    await b.call('update', 'roles/web', { allow_any_name: true, organization: 'New' });
    // Until Vault says so, `a` keeps what it cached (as Vault's own engines do).
    expect(issuerOf((await a.call('update', 'issue/web', { common_name: 'x.example.com' })).certificate)).toContain('Old Root');

    a.be.invalidate('pki/config/issuers'); // Vault names each key the other node changed
    a.be.invalidate('pki/roles/web');
    const leaf = (await a.call('update', 'issue/web', { common_name: 'x.example.com' })).certificate;
    expect(issuerOf(leaf)).toContain('New Root');
    expect(new X509Certificate(leaf).subject).toContain('O=New');
    expect(verifies(newRoot, leaf)).toBe(true);
  });

  it('key identifiers are the ones @peculiar/x509 computes (SHA-1 of the key bits) for every leaf key type', async () => {
    const X = x509();
    for (const [type, opts] of [
      ['ec', { namedCurve: 'P-256' }],
      ['ec', { namedCurve: 'P-521' }],
      ['rsa', { modulusLength: 2048 }],
      ['ed25519', {}],
    ] as const) {
      const spki = createPublicKey(generateKeyPairSync(type as 'ec', opts as never).privateKey).export({ type: 'spki', format: 'der' });
      const theirs = Buffer.from(await new X.PublicKey(spki).getKeyIdentifier());
      expect(keyIdentifier(spki).toString('hex')).toBe(theirs.toString('hex'));
    }
    expect(() => keyIdentifier(Buffer.from([0x04, 0x00]))).toThrow(/cannot be read/);
    // A key whose SEQUENCE length is in the long form (30 81 59): not DER, which Go's x509 refuses.
    const p256 = createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).export({ type: 'spki', format: 'der' });
    expect(() => keyIdentifier(Buffer.concat([Uint8Array.of(0x30, 0x81, p256[1]), p256.subarray(2)]))).toThrow(
      /^unsupported key: the public key cannot be read$/,
    );
  });

  it("a leaf's authority key id is its root's subject key id; its own is its key's", async () => {
    const { call } = mount(new MemoryStorage());
    const root = new X509Certificate((await call('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Id Root' })).certificate);
    await call('update', 'roles/web', { allow_any_name: true });
    const r = await call('update', 'issue/web', { common_name: 'id.example.com' });
    const X = x509();
    const leaf = new X.X509Certificate(r.certificate);
    const rootX = new X.X509Certificate(root.toString());
    const ski = (c: typeof leaf) => c.getExtension(X.SubjectKeyIdentifierExtension)!.keyId;
    expect(leaf.getExtension(X.AuthorityKeyIdentifierExtension)!.keyId).toBe(ski(rootX));
    expect(ski(leaf)).toBe(Buffer.from(await leaf.publicKey.getKeyIdentifier()).toString('hex'));
  });
});
