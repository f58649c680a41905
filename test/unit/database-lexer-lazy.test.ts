// PostgreSQL's lexer (libpg_query as WebAssembly, src/database/pglexer.ts) checks rendered
// statements; it is loaded by the first statement a config renders, not when the config is
// written. Under Vault 1.8 every database config is a process of its own, and a config that
// never issues anything kept ~10 MiB more resident with the lexer loaded at Initialize
// (bench/mounts: 81.9 → 71.5 MiB per idle process). A child process: the module's state is per process.
import { execFile } from 'node:child_process';
import { expect, it } from 'vitest';

it('Initialize does not load the lexer; rendering a statement does', async () => {
  const code = `
    const { SqlDatabase } = require('./src/database/sql-database.ts');
    const { pgLexerLoaded } = require('./src/database/pglexer.ts');
    const { createLogger } = require('./src/goplugin/log.ts');
    (async () => {
      const log = createLogger({ level: 'error', sink: () => undefined });
      const db = await SqlDatabase.open({ connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/db', username: 'u', password: 'p' }, false, log);
      await new Promise((r) => setTimeout(r, 200));
      console.log('after initialize', pgLexerLoaded());
      // The statements of a NewUser or a rotation go through render (private: reached from JS).
      const rendered = await db.render(['CREATE ROLE "{{name}}"'], { name: 'x' });
      console.log('rendered', rendered[0], pgLexerLoaded());
      await db.close();
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  expect(out).toContain('after initialize false');
  expect(out).toContain('rendered CREATE ROLE "x" true');
});
