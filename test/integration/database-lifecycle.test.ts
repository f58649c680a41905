// Issue 17 item 2 on a real PostgreSQL: a configuration's pool is opened by its first call
// and closed when idle; verify_connection checks and keeps nothing; Close frees every
// socket and timer; hundreds of Initialize/NewUser/DeleteUser/Close cycles leave nothing.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Instances } from '../../src/database/instances';
import { SqlDatabase } from '../../src/database/sql-database';
import { CREATE, admin, pgInfo, quietLog } from '../support/db';
import { trackLiveResources } from '../support/live-resources';

const appConfig = (app: string, extra: Record<string, unknown> = {}) => {
  const i = pgInfo();
  return {
    connection_url: `postgres://{{username}}:{{password}}@${i.host}:${i.port}/${i.database}?sslmode=disable&application_name=${app}`,
    username: i.user,
    password: i.password,
    ...extra,
  };
};
const serverSessions = (app: string) =>
  admin(async (c) => (await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0].n as number);
const user = (d: { newUser: SqlDatabase['newUser'] }) =>
  d
    .newUser({
      displayName: 'lc',
      roleName: 'r',
      password: 'Pw-' + randomBytes(6).toString('hex'),
      statements: CREATE,
      expiration: new Date(Date.now() + 3600_000),
      credentialType: 0,
    })
    .then((r) => r.username);
const waitFor = async (what: () => Promise<boolean>, ms: number) => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
};

/** Sockets, timers and other handles; not promises or finished crypto requests, which go with the garbage collector. */
const handles = (counts: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(counts).filter(([t]) => !['PROMISE', 'RANDOMBYTESREQUEST', 'PBKDF2REQUEST', 'Immediate', 'TickObject', 'Microtask'].includes(t)),
  );

describe('database pools per configuration', () => {
  it('verify_connection=true checks the server and keeps no connection; the first call opens the pool', async () => {
    const app = 'lc_verify_' + randomBytes(3).toString('hex');
    const d = await SqlDatabase.open(appConfig(app), true, quietLog());
    try {
      expect(d.dialectName).toBe('postgresql'); // the check ran
      expect(await waitFor(async () => (await serverSessions(app)) === 0, 2000)).toBe(true);
      expect(d.poolStats.total).toBe(0);
      const u = await user(d);
      expect(await serverSessions(app)).toBeGreaterThan(0);
      await d.deleteUser({ username: u, statements: [] });
    } finally {
      await d.close();
    }
    expect(await waitFor(async () => (await serverSessions(app)) === 0, 2000)).toBe(true);
  });

  it('an idle pool is closed after poolIdleCloseMs (sockets and timer gone) and reopened by the next call', async () => {
    const app = 'lc_idle_' + randomBytes(3).toString('hex');
    const live = trackLiveResources();
    const d = await SqlDatabase.open(appConfig(app), false, quietLog(), { poolIdleCloseMs: 300 });
    try {
      const u = await user(d);
      expect(d.poolStats.total).toBeGreaterThan(0);
      expect(live.counts().Timeout ?? 0).toBeGreaterThan(0); // the idle timer (and pg's)
      expect(await waitFor(async () => d.poolStats.total === 0 && (await serverSessions(app)) === 0, 3000)).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setImmediate(r));
      expect(handles(live.counts())).toEqual({});
      await d.deleteUser({ username: u, statements: [] }); // reopens
      expect(await serverSessions(app)).toBeGreaterThan(0);
    } finally {
      await d.close();
      live.stop();
    }
  });

  it('200 Initialize(verify)/NewUser/DeleteUser/Close cycles through the instances leave no socket, timer or session', async () => {
    const app = 'lc_cycle_' + randomBytes(3).toString('hex');
    const inst = new Instances(quietLog());
    const cycle = async (i: number) => {
      const id = `c${i % 5}`;
      await inst.initialize(id, { config: appConfig(app), verifyConnection: true });
      const db = inst.get(id);
      await db.deleteUser({ username: await user(db), statements: [] });
      await inst.close(id);
    };
    for (let i = 0; i < 10; i++) await cycle(i);
    await new Promise((r) => setTimeout(r, 100));
    const live = trackLiveResources();
    for (let i = 0; i < 200; i++) await cycle(i);
    await new Promise((r) => setTimeout(r, 200)); // pg ends sockets asynchronously
    await new Promise((r) => setImmediate(r)); // (after this sleep's own timer is gone)
    const left = handles(live.counts());
    live.stop();
    expect(inst.size).toBe(0);
    expect(left).toEqual({});
    expect(await waitFor(async () => (await serverSessions(app)) === 0, 2000)).toBe(true);
    expect(await admin(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-lc-%'")).rows[0].n)).toBe(0);
  });
});
