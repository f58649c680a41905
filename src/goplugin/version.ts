// The plugin's identity: the package.json version and the git commit it was built from.
// The build (scripts/build.mjs) defines both, so the executable's answers depend only on
// its source; run from source (tests, tsx) the version is read from package.json and the
// commit is "source".
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { serviceDef } from './protos';
import type { ServiceRegistrar } from './grpc-server';

declare const __PLUGIN_VERSION__: string | undefined;
declare const __PLUGIN_COMMIT__: string | undefined;

function sourceVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** package.json's version, e.g. "0.1.0". */
export const PACKAGE_VERSION: string = typeof __PLUGIN_VERSION__ !== 'undefined' ? __PLUGIN_VERSION__ : sourceVersion();
/** The commit built ("<sha>" or "<sha>-dirty"), "unknown" outside git, "source" when not built. */
export const COMMIT: string = typeof __PLUGIN_COMMIT__ !== 'undefined' ? __PLUGIN_COMMIT__ : 'source';

/**
 * The version as Vault writes it: Vault canonicalises `-version=0.1.0` to "v0.1.0" and
 * refuses a registration whose plugin reports anything else, so this is what we report.
 */
export const VAULT_PLUGIN_VERSION = `v${PACKAGE_VERSION}`;

/** What `--version` prints: one line, the same for every run of one executable. */
export function versionLine(): string {
  return `vault-plugin-ts ${VAULT_PLUGIN_VERSION} (commit ${COMMIT}, node ${process.version})`;
}

/** Serve logical.PluginVersion, which Vault 1.12+ calls on both roles' connections. */
export function addPluginVersionService(server: ServiceRegistrar): void {
  server.addService(serviceDef('logical.PluginVersion'), {
    Version: (_call: unknown, cb: grpc.sendUnaryData<{ plugin_version: string }>) => cb(null, { plugin_version: VAULT_PLUGIN_VERSION }),
  });
}
