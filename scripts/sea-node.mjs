// The Node.js runtime the single executable is made of, and the one the build, the release
// and the test suite run on: Node 24 LTS, pinned exactly in package.json (devDependency
// node-<os>-<arch>, Node's own release binary from the npm registry, its integrity in
// package-lock.json). Not the machine's `node`: Debian's and NodeSource's Node 20 reached its
// end of life on 2026-04-30 (no more security fixes), and the executable should not depend on
// what a build machine happens to have. SEA_NODE names another binary (e.g. on a platform
// without such a package); the build then records that runtime instead.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const pkg = `node-${process.platform}-${process.arch}`;

/** The exact Node version package.json pins for this platform, if it pins one. */
export function pinnedVersion() {
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies?.[pkg];
}

/** The pinned runtime's path; an error naming what to install when it is missing. */
export function seaNode() {
  if (process.env.SEA_NODE) return path.resolve(process.env.SEA_NODE);
  const bin = path.join(root, 'node_modules', pkg, 'bin', 'node');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`npm ci\` (package.json pins ${pkg}), or set SEA_NODE to a Node.js 24 binary`);
  }
  return bin;
}

/**
 * Run the calling script under the pinned runtime unless it already runs on that version: re-executes it with
 * the same arguments, waits, and exits with its status. Returns only when already there.
 */
export function runOnSeaNode(scriptUrl) {
  if (process.env.SEA_NODE ? fs.realpathSync(process.execPath) === fs.realpathSync(process.env.SEA_NODE) : process.versions.node === pinnedVersion()) return;
  const node = seaNode();
  try {
    execFileSync(node, [fileURLToPath(scriptUrl), ...process.argv.slice(2)], { stdio: 'inherit' });
    process.exit(0);
  } catch (e) {
    process.exit(typeof e.status === 'number' ? e.status : 1);
  }
}
