// Placeholders in $-quoted string constants, against a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SqlDatabase } from '../../src/database/sql-database';
import { CREATE, admin, pgInfo, quietLog, roleExists, urlConfig } from '../support/db';

let db: SqlDatabase;
beforeAll(async () => {
  db = await SqlDatabase.open(urlConfig(pgInfo(), { username_template: '{{.DisplayName}}' }), true, quietLog());
});
afterAll(async () => {
  await db?.close();
});

const newUser = (displayName: string, statements: string[], password = 'A1-' + randomBytes(9).toString('base64url')) =>
  db.newUser({ displayName, roleName: 'r', password, statements: [...CREATE, ...statements], credentialType: 0 }).then((r) => r.username);
const comment = (role: string) =>
  admin(async (c) => (await c.query('SELECT shobj_description(oid, $$pg_authid$$) AS d FROM pg_roles WHERE rolname = $1', [role])).rows[0].d as string);

describe('$-quoted string constants', () => {
  it('COMMENT ON ROLE ... IS $$hi {{name}}$$ and $c$...{{password}}$c$ hold the values as text', async () => {
    const name = `st'x"y\\z-${randomBytes(3).toString('hex')}`;
    const u = await newUser(name, ['COMMENT ON ROLE "{{name}}" IS $$hi {{name}}$$;']);
    expect(await comment(u)).toBe(`hi ${name}`);
    await db.deleteUser({ username: u, statements: [] });

    const password = `pw'; DROP TABLE x; --$`;
    const u2 = await newUser(`st2-${randomBytes(3).toString('hex')}`, ['COMMENT ON ROLE "{{name}}" IS $c$p={{password}}$c$;'], password);
    expect(await comment(u2)).toBe(`p=${password}`);
    await db.deleteUser({ username: u2, statements: [] });
  });

  it('a value holding the closing tag is refused with InvalidArgument, and no role is left', async () => {
    const name = `st3$$-${randomBytes(3).toString('hex')}`;
    const err = await newUser(name, ['COMMENT ON ROLE "{{name}}" IS $$hi {{name}}$$;']).catch((e) => e);
    expect(err).toMatchObject({ code: 3 });
    expect(err.message).toMatch(/would end the \$\$-quoted string/);
    expect(await roleExists(name)).toBe(false);
  });
});
