#!/usr/bin/env node
// Build the single executable: esbuild bundles cmd/main.ts (protos embedded as text),
// Node's single-executable-application support turns the bundle into dist/vault-plugin-ts.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const quiet = process.argv.includes('--quiet');
const say = (s) => { if (!quiet) process.stdout.write(s + '\n'); };
fs.mkdirSync(dist, { recursive: true });

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const protos = {};
for (const f of fs.readdirSync(path.join(root, 'proto')).sort()) {
  if (f.endsWith('.proto')) protos[f] = fs.readFileSync(path.join(root, 'proto', f), 'utf8');
}

// Native addons become SEA assets, loaded at run time by src/goplugin/native.ts.
// So does PostgreSQL's lexer (WebAssembly), which src/database/pglexer.ts loads on first use.
const assets = { 'libpg-query.wasm': path.join(root, 'node_modules/libpg-query/wasm/libpg-query.wasm') };
const nativeAddons = {
  name: 'native-addons',
  setup(b) {
    b.onResolve({ filter: /\.node$/ }, (args) => ({ path: path.resolve(args.resolveDir, args.path), namespace: 'native-addon' }));
    b.onLoad({ filter: /.*/, namespace: 'native-addon' }, (args) => {
      const asset = path.basename(args.path);
      assets[asset] = args.path;
      return {
        contents: `module.exports = require(${JSON.stringify(path.join(root, 'src/goplugin/native.ts'))}).loadNativeAddon(${JSON.stringify(asset)}, ${JSON.stringify(args.path)});`,
        resolveDir: root,
        loader: 'js',
      };
    });
  },
};

// Cloud KMS adapters (and their SDKs) become separate bundles, loaded on first use, so
// that the SDKs cost nothing at plugin start.
const LAZY = ['awskms', 'gcpckms', 'azurekeyvault'];
const lazyAdapters = {
  name: 'lazy-adapters',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^\\./(${LAZY.join('|')})$`) }, (args) => {
      if (!args.importer.endsWith(path.join('src', 'keys', 'index.ts'))) return undefined;
      return { path: path.resolve(args.resolveDir, args.path + '.ts'), namespace: 'lazy-adapter' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-adapter' }, (args) => {
      const asset = `keys-${path.basename(args.path, '.ts')}.js`;
      assets[asset] = path.join(dist, 'lazy', asset);
      return {
        contents: `module.exports = require(${JSON.stringify(path.join(root, 'src/goplugin/native.ts'))}).loadLazyBundle(${JSON.stringify(asset)}, ${JSON.stringify(args.path)});`,
        resolveDir: root,
        loader: 'js',
      };
    });
  },
};

const common = {
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
  },
};
fs.mkdirSync(path.join(dist, 'lazy'), { recursive: true });
for (const name of LAZY) {
  await build({ ...common, entryPoints: [path.join(root, 'src/keys', `${name}.ts`)], outfile: path.join(dist, 'lazy', `keys-${name}.js`), plugins: [nativeAddons] });
}

const bundle = path.join(dist, 'main.js');
await build({
  ...common,
  plugins: [nativeAddons, lazyAdapters],
  entryPoints: [path.join(root, 'cmd/main.ts')],
  outfile: bundle,
});

const exe = path.join(dist, 'vault-plugin-ts');
const seaConfig = path.join(dist, 'sea-config.json');
const blob = path.join(dist, 'sea-prep.blob');
fs.writeFileSync(seaConfig, JSON.stringify({
  main: bundle,
  output: blob,
  disableExperimentalSEAWarning: true,
  // A V8 code cache makes the bundle start without compiling it first.
  useCodeCache: true,
  assets,
}));
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: quiet ? 'ignore' : 'inherit' });
fs.rmSync(exe, { force: true });
fs.copyFileSync(process.execPath, exe);
fs.chmodSync(exe, 0o755);
const postject = path.join(root, 'node_modules', 'postject', 'dist', 'cli.js');
execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob,
  '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: 'ignore' });
fs.rmSync(blob);

const sha = createHash('sha256').update(fs.readFileSync(exe)).digest('hex');
fs.writeFileSync(path.join(dist, 'vault-plugin-ts.sha256'), `${sha}  vault-plugin-ts\n`);
const mb = (fs.statSync(exe).size / 1048576).toFixed(1);
say(`built ${path.relative(process.cwd(), exe)} (${mb} MiB)`);
say(`sha256 ${sha}`);
say('');
say('Register it with Vault (copy the file into Vault\'s plugin_directory first):');
say(`  vault plugin register -sha256=${sha} -command=vault-plugin-ts database vault-plugin-ts`);
say(`  vault plugin register -sha256=${sha} -command=vault-plugin-ts secret vault-plugin-ts`);
say('or with the catalog API directly:');
say(`  vault write sys/plugins/catalog/database/vault-plugin-ts sha256=${sha} command=vault-plugin-ts`);
say(`  vault write sys/plugins/catalog/secret/vault-plugin-ts sha256=${sha} command=vault-plugin-ts`);
