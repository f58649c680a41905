// bench/newuser: credentials per second and latency through the plugin's real gRPC path
// (the built executable, mTLS), side by side with raw CREATE ROLE through a pg pool of
// the same size on the same server: the ceiling. Run: npx tsx bench/newuser.ts
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { startPostgres } from '../test/support/postgres';
import { launchPlugin, call } from '../test/support/host';
import { toStruct } from '../src/goplugin/wellknown';

const POOL = 8;
const DURATION_MS = Number(process.env.BENCH_MS ?? 4000);
const CALLERS = [1, 8, 32];

interface Result {
  n: number;
  rate: number;
  p50: number;
  p99: number;
}

async function drive(callers: number, op: () => Promise<void>): Promise<Result> {
  const lat: number[] = [];
  const end = Date.now() + DURATION_MS;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (Date.now() < end) {
        const s = process.hrtime.bigint();
        await op();
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { n: lat.length, rate: lat.length / secs, p50: q(0.5), p99: q(0.99) };
}

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  const pg = await startPostgres();
  const plugin = await launchPlugin(path.join(root, 'dist/vault-plugin-ts'), 'database');
  const db = plugin.client('dbplugin.v5.Database');
  const md = { multiplex_id: 'bench' };
  const url = `postgres://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`;
  await call(
    db,
    'Initialize',
    { config_data: toStruct({ connection_url: url, username: pg.user, password: pg.password, max_open_connections: POOL }), verify_connection: true },
    md,
  );
  const raw = new Pool({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, max: POOL });
  const stmt = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;
  const exp = { seconds: String(Math.floor(Date.now() / 1000) + 3600), nanos: 0 };
  let i = 0;
  const viaPlugin = async () => {
    await call(
      db,
      'NewUser',
      {
        username_config: { display_name: 'bench', role_name: 'r' },
        password: 'Pw-' + randomBytes(9).toString('hex'),
        expiration: exp,
        statements: { Commands: [stmt] },
      },
      md,
    );
  };
  const rawCreate = async () => {
    const name = `raw-${process.pid}-${i++}-${randomBytes(4).toString('hex')}`;
    await raw.query(`CREATE ROLE "${name}" WITH LOGIN PASSWORD 'Pw-${randomBytes(9).toString('hex')}' VALID UNTIL '2099-01-01 00:00:00+0000'`);
  };
  await drive(4, viaPlugin);
  await drive(4, rawCreate); // warm-up (JIT, pools, catalogs)

  const date = new Date().toISOString().slice(0, 10);
  console.log(
    `# bench/newuser ${date}: ${DURATION_MS / 1000}s per cell, pool ${POOL} on both sides, PostgreSQL ${(await raw.query('SHOW server_version')).rows[0].server_version} (embedded, fsync on)`,
  );
  console.log('| callers | plugin creds/s | p50 ms | p99 ms | raw CREATE ROLE/s | p50 ms | p99 ms | plugin/raw |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of CALLERS) {
    // Alternate the order so neither side always runs on a fresher catalog.
    const [p, r] =
      c % 2 ? [await drive(c, viaPlugin), await drive(c, rawCreate)] : (([b, a]) => [a, b])([await drive(c, rawCreate), await drive(c, viaPlugin)]);
    const f = (x: number) => x.toFixed(1);
    console.log(
      `| ${c} | ${p.rate.toFixed(0)} | ${f(p.p50)} | ${f(p.p99)} | ${r.rate.toFixed(0)} | ${f(r.p50)} | ${f(r.p99)} | ${(p.rate / r.rate).toFixed(2)} |`,
    );
  }
  await raw.end();
  await plugin.kill();
  await pg.stop();
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
