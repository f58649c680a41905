// Defects found in review 13 (transit key store, managed keys), each shown by a test that
// failed before its fix.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPublicKey } from 'node:crypto';
import { SoftwareKey } from '../../src/keys/software';
import { isParsed } from '../../src/secrets/transit/policy';
import { holdsSeed } from '../../src/secrets/transit/mldsa';
import { MemoryStorage } from '../../src/storage/storage';
import { backendMount } from '../support/backend';

/** A storage whose next read of `key` takes its value at once but answers only when released (a read in flight over the broker). */
class SlowReads extends MemoryStorage {
  private held?: { key: string; release?: () => void };
  holdNextGet(key: string): () => void {
    this.held = { key };
    return () => this.held?.release?.();
  }
  override async get(key: string) {
    const value = await super.get(key);
    if (this.held?.key === key && !this.held.release) {
      const held = this.held;
      await new Promise<void>((r) => {
        held.release = r;
      });
      this.held = undefined;
    }
    return value;
  }
}

describe('transit key cache: a read in flight never caches a key older than a write or invalidation made meanwhile', () => {
  it('rotate while an encrypt is still reading the key: later requests see the rotation', async () => {
    const store = new SlowReads();
    const { be, ok } = backendMount('transit', store);
    await ok('update', 'keys/k', {});
    be.invalidate('policy/k');
    const release = store.holdNextGet('policy/k');
    // This encrypt reads version 1 of the key, then waits.
    const first = ok('update', 'encrypt/k', { plaintext: 'aGk=' });
    await new Promise((r) => setImmediate(r));
    // The rotation completes (stored, cached) while that read is in flight.
    expect((await ok('update', 'keys/k/rotate', {})).latest_version).toBe(2);
    release();
    expect((await first).key_version).toBe(1);
    // Every request from now on was made after the rotation.
    expect((await ok('read', 'keys/k')).latest_version).toBe(2);
    expect((await ok('update', 'encrypt/k', { plaintext: 'aGk=' })).key_version).toBe(2);
  });

  it("Vault's InvalidateKey during a read in flight is not lost", async () => {
    const store = new SlowReads();
    const { be, ok } = backendMount('transit', store);
    await ok('update', 'keys/k', {});
    be.invalidate('policy/k');
    const release = store.holdNextGet('policy/k');
    const first = ok('read', 'keys/k');
    await new Promise((r) => setImmediate(r));
    // Another node (performance standby, replication) rotated the key and Vault says so.
    const stored = JSON.parse(store.data.get('policy/k')!.toString());
    stored.versions['2'] = stored.versions['1'];
    stored.latest_version = 2;
    store.data.set('policy/k', Buffer.from(JSON.stringify(stored)));
    be.invalidate('policy/k');
    release();
    expect((await first).latest_version).toBe(1);
    expect((await ok('read', 'keys/k')).latest_version).toBe(2);
  });
});

