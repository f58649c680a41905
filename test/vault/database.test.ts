// The database role in a real Vault 1.8 dev server on the suite's PostgreSQL (SCRAM), through
// the README's commands. Vault runs database plugins on AutoMTLS whatever its TLS mode, so one
// mode suffices here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, login, pgInfo, roleExists, type PgInfo } from '../support/db';
import { PLUGIN_NAME, startDevVault, vaultBin, waitFor, type VaultNode } from '../support/vault';
import { CREATION, creds, dbAdmin, dbConfig, dbRole, read, write } from './steps';

const validUntil = (user: string) =>
  admin(async (c) => (await c.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [user])).rows[0]?.rolvaliduntil as Date | undefined);

describe.skipIf(!vaultBin())('database role in a real Vault', { timeout: 90_000 }, () => {
  let v: VaultNode;
  let a: PgInfo;
  let b: PgInfo;
  let staticUser = '';

  beforeAll(async () => {
    v = await startDevVault();
    [a, b] = [await dbAdmin(pgInfo(), 'a'), await dbAdmin(pgInfo(), 'b')];
  });
  afterAll(async () => {
    await v?.vault(['lease', 'revoke', '-prefix', '-sync', 'database/creds/']).catch(() => undefined);
    await v?.destroy();
    for (const u of [staticUser, a?.user, b?.user]) if (u) await admin((c) => c.query(`DROP ROLE IF EXISTS "${u}"`)).catch(() => undefined);
  });

  it('two configs: both verified on PostgreSQL; Vault 1.8 runs one plugin process per config', async () => {
    await v.registerPlugin();
    await v.vault(['secrets', 'enable', 'database']);
    await dbConfig(v, 'a', a);
    const afterFirst = v.plugins();
    expect(afterFirst).toHaveLength(1);
    await dbConfig(v, 'b', b);
    const cfg = await read(v, 'database/config/b');
    expect(cfg.data.plugin_name).toBe(PLUGIN_NAME);
    expect(JSON.stringify(cfg.data)).not.toContain(b.password);
    // Vault 1.8 has no plugin multiplexing (it came with Vault 1.12): the second config gets a
    // process of its own, and the first keeps running. Multiplexing is proven by the
    // conformance suite's go-plugin client instead.
    const both = v.plugins();
    expect(both).toHaveLength(2);
    expect(both.map((p) => p.pid)).toContain(afterFirst[0].pid);
    expect(both.every((p) => p.ppid === v.pid)).toBe(true);
    await dbRole(v, 'ra', 'a');
    await dbRole(v, 'rb', 'b');
    // A bad connection is Vault's 400 naming the problem, and stores nothing.
    // Vault shows the status code the SQLSTATE maps to (28P01: Unauthenticated).
    // (What Vault answered: the harness's message starts with the command line, password included.)
    const answer = (e: Error) => e.message.slice(e.message.indexOf('Code: '));
    const bad = await dbConfig(v, 'bad', { ...a, password: 'wrong-Pw-9' }).catch(answer);
    expect(bad).toMatch(/Code: 400[\s\S]*code = Unauthenticated[\s\S]*password authentication failed[\s\S]*SQLSTATE 28P01/);
    expect(bad).not.toContain('wrong-Pw-9');
    await expect(read(v, 'database/config/bad')).rejects.toThrow();
  });

  it('a creation statement the admin may not run: Vault shows PermissionDenied (42501), no secret, no role left', async () => {
    await write(
      v,
      'database/roles/denied',
      'db_name=a',
      'default_ttl=1h',
      `creation_statements=${'CREATE ROLE "{{name}}" WITH LOGIN SUPERUSER PASSWORD \'{{password}}\';'}`,
    );
    const msg = await creds(v, 'denied').then(
      () => 'issued',
      (e: Error) => e.message,
    );
    expect(msg).toMatch(/unable to create new user: rpc error: code = PermissionDenied desc = NewUser: permission denied to create role[\s\S]*SQLSTATE 42501/);
    expect(msg).not.toContain(a.password);
    expect(msg).not.toMatch(/PASSWORD '(?!\[redacted\])/);
    const left = await admin(
      async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-root-denied-%' OR rolname LIKE 'v-token-denied-%'")).rows[0].n,
    );
    expect(left).toBe(0);
  });

  it('creds → login → lease renew → lease revoke → gone from pg_roles', async () => {
    const c = await creds(v, 'ra');
    expect(c.ttl).toBe(3600);
    expect(await login(c.username, c.password)).toBe(true);
    const until = await validUntil(c.username);
    expect(Math.abs(until!.getTime() - (Date.now() + 3600_000))).toBeLessThan(60_000);

    const renewed = await v.vault(['lease', 'renew', '-format=json', '-increment=2h', c.leaseId]);
    expect(renewed.lease_duration).toBe(7200);
    const later = await validUntil(c.username);
    expect(Math.abs(later!.getTime() - (Date.now() + 7200_000))).toBeLessThan(60_000);

    await v.vault(['lease', 'revoke', '-sync', c.leaseId]);
    await waitFor('the revoked role to leave pg_roles', async () => !(await roleExists(c.username)), 15_000);
    expect(await login(c.username, c.password)).toMatch(/password authentication failed|does not exist/);
  });

  it('20 creds at once with a GRANT on the same tables, then 20 revocations at once: all issued, all gone (PostgreSQL\'s "tuple concurrently updated" is retried)', async () => {
    // A schema and table the admin owns, so that its creation statements may grant on them.
    const schema = `conc_${a.user}`;
    await admin(async (c) => {
      await c.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${a.user}"`);
      await c.query(`CREATE TABLE "${schema}".t (x int)`);
      await c.query(`ALTER TABLE "${schema}".t OWNER TO "${a.user}"`);
    });
    await write(
      v,
      'database/roles/conc',
      'db_name=a',
      'default_ttl=1h',
      `creation_statements=${CREATION} GRANT USAGE ON SCHEMA "${schema}" TO "{{name}}"; GRANT SELECT ON ALL TABLES IN SCHEMA "${schema}" TO "{{name}}";`,
    );
    const issued = await Promise.all(Array.from({ length: 20 }, () => creds(v, 'conc')));
    expect(new Set(issued.map((c) => c.username)).size).toBe(20);
    const granted = await admin(
      async (c) =>
        (
          await c.query(`SELECT count(*)::int AS n FROM information_schema.role_table_grants WHERE table_schema = $1 AND grantee = ANY($2)`, [
            schema,
            issued.map((i) => i.username),
          ])
        ).rows[0].n as number,
    );
    expect(granted).toBe(20);
    await Promise.all(issued.map((c) => v.vault(['lease', 'revoke', '-sync', c.leaseId])));
    for (const c of issued) expect(await roleExists(c.username)).toBe(false);
    await admin((c) => c.query(`DROP SCHEMA "${schema}" CASCADE`));
  });

  it('the second config issues too, with no new process', async () => {
    const pids = v.plugins().map((p) => p.pid);
    const c = await creds(v, 'rb');
    expect(await login(c.username, c.password)).toBe(true);
    expect(v.plugins().map((p) => p.pid)).toEqual(pids);
  });

  it('static role: rotation_period, then rotate-role; the new password logs in, the old does not', async () => {
    staticUser = `vt_static_${Date.now()}`;
    // Created by the config's admin, so that CREATEROLE login may change its password.
    await admin((c) => c.query(`CREATE ROLE "${staticUser}" WITH LOGIN PASSWORD 'initial-Pw-1'`), a);
    await write(v, 'database/static-roles/x', 'db_name=a', `username=${staticUser}`, 'rotation_period=1h');
    const first = (await read(v, 'database/static-creds/x')).data;
    expect(first.username).toBe(staticUser);
    expect(await login(staticUser, 'initial-Pw-1')).toMatch(/password authentication failed/);
    expect(await login(staticUser, first.password)).toBe(true);

    await write(v, 'database/rotate-role/x');
    const second = (await read(v, 'database/static-creds/x')).data;
    expect(second.password).not.toBe(first.password);
    expect(await login(staticUser, second.password)).toBe(true);
    expect(await login(staticUser, first.password)).toMatch(/password authentication failed/);
  });

  it('rotate-root: the admin password changes, new creds still work', async () => {
    await write(v, 'database/rotate-root/a');
    expect(await login(a.user, a.password)).toMatch(/password authentication failed/);
    const c = await creds(v, 'ra');
    expect(await login(c.username, c.password)).toBe(true);
    // The other config is untouched.
    expect(await login(b.user, b.password)).toBe(true);
    expect(await login((await creds(v, 'rb')).username, 'x')).toMatch(/password authentication failed/);
  });

  it('the plugin processes killed by hand: database/reset starts new ones, nothing is lost', async () => {
    const held = await creds(v, 'ra');
    const killed = v.killPlugins('SIGKILL');
    expect(killed).toHaveLength(2);
    await v.waitGone(killed);
    // Vault 1.8's database engine does not restart a dead database plugin by itself: every
    // request answers "plugin shutdown" until the connection is reset. Its own
    // vault-postgresql-database-plugin behaves the same (checked by hand with this build).
    await expect(creds(v, 'ra')).rejects.toThrow(/plugin shutdown/);
    await write(v, 'database/reset/a');
    await write(v, 'database/reset/b');
    const c = await creds(v, 'ra');
    expect(await login(c.username, c.password)).toBe(true);
    const d = await creds(v, 'rb');
    expect(await login(d.username, d.password)).toBe(true);
    expect(v.plugins()).toHaveLength(2);
    expect(v.plugins().some((p) => killed.includes(p.pid))).toBe(false);
    // The earlier credential and its lease survive the restart, and still revoke.
    expect(await login(held.username, held.password)).toBe(true);
    await v.vault(['lease', 'revoke', '-sync', held.leaseId]);
    expect(await roleExists(held.username)).toBe(false);
  });
});
