// YugabyteDB smart-driver mode (load_balance / topology_keys) through @yugabytedb/pg.
// Two real PostgreSQL servers on distinct loopback addresses stand in for two tablet
// servers: each exposes yb_servers() describing both, as YugabyteDB does, and the
// driver discovers the second node from the first and spreads connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SqlDatabase } from '../../src/database/sql-database';
import { freePort, startPostgres, type PgServer } from '../support/postgres';
import { admin, quietLog } from '../support/db';

let a: PgServer;
let b: PgServer;
const info = (s: PgServer) => ({ host: s.host, port: s.port, user: s.user, password: s.password, database: 'postgres' });

beforeAll(async () => {
  const password = randomBytes(12).toString('hex');
  [a, b] = await Promise.all([
    startPostgres({ host: '127.0.0.2', port: await freePort(), password }),
    startPostgres({ host: '127.0.0.3', port: await freePort(), password }),
  ]);
  const fn = `CREATE FUNCTION yb_servers() RETURNS TABLE(host text, port bigint, num_connections int, node_type text,
      cloud text, region text, zone text, public_ip text, uuid text) LANGUAGE sql AS $$
    VALUES ('127.0.0.2', ${a.port}, 0, 'primary', 'aws', 'us-east-1', 'us-east-1a', '', 'n1'),
           ('127.0.0.3', ${b.port}, 0, 'primary', 'aws', 'us-east-1', 'us-east-1b', '', 'n2') $$`;
  await Promise.all([admin((c) => c.query(fn), info(a)), admin((c) => c.query(fn), info(b))]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}';`];
const countOn = (s: PgServer, prefix: string) =>
  admin(async (c) => (await c.query('SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE $1', [`${prefix}%`])).rows[0].n as number, info(s));

async function issue(d: SqlDatabase, n: number, prefix: string): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, () =>
      d.newUser({ displayName: prefix, roleName: 'r', password: 'Pw-' + randomBytes(6).toString('hex'), statements: CREATE, credentialType: 0 }),
    ),
  );
}

describe('YugabyteDB smart driver', () => {
  it('discovers the cluster from yb_servers() and spreads connections across nodes', async () => {
    const d = await SqlDatabase.open(
      {
        host: a.host,
        port: a.port,
        db: 'postgres',
        username: a.user,
        password: a.password,
        sslmode: 'disable',
        load_balance: 'true',
        yb_servers_refresh_interval: 300,
        max_open_connections: 8,
        username_template: 'lb-{{random 12 | lowercase}}',
      },
      true,
      quietLog(),
    );
    try {
      await issue(d, 40, 'lb');
      const [onA, onB] = await Promise.all([countOn(a, 'lb-'), countOn(b, 'lb-')]);
      expect(onA + onB).toBe(40);
      expect(onA).toBeGreaterThan(0);
      expect(onB).toBeGreaterThan(0); // reached only through discovery: the config names 127.0.0.2
    } finally {
      await d.close();
    }
  });

  it('topology_keys pins connections to the named zone', async () => {
    const d = await SqlDatabase.open(
      {
        host: a.host,
        port: a.port,
        db: 'postgres',
        username: a.user,
        password: a.password,
        sslmode: 'disable',
        load_balance: 'true',
        topology_keys: 'aws.us-east-1.us-east-1b',
        max_open_connections: 4,
        username_template: 'tk-{{random 12 | lowercase}}',
      },
      true,
      quietLog(),
    );
    try {
      await issue(d, 12, 'tk');
      expect(await countOn(b, 'tk-')).toBe(12);
      expect(await countOn(a, 'tk-')).toBe(0);
    } finally {
      await d.close();
    }
  });

  it('refuses a second, different smart-driver setting in the same process while the first is open', async () => {
    const base = { host: a.host, port: a.port, db: 'postgres', username: a.user, password: a.password, sslmode: 'disable', load_balance: 'true' };
    const first = await SqlDatabase.open(base, true, quietLog());
    try {
      const same = await SqlDatabase.open(base, true, quietLog());
      await same.close();
      await expect(SqlDatabase.open({ ...base, topology_keys: 'aws.us-east-1.us-east-1a' }, true, quietLog())).rejects.toThrow(
        /another load_balance\/topology_keys setting.*Register the plugin a second time/,
      );
      // Plain (non-smart-driver) configs are unaffected.
      const plain = await SqlDatabase.open({ ...base, load_balance: undefined }, true, quietLog());
      await plain.close();
    } finally {
      await first.close();
    }
  });

  it("closing the last smart-driver configuration ends every connection, the driver's control connection too", async () => {
    const others = (s: PgServer) =>
      admin(
        async (c) =>
          (await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")).rows[0]
            .n as number,
        info(s),
      );
    const d = await SqlDatabase.open(
      {
        host: a.host,
        port: a.port,
        db: 'postgres',
        username: a.user,
        password: a.password,
        sslmode: 'disable',
        load_balance: 'true',
        max_open_connections: 4,
        username_template: 'cc-{{random 12 | lowercase}}',
      },
      true,
      quietLog(),
    );
    await issue(d, 8, 'cc');
    expect((await others(a)) + (await others(b))).toBeGreaterThan(0);
    await d.close();
    const end = Date.now() + 3000;
    while ((await others(a)) + (await others(b)) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect([await others(a), await others(b)]).toEqual([0, 0]);
  });
});
