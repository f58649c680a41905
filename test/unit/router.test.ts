// Router's index by first path segment must pick exactly the path a scan of every
// declared path would (the first match in declaration order), for every engine's paths.
import { describe, expect, it } from 'vitest';
import { Router, literalFirstSegment, type PathDef } from '../../src/secrets/framework';
import { ManagedKeys } from '../../src/secrets/managed-keys';
import { transit } from '../../src/secrets/transit';
import { PkiCaches, pkiPaths } from '../../src/secrets/pki';
import { keymgmtPaths } from '../../src/secrets/keymgmt';
import { MemoryStorage } from '../../src/storage/storage';

const storage = new MemoryStorage();
const managed = new ManagedKeys(storage);
const engines: Record<string, PathDef[]> = {
  transit: [...managed.paths(), ...transit(storage, managed).paths],
  pki: [...managed.paths(), ...pkiPaths(managed, new PkiCaches(managed))],
  keymgmt: [...managed.paths(), ...keymgmtPaths(storage)],
};

/** Paths to try: literal pieces of every pattern, recombined, plus near misses. */
function samplePaths(defs: PathDef[]): string[] {
  const words = new Set([
    '',
    'aes',
    'ca',
    'pem',
    'ca_chain',
    'crl',
    'web',
    'sha2-256',
    'plaintext',
    'wrapped',
    'internal',
    'kms',
    '16',
    'software',
    'k1',
    'ab:cd',
    'x.y',
  ]);
  for (const d of defs) for (const w of d.pattern.split(/[^A-Za-z0-9_-]+/)) if (w) words.add(w);
  const list = [...words];
  const out: string[] = [];
  for (const a of list) {
    out.push(a, `${a}/`);
    for (const b of list) {
      out.push(`${a}/${b}`, `${a}/${b}/`);
      for (const c of ['aes', 'rotate', 'config', 'sha2-256', 'key', 'sign', 'pem']) out.push(`${a}/${b}/${c}`);
    }
  }
  return out;
}

describe('Router index', () => {
  for (const [engine, defs] of Object.entries(engines)) {
    it(`${engine}: the indexed match is the first declared match, for every sample path`, () => {
      const router = new Router(defs, '');
      const res = defs.map((d) => new RegExp(`^${d.pattern}$`));
      let matched = 0;
      for (const p of samplePaths(defs)) {
        const want = res.findIndex((re) => re.test(p));
        const got = router.match(p);
        expect(got ? got.c.index : -1, p).toBe(want);
        if (want >= 0) matched++;
      }
      expect(matched).toBeGreaterThan(defs.length); // the samples reach the paths, not only misses
    });
  }

  it('indexes only patterns whose first segment is literal and fixed', () => {
    expect(literalFirstSegment('keys/(?<name>[\\w.-]+)')).toBe('keys');
    expect(literalFirstSegment('roles/?')).toBe('roles');
    expect(literalFirstSegment('root')).toBe('root');
    expect(literalFirstSegment('crl(?<pem>/pem)?')).toBeUndefined();
    expect(literalFirstSegment('(?:cert/)?ca_chain')).toBeUndefined();
    expect(literalFirstSegment('random(?:/(?<urlbytes>\\d+))?')).toBeUndefined();
    expect(literalFirstSegment('a/x|b/y')).toBeUndefined(); // two starts
    expect(literalFirstSegment('a/(?:x|y)')).toBe('a');
    expect(literalFirstSegment('a/?b')).toBeUndefined(); // would match "ab"
    expect(literalFirstSegment('key.s/x')).toBeUndefined(); // "." is any character
  });

  it('an unindexed pattern declared first still wins over an indexed one', () => {
    const def = (pattern: string): PathDef => ({ pattern, fields: {}, operations: {}, synopsis: pattern, description: '' });
    const defs = [def('(?:x/)?keys/a'), def('keys/(?<n>a|b)'), def('x/keys/a')];
    const router = new Router(defs, '');
    expect(router.match('keys/a')?.c.def).toBe(defs[0]);
    expect(router.match('keys/b')?.c.def).toBe(defs[1]);
    expect(router.match('x/keys/a')?.c.def).toBe(defs[0]);
    expect(router.match('nope')).toBeUndefined();
  });
});
