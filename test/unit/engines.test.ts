// The engine registry and the engine-agnostic backend: a mount builds its own engine only.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecretsBackend } from '../../src/secrets/backend';
import { engineNamed, engineNames, mountSpecialPaths, registerEngine } from '../../src/secrets/engines';
import { transitEngine } from '../../src/secrets/transit/engine';
import { pkiEngine } from '../../src/secrets/pki/engine';
import { keymgmtEngine } from '../../src/secrets/keymgmt/engine';
import { createLogger } from '../../src/goplugin/log';
import { MemoryStorage } from '../../src/storage/storage';
import type { Router } from '../../src/secrets/framework';
import type { Engine } from '../../src/secrets/engine';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const quiet = createLogger({ level: 'error', sink: () => undefined });
afterEach(() => {
  vi.restoreAllMocks();
});

describe('engine registry', () => {
  it('holds the built-in engines by name, each once', () => {
    expect(engineNames().slice(0, 3)).toEqual(['transit', 'pki', 'keymgmt']);
    expect(engineNamed('pki')).toBe(pkiEngine);
    expect(engineNamed('kv')).toBeUndefined();
    expect(() => registerEngine({ ...transitEngine })).toThrow(/registered already/);
  });

  it("every mount seal-wraps its managed keys besides its engine's own prefixes", () => {
    expect(mountSpecialPaths(transitEngine).seal_wrap_storage).toEqual(['managed-keys/', 'policy/']);
    expect(mountSpecialPaths(keymgmtEngine).seal_wrap_storage).toEqual(['managed-keys/', 'key/', 'kms/']);
    // PKI's several issuers keep their private keys under pki/keys/.
    expect(mountSpecialPaths(pkiEngine).seal_wrap_storage).toEqual(['managed-keys/', 'pki/ca', 'pki/pending-intermediate', 'pki/keys/']);
  });

  it("PKI serves every issuer's certificate and CRL without a token, as Vault's PKI does", () => {
    const open = mountSpecialPaths(pkiEngine).unauthenticated;
    for (const p of ['ca/pem', 'crl', 'cert/*', 'issuer/+/pem', 'issuer/+/der', 'issuer/+/json', 'issuer/+/crl/pem']) expect(open).toContain(p);
  });
});

describe('a mount', () => {
  it('builds only its own engine: a PKI mount sets up no transit', () => {
    const transit = vi.spyOn(transitEngine, 'create');
    const pki = vi.spyOn(pkiEngine, 'create');
    const be = new SecretsBackend(new MemoryStorage(), quiet, 'pki');
    expect(be.engine).toBe(pkiEngine);
    expect(pki).toHaveBeenCalledTimes(1);
    expect(transit).not.toHaveBeenCalled();
    new SecretsBackend(new MemoryStorage(), quiet);
    expect(transit).toHaveBeenCalledTimes(1);
  });

  it("answers only its engine's paths (and managed keys): transit's keys/ is not a PKI path", async () => {
    const be = new SecretsBackend(new MemoryStorage(), quiet, 'pki');
    const ctx = { displayName: '', mountPoint: '' };
    await expect(be.handle('create', 'keys/k', {}, ctx)).rejects.toMatchObject({ status: 404 });
    expect(await be.handle('list', 'managed-keys/software/', {}, ctx)).toBeDefined();
  });

  it('of an unknown engine is refused by name', () => {
    expect(() => new SecretsBackend(new MemoryStorage(), quiet, 'kv')).toThrow(/unknown engine "kv"/);
  });
});

describe('mounts of one engine', () => {
  const ctx = { displayName: '', mountPoint: '' };
  const routerOf = (be: SecretsBackend) => (be as unknown as { router: Router }).router;

  it('share one compiled path table but none of their state', async () => {
    const a = new SecretsBackend(new MemoryStorage(), quiet, 'transit');
    const b = new SecretsBackend(new MemoryStorage(), quiet, 'transit');
    expect(routerOf(a).sharesTableWith(routerOf(b))).toBe(true);
    expect(routerOf(a).sharesTableWith(routerOf(new SecretsBackend(new MemoryStorage(), quiet, 'pki')))).toBe(false);
    await a.handle('create', 'keys/k', { type: 'aes256-gcm96' }, ctx);
    expect(await a.handle('read', 'keys/k', {}, ctx)).toMatchObject({ data: { name: 'k' } });
    expect(await b.handle('read', 'keys/k', {}, ctx)).toBeUndefined();
    // The same existence check answers for each mount's own storage.
    expect(await a.exists('keys/k')).toEqual({ found: true, exists: true });
    expect(await b.exists('keys/k')).toEqual({ found: true, exists: false });
  });

  it('share nothing when an engine declares different paths per mount', async () => {
    let n = 0;
    const varying: Engine = {
      name: 'varying-test',
      help: 'test',
      specialPaths: { root: [], unauthenticated: [], local_storage: [], seal_wrap_storage: [] },
      create: () => {
        const id = ++n;
        return { paths: [{ pattern: `only${id}`, fields: {}, synopsis: '', description: '', operations: { read: async () => ({ data: { id } }) } }] };
      },
    };
    const a = new SecretsBackend(new MemoryStorage(), quiet, varying);
    const b = new SecretsBackend(new MemoryStorage(), quiet, varying);
    expect(routerOf(a).sharesTableWith(routerOf(b))).toBe(false);
    expect(await a.handle('read', 'only1', {}, ctx)).toEqual({ data: { id: 1 } });
    expect(await b.handle('read', 'only2', {}, ctx)).toEqual({ data: { id: 2 } });
    await expect(b.handle('read', 'only1', {}, ctx)).rejects.toMatchObject({ status: 404 });
  });

  it("an unmounted mount is freed though its engine's table lives on", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const storage = (): MemoryStorage => new MemoryStorage();
    const engine: Engine = { ...pkiEngine }; // a fresh share key: the first mount below builds the table
    let gone = new SecretsBackend(storage(), quiet, engine);
    await gone.handle('list', 'managed-keys/software/', {}, ctx);
    // The mount's handlers hold its managed keys (and so its storage): weakly watch those.
    const ref = new WeakRef(gone.managedKeys);
    const kept = new SecretsBackend(storage(), quiet, engine);
    expect(routerOf(kept).sharesTableWith(routerOf(gone))).toBe(true);
    await gone.cleanup();
    gone = undefined as unknown as SecretsBackend;
    for (let i = 0; i < 10 && ref.deref(); i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    expect(ref.deref()).toBeUndefined();
    expect(await kept.handle('read', 'roles/none', {}, ctx)).toBeUndefined();
  });
});
