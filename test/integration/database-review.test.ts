// Findings of a security and correctness review of the database role, each against a real
// PostgreSQL (the YugabyteDB path by its dialect: statement by statement, no transaction).
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { DIALECTS } from '../../src/database/dialects';
import { SqlDatabase } from '../../src/database/sql-database';
import type { Database } from '../../src/database/database';
import { sanitizeError } from '../../src/database/sanitizing-database';
import { CREATE, admin, login, pgInfo, quietLog, roleExists, urlConfig } from '../support/db';

const pw = () => 'A1-' + randomBytes(12).toString('base64url');
const inOneHour = () => new Date(Date.now() + 3600_000);
const hex = () => randomBytes(4).toString('hex');

const newUser = (d: Database, over: Partial<Parameters<Database['newUser']>[0]> = {}) =>
  d
    .newUser({ displayName: 'token', roleName: 'app', password: pw(), expiration: inOneHour(), statements: CREATE, credentialType: 0, ...over })
    .then((r) => r.username);

/** An instance that creates users as on YugabyteDB: statement by statement, undoing by DROP ROLE on failure. */
async function yugabyteLike(extra: Record<string, unknown> = {}): Promise<SqlDatabase> {
  const d = await SqlDatabase.open(urlConfig(pgInfo(), extra), true, quietLog());
  (d as unknown as { dialect: unknown }).dialect = DIALECTS.yugabytedb;
  return d;
}

describe('NewUser without transactional DDL (YugabyteDB)', () => {
  it('a NewUser whose name is taken fails without dropping the role that already had it', async () => {
    const name = `taken_${hex()}`;
    const password = pw();
    await admin((c) => c.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`));
    // A fixed username_template (as `{{.RoleName}}`) gives the second lease the first one's name.
    const d = await yugabyteLike({ username_template: name });
    try {
      const err = await newUser(d).catch((e) => e);
      expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.ALREADY_EXISTS);
      expect(await roleExists(name)).toBe(true);
      expect(await login(name, password)).toBe(true);
    } finally {
      await d.close();
      await admin((c) => c.query(`DROP ROLE IF EXISTS ${name}`));
    }
  });

  it('two concurrent NewUser calls for one name: the loser does not drop the winner', async () => {
    const name = `race_${hex()}`;
    const d = await yugabyteLike({ username_template: name });
    try {
      const passwords = [pw(), pw()];
      const results = await Promise.allSettled(passwords.map((password) => newUser(d, { password })));
      const won = results.findIndex((r) => r.status === 'fulfilled');
      expect(won).toBeGreaterThanOrEqual(0);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
      expect(await login(name, passwords[won])).toBe(true);
    } finally {
      await d.close();
      await admin((c) => c.query(`DROP ROLE IF EXISTS ${name}`));
    }
  });

  it('a statement failing after CREATE ROLE still leaves no role behind', async () => {
    const d = await yugabyteLike();
    try {
      const err = await newUser(d, { displayName: 'ybundo', statements: [...CREATE, 'GRANT SELECT ON no_such_table TO "{{name}}";'] }).catch((e) => e);
      expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.INVALID_ARGUMENT);
      const left = await admin(async (c) => (await c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-ybundo-%'")).rows);
      expect(left).toEqual([]);
    } finally {
      await d.close();
    }
  });
});
