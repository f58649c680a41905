// Faults a credential broker meets in production, on real servers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { SqlDatabase } from '../../src/database/sql-database';
import { sanitizeError } from '../../src/database/sanitizing-database';
import { startPostgres, type PgServer } from '../support/postgres';
import { admin, quietLog } from '../support/db';
import { startFaultProxy } from '../support/pg-fault-proxy';

let pg: PgServer;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}';`];
const info = () => ({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: 'postgres' });

describe('PostgreSQL stopped and restarted in the middle of a run', () => {
  it('fails fast and clearly during the outage, recovers without a restart, leaves no unreported role', async () => {
    const d = await SqlDatabase.open(
      {
        host: pg.host,
        port: pg.port,
        db: 'postgres',
        username: pg.user,
        password: pg.password,
        sslmode: 'disable',
        connect_timeout: '2s',
        max_open_connections: 4,
      },
      true,
      quietLog(),
    );
    const issued: string[] = [];
    const failures: Array<{ ms: number; code: grpc.status; details: string }> = [];
    const one = async () => {
      const t = Date.now();
      try {
        issued.push(
          (await d.newUser({ displayName: 'outage', roleName: 'r', password: 'Pw-' + randomBytes(6).toString('hex'), statements: CREATE, credentialType: 0 }))
            .username,
        );
      } catch (e) {
        const st = sanitizeError(e, [pg.password], 'NewUser');
        failures.push({ ms: Date.now() - t, code: st.code, details: st.message });
      }
    };
    // Before: works.
    for (let i = 0; i < 5; i++) await one();
    expect(failures).toEqual([]);
    // Outage while calls are running.
    const running = (async () => {
      for (let i = 0; i < 40; i++) {
        await one();
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await new Promise((r) => setTimeout(r, 60));
    await pg.pause();
    await running;
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) {
      expect(f.ms).toBeLessThan(3000); // fail fast: within connect_timeout, no hang
      expect(f.code).toBe(grpc.status.UNAVAILABLE);
      expect(f.details).toMatch(/^NewUser: (database connection failed: |cannot connect to 127\.0\.0\.1:\d+\/postgres as postgres: )/);
      expect(f.details).not.toContain(pg.password);
    }
    // After: the same instance serves again.
    await pg.start();
    const before = issued.length;
    await one();
    expect(issued.length).toBe(before + 1);
    // Only what was reported as issued exists (a user whose COMMIT was cut off by the outage is
    // removed right after the first call that succeeds again).
    const roles = () =>
      admin(async (c) => (await c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-outage-%'")).rows.map((r) => r.rolname as string).sort(), info());
    for (let i = 0; i < 100 && JSON.stringify(await roles()) !== JSON.stringify([...issued].sort()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await roles()).toEqual([...issued].sort());
    await d.close();
  });
});

describe('the connection is lost after the server committed, before the client heard', () => {
  const rolesLike = (prefix: string) =>
    admin(async (c) => (await c.query('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${prefix}%`])).rows.map((r) => r.rolname as string), info());
  const newUser = (d: SqlDatabase, displayName: string) =>
    d.newUser({ displayName, roleName: 'r', password: 'Pw-' + randomBytes(6).toString('hex'), statements: CREATE, credentialType: 0 });

  const until = async (ok: () => Promise<boolean>) => {
    for (let i = 0; i < 100 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await ok()).toBe(true);
  };

  it('reports the call failed and removes the user Vault will never learn of', async () => {
    const proxy = await startFaultProxy({ host: pg.host, port: pg.port });
    const d = await SqlDatabase.open(
      { host: '127.0.0.1', port: proxy.port, db: 'postgres', username: pg.user, password: pg.password, sslmode: 'disable', connect_timeout: '2s' },
      true,
      quietLog(),
    );
    try {
      proxy.dropAfterNextCommit();
      const err = await newUser(d, 'cut').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(proxy.cuts).toBe(1);
      expect(sanitizeError(err, [pg.password], 'NewUser').code).toBe(grpc.status.UNAVAILABLE);
      expect(await rolesLike('v-cut-')).toEqual([]);
    } finally {
      await d.close();
      await proxy.close();
    }
  });

  it('when the database stays away, removes that user as soon as it answers again', async () => {
    const proxy = await startFaultProxy({ host: pg.host, port: pg.port });
    const lines: string[] = [];
    const d = await SqlDatabase.open(
      { host: '127.0.0.1', port: proxy.port, db: 'postgres', username: pg.user, password: pg.password, sslmode: 'disable', connect_timeout: '2s' },
      true,
      quietLog(lines),
    );
    try {
      proxy.dropAfterNextCommit();
      const failed = newUser(d, 'away').then(
        () => undefined,
        (e: unknown) => e,
      );
      // Down from the cut on: the immediate clean-up cannot connect either.
      const cutSeen = (async () => {
        while (proxy.cuts === 0) await new Promise((r) => setTimeout(r, 1));
        proxy.refuse = true;
      })();
      await cutSeen;
      expect(sanitizeError(await failed, [pg.password], 'NewUser').code).toBe(grpc.status.UNAVAILABLE);
      const orphans = await rolesLike('v-away-');
      expect(orphans).toHaveLength(1);
      expect(lines.join('\n')).toContain(orphans[0]);
      expect(lines.join('\n')).not.toContain(pg.password);
      // Back: the next call succeeds, and the user left behind is removed right after it.
      proxy.refuse = false;
      const next = await newUser(d, 'back');
      await until(async () => (await rolesLike('v-away-')).length === 0);
      expect(await rolesLike('v-back-')).toEqual([next.username]);
    } finally {
      await d.close();
      await proxy.close();
    }
  });

  it('with no further call, a timer removes it once the database is back', async () => {
    const proxy = await startFaultProxy({ host: pg.host, port: pg.port });
    const d = await SqlDatabase.open(
      { host: '127.0.0.1', port: proxy.port, db: 'postgres', username: pg.user, password: pg.password, sslmode: 'disable', connect_timeout: '2s' },
      true,
      quietLog(),
      { unreportedRetryMs: 100 },
    );
    try {
      proxy.dropAfterNextCommit();
      const failed = newUser(d, 'idle').then(
        () => undefined,
        (e: unknown) => e,
      );
      while (proxy.cuts === 0) await new Promise((r) => setTimeout(r, 1));
      proxy.refuse = true;
      expect(await failed).toBeDefined();
      expect(await rolesLike('v-idle-')).toHaveLength(1);
      proxy.refuse = false;
      await until(async () => (await rolesLike('v-idle-')).length === 0);
    } finally {
      await d.close();
      await proxy.close();
    }
  });
});
