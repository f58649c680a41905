// connection_url's parameters beyond host/port/dbname/user/password/ssl*: against a real
// PostgreSQL, as libpq and Go's pgx apply them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { SqlDatabase } from '../../src/database/sql-database';
import { admin, pgInfo, quietLog } from '../support/db';

const pw = () => 'A1-' + randomBytes(12).toString('base64url');
const url = (q: string) => {
  const i = pgInfo();
  return `postgres://{{username}}:{{password}}@${i.host}:${i.port}/${i.database}?sslmode=disable&${q}`;
};
const cfg = (connection_url: string) => ({ connection_url, username: pgInfo().user, password: pgInfo().password });

beforeAll(async () => {
  await admin((c) => c.query('CREATE SCHEMA IF NOT EXISTS myschema; CREATE TABLE IF NOT EXISTS public.sp_seen (who text, sp text)'));
});

/** The search_path the creation statements of a new user saw, with this connection_url. */
async function searchPathSeen(connectionUrl: string): Promise<string> {
  const d = await SqlDatabase.open(cfg(connectionUrl), true, quietLog());
  try {
    const { username } = await d.newUser({
      displayName: 'url',
      roleName: 'r',
      password: pw(),
      statements: [`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}';`, `INSERT INTO public.sp_seen VALUES ('{{name}}', current_setting('search_path'));`],
      credentialType: 0,
    });
    await d.deleteUser({ username, statements: [] });
    return admin(async (c) => (await c.query('SELECT sp FROM public.sp_seen WHERE who = $1', [username])).rows[0].sp);
  } finally {
    await d.close();
  }
}

describe('connection_url parameters', () => {
  it('a server setting (search_path=...) and options=-c ... reach the server as startup parameters', async () => {
    expect(await searchPathSeen(url('search_path=myschema'))).toBe('myschema');
    expect(await searchPathSeen(url(`options=${encodeURIComponent('-c search_path=myschema')}`))).toBe('myschema');
    // A value with a space and a backslash is one value, not two switches.
    expect(await searchPathSeen(url(`search_path=${encodeURIComponent('myschema, public')}`))).toBe('myschema, public');
    expect(await searchPathSeen(url(`application_name=x&search_path=${encodeURIComponent('"a\\b"')}`))).toBe('"a\\b"');
    const i = pgInfo();
    const kv = `host=${i.host} port=${i.port} dbname=${i.database} sslmode=disable user={{username}} password={{password}} search_path=myschema`;
    expect(await searchPathSeen(kv)).toBe('myschema');
  });

  it("key=value form with quoted or unquoted placeholders connects with a password holding ' \\ and spaces", async () => {
    const i = pgInfo();
    const user = `kv admin'${randomBytes(3).toString('hex')}`;
    const password = `p'a\\ss w"rd\\'`;
    await admin((c) => c.query(`CREATE ROLE "${user}" LOGIN CREATEROLE PASSWORD '${password.replace(/'/g, "''")}'`));
    try {
      for (const tail of ["user='{{username}}' password='{{password}}'", 'user={{username}} password={{password}}']) {
        const d = await SqlDatabase.open(
          { connection_url: `host=${i.host} port=${i.port} dbname=${i.database} sslmode=disable ${tail}`, username: user, password },
          true,
          quietLog(),
        );
        await d.close();
      }
    } finally {
      await admin((c) => c.query(`DROP ROLE "${user}"`));
    }
  });

  it('connect_timeout bounds the connect to a server that never answers', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s)); // accepts, never speaks
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const started = Date.now();
      const err = await SqlDatabase.open(
        { connection_url: `postgres://{{username}}:{{password}}@127.0.0.1:${port}/db?sslmode=disable&connect_timeout=2`, username: 'u', password: 'p' },
        true,
        quietLog(),
      ).catch((e) => e);
      const took = Date.now() - started;
      expect(err).toBeInstanceOf(Error);
      expect(took).toBeGreaterThanOrEqual(1900);
      expect(took).toBeLessThan(6000); // not the 10 s default
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('an unsupported parameter is a clear error, a harmless one a warning; neither is dropped silently', async () => {
    for (const [q, msg] of [
      ['sslcrl=/x.crl', /the parameter sslcrl is not supported/],
      ['target_session_attrs=read-write', /target_session_attrs=read-write is not supported/],
      ['connect_timeout=abc', /connect_timeout must be a whole number of seconds/],
      ['load_balance=true', /give load_balance as a configuration field/],
      ['bad%20name=1', /is not a parameter name/],
    ] as const) {
      await expect(SqlDatabase.open(cfg(url(q)), false, quietLog()), q).rejects.toThrow(msg);
    }
    const logs: string[] = [];
    const d = await SqlDatabase.open(cfg(url('keepalives=1&target_session_attrs=any')), true, quietLog(logs));
    await d.close();
    expect(logs.some((l) => l.includes('without effect') && l.includes('keepalives'))).toBe(true);
  });
});

afterAll(async () => {
  await admin((c) => c.query('DROP TABLE IF EXISTS public.sp_seen')).catch(() => undefined);
});