describe('managed keys: an opened key is never replaced by an older config, nor left open when nothing holds it', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const b = (s: string) => Buffer.from(s).toString('base64');

  it('a config written while a first use is still reading the old one wins; the key that lost is closed', async () => {
    const store = new SlowReads();
    const { be, ok } = backendMount('transit', store);
    await ok('update', 'managed-keys/software/m', { key_type: 'ecdsa-p256' });
    be.invalidate('managed-keys/software/m');
    await new Promise((r) => setImmediate(r)); // (the dropped key's close)
    const closed = vi.spyOn(SoftwareKey.prototype, 'close');
    const create = vi.spyOn(SoftwareKey, 'create');
    const release = store.holdNextGet('managed-keys/software/m');
    // A first use reads the P-256 config, then waits.
    const first = ok('update', 'random', { source: 'm', bytes: 8 });
    await new Promise((r) => setImmediate(r));
    // The operator replaces the key meanwhile.
    expect((await ok('update', 'managed-keys/software/m', { key_type: 'ecdsa-p384' })).key_spec).toEqual({ kind: 'ec', curve: 'P-384' });
    release();
    await first;
    await new Promise((r) => setImmediate(r));
    // Later uses get the P-384 key written last.
    expect((await ok('read', 'managed-keys/software/m')).key_spec).toEqual({ kind: 'ec', curve: 'P-384' });
    await ok('create', 'keys/t', { type: 'managed_key', managed_key_name: 'm' });
    const { signature } = await ok('update', 'sign/t', { input: b('m'), marshaling_algorithm: 'jws' });
    expect(Buffer.from(signature.split(':')[2], 'base64url').length).toBe(96);
    // Whatever was opened and is no longer the mount's key was closed: one key is open.
    expect(create.mock.calls.length - closed.mock.calls.length).toBe(1);
  });

  it('two first uses at once open the key once, or close the extra one', async () => {
    const store = new MemoryStorage();
    const { be, ok } = backendMount('transit', store);
    await ok('update', 'managed-keys/software/m', { key_type: 'ecdsa-p256' });
    be.invalidate('managed-keys/software/m');
    await new Promise((r) => setImmediate(r)); // (the dropped key's close)
    // Reads over the broker take a while: both uses are reading when the first read answers.
    const get = store.get.bind(store);
    store.get = async (k) => {
      const v = await get(k);
      await new Promise((r) => setTimeout(r, 5));
      return v;
    };
    const closed = vi.spyOn(SoftwareKey.prototype, 'close');
    const create = vi.spyOn(SoftwareKey, 'create');
    await Promise.all([ok('update', 'random', { source: 'm', bytes: 8 }), ok('update', 'random', { source: 'm', bytes: 8 })]);
    await new Promise((r) => setImmediate(r));
    expect(create.mock.calls.length - closed.mock.calls.length).toBe(1);
  });

  it('a config whose write to storage fails leaves no key open', async () => {
    const store = new MemoryStorage();
    const { ok, call } = backendMount('transit', store);
    const put = store.put.bind(store);
    store.put = async (k, v) => {
      if (k.startsWith('managed-keys/')) throw new Error('storage Put: write failed');
      return put(k, v);
    };
    const closed = vi.spyOn(SoftwareKey.prototype, 'close');
    const create = vi.spyOn(SoftwareKey, 'create');
    expect((await call('update', 'managed-keys/software/m', { key_type: 'ecdsa-p256' })).err?.err_msg).toMatch(/write failed/);
    expect(create).toHaveBeenCalledTimes(1);
    expect(closed).toHaveBeenCalledTimes(1);
    store.put = put;
    await ok('update', 'managed-keys/software/m', { key_type: 'ecdsa-p256' });
  });
});

describe('RSA encryption of a plaintext too long for the key', () => {
  const b = (s: string | Buffer) => Buffer.from(s).toString('base64');
  it("is the caller's 400 (and one batch item's error), not a 500", async () => {
    const { ok, call } = backendMount('transit');
    await ok('update', 'keys/r', { type: 'rsa-2048' });
    // RSA-OAEP with SHA-256 takes at most 256 - 2*32 - 2 = 190 bytes on a 2048-bit key.
    expect((await ok('update', 'encrypt/r', { plaintext: b(Buffer.alloc(190)) })).ciphertext).toMatch(/^vault:v1:/);
    const one = await call('update', 'encrypt/r', { plaintext: b(Buffer.alloc(191)) });
    expect(one.err).toBeUndefined();
    expect(one.error).toBe('failed to RSA encrypt the plaintext: crypto/rsa: message too long for RSA key size');
    const batch = await call('update', 'encrypt/r', {
      batch_input: [{ plaintext: b(Buffer.alloc(300)) }, { plaintext: b('x') }],
      partial_failure_response_code: 200,
    });
    expect(batch.err).toBeUndefined();
    expect(batch.data.http_status_code).toBe(200);
    const results = JSON.parse(Buffer.from(batch.data.http_raw_body, 'base64').toString()).data.batch_results;
    expect(results[0].error).toMatch(/message too long/);
    expect(results[1].ciphertext).toMatch(/^vault:v1:/);
  });
});

