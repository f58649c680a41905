// The executable's entry: one binary, two roles, chosen by the magic cookie Vault sets.
import { detectRole, readLaunchEnv, NOT_A_PROGRAM_MESSAGE } from '../src/goplugin/env';
import { createLogger } from '../src/goplugin/log';
import { serve, type VersionedServices } from '../src/goplugin/server';
import { COMMIT, VAULT_PLUGIN_VERSION, versionLine } from '../src/goplugin/version';
import { sizeThreadPool } from '../src/util/workers';

// The host (Vault) is our parent at exec time; noticing that it is gone depends on this.
const HOST_PID = process.ppid;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--version')) {
    process.stdout.write(versionLine() + '\n');
    return;
  }
  if (args[0] === 'pkcs11-slots') {
    // Operator aid: check that this binary can load an HSM's PKCS#11 library and see its tokens.
    const { listSlots } = require('../src/keys/pkcs11') as typeof import('../src/keys/pkcs11');
    try {
      process.stdout.write(JSON.stringify(listSlots(args[1] ?? ''), null, 2) + '\n');
    } catch (e) {
      process.stderr.write(`vault-plugin-ts: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
    return;
  }
  const role = detectRole(process.env);
  if (!role) {
    process.stderr.write(NOT_A_PROGRAM_MESSAGE);
    process.exitCode = 1;
    return;
  }
  const log = createLogger({ module: `vault-plugin-ts.${role}` });
  log.info('vault-plugin-ts starting', { version: VAULT_PLUGIN_VERSION, commit: COMMIT, role });
  // go-plugin convention: the host handles Ctrl-C for the whole process group and
  // then shuts us down over the controller; dying on SIGINT would race that.
  process.on('SIGINT', () => undefined);
  process.on('unhandledRejection', (e) => log.error('unhandled rejection', { error: e instanceof Error ? e.message : String(e) }));

  try {
    // Before anything uses libuv's thread pool: it reads its size once, on first use.
    sizeThreadPool();
    // Vault's plugin flags (catalog args, e.g. -ca-cert=...) configure the unwrap call to its API.
    const env = readLaunchEnv(process.env, args)!;
    let versions: VersionedServices;
    if (role === 'database') {
      // Loaded per role so the other role's dependencies never initialise.
      versions = (require('../src/database/plugin') as typeof import('../src/database/plugin')).databaseVersions();
    } else {
      versions = (require('../src/secrets/plugin') as typeof import('../src/secrets/plugin')).backendVersions();
    }
    const running = await serve({ env, log, versions, parentPid: HOST_PID });
    process.on('SIGTERM', () => void running.shutdown('SIGTERM').then(() => process.exit(0)));
  } catch (e) {
    // One line in Vault's log (hclog JSON), one on plain stderr for a run by hand; then exit 1.
    log.error('plugin failed to start', { error: (e as Error).message });
    process.stderr.write(`vault-plugin-ts: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

void main();
