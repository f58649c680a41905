// Soak: drive the built executable for SOAK_SECONDS (default 300) — NewUser/DeleteUser
// pairs against an embedded PostgreSQL through the database role, and encrypt/decrypt/sign
// through the secrets role — then report errors, leftover roles, and both plugins' RSS
// over time (a steady climb means a leak). Bounded in time; only 127.0.0.1 is used.
// Run: npx tsx scripts/soak.ts
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { startPostgres } from '../test/support/postgres';
import { launchPlugin, call, mountBackend } from '../test/support/host';
import { toStruct } from '../src/goplugin/wellknown';
import { MemoryStorage } from '../src/storage/storage';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 8);
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function main(): Promise<void> {
  const exe = path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts');
  const pg = await startPostgres();
  const dbp = await launchPlugin(exe, 'database');
  const sec = await launchPlugin(exe, 'backend');
  const db = dbp.client('dbplugin.v5.Database');
  const md = { multiplex_id: 'soak' };
  const url = `postgres://{{username}}:{{password}}@${pg.host}:${pg.port}/${pg.database}?sslmode=disable`;
  await call(
    db,
    'Initialize',
    { config_data: toStruct({ connection_url: url, username: pg.user, password: pg.password, max_open_connections: 6 }), verify_connection: true },
    md,
  );
  const m = await mountBackend(sec, new MemoryStorage());
  const req = async (op: string, p: string, data: object) => {
    const r = await call<{ response?: { data?: string }; err?: { err_msg: string } }>(
      m.backend,
      'HandleRequest',
      { request: { operation: op, path: p, data: JSON.stringify(data) } },
      m.md,
    );
    const d = JSON.parse(r.response?.data || '{}');
    if (r.err?.err_msg || d.error) throw new Error(r.err?.err_msg || d.error);
    return d;
  };
  await req('create', 'keys/soak', { type: 'aes256-gcm96' });
  await req('create', 'keys/soak-sign', { type: 'ecdsa-p256' });
  const stmt = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;
  const exp = { seconds: String(Math.floor(Date.now() / 1000) + 3600), nanos: 0 };
  const counts = { pairs: 0, crypto: 0, errors: 0 };
  const firstErrors: string[] = [];
  const fail = (e: unknown) => {
    counts.errors++;
    if (firstErrors.length < 5) firstErrors.push(String((e as Error).message ?? e));
  };
  const end = Date.now() + SECONDS * 1000;
  const samples: string[] = [];
  const sampler = setInterval(
    () =>
      samples.push(
        `${Math.round((SECONDS * 1000 - (end - Date.now())) / 1000)}s db ${rss(dbp.proc.pid!).toFixed(0)} MiB, secrets ${rss(sec.proc.pid!).toFixed(0)} MiB, pairs ${counts.pairs}, crypto ${counts.crypto}, errors ${counts.errors}`,
      ),
    Math.max(5000, SECONDS * 100),
  );
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      while (Date.now() < end) {
        try {
          if (w % 2 === 0) {
            const r = await call<{ username: string }>(
              db,
              'NewUser',
              {
                username_config: { display_name: 'soak', role_name: 'r' },
                password: 'Pw-' + randomBytes(9).toString('hex'),
                expiration: exp,
                statements: { Commands: [stmt] },
              },
              md,
            );
            await call(db, 'DeleteUser', { username: r.username }, md);
            counts.pairs++;
          } else {
            const pt = randomBytes(48).toString('base64');
            const { ciphertext } = await req('update', 'encrypt/soak', { plaintext: pt });
            if ((await req('update', 'decrypt/soak', { ciphertext })).plaintext !== pt) throw new Error('decrypt returned other data');
            await req('update', 'sign/soak-sign', { input: pt });
            counts.crypto++;
          }
        } catch (e) {
          fail(e);
        }
      }
    }),
  );
  clearInterval(sampler);
  const c = new Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database });
  await c.connect();
  const left = (await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-soak-%'")).rows[0].n as number;
  await c.end();
  console.log(`# soak ${new Date().toISOString()}: ${SECONDS}s, ${CONCURRENCY} workers`);
  for (const s of samples) console.log('  ' + s);
  console.log(`pairs ${counts.pairs}, transit round trips ${counts.crypto}, errors ${counts.errors}, roles left ${left}`);
  for (const e of firstErrors) console.log('  error: ' + e);
  m.close();
  await Promise.all([dbp.kill(), sec.kill()]);
  await pg.stop();
  process.exit(counts.errors || left ? 1 : 0);
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
