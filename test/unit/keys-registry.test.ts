// The managed-key backend registry: every configurable type has a backend, each backend
// declares its own capabilities, and no backend leans on another or is named in shared code.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BACKEND_TYPES, loadBackend, openFromConfig } from '../../src/keys';
import { BACKEND_FIELDS, parseKeyConfig } from '../../src/keys/config';
import { ManagedKeys } from '../../src/secrets/managed-keys';
import { MemoryStorage } from '../../src/storage/storage';

const root = path.resolve(__dirname, '../..');
const read = (f: string) => fs.readFileSync(path.join(root, f), 'utf8');
/** Every module a file imports (static or dynamic), as written. */
const importsOf = (src: string) => [...src.matchAll(/(?:from\s+|import\s*\(\s*|require\(\s*)'([^']+)'/g)].map((m) => m[1]);
const BACKEND_FILES: Record<string, string> = {
  software: 'src/keys/software.ts',
  pkcs11: 'src/keys/pkcs11/index.ts',
  awskms: 'src/keys/awskms.ts',
  gcpckms: 'src/keys/gcpckms.ts',
  azurekeyvault: 'src/keys/azurekeyvault.ts',
};

describe('managed-key backend registry', () => {
  it('has exactly one backend per configurable type, each declaring its own type', async () => {
    expect([...BACKEND_TYPES].sort()).toEqual(Object.keys(BACKEND_FIELDS).sort());
    for (const t of BACKEND_TYPES) {
      const b = await loadBackend(t);
      expect(b.type).toBe(t);
      expect(typeof b.open).toBe('function');
    }
  });

  it('each backend declares its own fields, beside it; config.ts assembles them and declares none', async () => {
    for (const t of BACKEND_TYPES) expect((await loadBackend(t)).fields, t).toBe(BACKEND_FIELDS[t]);
    const config = read('src/keys/config.ts');
    for (const t of BACKEND_TYPES) {
      for (const k of Object.keys(BACKEND_FIELDS[t])) expect(config, `${t}.${k} declared in config.ts`).not.toMatch(new RegExp(`\\b${k}:\\s*\\{\\s*type:`));
    }
  });

  it('defaults are declared in the schema, and parsing applies them', () => {
    expect(parseKeyConfig('pkcs11', 'h', { library: '/x.so', pin: '1', token_label: 't', key_label: 'k' }).fields.max_parallel).toBe(1);
    expect(parseKeyConfig('awskms', 'a', { kms_key: 'alias/x' }).fields.region).toBe('us-east-1');
    expect(parseKeyConfig('gcpckms', 'g', { project: 'p', region: 'r', key_ring: 'kr', crypto_key: 'c' }).fields.crypto_key_version).toBe('1');
    for (const fields of Object.values(BACKEND_FIELDS) as Record<string, { description: string; default?: unknown }>[]) {
      for (const [k, f] of Object.entries(fields)) if (f.default !== undefined) expect(f.description, k).not.toMatch(/\(default /);
    }
    // path-help shows them, from the same declaration
    const help = new ManagedKeys(new MemoryStorage()).paths()[0].fields!;
    expect(help.max_parallel.description).toContain('pkcs11: most sessions open at once (default 1)');
    expect(help.region.description).toContain('awskms: AWS region (default us-east-1)');
  });

  it("the cloud providers of keymgmt share the key backends' helpers: one table of Azure clouds, one service-account parser", () => {
    const providers = read('src/secrets/keymgmt/providers/config.ts');
    expect(providers).not.toMatch(/AZUREPUBLICCLOUD|login\.microsoftonline/);
    expect(providers).not.toMatch(/JSON\.parse/);
    expect(read('src/keys/gcpckms.ts')).not.toMatch(/JSON\.parse/);
  });

  it('software keys declare what to store: a generated key reopens from it, an imported key keeps its material', async () => {
    const b = await loadBackend('software');
    const generated = await b.open(parseKeyConfig('software', 'g', { key_type: 'ecdsa-p256' }));
    const kept = b.fieldsToStore!(generated);
    expect(Object.keys(kept)).toEqual(['private_key']);
    const again = await openFromConfig('software', 'g', { key_type: 'ecdsa-p256', ...kept });
    const spki = async (k: typeof generated) => (await k.publicKey()).export({ type: 'spki', format: 'der' });
    expect((await spki(again)).equals(await spki(generated))).toBe(true);
    expect(b.fieldsToStore!(again)).toEqual(kept);
  });

  it('keys held outside this process store nothing beyond their config', async () => {
    for (const t of BACKEND_TYPES.filter((x) => x !== 'software')) expect((await loadBackend(t)).fieldsToStore, t).toBeUndefined();
  });

  it('no backend imports another backend, and shared code names no backend type', () => {
    const modulePath = (f: string) => path.join(root, f).replace(/(\/index)?\.ts$/, '');
    for (const [type, file] of Object.entries(BACKEND_FILES)) {
      const others = Object.entries(BACKEND_FILES)
        .filter(([t]) => t !== type)
        .map(([, f]) => modulePath(f));
      const dir = path.dirname(file);
      const files = file.endsWith('/index.ts') ? fs.readdirSync(path.join(root, dir)).map((f) => `${dir}/${f}`) : [file];
      for (const f of files) {
        for (const spec of importsOf(read(f)).filter((s) => s.startsWith('.'))) {
          const target = path.resolve(root, path.dirname(f), spec).replace(/(\/index)?(\.ts)?$/, '');
          expect(
            others.some((o) => target === o || target.startsWith(`${o}/`)),
            `${f} (${type}) imports ${spec}`,
          ).toBe(false);
        }
      }
    }
    expect(read('src/secrets/managed-keys.ts')).not.toMatch(/'(software|pkcs11|awskms|gcpckms|azurekeyvault)'/);
  });
});