describe('restore refuses a backup whose key could not serve a request', () => {
  const b = (s: string | Buffer) => Buffer.from(s).toString('base64');
  it('material that does not fit the type, missing floors, bad flags: a 400, and no key is made', async () => {
    const { ok, call } = backendMount('transit');
    const backupOf = async (name: string, type: string) => {
      await ok('update', `keys/${name}`, { type, exportable: true, allow_plaintext_backup: true });
      return JSON.parse(Buffer.from((await ok('read', `backup/${name}`)).backup, 'base64').toString());
    };
    const aes = await backupOf('a', 'aes256-gcm96');
    const rsa = await backupOf('r', 'rsa-2048');
    const ec = await backupOf('e', 'ecdsa-p256');
    await ok('update', 'keys/d', { type: 'ed25519', derived: true, exportable: true, allow_plaintext_backup: true });
    const ed = JSON.parse(Buffer.from((await ok('read', 'backup/d')).backup, 'base64').toString());
    const edit = (doc: { policy: Record<string, any> }, f: (p: Record<string, any>) => void) => {
      const c = structuredClone(doc);
      f(c.policy);
      return b(JSON.stringify(c));
    };
    const bad: Record<string, string> = {
      'aes key of the wrong size': edit(aes, (p) => {
        p.versions['1'].key = b('short');
      }),
      'aes backup relabelled rsa': edit(aes, (p) => {
        p.type = 'rsa-2048';
      }),
      'rsa backup relabelled ecdsa': edit(rsa, (p) => {
        p.type = 'ecdsa-p256';
      }),
      'ecdsa key as rsa-4096': edit(ec, (p) => {
        p.type = 'rsa-4096';
      }),
      'not a PEM': edit(ec, (p) => {
        p.versions['1'].key = 'garbage';
      }),
      'no min_decryption_version': edit(aes, (p) => {
        delete p.min_decryption_version;
      }),
      'min_encryption_version above latest': edit(aes, (p) => {
        p.min_encryption_version = 5;
      }),
      'latest version missing': edit(aes, (p) => {
        p.latest_version = 3;
      }),
      'derived rsa': edit(rsa, (p) => {
        p.derived = true;
      }),
      'derived ed25519 version without its private key': edit(ed, (p) => {
        p.versions['1'].public_key = createPublicKey(p.versions['1'].key).export({ type: 'spki', format: 'pem' });
        delete p.versions['1'].key;
      }),
      'managed_key without a name': edit(aes, (p) => {
        p.type = 'managed_key';
        delete p.versions['1'].key;
      }),
    };
    for (const [what, backup] of Object.entries(bad)) {
      expect((await call('update', 'restore/copy', { backup })).error, what).toMatch(/invalid backup/);
      expect((await call('read', 'keys/copy')).data, what).toBeUndefined();
    }
    // Unaltered backups still restore and work.
    await ok('update', 'restore/a2', { backup: edit(aes, () => undefined) });
    expect((await ok('update', 'encrypt/a2', { plaintext: b('x') })).ciphertext).toMatch(/^vault:v1:/);
    await ok('update', 'restore/e2', { backup: edit(ec, () => undefined) });
    expect((await ok('update', 'sign/e2', { input: b('x') })).signature).toMatch(/^vault:v1:/);
  });
});

