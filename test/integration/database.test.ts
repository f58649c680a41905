// SqlDatabase against a real PostgreSQL with SCRAM authentication.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DIALECTS } from '../../src/database/dialects';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { SqlDatabase } from '../../src/database/sql-database';
import { databaseService } from '../../src/database/plugin';
import { Instances } from '../../src/database/instances';
import type { Database } from '../../src/database/database';
import { serviceDef } from '../../src/goplugin/protos';
import { toStruct } from '../../src/goplugin/wellknown';
import { redact } from '../../src/goplugin/log';
import { PluginError } from '../../src/database/errors';
import { sanitizeError } from '../../src/database/sanitizing-database';
import { CREATE, admin, login, pgInfo, quietLog, roleExists, urlConfig } from '../support/db';

const pw = () => 'A1-' + randomBytes(12).toString('base64url');
const inOneHour = () => new Date(Date.now() + 3600_000);
let db: SqlDatabase;
const logs: string[] = [];

beforeAll(async () => {
  db = await SqlDatabase.open(urlConfig(pgInfo()), true, quietLog(logs));
});
afterAll(async () => {
  await db?.close();
});

const newUser = (d: Database, over: Partial<Parameters<Database['newUser']>[0]> = {}) =>
  d
    .newUser({ displayName: 'token', roleName: 'app', password: pw(), expiration: inOneHour(), statements: CREATE, credentialType: 0, ...over })
    .then((r) => r.username);

