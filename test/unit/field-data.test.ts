// Schema-bound field access, as Vault's FieldData: a handler reads only the fields its path
// declares. Reading another is a programming error (Vault panics; here a 500 naming the
// field and the path), never a silent undefined that a default would hide.
import { describe, expect, it } from 'vitest';
import { Router, UndeclaredFieldError, type FieldData, type PathDef } from '../../src/secrets/framework';
import { toReply } from '../../src/secrets/plugin';
import { MemoryStorage } from '../../src/storage/storage';

const ctx = { storage: new MemoryStorage(), mountPoint: 'x/' } as never;
const reads = (read: (d: FieldData) => unknown): PathDef => ({
  pattern: 'thing',
  fields: { name: { type: 'string', default: 'n', description: 'a declared field' } },
  synopsis: '',
  description: '',
  operations: { update: async (r) => ({ data: { v: read(r.data) } }) },
});

describe("FieldData bound to its path's schema", () => {
  it('declared fields read as before: given, defaulted, has', async () => {
    const router = new Router([reads((d) => [d.str('name'), d.has('name'), d.get('name')])], '');
    expect((await router.handle('update', 'thing', {}, ctx))?.data).toEqual({ v: ['n', false, 'n'] });
    expect((await router.handle('update', 'thing', { name: 'given' }, ctx))?.data).toEqual({ v: ['given', true, 'given'] });
  });

  for (const [how, read] of [
    ['get', (d) => d.get('colour')],
    ['str', (d) => d.str('colour')],
    ['int', (d) => d.int('colour')],
    ['bool', (d) => d.bool('colour')],
    ['has', (d) => d.has('colour')],
  ] as Array<[string, (d: FieldData) => unknown]>) {
    it(`${how}() of an undeclared field is an UndeclaredFieldError naming field and path`, async () => {
      const router = new Router([reads(read)], '');
      const e = await router.handle('update', 'thing', { colour: 'red' }, ctx).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UndeclaredFieldError);
      expect((e as Error).message).toMatch(/"colour".*"thing"/);
    });
  }

  it('reaches Vault as a 500 (an internal error) that names the field', async () => {
    const router = new Router([reads((d) => d.str('colour'))], '');
    const e = await router.handle('update', 'thing', {}, ctx).catch((x: unknown) => x);
    expect(toReply(undefined, e).err).toMatchObject({ err_code: 500, err_msg: expect.stringContaining('"colour"') });
  });
});
