#!/usr/bin/env node
// Build the single executable: esbuild bundles cmd/main.ts (protos embedded as text),
// Node's single-executable-application support turns the bundle into dist/vault-plugin-ts.
//
// Reproducible: the same commit, node_modules (npm ci of the lock file) and Node binary give
// a bit-identical executable wherever and whenever it is built (test/release/). What used to
// differ: absolute paths of the checkout in the bundle and in the SEA blob's code path, and
// the V8 code cache, whose layout depends on V8's random seed (fixed below).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { brotliCompressSync, constants as zlibConstants } from 'node:zlib';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOnSeaNode } from './sea-node.mjs';

// The executable is a copy of the Node that runs this script (process.execPath below): the pinned one.
runOnSeaNode(import.meta.url);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const quiet = process.argv.includes('--quiet');
const say = (s) => {
  if (!quiet) process.stdout.write(s + '\n');
};
fs.mkdirSync(dist, { recursive: true });

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const commit = gitCommit();
const protos = {};
for (const f of fs.readdirSync(path.join(root, 'proto')).sort()) {
  if (f.endsWith('.proto')) protos[f] = fs.readFileSync(path.join(root, 'proto', f), 'utf8');
}

// Native addons become SEA assets, loaded at run time by src/goplugin/native.ts.
// So does PostgreSQL's lexer (WebAssembly), which src/database/pglexer.ts loads on first use.
const assets = { 'libpg-query.wasm': path.join(root, 'node_modules/libpg-query/wasm/libpg-query.wasm') };
// Modules in the plugins' own namespaces are named by this path in the bundle: relative to the root.
const fromRoot = (file) => path.relative(root, file).split(path.sep).join('/');
// The path a bundle written to outDir requires when it runs outside the executable
// (`node dist/main.js`): relative, so that no path of the checkout lands in the bundle.
const requirePath = (outDir, file) => {
  const rel = path.relative(outDir, file).split(path.sep).join('/');
  return rel.startsWith('../') ? rel : `./${rel}`;
};
const nativeAddons = (outDir) => ({
  name: 'native-addons',
  setup(b) {
    b.onResolve({ filter: /\.node$/ }, (args) => ({ path: fromRoot(path.resolve(args.resolveDir, args.path)), namespace: 'native-addon' }));
    b.onLoad({ filter: /.*/, namespace: 'native-addon' }, (args) => {
      const asset = path.basename(args.path);
      assets[asset] = path.join(root, args.path);
      return {
        contents: `module.exports = require(${JSON.stringify(path.join(root, 'src/goplugin/native.ts'))}).loadNativeAddon(${JSON.stringify(asset)}, ${JSON.stringify(requirePath(outDir, assets[asset]))});`,
        resolveDir: root,
        loader: 'js',
      };
    });
  },
});

