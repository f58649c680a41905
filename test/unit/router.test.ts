// Router's index by first path segment must pick exactly the path a scan of every
// declared path would (the first match in declaration order), for every engine's paths.
import { describe, expect, it } from 'vitest';
import { MAX_DATA_DEPTH, Router, literalFirstSegment, rawResponse, type PathDef, type Request, type Response } from '../../src/secrets/framework';
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

// What a client sees from routing itself: field presence, required fields per operation,
// the create/update fallback, warnings, path captures, existence checks, help.
describe('Router requests', () => {
  const ctx = { storage: new MemoryStorage(), mountPoint: 'x/', displayName: 't' } as never;
  const echo = (r: Request): Promise<Response> =>
    Promise.resolve({
      data: { op: r.operation, name: r.data.get('name'), has: r.data.has('name'), size: r.data.get('size'), s: r.data.str('note'), n: r.data.int('count') },
      warnings: ['from handler'],
    });
  const path = (over: Partial<PathDef> = {}): PathDef => ({
    pattern: 'things/(?<name>\\w+)',
    fields: {
      name: { type: 'string', required: true, description: 'the name' },
      size: { type: 'int', default: 7, description: 'a size' },
      note: { type: 'string', description: 'no default' },
      count: { type: 'int', description: 'no default' },
    },
    operations: { read: echo, update: echo, delete: echo, list: echo },
    synopsis: 'things',
    description: 'about things',
    ...over,
  });

  it('a null field is not given: the default applies and has() is false', async () => {
    const router = new Router([path({ pattern: 'things' })], '');
    const res = await router.handle('update', 'things', { name: 'a', size: null }, ctx);
    expect(res?.data).toMatchObject({ size: 7, name: 'a' });
    const res2 = await router.handle('read', 'things', { name: null }, ctx);
    expect(res2?.data).toMatchObject({ name: undefined, has: false });
  });

  it('an unset field without a default reads as "" and 0, not undefined', async () => {
    const router = new Router([path()], '');
    expect((await router.handle('read', 'things/a', {}, ctx))?.data).toMatchObject({ s: '', n: 0 });
  });

  it('required fields are asked of create and update only, not of read, list or delete', async () => {
    const router = new Router([path({ pattern: 'things' })], '');
    for (const op of ['read', 'list', 'delete'] as const) expect((await router.handle(op, 'things', {}, ctx))?.data?.op).toBe(op);
    for (const op of ['create', 'update'] as const)
      await expect(router.handle(op, 'things', {}, ctx)).rejects.toMatchObject({ status: 400, message: 'missing required field "name"' });
  });

  it('create falls back to update and update to create; a missing operation is a 405', async () => {
    const onlyCreate = new Router([path({ operations: { create: echo } })], '');
    expect((await onlyCreate.handle('update', 'things/a', {}, ctx))?.data?.op).toBe('update');
    const onlyUpdate = new Router([path({ operations: { update: echo } })], '');
    expect((await onlyUpdate.handle('create', 'things/a', {}, ctx))?.data?.op).toBe('create');
    await expect(onlyUpdate.handle('delete', 'things/a', {}, ctx)).rejects.toMatchObject({ status: 405 });
  });

  it('a value captured from the path wins over a body field of the same name', async () => {
    const router = new Router([path()], '');
    expect((await router.handle('update', 'things/a', { name: 'b' }, ctx))?.data).toMatchObject({ name: 'a', has: true });
  });

  it("unrecognized parameters are warned of, after the handler's own warnings", async () => {
    const router = new Router([path()], '');
    const res = await router.handle('update', 'things/a', { colour: 'red' }, ctx);
    expect(res?.warnings).toEqual(['from handler', 'Endpoint ignored these unrecognized parameters: [colour]']);
    expect((await router.handle('update', 'things/a', {}, ctx))?.warnings).toEqual(['from handler']);
  });

  it(`request data nested ${MAX_DATA_DEPTH} levels is routed; one more is a 400`, async () => {
    const nest = (levels: number): Record<string, unknown> => {
      let v: Record<string, unknown> = {};
      for (let i = 1; i < levels; i++) v = { a: v };
      return v;
    };
    const router = new Router([path()], '');
    expect((await router.handle('update', 'things/a', { x: nest(MAX_DATA_DEPTH - 1) }, ctx))?.data?.op).toBe('update');
    await expect(router.handle('update', 'things/a', { x: nest(MAX_DATA_DEPTH) }, ctx)).rejects.toMatchObject({
      status: 400,
      message: `request data is nested more than ${MAX_DATA_DEPTH} levels deep`,
    });
  });

  it('the existence check runs without the fields an update requires, and sees the path captures', async () => {
    const seen: string[] = [];
    const router = new Router(
      [
        path({
          fields: { ...path().fields, value: { type: 'string', required: true, description: 'required, never in the path' } },
          existence: async (r) => {
            seen.push(r.data.str('name'));
            return r.data.str('name') === 'a';
          },
        }),
      ],
      '',
    );
    expect(await router.exists('things/a', ctx)).toEqual({ found: true, exists: true });
    expect(await router.exists('things/b', ctx)).toEqual({ found: true, exists: false });
    expect(await router.exists('nothing', ctx)).toEqual({ found: false, exists: false });
    expect(seen).toEqual(['a', 'b']);
  });

  it("the existence check reads the body only for a body field it asks for, once, and the URL's captures win over it", async () => {
    let loads = 0;
    const body = () => {
      loads++;
      return { name: 'from-body', value: 'v1' };
    };
    const seen: string[] = [];
    const router = new Router(
      [
        path({
          fields: { ...path().fields, value: { type: 'string', description: 'a body field' } },
          existence: async (r) => {
            seen.push(r.data.str('name'));
            if (r.data.str('name') === 'b') seen.push(r.data.str('value'), String(r.data.has('value')), r.data.str('value'));
            return true;
          },
        }),
      ],
      '',
    );
    expect(await router.exists('things/a', ctx, body)).toEqual({ found: true, exists: true });
    expect(loads).toBe(0);
    expect(await router.exists('things/b', ctx, body)).toEqual({ found: true, exists: true });
    expect(loads).toBe(1);
    expect(seen).toEqual(['a', 'b', 'v1', 'true', 'v1']);
  });

  it('a path whose captures do not validate is not found by the existence check, which is not run', async () => {
    let ran = false;
    const router = new Router(
      [
        path({
          fields: { ...path().fields, name: { type: 'string', allowed: ['a'], description: 'only a' } },
          existence: async () => {
            ran = true;
            return true;
          },
        }),
      ],
      '',
    );
    expect(await router.exists('things/z', ctx)).toEqual({ found: false, exists: false });
    expect(ran).toBe(false);
    expect(await router.exists('things/a', ctx)).toEqual({ found: true, exists: true });
  });

  it('help names the route, its operations and its parameters; only the root carries the OpenAPI document', async () => {
    const router = new Router([path()], 'the backend');
    const res = await router.handle('help', 'things/a', {}, ctx);
    const help = res?.data?.help as string;
    expect(help).toContain('Matching Route: ^things/(?<name>\\w+)$');
    expect(help).toContain('## OPERATIONS\n\n    read, update, delete, list\n');
    expect(help).toContain('about things');
    expect(res?.data).not.toHaveProperty('openapi');
    expect((await router.handle('help', '', {}, ctx))?.data).toHaveProperty('openapi');
  });

  it('an optional capture that did not match is not given: no value, has() false', async () => {
    const router = new Router(
      [path({ pattern: 'things(?:/(?<name>\\w+))?', fields: { ...path().fields, name: { type: 'string', description: 'optional' } } })],
      '',
    );
    expect((await router.handle('read', 'things', {}, ctx))?.data).toMatchObject({ name: undefined, has: false });
    expect((await router.handle('read', 'things/a', {}, ctx))?.data).toMatchObject({ name: 'a', has: true });
  });

  it('help on a path no route matches lists every route with its synopsis', async () => {
    const router = new Router([path(), path({ pattern: 'other', synopsis: 'the other' })], 'the backend');
    expect((await router.handle('help', 'nope', {}, ctx))?.data?.help).toBe(
      'the backend\n\n## PATHS\n\n    ^things/(?<name>\\w+)$\n        things\n\n    ^other$\n        the other\n',
    );
  });

  it('a raw response is a 200 with its content type and the body in base64', () => {
    expect(rawResponse('abc', 'text/plain')).toEqual({ data: { http_content_type: 'text/plain', http_raw_body: 'YWJj', http_status_code: 200 } });
  });

  it('mounts of one engine share a table only while their declarations are equal', () => {
    const key = {};
    const a = new Router([path()], '', key);
    const b = new Router([path()], '', key);
    const c = new Router([path({ pattern: 'other/(?<name>\\w+)' })], '', key);
    expect(a.sharesTableWith(b)).toBe(true);
    expect(a.sharesTableWith(c)).toBe(false);
    expect(c.match('other/a')).toBeDefined();
    expect(c.match('things/a')).toBeUndefined();
  });
});
