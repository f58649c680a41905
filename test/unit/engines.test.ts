// The engine registry and the engine-agnostic backend: a mount builds its own engine only.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecretsBackend } from '../../src/secrets/backend';
import { engineNamed, engineNames, mountSpecialPaths, registerEngine } from '../../src/secrets/engines';
import { transitEngine } from '../../src/secrets/transit/engine';
import { pkiEngine } from '../../src/secrets/pki/engine';
import { keymgmtEngine } from '../../src/secrets/keymgmt/engine';
import { createLogger } from '../../src/goplugin/log';
import { MemoryStorage } from '../../src/storage/storage';

const quiet = createLogger({ level: 'error', sink: () => undefined });
afterEach(() => { vi.restoreAllMocks(); });

describe('engine registry', () => {
  it('holds the built-in engines by name, each once', () => {
    expect(engineNames().slice(0, 3)).toEqual(['transit', 'pki', 'keymgmt']);
    expect(engineNamed('pki')).toBe(pkiEngine);
    expect(engineNamed('kv')).toBeUndefined();
    expect(() => registerEngine({ ...transitEngine })).toThrow(/registered already/);
  });

  it('every mount seal-wraps its managed keys besides its engine\'s own prefixes', () => {
    expect(mountSpecialPaths(transitEngine).seal_wrap_storage).toEqual(['managed-keys/', 'policy/']);
    expect(mountSpecialPaths(keymgmtEngine).seal_wrap_storage).toEqual(['managed-keys/', 'key/', 'kms/']);
    // PKI's several issuers keep their private keys under pki/keys/.
    expect(mountSpecialPaths(pkiEngine).seal_wrap_storage).toEqual(['managed-keys/', 'pki/ca', 'pki/pending-intermediate', 'pki/keys/']);
  });

  it('PKI serves every issuer\'s certificate and CRL without a token, as Vault\'s PKI does', () => {
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

  it('answers only its engine\'s paths (and managed keys): transit\'s keys/ is not a PKI path', async () => {
    const be = new SecretsBackend(new MemoryStorage(), quiet, 'pki');
    const ctx = { displayName: '', mountPoint: '' };
    await expect(be.handle('create', 'keys/k', {}, ctx)).rejects.toMatchObject({ status: 404 });
    expect(await be.handle('list', 'managed-keys/software/', {}, ctx)).toBeDefined();
  });

  it('of an unknown engine is refused by name', () => {
    expect(() => new SecretsBackend(new MemoryStorage(), quiet, 'kv')).toThrow(/unknown engine "kv"/);
  });
});
