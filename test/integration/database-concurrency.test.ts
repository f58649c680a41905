// Concurrent credential calls whose statements touch the same catalog rows: PostgreSQL
// reports concurrent GRANT/REVOKE on one object's ACL as XX000 "tuple concurrently
// updated", which a retry of the whole (rolled back) transaction passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SqlDatabase } from '../../src/database/sql-database';
import { CREATE, admin, login, pgInfo, quietLog, urlConfig } from '../support/db';

const pw = () => 'A1-' + randomBytes(12).toString('base64url');
let db: SqlDatabase;
const logs: string[] = [];

beforeAll(async () => {
  await admin(async (c) => {
    for (let i = 0; i < 5; i++) await c.query(`CREATE TABLE IF NOT EXISTS conc_acl_${i} (x int)`);
  });
  db = await SqlDatabase.open(urlConfig(pgInfo(), { max_open_connections: 20 }), true, quietLog(logs));
});
afterAll(async () => {
  await db?.close();
});

describe('concurrent GRANT/REVOKE on the same objects', () => {
  it('20 NewUser with GRANT ... ON ALL TABLES at once all succeed, once each; 20 revocations too', { timeout: 120_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, () => {
          const password = pw();
          return db
            .newUser({
              displayName: 'acl',
              roleName: 'r',
              password,
              expiration: new Date(Date.now() + 3600_000),
              statements: [...CREATE, 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'],
              credentialType: 0,
            })
            .then((r) => ({ username: r.username, password }));
        }),
      );
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      expect(failed).toEqual([]);
      const creds = results.map((r) => (r as PromiseFulfilledResult<{ username: string; password: string }>).value);
      expect(new Set(creds.map((c) => c.username)).size).toBe(20);
      expect(await login(creds[0].username, creds[0].password)).toBe(true);
      // Each user holds its grant exactly once (a retry after rollback re-created nothing twice).
      const granted = await admin(
        async (c) =>
          (
            await c.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM information_schema.role_table_grants WHERE table_name = 'conc_acl_0' AND grantee = ANY($1)`,
              [creds.map((x) => x.username)],
            )
          ).rows[0].n,
      );
      expect(granted).toBe(20);

      const revoked = await Promise.allSettled(creds.map((c) => db.deleteUser({ username: c.username, statements: [] })));
      expect(revoked.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      const left = await admin(async (c) => (await c.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-acl-%'`)).rows[0].n);
      expect(left).toBe(0);
    }
    expect(logs.some((l) => l.includes('retrying transaction') && l.includes('XX000'))).toBe(true); // the contention did happen
  });

  it('20 revocations with REVOKE statements at once all succeed', { timeout: 120_000 }, async () => {
    const made = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const r = await db.newUser({
          displayName: 'rvk',
          roleName: 'r',
          password: pw(),
          expiration: new Date(Date.now() + 3600_000),
          statements: [...CREATE, 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'],
          credentialType: 0,
        });
        return r.username;
      }),
    );
    const revoked = await Promise.allSettled(
      made.map((username) => db.deleteUser({ username, statements: ['REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{{name}}";', 'DROP ROLE "{{name}}";'] })),
    );
    expect(revoked.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const left = await admin(async (c) => (await c.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-rvk-%'`)).rows[0].n);
    expect(left).toBe(0);
  });

  it('max_open_connections 0 (the default 4) and -1 (no limit), max_idle_connections -5 (none) work as in Vault', async () => {
    for (const [open, idle, wantMax] of [
      [0, 0, 4],
      [-1, -5, Number.POSITIVE_INFINITY],
    ] as const) {
      const d = await SqlDatabase.open(urlConfig(pgInfo(), { max_open_connections: open, max_idle_connections: idle }), true, quietLog());
      try {
        expect(d.poolStats.max).toBe(wantMax);
        const users = await Promise.all(
          Array.from({ length: 6 }, () =>
            d.newUser({ displayName: 'pool', roleName: 'r', password: pw(), statements: CREATE, credentialType: 0 }).then((r) => r.username),
          ),
        );
        await Promise.all(users.map((username) => d.deleteUser({ username, statements: [] })));
        if (idle < 0) expect(d.poolStats.idle).toBe(0);
      } finally {
        await d.close();
      }
    }
  });
});