describe('issuing credentials', () => {
  it('issues a user that logs in, with VALID UNTIL set to the lease expiry', async () => {
    const password = pw();
    const expiration = inOneHour();
    const username = await newUser(db, { password, expiration, displayName: 'token-alice' });
    expect(username).toMatch(/^v-token-al-app-[A-Za-z0-9]{20}-\d+$/);
    expect(await login(username, password)).toBe(true);
    expect(await login(username, 'not-it')).toMatch(/password authentication failed/);
    const until = await admin(async (c) => (await c.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [username])).rows[0].rolvaliduntil as Date);
    expect(Math.abs(until.getTime() - expiration.getTime())).toBeLessThan(1000);
    expect(db.dialectName).toBe('postgresql');
  });

  it('revocation removes the user: no login, no pg_roles row, and is idempotent', async () => {
    const password = pw();
    const username = await newUser(db, { password });
    await db.deleteUser({ username, statements: [] });
    expect(await login(username, password)).toMatch(/password authentication failed|does not exist/);
    expect(await roleExists(username)).toBe(false);
    await expect(db.deleteUser({ username, statements: [] })).resolves.toEqual({});
    await expect(db.deleteUser({ username, statements: ['DROP ROLE "{{name}}";'] })).resolves.toEqual({});
  });

  it('a failing second statement leaves no role behind, and the error carries no password', async () => {
    const password = 'Secret-' + randomBytes(8).toString('hex');
    const username = '';
    const err = await newUser(db, {
      password,
      displayName: 'atomic',
      statements: [...CREATE, 'GRANT SELECT ON no_such_table TO "{{name}}";'],
    }).catch((e) => e);
    const status = sanitizeError(err, [password], 'NewUser');
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.message).toMatch(/no_such_table.*SQLSTATE 42P01/);
    expect(status.message).not.toContain(password);
    const left = await admin(async (c) => (await c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-atomic-%'")).rows);
    expect(left).toEqual([]);
    void username;
  });

  it('50 concurrent NewUser calls all succeed, distinct, within max_open_connections', async () => {
    const d = await SqlDatabase.open(urlConfig(pgInfo(), { max_open_connections: 5, max_idle_connections: 2 }), true, quietLog());
    try {
      let maxSeen = 0;
      const probe = setInterval(() => {
        maxSeen = Math.max(maxSeen, d.poolStats.total);
      }, 1);
      const creds = await Promise.all(
        Array.from({ length: 50 }, () => {
          const p = pw();
          return newUser(d, { password: p, displayName: 'conc' }).then((u) => ({ u, p }));
        }),
      );
      clearInterval(probe);
      expect(new Set(creds.map((c) => c.u)).size).toBe(50);
      expect(maxSeen).toBeGreaterThan(1);
      expect(maxSeen).toBeLessThanOrEqual(5);
      expect(d.poolStats.idle).toBeLessThanOrEqual(2); // max_idle_connections applied
      const logins = await Promise.all(creds.slice(0, 10).map((c) => login(c.u, c.p)));
      expect(logins.every((l) => l === true)).toBe(true);
      await Promise.all(creds.map((c) => d.deleteUser({ username: c.u, statements: [] })));
      const left = await admin(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-conc-%'")).rows[0].n);
      expect(left).toBe(0);
    } finally {
      await d.close();
    }
  });

  it('injection through display name, role name and password is quoted, not executed', async () => {
    await admin((c) => c.query('CREATE TABLE IF NOT EXISTS canary (x int)'));
    const evil = `x"; DROP TABLE canary; --`;
    const password = `pa'ss"; DROP TABLE canary; --\\`;
    const username = await newUser(db, { displayName: evil, roleName: `r'); DROP TABLE canary; --`, password });
    expect(username.startsWith('v-x"; DROP')).toBe(true);
    expect(await login(username, password)).toBe(true);
    expect(await admin(async (c) => (await c.query("SELECT to_regclass('canary') AS t")).rows[0].t)).toBe('canary');
    await db.deleteUser({ username, statements: [] });
    expect(await roleExists(username)).toBe(false);
  });

  it('a display name cannot inject SQL after a $$...$$ string holding an apostrophe (review item 1)', async () => {
    await admin((c) => c.query('CREATE TABLE IF NOT EXISTS canary_dollar (x int)'));
    const d = await SqlDatabase.open(urlConfig(pgInfo(), { username_template: '{{.DisplayName}}' }), true, quietLog());
    try {
      const displayName = `x';DROP TABLE canary_dollar;--`;
      const username = await newUser(d, {
        displayName,
        statements: [...CREATE, `COMMENT ON ROLE "{{name}}" IS $$Vault's role$$; ALTER ROLE "{{name}}" SET application_name = '"{{name}}"';`],
      });
      expect(username).toBe(displayName);
      expect(await admin(async (c) => (await c.query("SELECT to_regclass('canary_dollar') AS t")).rows[0].t)).toBe('canary_dollar');
      const cfg = await admin(async (c) => (await c.query('SELECT rolconfig FROM pg_roles WHERE rolname = $1', [username])).rows[0].rolconfig as string[]);
      expect(cfg).toEqual([`application_name="${displayName}"`]);
      await d.deleteUser({ username, statements: [] });
    } finally {
      await d.close();
    }
  });

  it('placeholders outside quotes with special characters are refused before any SQL runs', async () => {
    await expect(newUser(db, { displayName: 'bare x', statements: ['CREATE ROLE {{name}};'] })).rejects.toThrow(/inside quotes/);
  });

  it('rejects unsupported requests clearly', async () => {
    await expect(newUser(db, { credentialType: 1 })).rejects.toThrow(/credential_type 1 is not supported/);
    await expect(newUser(db, { statements: [] })).rejects.toThrow(/creation statements are required/);
    await expect(newUser(db, { statements: ['BEGIN; CREATE ROLE "{{name}}"; COMMIT;'] })).rejects.toThrow(/transaction control/);
    await expect(db.updateUser({ username: 'x' })).rejects.toThrow(/no changes requested/);
    await expect(newUser(db, { roleName: 'r'.repeat(80), displayName: 'd', statements: CREATE }).then(() => 'ok')).resolves.toBe('ok');
    const long = await SqlDatabase.open(urlConfig(pgInfo(), { username_template: '{{.RoleName}}-{{random 60}}' }), false, quietLog());
    await expect(newUser(long)).rejects.toThrow(/keeps at most 63.*truncate 63/);
    await long.close();
  });

  it('a call past its deadline is rolled back by the server, not committed later', async () => {
    const t = Date.now();
    const err = await newUser(db, { displayName: 'slow', statements: [...CREATE, 'SELECT pg_sleep(3);'], deadline: Date.now() + 700 }).catch((e) => e);
    expect(Date.now() - t).toBeLessThan(2000);
    const st = sanitizeError(err, [], 'NewUser');
    expect(st.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(st.message).toMatch(/deadline passed|statement timeout/);
    await new Promise((r) => setTimeout(r, 2600)); // past when pg_sleep(3) would have finished
    const left = await admin(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-slow-%'")).rows[0].n);
    expect(left).toBe(0);
    await expect(newUser(db, { deadline: Date.now() - 1 })).rejects.toThrow(/deadline passed/);
  });

  it('insufficient_privilege (42501) is PERMISSION_DENIED, not a caller error', async () => {
    const err = await newUser(db, {
      displayName: 'priv',
      statements: [...CREATE, 'SET SESSION AUTHORIZATION "{{name}}"; CREATE ROLE "{{name}}-child";'],
    }).catch((e) => e);
    expect((err as { code?: string }).code).toBe('42501');
    expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.PERMISSION_DENIED);
    const left = await admin(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-priv-%'")).rows[0].n);
    expect(left).toBe(0);
  });

  it('retries SQLSTATE 40001 and succeeds', async () => {
    await admin((c) => c.query('DROP SEQUENCE IF EXISTS retry_seq; CREATE SEQUENCE retry_seq; GRANT USAGE ON SEQUENCE retry_seq TO PUBLIC'));
    const flaky = `DO $$ BEGIN IF nextval('retry_seq') < 3 THEN RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'serialization_failure'; END IF; END $$;`;
    const username = await newUser(db, { statements: [...CREATE, flaky], displayName: 'retry' });
    expect(await roleExists(username)).toBe(true);
    expect(await admin(async (c) => (await c.query('SELECT last_value::int AS v FROM retry_seq')).rows[0].v)).toBe(3);
    expect(logs.some((l) => l.includes('retrying transaction') && l.includes('40001'))).toBe(true);
  });
});

describe('updating users', () => {
  it('renews: UpdateUser with an expiration moves VALID UNTIL', async () => {
    const username = await newUser(db);
    const later = new Date(Date.now() + 7 * 86400_000);
    await db.updateUser({ username, expiration: { newExpiration: later, statements: [] } });
    const until = await admin(async (c) => (await c.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [username])).rows[0].rolvaliduntil as Date);
    expect(Math.abs(until.getTime() - later.getTime())).toBeLessThan(1000);
  });

  it('static role rotation changes the password (default statement), the old one stops working', async () => {
    const name = 'static_' + randomBytes(4).toString('hex');
    const old = pw();
    await admin((c) => c.query(`CREATE ROLE ${name} LOGIN PASSWORD '${old}'`));
    const fresh = `n3w'pass"word-${randomBytes(4).toString('hex')}`;
    await db.updateUser({ username: name, password: { newPassword: fresh, statements: [] } });
    expect(await login(name, fresh)).toBe(true);
    expect(await login(name, old)).not.toBe(true);
  });

  it('self-managed static roles change their own password using the current one', async () => {
    const name = 'selfm_' + randomBytes(4).toString('hex');
    const old = pw();
    await admin((c) => c.query(`CREATE ROLE ${name} LOGIN PASSWORD '${old}'`));
    const fresh = pw();
    await db.updateUser({ username: name, password: { newPassword: fresh, statements: [] }, selfManagedPassword: old });
    expect(await login(name, fresh)).toBe(true);
    await expect(db.updateUser({ username: name, password: { newPassword: pw(), statements: [] }, selfManagedPassword: 'wrong' })).rejects.toThrow(
      /password authentication failed/,
    );
  });

  it('root rotation: the connection user gets a new password and the plugin keeps working', async () => {
    const rootName = 'vaultroot_' + randomBytes(4).toString('hex');
    const rootPw = pw();
    await admin((c) => c.query(`CREATE ROLE ${rootName} LOGIN CREATEROLE PASSWORD '${rootPw}'`));
    const info = pgInfo();
    const d = await SqlDatabase.open(urlConfig({ ...info, user: rootName, password: rootPw }), true, quietLog());
    try {
      const before = await newUser(d, { displayName: 'prerot' });
      const next = pw();
      await d.updateUser({ username: rootName, password: { newPassword: next, statements: [] } });
      expect(await login(rootName, next)).toBe(true);
      expect(await login(rootName, rootPw)).not.toBe(true);
      const p = pw();
      const after = await newUser(d, { password: p, displayName: 'postrot' });
      expect(await login(after, p)).toBe(true);
      await d.deleteUser({ username: before, statements: [] });
      await d.deleteUser({ username: after, statements: [] });
      expect(await roleExists(after)).toBe(false);
    } finally {
      await d.close();
    }
  });

  it('password_authentication=scram-sha-256 stores a verifier computed by the plugin; login works, also with non-ASCII passwords', async () => {
    const d = await SqlDatabase.open(urlConfig(pgInfo(), { password_authentication: 'scram-sha-256' }), true, quietLog());
    try {
      for (const password of [pw(), 'Ünïcødé-pässwörd-ﬁ-' + randomBytes(3).toString('hex')]) {
        const username = await newUser(d, { password, displayName: 'scram' });
        const stored = await admin(
          async (c) => (await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [username])).rows[0].rolpassword as string,
        );
        expect(stored).toMatch(/^SCRAM-SHA-256\$4096:/);
        expect(await login(username, password)).toBe(true);
        await d.deleteUser({ username, statements: [] });
      }
    } finally {
      await d.close();
    }
  });
});

describe('revocation of entangled users', () => {
  it('drops a user that owns objects and holds grants in another database; its objects go to the admin', async () => {
    const other = 'otherdb_' + randomBytes(3).toString('hex');
    await admin((c) => c.query(`CREATE DATABASE ${other}`));
    const password = pw();
    const username = await newUser(db, {
      password,
      displayName: 'owner',
      statements: [...CREATE, `GRANT CONNECT, CREATE ON DATABASE ${other} TO "{{name}}";`],
    });
    await admin((c) => c.query(`GRANT CREATE ON SCHEMA public TO "${username}"`), pgInfo(), other);
    // As the issued user: own a table in the other database.
    await admin((c) => c.query('CREATE TABLE owned_by_dynamic (x int)'), { ...pgInfo(), user: username, password }, other);
    await db.deleteUser({ username, statements: [] });
    expect(await roleExists(username)).toBe(false);
    const owner = await admin(
      async (c) => (await c.query("SELECT tableowner FROM pg_tables WHERE tablename = 'owned_by_dynamic'")).rows[0]?.tableowner,
      pgInfo(),
      other,
    );
    expect(owner).toBe(pgInfo().user);
  });

  it('a non-superuser CREATEROLE admin revokes a user holding grants and owning a table', async () => {
    const adminName = 'creator_' + randomBytes(4).toString('hex');
    const adminPw = pw();
    await admin((c) =>
      c.query(`CREATE ROLE ${adminName} LOGIN CREATEROLE PASSWORD '${adminPw}'; GRANT CREATE ON SCHEMA public TO ${adminName} WITH GRANT OPTION`),
    );
    const asAdmin = { ...pgInfo(), user: adminName, password: adminPw };
    await admin((c) => c.query(`CREATE TABLE ${adminName}_data (x int)`), asAdmin);
    const d = await SqlDatabase.open(urlConfig(asAdmin), true, quietLog());
    try {
      const password = pw();
      const username = await newUser(d, {
        password,
        displayName: 'nonsu',
        statements: [...CREATE, `GRANT SELECT ON ${adminName}_data TO "{{name}}"; GRANT CREATE ON SCHEMA public TO "{{name}}";`],
      });
      await admin((c) => c.query('CREATE TABLE nonsu_owned (x int)'), { ...pgInfo(), user: username, password });
      await d.deleteUser({ username, statements: [] });
      expect(await roleExists(username)).toBe(false);
      const owner = await admin(async (c) => (await c.query("SELECT tableowner FROM pg_tables WHERE tablename = 'nonsu_owned'")).rows[0]?.tableowner);
      expect(owner).toBe(adminName);
    } finally {
      await d.close();
    }
  });

  it('when DROP ROLE still reports dependencies (2BP01), every database is cleaned and the drop retried', async () => {
    // Simulate a server without pg_shdepend (CockroachDB): the first pass finds nothing.
    const spy = vi.spyOn(DIALECTS.postgresql, 'dependentDatabases').mockReturnValue({ text: 'SELECT datname FROM pg_database WHERE false', values: [] });
    try {
      const password = pw();
      const username = await newUser(db, { password, displayName: 'dep', statements: [...CREATE, 'GRANT CREATE ON SCHEMA public TO "{{name}}";'] });
      await admin((c) => c.query('CREATE TABLE dep_owned (x int)'), { ...pgInfo(), user: username, password });
      await db.deleteUser({ username, statements: [] });
      expect(await roleExists(username)).toBe(false);
      expect(spy).toHaveBeenCalled();
      expect(logs.some((l) => l.includes('cleaning every database'))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it("ends the revoked user's open sessions", async () => {
    const password = pw();
    const username = await newUser(db, { password, displayName: 'sess' });
    const { Client } = await import('pg');
    const c = new Client({ ...pgInfo(), user: username, password });
    let ended = false;
    c.on('error', () => {
      ended = true;
    });
    await c.connect();
    await db.deleteUser({ username, statements: [] });
    await c.query('SELECT 1').then(
      () => undefined,
      () => {
        ended = true;
      },
    );
    expect(ended).toBe(true);
    await c.end().catch(() => undefined);
  });
});

describe('connection handling', () => {
  it('verify_connection fails clearly on a wrong password (Unauthenticated), without echoing it', async () => {
    const wrong = 'Wr0ng-' + randomBytes(6).toString('hex');
    const err = await SqlDatabase.open(urlConfig({ ...pgInfo(), password: wrong }), true, quietLog()).catch((e) => e);
    expect(err).toBeInstanceOf(PluginError);
    const st = sanitizeError(err, [wrong], 'Initialize');
    expect(st.code).toBe(grpc.status.UNAUTHENTICATED); // 28P01, not a network failure
    expect(st.message).toMatch(/SQLSTATE 28P01/);
    expect(st.message).toMatch(/password authentication failed/);
    expect(st.message).not.toContain(wrong);
  });

  it('without verification an unreachable server fails the first call, not Initialize', async () => {
    const d = await SqlDatabase.open(urlConfig({ ...pgInfo(), port: 1 }), false, quietLog());
    await expect(newUser(d)).rejects.toThrow(/cannot connect to 127.0.0.1:1/);
    await d.close();
  });

  it('sslmode=prefer falls back to plaintext on a server without TLS; require fails clearly', async () => {
    const prefer = await SqlDatabase.open(
      urlConfig(pgInfo(), { connection_url: undefined, host: pgInfo().host, port: pgInfo().port, db: 'postgres', sslmode: 'prefer' }),
      true,
      quietLog(),
    );
    await prefer.close();
    const err = await SqlDatabase.open(
      { host: pgInfo().host, port: pgInfo().port, db: 'postgres', username: pgInfo().user, password: pgInfo().password, sslmode: 'require' },
      true,
      quietLog(),
    ).catch((e) => e);
    expect(String(err.message)).toMatch(/does not support SSL/);
  });

  it('a server ending a connection in the middle of a call is an error for that call, not an uncaught event', async () => {
    const marker = 'pg_sleep(2.0001)';
    setTimeout(() => {
      void admin((c) => c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%${marker}%' AND pid <> pg_backend_pid()`));
    }, 400);
    const err = await newUser(db, { displayName: 'termd', statements: [...CREATE, `SELECT ${marker};`] }).catch((e) => e);
    expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.UNAVAILABLE);
    await new Promise((r) => setTimeout(r, 100)); // the 'error' event follows the query's failure
    const u = await newUser(db, { displayName: 'aftertermd' });
    await db.deleteUser({ username: u, statements: [] });
  });

  it('max_connection_lifetime recycles pooled connections', async () => {
    const app = 'lifetime_' + randomBytes(3).toString('hex');
    const info = pgInfo();
    const url = `postgres://{{username}}:{{password}}@${info.host}:${info.port}/${info.database}?sslmode=disable&application_name=${app}`;
    const d = await SqlDatabase.open({ connection_url: url, username: info.user, password: info.password, max_connection_lifetime: '1s' }, true, quietLog());
    const pids = () =>
      admin(async (c) => (await c.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [app])).rows.map((r) => r.pid as number));
    try {
      await d.deleteUser({ username: await newUser(d, { displayName: 'life' }), statements: [] });
      const before = await pids();
      expect(before.length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 2200));
      await d.deleteUser({ username: await newUser(d, { displayName: 'life' }), statements: [] });
      const after = await pids();
      expect(after.length).toBeGreaterThan(0);
      expect(after.filter((p) => before.includes(p))).toEqual([]);
    } finally {
      await d.close();
    }
  });

  it('special characters in the password survive connection_url escaping', async () => {
    const name = 'special_' + randomBytes(4).toString('hex');
    const password = `p@ss:w/o?r#d%20'"\\ é&x=y`;
    await admin((c) => c.query(`CREATE ROLE ${name} LOGIN CREATEROLE PASSWORD '${password.replace(/'/g, "''")}'`));
    const d = await SqlDatabase.open(urlConfig({ ...pgInfo(), user: name, password }), true, quietLog());
    const u = await newUser(d, { displayName: 'spc' });
    await d.deleteUser({ username: u, statements: [] });
    await d.close();
  });
});

describe('multiplexed instances', () => {
  it('keeps configs apart: closing one never touches another', async () => {
    const inst = new Instances(quietLog());
    await inst.initialize('a', { config: urlConfig(pgInfo()), verifyConnection: true });
    await inst.initialize('b', { config: urlConfig(pgInfo(), { username_template: 'b-{{random 10}}' }), verifyConnection: true });
    const ub = await newUser(inst.get('b'));
    expect(ub).toMatch(/^b-/);
    await inst.close('a');
    expect(() => inst.get('a')).toThrow(/not initialized/);
    const ub2 = await newUser(inst.get('b'));
    await inst.get('b').deleteUser({ username: ub, statements: [] });
    await inst.get('b').deleteUser({ username: ub2, statements: [] });
    await inst.closeAll();
    expect(inst.size).toBe(0);
  });
});

/**
 * Runs `body` while another session holds table lock_target in ACCESS EXCLUSIVE mode; that
 * session commits (releasing the lock) after `releaseMs`, and is rolled back and closed after.
 */
async function whileLocked(releaseMs: number, body: () => Promise<void>): Promise<void> {
  await admin((c) => c.query('CREATE TABLE IF NOT EXISTS lock_target (x int)'));
  const { Client } = await import('pg');
  const info = pgInfo();
  const h = new Client({ host: info.host, port: info.port, user: info.user, password: info.password, database: info.database });
  await h.connect();
  let release: NodeJS.Timeout | undefined;
  try {
    await h.query('BEGIN; LOCK TABLE lock_target IN ACCESS EXCLUSIVE MODE');
    release = setTimeout(() => {
      void h.query('COMMIT');
    }, releaseMs);
    await body();
  } finally {
    clearTimeout(release);
    await h.query('ROLLBACK').catch(() => undefined);
    await h.end();
  }
}

describe('transactions are pinned and bounded (security review, items 2 and 6)', () => {
  const countLike = (prefix: string) =>
    admin(async (c) => (await c.query('SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE $1', [`${prefix}%`])).rows[0].n as number);

  it('standard_conforming_strings=off on the admin role cannot turn a backslash in a password into an injection', async () => {
    const name = 'scs_off_' + randomBytes(4).toString('hex');
    const adminPw = pw();
    await admin((c) =>
      c.query(
        `CREATE ROLE ${name} LOGIN SUPERUSER PASSWORD '${adminPw}'; ALTER ROLE ${name} SET standard_conforming_strings = off; CREATE TABLE IF NOT EXISTS canary_scs (x int)`,
      ),
    );
    const d = await SqlDatabase.open(urlConfig({ ...pgInfo(), user: name, password: adminPw }), true, quietLog());
    try {
      const password = `x\\'; DROP TABLE canary_scs; --`;
      const u = await newUser(d, { password, displayName: 'scs' });
      expect(await admin(async (c) => (await c.query("SELECT to_regclass('canary_scs') AS t")).rows[0].t)).toBe('canary_scs');
      expect(await login(u, password)).toBe(true);
      // The YugabyteDB path (statement by statement, no transaction) is pinned too.
      const y = await SqlDatabase.open(urlConfig({ ...pgInfo(), user: name, password: adminPw }), true, quietLog());
      (y as unknown as { dialect: unknown }).dialect = DIALECTS.yugabytedb;
      const u2 = await newUser(y, { password, displayName: 'scsyb' });
      expect(await admin(async (c) => (await c.query("SELECT to_regclass('canary_scs') AS t")).rows[0].t)).toBe('canary_scs');
      expect(await login(u2, password)).toBe(true);
      await y.close();
      await d.deleteUser({ username: u, statements: [] });
      await d.deleteUser({ username: u2, statements: [] });
    } finally {
      await d.close();
    }
  });

  it('the deadline bounds the whole transaction: two statements each under it, together over it, commit nothing', async () => {
    const err = await newUser(db, {
      displayName: 'twoslow',
      statements: [...CREATE, 'SELECT pg_sleep(0.7);', 'SELECT pg_sleep(0.7);'],
      deadline: Date.now() + 1000,
    }).catch((e) => e);
    expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 800));
    expect(await countLike('v-twoslow-')).toBe(0);
  });

  it('a statement waiting on a lock another connection holds is cancelled at the deadline; nothing commits', async () => {
    await whileLocked(1300, async () => {
      const t = Date.now();
      const err = await newUser(db, {
        displayName: 'lockwait',
        statements: [...CREATE, 'SELECT pg_sleep(0.5);', 'LOCK TABLE lock_target IN SHARE MODE;'],
        deadline: Date.now() + 1000,
      }).catch((e) => e);
      expect(Date.now() - t).toBeLessThan(1250);
      expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.DEADLINE_EXCEEDED);
      await new Promise((r) => setTimeout(r, 900));
      expect(await countLike('v-lockwait-')).toBe(0);
    });
  });

  it('where the server cannot cancel a statement, the deadline guard before COMMIT still keeps it from committing', async () => {
    const d = await SqlDatabase.open(urlConfig(pgInfo()), true, quietLog());
    try {
      const { cancelBackendQuery: _none, ...noCancel } = DIALECTS.postgresql;
      (d as unknown as { dialect: unknown }).dialect = noCancel;
      const err = await newUser(d, {
        displayName: 'guard',
        statements: [...CREATE, 'SELECT pg_sleep(0.6);', 'SELECT pg_sleep(0.6);'],
        deadline: Date.now() + 1000,
      }).catch((e) => e);
      const st = sanitizeError(err, [], 'NewUser');
      expect(st.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(st.message).toMatch(/nothing was committed/);
      expect(await countLike('v-guard-')).toBe(0);
      // ...and a call within its deadline commits.
      const u = await newUser(d, { displayName: 'inguard', deadline: Date.now() + 10_000 });
      expect(await roleExists(u)).toBe(true);
      await d.deleteUser({ username: u, statements: [] });
    } finally {
      await d.close();
    }
  });

  it('a call the caller cancels is cancelled on the server and rolled back', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const t = Date.now();
    const err = await newUser(db, { displayName: 'cancelled', statements: [...CREATE, 'SELECT pg_sleep(2);'], signal: ac.signal } as never).catch((e) => e);
    expect(Date.now() - t).toBeLessThan(1500);
    expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.CANCELLED);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await countLike('v-cancelle-')).toBe(0);
    // The pool is healthy afterwards.
    const u = await newUser(db, { displayName: 'after' });
    await db.deleteUser({ username: u, statements: [] });
  });

  describe('through the in-process gRPC binding', () => {
    let server: grpc.Server;
    let client: grpc.Client & Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>;
    const inst = new Instances(quietLog());
    beforeAll(async () => {
      server = new grpc.Server();
      server.addService(serviceDef('dbplugin.v5.Database'), databaseService(inst, false));
      const port = await new Promise<number>((res, rej) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
      );
      const Ctor = grpc.makeGenericClientConstructor(serviceDef('dbplugin.v5.Database'), 'Database');
      client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as never;
      await new Promise((res, rej) =>
        client.Initialize({ config_data: toStruct(urlConfig(pgInfo())), verify_connection: true }, (e: Error | null) => (e ? rej(e) : res(undefined))),
      );
    });
    // (client.close is the Database.Close RPC here: close the channel through the base class.)
    afterAll(async () => {
      if (client) grpc.Client.prototype.close.call(client);
      server?.forceShutdown();
      await inst.closeAll();
    });

    const call = (displayName: string, statements: string[], opts: grpc.CallOptions, onCall?: (c: grpc.ClientUnaryCall) => void) =>
      new Promise<grpc.ServiceError | null>((res) => {
        const c = client.NewUser(
          { username_config: { display_name: displayName, role_name: 'app' }, password: pw(), statements: { Commands: statements } },
          new grpc.Metadata(),
          opts,
          (e: grpc.ServiceError | null) => res(e),
        );
        onCall?.(c);
      });

    it('with a gRPC deadline: multi-statement lock waits past it commit nothing', async () => {
      // Each statement alone fits in the deadline (the lock is released after 1.2 s); together they do not.
      await whileLocked(1200, async () => {
        const err = await call('grpcdl', [...CREATE, 'SELECT pg_sleep(0.7);', 'LOCK TABLE lock_target IN SHARE MODE;'], { deadline: Date.now() + 1000 });
        expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
        await new Promise((r) => setTimeout(r, 1000));
        expect(await countLike('v-grpcdl-')).toBe(0);
      });
    });

    it('server errors reach the caller with the status their SQLSTATE class means, secret-free', async () => {
      const raise = (errcode: string) => `DO $$ BEGIN RAISE EXCEPTION 'refused by the server' USING ERRCODE = '${errcode}'; END $$;`;
      const cases: Array<[string, grpc.status]> = [
        ['insufficient_privilege', grpc.status.PERMISSION_DENIED],
        ['invalid_password', grpc.status.UNAUTHENTICATED],
        ['too_many_connections', grpc.status.RESOURCE_EXHAUSTED],
        ['syntax_error', grpc.status.INVALID_ARGUMENT],
        ['invalid_datetime_format', grpc.status.INVALID_ARGUMENT],
        ['unique_violation', grpc.status.ALREADY_EXISTS],
        ['foreign_key_violation', grpc.status.FAILED_PRECONDITION],
        ['deadlock_detected', grpc.status.ABORTED], // after the bounded retries
        ['query_canceled', grpc.status.CANCELLED], // cancelled by someone else, no deadline involved
        ['cannot_connect_now', grpc.status.UNAVAILABLE],
      ];
      for (const [errcode, code] of cases) {
        const err = await call('grpcerr', [...CREATE, raise(errcode)], {});
        expect([errcode, err?.code]).toEqual([errcode, code]);
        expect(err?.details).toMatch(/^NewUser: (database connection failed: )?refused by the server \(SQLSTATE [0-9A-Z]{5}\)$/);
      }
      // A real one: the issued role, not a superuser, may not create roles.
      const err = await call('grpcpriv', [...CREATE, 'SET SESSION AUTHORIZATION "{{name}}"; CREATE ROLE "{{name}}-child";'], {});
      expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(err?.details).toMatch(/permission denied to create role.*SQLSTATE 42501/);
      // A role that exists already.
      const dup = await call('grpcdup', [...CREATE, `CREATE ROLE "{{name}}";`], {});
      expect(dup?.code).toBe(grpc.status.ALREADY_EXISTS);
      expect((await countLike('v-grpcerr-')) + (await countLike('v-grpcpriv-')) + (await countLike('v-grpcdup-'))).toBe(0);
    });

    it('a cancelled call (Vault sets no deadline, it cancels) commits nothing', async () => {
      const err = await call('grpccan', [...CREATE, 'SELECT pg_sleep(2);'], {}, (c) => setTimeout(() => c.cancel(), 300));
      expect(err?.code).toBe(grpc.status.CANCELLED);
      await new Promise((r) => setTimeout(r, 2200));
      expect(await countLike('v-grpccan-')).toBe(0);
    });
  });
});