describe('parsed private keys do not outlive their key', () => {
  const b = (s: string | Buffer) => Buffer.from(s).toString('base64');
  const pem = (store: MemoryStorage, name: string, version: string) => JSON.parse(store.data.get(`policy/${name}`)!.toString()).versions[version].key as string;

  it('deleted keys, trimmed versions and keys replaced by a restore are dropped from the parsed-key caches', async () => {
    const { ok, store } = backendMount('transit');
    await ok('update', 'keys/gone', { type: 'ecdsa-p256' });
    await ok('update', 'sign/gone', { input: b('m') });
    const gone = pem(store, 'gone', '1');
    expect(isParsed(gone)).toBe(true);
    await ok('update', 'keys/gone/config', { deletion_allowed: true });
    await ok('delete', 'keys/gone');
    expect(isParsed(gone)).toBe(false);

    await ok('update', 'keys/ed', { type: 'ed25519', derived: true, exportable: true, allow_plaintext_backup: true });
    await ok('update', 'sign/ed', { input: b('m'), context: b('c') });
    await ok('update', 'keys/ed/rotate');
    const v1 = pem(store, 'ed', '1');
    expect(isParsed(v1)).toBe(true);
    await ok('update', 'keys/ed/config', { min_decryption_version: 2, min_encryption_version: 2 });
    await ok('update', 'keys/ed/trim', { min_available_version: 2 });
    expect(isParsed(v1)).toBe(false);

    await ok('update', 'sign/ed', { input: b('m'), context: b('c') });
    const v2 = pem(store, 'ed', '2');
    expect(isParsed(v2)).toBe(true);
    await ok('update', 'keys/other', { type: 'ed25519', derived: true, exportable: true, allow_plaintext_backup: true });
    await ok('update', 'restore/ed', { backup: (await ok('read', 'backup/other')).backup, force: true });
    expect(isParsed(v2)).toBe(false);
  });

  it("an ml-dsa key's derived key pair goes with the key", async () => {
    const { ok, store } = backendMount('transit');
    await ok('update', 'keys/pq', { type: 'ml-dsa', parameter_set: '44' });
    await ok('update', 'sign/pq', { input: b('m') });
    const seed = pem(store, 'pq', '1');
    expect(holdsSeed(seed)).toBe(true);
    await ok('update', 'keys/pq/config', { deletion_allowed: true });
    await ok('delete', 'keys/pq');
    expect(holdsSeed(seed)).toBe(false);
  });
});

describe('managed RSA keys: a plaintext too long for RSA-OAEP', () => {
  const b = (s: string | Buffer) => Buffer.from(s).toString('base64');
  it('is a 400 naming the key, not a 500', async () => {
    const { ok, call } = backendMount('transit');
    await ok('update', 'managed-keys/software/rsa', { key_type: 'rsa-2048' });
    await ok('create', 'keys/rk', { type: 'managed_key', managed_key_name: 'rsa' });
    expect((await ok('update', 'encrypt/rk', { plaintext: b(Buffer.alloc(190)) })).ciphertext).toMatch(/^vault:v1:/);
    const r = await call('update', 'encrypt/rk', { plaintext: b(Buffer.alloc(191)) });
    expect(r.err).toBeUndefined();
    expect(r.error).toBe('software key "rsa": plaintext of 191 bytes is too long for RSA-OAEP with this key (at most 190)');
  });
});

describe("batches on managed keys: a key refusing one item is that item's error", () => {
  const b = (s: string | Buffer) => Buffer.from(s).toString('base64');
  const body = (r: { data?: any }) => JSON.parse(Buffer.from(r.data.http_raw_body, 'base64').toString()).data.batch_results;
  it("decrypt with one ciphertext that is not the key's", async () => {
    const { ok, call } = backendMount('transit');
    await ok('update', 'managed-keys/software/aes', { key_type: 'aes256-gcm' });
    await ok('create', 'keys/env', { type: 'managed_key', managed_key_name: 'aes' });
    const { ciphertext } = await ok('update', 'encrypt/env', { plaintext: b('x') });
    const bad = `vault:v1:${b(Buffer.alloc(40))}`;
    const r = await call('update', 'decrypt/env', { batch_input: [{ ciphertext }, { ciphertext: bad }], partial_failure_response_code: 207 });
    expect(r.data?.http_status_code).toBe(207);
    const [good, failed] = body(r);
    expect(good.plaintext).toBe(b('x'));
    expect(failed.error).toMatch(/decryption failed/);
    // A single request is still a 400 with the key's message.
    expect((await call('update', 'decrypt/env', { ciphertext: bad })).error).toMatch(/decryption failed/);
  });
});

