// Faults a credential broker meets in production, on real servers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { SqlDatabase } from '../../src/database/sql-database';
import { sanitizeError } from '../../src/database/sanitizing-database';
import { startPostgres, type PgServer } from '../support/postgres';
import { admin, quietLog } from '../support/db';

let pg: PgServer;
beforeAll(async () => { pg = await startPostgres(); });
afterAll(async () => { await pg?.stop(); });

const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}';`];
const info = () => ({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: 'postgres' });

describe('PostgreSQL stopped and restarted in the middle of a run', () => {
  it('fails fast and clearly during the outage, recovers without a restart, leaves no unreported role', async () => {
    const d = await SqlDatabase.open({ host: pg.host, port: pg.port, db: 'postgres', username: pg.user, password: pg.password, sslmode: 'disable', connect_timeout: '2s', max_open_connections: 4 }, true, quietLog());
    const issued: string[] = [];
    const failures: Array<{ ms: number; code: grpc.status; details: string }> = [];
    const one = async () => {
      const t = Date.now();
      try {
        issued.push((await d.newUser({ displayName: 'outage', roleName: 'r', password: 'Pw-' + randomBytes(6).toString('hex'), statements: CREATE, credentialType: 0 })).username);
      } catch (e) {
        const st = sanitizeError(e, [pg.password], 'NewUser');
        failures.push({ ms: Date.now() - t, code: st.code, details: st.message });
      }
    };
    // Before: works.
    for (let i = 0; i < 5; i++) await one();
    expect(failures).toEqual([]);
    // Outage while calls are running.
    const running = (async () => { for (let i = 0; i < 40; i++) { await one(); await new Promise((r) => setTimeout(r, 10)); } })();
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
    // Only what was reported as issued exists.
    const roles = await admin(async (c) => (await c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-outage-%'")).rows.map((r) => r.rolname as string), info());
    expect(roles.sort()).toEqual([...issued].sort());
    await d.close();
  });
});