describe('redaction of derived secrets (security review, item 11)', () => {
  it('neither the SCRAM verifier nor any part of it reaches an error', async () => {
    const d = await SqlDatabase.open(urlConfig(pgInfo(), { password_authentication: 'scram-sha-256' }), true, quietLog());
    try {
      const password = pw();
      const err = await newUser(d, { password, displayName: 'scramleak', statements: [...CREATE, `SELECT '{{password}}'::int;`] }).catch((e) => e);
      expect(String(err.message)).toMatch(/SCRAM-SHA-256/); // the server did echo it...
      const st = sanitizeError(err, [password], 'NewUser');
      expect(st.message).toMatch(/invalid input syntax/);
      expect(st.message).not.toMatch(/SCRAM-SHA-256\$|[A-Za-z0-9+/]{40,}=/); // ...the caller never sees it
    } finally {
      await d.close();
    }
  });
  it('quoted, escaped and URL-escaped forms of a password are redacted like the password', () => {
    const secret = `p'a"s\\s w@rd`;
    const text = `a 'p''a"s\\s w@rd' b "p'a""s\\s w@rd" c E'p''a"s\\\\s w@rd' d ${encodeURIComponent(secret)}`;
    const out = redact(text, [secret]);
    expect(out).not.toContain('s w@rd');
    expect(out).not.toContain(encodeURIComponent(secret));
  });
});