describe('keys/<name>/config on a managed key', () => {
  it('refuses an auto_rotate_period, as Vault (it would never rotate), and still takes 0', async () => {
    const { ok, call } = backendMount('transit');
    await ok('update', 'managed-keys/software/ec', { key_type: 'ecdsa-p256' });
    await ok('create', 'keys/mk', { type: 'managed_key', managed_key_name: 'ec' });
    expect((await call('update', 'keys/mk/config', { auto_rotate_period: '24h' })).error).toBe('Auto rotation can not be set for managed keys');
    expect((await ok('read', 'keys/mk')).auto_rotate_period).toBe(0);
    expect((await ok('update', 'keys/mk/config', { auto_rotate_period: 0, deletion_allowed: true })).deletion_allowed).toBe(true);
  });
});

describe("Vault's periodic auto-rotation", () => {
  it('a key that cannot be read or rotated does not stop the keys listed after it', async () => {
    const store = new MemoryStorage();
    const { be, ok } = backendMount('transit', store);
    for (const n of ['a-first', 'b-broken', 'c-last']) await ok('update', `keys/${n}`, { auto_rotate_period: '1h' });
    for (const n of ['a-first', 'c-last']) {
      const p = JSON.parse(store.data.get(`policy/${n}`)!.toString());
      p.last_rotated = new Date(Date.now() - 2 * 3600_000).toISOString();
      store.data.set(`policy/${n}`, Buffer.from(JSON.stringify(p)));
      be.invalidate(`policy/${n}`);
    }
    // One stored policy is unreadable (a damaged entry): it fails, the others still rotate.
    store.data.set('policy/b-broken', Buffer.from('{"name": "b-broken", '));
    be.invalidate('policy/b-broken');
    await expect(be.handle('rollback' as never, '', {}, { displayName: '', mountPoint: '' })).rejects.toThrow(/b-broken/);
    expect((await ok('read', 'keys/a-first')).latest_version).toBe(2);
    expect((await ok('read', 'keys/c-last')).latest_version).toBe(2);
  });
});

describe("derive-key's keys", () => {
  it('cannot be made exportable or backed up: the shared secret is never returned', async () => {
    const { ok, call } = backendMount('transit');
    await ok('update', 'keys/x', { type: 'x25519' });
    await ok('update', 'derive-key/d', { base_key_name: 'x', peer_public_key: Buffer.alloc(32, 9).toString('base64') });
    for (const field of ['exportable', 'allow_plaintext_backup'])
      expect((await call('update', 'keys/d/config', { [field]: true })).error, field).toMatch(/derive-key.*never exported/);
    expect((await call('read', 'export/encryption-key/d')).error).toMatch(/not exportable/);
    expect((await call('read', 'backup/d')).error).toMatch(/disallowed/);
    // Other settings still apply.
    expect((await ok('update', 'keys/d/config', { deletion_allowed: true })).deletion_allowed).toBe(true);
  });
});

describe('two writes of one managed-key config at once', () => {
  it('the key in use is the one whose config is stored', async () => {
    // A storage whose first managed-key Put is applied at once but answered late (its reply in flight).
    class LateAck extends MemoryStorage {
      release?: () => void;
      private first = true;
      override async put(key: string, value: Buffer) {
        await super.put(key, value);
        if (key.startsWith('managed-keys/') && this.first) {
          this.first = false;
          await new Promise<void>((r) => {
            this.release = r;
          });
        }
      }
    }
    const store = new LateAck();
    const { ok } = backendMount('transit', store);
    const a = ok('update', 'managed-keys/software/m', { key_type: 'ecdsa-p256' });
    while (!store.release) await new Promise((r) => setTimeout(r, 1));
    const b = ok('update', 'managed-keys/software/m', { key_type: 'ecdsa-p384' });
    await new Promise((r) => setTimeout(r, 50));
    store.release();
    await Promise.all([a, b]);
    const stored = JSON.parse(store.data.get('managed-keys/software/m')!.toString()).key_type;
    const curve = (await ok('read', 'managed-keys/software/m')).key_spec.curve;
    expect({ stored, curve }).toEqual({ stored: 'ecdsa-p384', curve: 'P-384' });
  });
});
