// Findings of a security and correctness review of the database role, each against a real
// PostgreSQL (the YugabyteDB path by its dialect: statement by statement, no transaction).
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
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

/**
 * Runs `body` while another session holds `table` in `mode` (its transaction open), and
 * releases it after `releaseMs` whatever body does.
 */
async function whileHeld(table: string, mode: string, releaseMs: number, body: () => Promise<void>): Promise<void> {
  const info = pgInfo();
  const { Client } = await import('pg');
  const h = new Client({ host: info.host, port: info.port, user: info.user, password: info.password, database: info.database });
  await h.connect();
  let release: NodeJS.Timeout | undefined;
  try {
    await h.query(`BEGIN; LOCK TABLE ${table} IN ${mode} MODE`);
    release = setTimeout(() => {
      void h.query('ROLLBACK').catch(() => undefined);
    }, releaseMs);
    await body();
  } finally {
    clearTimeout(release);
    await h.query('ROLLBACK').catch(() => undefined);
    await h.end();
  }
}

describe('calls stay bounded by their deadline and cancellation while the database waits on a lock', () => {
  it('DeleteUser with the default revocation gives up at its deadline, and later revocations are not stuck behind it', async () => {
    const d = await SqlDatabase.open(urlConfig(pgInfo()), true, quietLog());
    const table = `owned_${hex()}`;
    try {
      const [owner, other, third] = [await newUser(d), await newUser(d), await newUser(d)];
      // The role owns a table another session holds: REASSIGN OWNED waits for that lock.
      await admin((c) => c.query(`CREATE TABLE ${table} (x int); ALTER TABLE ${table} OWNER TO "${owner}"`));
      await whileHeld(table, 'ACCESS SHARE', 6000, async () => {
        const t = Date.now();
        const first = d.deleteUser({ username: owner, statements: [], deadline: Date.now() + 1500 }).catch((e) => e);
        await new Promise((r) => setTimeout(r, 200));
        // Queued behind the first (revocations run one at a time): it too ends at its deadline.
        const queued = await d.deleteUser({ username: other, statements: [], deadline: Date.now() + 600 }).catch((e) => e);
        expect(Date.now() - t).toBeLessThan(1400);
        expect(sanitizeError(queued, [], 'DeleteUser').code).toBe(grpc.status.DEADLINE_EXCEEDED);
        const err = await first;
        expect(Date.now() - t).toBeLessThan(2800);
        expect(sanitizeError(err, [], 'DeleteUser').code).toBe(grpc.status.DEADLINE_EXCEEDED);
        // The lock is still held; an unentangled revocation now goes through at once.
        await d.deleteUser({ username: third, statements: [], deadline: Date.now() + 2000 });
        expect(await roleExists(third)).toBe(false);
        expect(Date.now() - t).toBeLessThan(4500);
      });
      // Vault retries a failed revocation; once the lock is gone it completes.
      await d.deleteUser({ username: owner, statements: [] });
      await d.deleteUser({ username: other, statements: [] });
      expect(await roleExists(owner)).toBe(false);
      expect(await roleExists(other)).toBe(false);
    } finally {
      await d.close();
      await admin((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    }
  });

  it('DeleteUser with the default revocation ends when the caller cancels it', async () => {
    const d = await SqlDatabase.open(urlConfig(pgInfo()), true, quietLog());
    const table = `owned_${hex()}`;
    try {
      const owner = await newUser(d);
      await admin((c) => c.query(`CREATE TABLE ${table} (x int); ALTER TABLE ${table} OWNER TO "${owner}"`));
      await whileHeld(table, 'ACCESS SHARE', 5000, async () => {
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 500);
        const t = Date.now();
        const err = await d.deleteUser({ username: owner, statements: [], signal: ac.signal }).catch((e) => e);
        expect(Date.now() - t).toBeLessThan(1800);
        expect(sanitizeError(err, [], 'DeleteUser').code).toBe(grpc.status.CANCELLED);
      });
      await d.deleteUser({ username: owner, statements: [] });
      expect(await roleExists(owner)).toBe(false);
    } finally {
      await d.close();
      await admin((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    }
  });

  it('a YugabyteDB NewUser statement waiting on a lock is cancelled at the deadline, and the role is undone', async () => {
    const d = await yugabyteLike();
    const table = `locked_${hex()}`;
    try {
      await admin((c) => c.query(`CREATE TABLE ${table} (x int)`));
      await whileHeld(table, 'ACCESS EXCLUSIVE', 5000, async () => {
        const t = Date.now();
        const err = await newUser(d, {
          displayName: 'yblock',
          statements: [...CREATE, `SELECT count(*) FROM ${table};`],
          deadline: Date.now() + 1000,
        }).catch((e) => e);
        expect(Date.now() - t).toBeLessThan(2000);
        expect(sanitizeError(err, [], 'NewUser').code).toBe(grpc.status.DEADLINE_EXCEEDED);
      });
      const left = await admin(async (c) => (await c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-yblock-%'")).rows);
      expect(left).toEqual([]);
    } finally {
      await d.close();
      await admin((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    }
  });
});

describe('root rotation', () => {
  it('is refused while connection_url has the password written in, even with the password field set (as Vault requires it)', async () => {
    const info = pgInfo();
    const rootName = `hardroot_${hex()}`;
    const rootPw = pw();
    await admin((c) => c.query(`CREATE ROLE ${rootName} LOGIN CREATEROLE PASSWORD '${rootPw}'`));
    // After a rotation Vault stores the new password in the password field only: a URL with the
    // old one written in would connect with it after the next Initialize, and fail for good.
    const configs = [
      { connection_url: `postgres://${rootName}:${rootPw}@${info.host}:${info.port}/${info.database}?sslmode=disable`, username: rootName, password: rootPw },
      {
        connection_url: `host=${info.host} port=${info.port} dbname=${info.database} user=${rootName} password=${rootPw} sslmode=disable`,
        username: rootName,
        password: rootPw,
      },
    ];
    try {
      for (const config of configs) {
        const d = await SqlDatabase.open(config, true, quietLog());
        try {
          const err = await d.updateUser({ username: rootName, password: { newPassword: pw(), statements: [] } }).catch((e) => e);
          const st = sanitizeError(err, [], 'UpdateUser');
          expect(st.code).toBe(grpc.status.INVALID_ARGUMENT);
          expect(st.message).toMatch(/\{\{password\}\}/);
          expect(await login(rootName, rootPw)).toBe(true);
        } finally {
          await d.close();
        }
      }
    } finally {
      await admin((c) => c.query(`DROP ROLE IF EXISTS ${rootName}`));
    }
  });
});

/**
 * A proxy to the test PostgreSQL that lets a connection log in and then swallows its first
 * query (a server that accepts connections but does not answer: overloaded, or a pooler
 * waiting for a backend). Plain protocol only (sslmode=disable).
 */
async function startStallingProxy(): Promise<{ port: number; close(): Promise<void> }> {
  const info = pgInfo();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(info.port, info.host);
    sockets.add(client).add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
    upstream.pipe(client);
    let pending = Buffer.alloc(0);
    let started = false;
    let stalled = false;
    client.on('data', (chunk: Buffer) => {
      if (stalled) return;
      pending = Buffer.concat([pending, chunk]);
      let at = 0;
      for (;;) {
        // The startup message has no type byte; every later one does.
        const head = started ? 5 : 4;
        if (pending.length - at < head) break;
        const len = pending.readUInt32BE(at + (started ? 1 : 0));
        const size = started ? 1 + len : len;
        if (pending.length - at < size) break;
        if (started && pending[at] === 0x51 /* Q */) {
          stalled = true;
          break;
        }
        upstream.write(pending.subarray(at, at + size));
        at += size;
        started = true;
      }
      pending = pending.subarray(at);
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

describe('a database that accepts connections but never answers', () => {
  it('fails Initialize with verify_connection after connect_timeout instead of hanging', async () => {
    const proxy = await startStallingProxy();
    try {
      const t = Date.now();
      const opened = SqlDatabase.open(urlConfig({ ...pgInfo(), host: '127.0.0.1', port: proxy.port }, { connect_timeout: '1s' }), true, quietLog());
      const r = await Promise.race([
        opened.then(
          (d) => d.close().then(() => 'opened'),
          (e: unknown) => e,
        ),
        new Promise((res) => setTimeout(() => res('still waiting'), 6000)),
      ]);
      expect(r).toBeInstanceOf(Error);
      expect(Date.now() - t).toBeLessThan(4000);
      const st = sanitizeError(r, [], 'Initialize');
      expect(st.code).toBe(grpc.status.UNAVAILABLE);
      expect(st.message).toMatch(/did not answer within connect_timeout/);
    } finally {
      await proxy.close();
    }
  });
});
