// {{expiration}} and the session's time zone, against a real PostgreSQL whose admin role has
// a non-UTC time zone (ALTER ROLE ... SET timezone). Vault's PostgreSQL plugin renders
// {{expiration}} as Go's "2006-01-02 15:04:05-0700" of a UTC time and connects its URL
// connections with timezone=UTC (sdk/database/helper/connutil), so VALID UNTIL gets the
// intended instant, and so does a statement that drops the offset or reads the time zone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SqlDatabase } from '../../src/database/sql-database';
import { admin, pgInfo, quietLog } from '../support/db';

const ADMIN = `tz_admin_${randomBytes(3).toString('hex')}`;
const ADMIN_PW = `A1-${randomBytes(12).toString('base64url')}`;
const ZONE = 'Asia/Kolkata'; // UTC+05:30 all year: an error of 5.5 hours, never 0
const pw = () => `A1-${randomBytes(12).toString('base64url')}`;

const connUrl = (query = '') => {
  const i = pgInfo();
  return `postgres://{{username}}:{{password}}@${i.host}:${i.port}/${i.database}?sslmode=disable${query}`;
};
const open = (connection_url = connUrl()) => SqlDatabase.open({ connection_url, username: ADMIN, password: ADMIN_PW }, true, quietLog());

/** rolvaliduntil of a role, in ms since the epoch (null: none). */
const validUntil = (role: string) =>
  admin(async (c) => {
    const { rows } = await c.query<{ t: string | null }>(
      'SELECT (extract(epoch FROM rolvaliduntil) * 1000)::bigint::text AS t FROM pg_roles WHERE rolname = $1',
      [role],
    );
    return rows[0]?.t == null ? null : Number(rows[0].t);
  });
/** What a creation statement recorded for the role (see SEEN). */
const seen = (role: string) => admin(async (c) => (await c.query('SELECT tz FROM public.tz_seen WHERE who = $1', [role])).rows[0]?.tz as string | undefined);
const SEEN = `INSERT INTO public.tz_seen VALUES ('{{name}}', current_setting('TimeZone'));`;

beforeAll(async () => {
  await admin(async (c) => {
    await c.query(`CREATE ROLE ${ADMIN} LOGIN CREATEROLE PASSWORD '${ADMIN_PW}'`);
    await c.query(`ALTER ROLE ${ADMIN} SET timezone = '${ZONE}'`);
    await c.query('CREATE TABLE IF NOT EXISTS public.tz_seen (who text, tz text)');
    await c.query(`GRANT INSERT ON public.tz_seen TO ${ADMIN}`);
  });
  // The role's own sessions do run in ZONE.
  const { Client } = await import('pg');
  const i = pgInfo();
  const c = new Client({ host: i.host, port: i.port, database: i.database, user: ADMIN, password: ADMIN_PW });
  await c.connect();
  try {
    expect((await c.query('SHOW timezone')).rows[0].TimeZone).toBe(ZONE);
  } finally {
    await c.end();
  }
});
afterAll(async () => {
  await admin(async (c) => {
    const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', ['v-tz%']);
    for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`);
    await c.query(`REVOKE ALL ON public.tz_seen FROM ${ADMIN}`);
    await c.query(`DROP ROLE IF EXISTS ${ADMIN}`);
  });
});

describe('{{expiration}} under an admin role whose time zone is not UTC', () => {
  it('VALID UNTIL gets the intended instant (to the second), on creation and on renewal', async () => {
    const d = await open();
    try {
      // Milliseconds in the expiration: Vault's layout has none, so the second is kept (truncated).
      const expiration = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000 + 987);
      const { username } = await d.newUser({
        displayName: 'tz',
        roleName: 'r',
        password: pw(),
        expiration,
        statements: [`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
        credentialType: 0,
      });
      expect(await validUntil(username)).toBe(expiration.getTime() - 987);
      const renewed = new Date(expiration.getTime() + 86_400_000);
      await d.updateUser({ username, expiration: { newExpiration: renewed, statements: [] } });
      expect(await validUntil(username)).toBe(renewed.getTime() - 987);
    } finally {
      await d.close();
    }
  });

  it('statements run in a UTC session, as Vault sets timezone=UTC: one that drops the offset still gets the intended instant', async () => {
    const d = await open();
    try {
      const expiration = new Date(Math.floor(Date.now() / 1000) * 1000 + 7_200_000);
      const { username } = await d.newUser({
        displayName: 'tz',
        roleName: 'r',
        password: pw(),
        expiration,
        statements: [
          `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}';`,
          SEEN,
          // The timestamp without its "+0000", read in the session's time zone.
          `DO $$ BEGIN EXECUTE format('ALTER ROLE %I VALID UNTIL %L', '{{name}}', left('{{expiration}}', 19)); END $$;`,
        ],
        credentialType: 0,
      });
      expect(await seen(username)).toBe('UTC');
      expect(await validUntil(username)).toBe(expiration.getTime());
      // Renewal statements too.
      const renewed = new Date(expiration.getTime() + 3_600_000);
      await d.updateUser({
        username,
        expiration: {
          newExpiration: renewed,
          statements: [`DO $$ BEGIN EXECUTE format('ALTER ROLE %I VALID UNTIL %L', '{{name}}', left('{{expiration}}', 19)); END $$;`],
        },
      });
      expect(await validUntil(username)).toBe(renewed.getTime());
    } finally {
      await d.close();
    }
  });

  it('a timezone given in connection_url is the session time zone, as with Vault (the first timezone in the URL wins there)', async () => {
    const d = await open(connUrl(`&timezone=${encodeURIComponent('America/New_York')}`));
    try {
      const { username } = await d.newUser({
        displayName: 'tz',
        roleName: 'r',
        password: pw(),
        expiration: new Date(Date.now() + 3_600_000),
        statements: [`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, SEEN],
        credentialType: 0,
      });
      expect(await seen(username)).toBe('America/New_York');
    } finally {
      await d.close();
    }
  });
});