// Cloud KMS adapters (and their SDKs) become separate bundles, loaded on first use, so
// that the SDKs cost nothing at plugin start.
const LAZY = ['awskms', 'gcpckms', 'azurekeyvault'];
// Where the adapters live (and who imports them), by bundle name prefix: managed keys, and keymgmt's providers.
const LAZY_DIRS = { keys: 'src/keys', keymgmt: 'src/secrets/keymgmt/providers' };
const lazyAdapters = {
  name: 'lazy-adapters',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^\\./(${LAZY.join('|')})$`) }, (args) => {
      const prefix = Object.keys(LAZY_DIRS).find((p) => args.importer.endsWith(path.join(LAZY_DIRS[p], 'index.ts')));
      if (!prefix) return undefined;
      return { path: fromRoot(path.resolve(args.resolveDir, args.path + '.ts')), namespace: 'lazy-adapter', pluginData: prefix };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-adapter' }, (args) => {
      const asset = `${args.pluginData}-${path.basename(args.path, '.ts')}.js`;
      assets[asset] = path.join(dist, 'lazy', asset);
      return {
        contents: `module.exports = require(${JSON.stringify(path.join(root, 'src/goplugin/native.ts'))}).loadLazyBundle(${JSON.stringify(asset)}, ${JSON.stringify(requirePath(dist, assets[asset]))});`,
        resolveDir: root,
        loader: 'js',
      };
    });
  },
};

// @yugabytedb/pg's logger is winston writing to stdout and to ./app.log (Vault's working
// directory): the driver gets src/database/connection/yb-driver-log.ts instead, which logs
// through the plugin's own log (and keeps winston out of the bundle).
const quietDriverLog = {
  name: 'quiet-driver-log',
  setup(b) {
    b.onResolve({ filter: /^\.\/logger$/ }, (args) =>
      args.importer.includes(`${path.sep}@yugabytedb${path.sep}pg${path.sep}lib${path.sep}`)
        ? { path: path.join(root, 'src/database/connection/yb-driver-log.ts') }
        : undefined,
    );
  },
};

const common = {
  // Module names in the bundle are relative to this, whatever the caller's cwd.
  absWorkingDir: root,
  // What went in: the release's SBOM and licence file are built from it.
  metafile: true,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  // Optional native back-ends that libraries probe for; absent on purpose.
  external: ['pg-native'],
  // A SEA has no dynamic import(): lower every import() (ours and the SDKs') to require.
  supported: { 'dynamic-import': false },
  define: {
    __EMBEDDED_PROTOS__: JSON.stringify(protos),
    __PLUGIN_VERSION__: JSON.stringify(pkg.version),
    __PLUGIN_COMMIT__: JSON.stringify(commit),
  },
};
const metafiles = {};
fs.mkdirSync(path.join(dist, 'lazy'), { recursive: true });
for (const [prefix, dir] of Object.entries(LAZY_DIRS)) {
  for (const name of LAZY) {
    const out = await build({
      ...common,
      entryPoints: [path.join(root, dir, `${name}.ts`)],
      outfile: path.join(dist, 'lazy', `${prefix}-${name}.js`),
      plugins: [nativeAddons(path.join(dist, 'lazy'))],
    });
    metafiles[`lazy/${prefix}-${name}.js`] = out.metafile;
  }
}

const bundle = path.join(dist, 'main.js');
const mainOut = await build({
  ...common,
  plugins: [nativeAddons(dist), lazyAdapters, quietDriverLog],
  entryPoints: [path.join(root, 'cmd/main.ts')],
  outfile: bundle,
});
metafiles['main.js'] = mainOut.metafile;
// V8 holds a script's source as one byte per character only when every character is Latin-1;
// one µ (esbuild leaves non-ASCII inside regular expression literals) made the whole 2 MB
// source two bytes per character in every process's heap. \uXXXX means the same character
// in string, template and regex literals alike (esbuild already escapes the others).
const mainJs = fs.readFileSync(bundle, 'utf8');
fs.writeFileSync(
  bundle,
  mainJs.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
);
fs.writeFileSync(path.join(dist, 'metafile.json'), JSON.stringify({ commit, assets: Object.keys(assets).sort(), metafiles }, null, 1));

// Vault hashes the whole executable (SHA256) at every plugin launch, so every megabyte costs
// each launch: the cloud SDK bundles, loaded only when a cloud KMS is used, go in
// brotli-compressed (~7x smaller) as <name>.br; src/goplugin/native.ts inflates one on first use.
// Not the lexer's wasm: every database process loads it, and inflating it left ~3 MiB more
// private memory in each (bench/mounts), against 1.4 MiB less to hash.
fs.mkdirSync(path.join(dist, 'compressed'), { recursive: true });
for (const name of Object.keys(assets)) {
  if (!name.endsWith('.js')) continue; // the wasm (above) and native addons (dlopen'd from a file) stay as they are
  const raw = fs.readFileSync(assets[name]);
  const out = path.join(dist, 'compressed', `${name}.br`);
  fs.writeFileSync(out, brotliCompressSync(raw, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: raw.length } }));
  delete assets[name];
  assets[`${name}.br`] = out;
}

const exe = path.join(dist, 'vault-plugin-ts');
const seaConfig = path.join(dist, 'sea-config.json');
const blob = path.join(dist, 'sea-prep.blob');
// Paths relative to dist/ (the cwd below): the blob records the main script's path as given.
const fromDist = (f) => path.relative(dist, f).split(path.sep).join('/');
fs.writeFileSync(
  seaConfig,
  JSON.stringify({
    main: fromDist(bundle),
    output: fromDist(blob),
    disableExperimentalSEAWarning: true,
    // Caps V8's young generation at its initial size (1 MiB per semi-space). Uncapped, a burst
    // (a batch, a hundred mounts set up) grows it to 32-64 MiB and an idle plugin keeps it.
    // A growth factor set at run time did not hold on Node 24; a start-up flag does
    // (test/release/executable.test.ts measures the executable).
    execArgv: ['--max-semi-space-size=1'],
    // A V8 code cache makes the bundle start without compiling it first.
    useCodeCache: true,
    assets: Object.fromEntries(
      Object.keys(assets)
        .sort()
        .map((k) => [k, fromDist(assets[k])]),
    ),
  }),
);
// V8 lays out the code cache from its random seed (hash tables, object order), so two
// builds gave different caches; a fixed seed makes it deterministic. The seed is not part
// of V8's flag hash, so the executable (started without the flag) still accepts the cache
// (test/release/ checks that no "Code cache data rejected" warning appears).
execFileSync(process.execPath, ['--random-seed=20', '--experimental-sea-config', seaConfig], { cwd: dist, stdio: quiet ? 'ignore' : 'inherit' });
fs.rmSync(exe, { force: true });
fs.copyFileSync(process.execPath, exe);
fs.chmodSync(exe, 0o755);
// Node's release binary carries its symbol table and some debug info (~12 MiB) that nothing
// reads at run time; the dynamic symbols addons link against stay. Skipped (with a note)
// where binutils' strip is missing.
try {
  execFileSync('strip', ['--strip-all', exe], { stdio: 'ignore' });
} catch {
  say("note: strip not found or failed; the executable keeps Node's symbol table");
}
const postject = path.join(root, 'node_modules', 'postject', 'dist', 'cli.js');
execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], {
  stdio: 'ignore',
});
fs.rmSync(blob);

const sha = createHash('sha256').update(fs.readFileSync(exe)).digest('hex');
fs.writeFileSync(path.join(dist, 'vault-plugin-ts.sha256'), `${sha}  vault-plugin-ts\n`);
const mb = (fs.statSync(exe).size / 1048576).toFixed(1);
say(`built ${path.relative(process.cwd(), exe)} (${mb} MiB)`);
say(`sha256 ${sha}  (v${pkg.version}, commit ${commit})`);
say('');
say("Register it with Vault (copy the file into Vault's plugin_directory first):");
say(`  vault plugin register -sha256=${sha} -command=vault-plugin-ts database vault-plugin-ts`);
say(`  vault plugin register -sha256=${sha} -command=vault-plugin-ts secret vault-plugin-ts`);
say('or with the catalog API directly:');
say(`  vault write sys/plugins/catalog/database/vault-plugin-ts sha256=${sha} command=vault-plugin-ts`);
say(`  vault write sys/plugins/catalog/secret/vault-plugin-ts sha256=${sha} command=vault-plugin-ts`);

/** HEAD's commit id, with "-dirty" when the work tree has changes; "unknown" outside git. */
function gitCommit() {
  const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const head = git('rev-parse', 'HEAD');
    return git('status', '--porcelain') ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}
