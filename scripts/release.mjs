#!/usr/bin/env node
// npm run release [-- --out DIR] [--allow-dirty] [--keep] [--quiet]
//
// Builds the committed HEAD in a fresh clone (npm ci from the lock file, then
// scripts/build.mjs) and packs, for this machine's platform:
//   vault-plugin-ts-v<version>-<os>-<arch>.tar.gz, holding one directory with
//     vault-plugin-ts          the single executable (bit-identical for one commit + Node)
//     SHA256SUMS               every other file of the directory (sha256sum -c)
//     sbom.cdx.json            CycloneDX SBOM of what the executable contains
//     THIRD_PARTY_LICENSES     the licence texts of everything bundled, Node.js included
//     REGISTER.txt             the Vault commands, with this executable's SHA256 filled in
// and, beside the archive, SHA256SUMS for the archive and the executable.
// The archive itself is reproducible too (sorted, owner 0, mtime = commit time, gzip
// without name or time), so two releases of one commit are byte-identical.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { runOnSeaNode } from './sea-node.mjs';

// The SBOM and the licences name the Node that runs this script (process.versions, its LICENSE): the one the build embeds.
runOnSeaNode(import.meta.url);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? path.resolve(argv[i + 1]) : dflt;
};
const quiet = flag('--quiet');
const outDir = option('--out', path.join(root, 'dist', 'release'));
const say = (s = '') => {
  if (!quiet) process.stdout.write(s + '\n');
};
const started = Date.now();
const step = (what) => say(`release: ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
const sh = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', quiet ? 'pipe' : 'inherit'] });
const sha256 = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
class ReleaseError extends Error {}
const fail = (msg) => {
  throw new ReleaseError(msg);
};

// The source: the committed HEAD, nothing else from this work tree.
const commit = sh('git', ['rev-parse', 'HEAD'], root).trim();
try {
  if (sh('git', ['status', '--porcelain'], root).trim()) {
    if (!flag('--allow-dirty'))
      fail('the work tree has uncommitted changes; commit them (a release is built from HEAD only) or pass --allow-dirty to build HEAD anyway');
    process.stderr.write(`release: uncommitted changes are NOT in this release: it is built from HEAD ${commit}\n`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vault-plugin-ts-release-'));
  const src = path.join(work, 'src');
  try {
    say(`release: building ${commit} in a fresh clone (${src})`);
    sh('git', ['clone', '--quiet', '--no-checkout', root, src]);
    sh('git', ['checkout', '--quiet', '--detach', commit], src);
    // The lock file decides every package; cached tarballs are used when present.
    sh('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], src);
    step('npm ci done');
    sh(process.execPath, ['scripts/build.mjs', '--quiet'], src);
    step('build done');
    release(src);
  } finally {
    if (!flag('--keep')) fs.rmSync(work, { recursive: true, force: true });
  }
} catch (e) {
  if (!(e instanceof ReleaseError)) throw e;
  process.stderr.write(`release: ${e.message}\n`);
  process.exitCode = 1;
}

function release(src) {
  const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'));
  const version = `v${pkg.version}`;
  const platform = `${process.platform}-${process.arch}`;
  const name = `vault-plugin-ts-${version}-${platform}`;
  const exe = path.join(src, 'dist', 'vault-plugin-ts');
  const built = execFileSync(exe, ['--version'], { encoding: 'utf8', env: {} }).trim();
  if (!built.includes(`commit ${commit},`)) fail(`the executable says "${built}", expected commit ${commit} (clean)`);
  const exeSha = sha256(exe);
  // The commit's time stands for "when": the same on every build of the commit.
  const epoch = Number(sh('git', ['show', '-s', '--format=%ct', commit], src).trim());

  const stage = path.join(path.dirname(src), name);
  fs.mkdirSync(stage);
  fs.copyFileSync(exe, path.join(stage, 'vault-plugin-ts'));
  const bundled = bundledPackages(src);
  const nodeLicense = findNodeLicense();
  fs.writeFileSync(path.join(stage, 'sbom.cdx.json'), JSON.stringify(sbom(src, bundled, { exeSha, epoch }), null, 2) + '\n');
  fs.writeFileSync(path.join(stage, 'THIRD_PARTY_LICENSES'), thirdPartyLicenses(bundled, nodeLicense));
  fs.writeFileSync(path.join(stage, 'REGISTER.txt'), registerText(version, exeSha, built));
  const files = fs.readdirSync(stage).sort();
  fs.writeFileSync(path.join(stage, 'SHA256SUMS'), files.map((f) => `${f === 'vault-plugin-ts' ? exeSha : sha256(path.join(stage, f))}  ${f}\n`).join(''));
  for (const f of fs.readdirSync(stage)) fs.chmodSync(path.join(stage, f), f === 'vault-plugin-ts' ? 0o755 : 0o644);
  fs.chmodSync(stage, 0o755);

  fs.mkdirSync(outDir, { recursive: true });
  const archive = path.join(outDir, `${name}.tar.gz`);
  step('SBOM, licences and sums done');
  const tar = execFileSync(
    'tar',
    ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`, '--format=gnu', '-C', path.dirname(stage), '-cf', '-', name],
    { maxBuffer: 1 << 30 },
  );
  // zlib's gzip header carries no file name and mtime 0.
  fs.writeFileSync(archive, zlib.gzipSync(tar, { level: 6 }));
  fs.copyFileSync(exe, path.join(outDir, 'vault-plugin-ts'));
  fs.chmodSync(path.join(outDir, 'vault-plugin-ts'), 0o755);
  fs.writeFileSync(path.join(outDir, 'SHA256SUMS'), `${sha256(archive)}  ${path.basename(archive)}\n${exeSha}  vault-plugin-ts\n`);

  step('archive done');
  say(`release: ${path.relative(process.cwd(), archive)}`);
  say(`  ${built}`);
  say(`  sha256 ${exeSha}  vault-plugin-ts`);
  say(`  ${bundled.length} bundled npm packages in sbom.cdx.json and THIRD_PARTY_LICENSES`);
  say('');
  say(registerText(version, exeSha, built));
}

/**
 * The npm packages whose files esbuild put into the executable (main bundle and lazy
 * bundles; a native addon's package through its loader), from the build's metafile:
 * [{ dir: 'node_modules/…', name, version, license }], one per directory.
 */
function bundledPackages(src) {
  const meta = JSON.parse(fs.readFileSync(path.join(src, 'dist', 'metafile.json'), 'utf8'));
  const dirs = new Set();
  for (const mf of Object.values(meta.metafiles)) {
    for (const input of Object.keys(mf.inputs)) {
      const file = input.replace(/^[a-z-]+:/, ''); // native-addon:, lazy-adapter: namespaces
      const at = file.lastIndexOf('node_modules/');
      if (at < 0) continue;
      const parts = file.slice(at + 'node_modules/'.length).split('/');
      dirs.add(file.slice(0, at) + 'node_modules/' + (parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]));
    }
  }
  return [...dirs].sort().map((dir) => {
    const p = JSON.parse(fs.readFileSync(path.join(src, dir, 'package.json'), 'utf8'));
    return { dir, abs: path.join(src, dir), name: p.name, version: p.version, license: typeof p.license === 'string' ? p.license : p.license?.type };
  });
}

/**
 * cyclonedx-npm describes the installed production tree (names, versions, purls, declared
 * licences); the executable holds only part of it, so the SBOM keeps the bundled
 * components, reconnects the dependency graph across the dropped ones, and adds the
 * Node.js runtime the executable is built on.
 */
function sbom(src, bundled, { exeSha, epoch }) {
  const raw = path.join(path.dirname(src), 'npm.cdx.json');
  sh(
    path.join(src, 'node_modules', '.bin', 'cyclonedx-npm'),
    ['--omit', 'dev', '--flatten-components', '--output-reproducible', '--output-format', 'JSON', '--output-file', raw],
    src,
  );
  const bom = JSON.parse(fs.readFileSync(raw, 'utf8'));
  const pathOf = (c) => c.properties?.find((p) => p.name === 'cdx:npm:package:path')?.value;
  const keepDirs = new Set(bundled.map((b) => b.dir));
  const kept = bom.components.filter((c) => keepDirs.has(pathOf(c)));
  const missing = [...keepDirs].filter((d) => !kept.some((c) => pathOf(c) === d));
  if (missing.length) fail(`bundled but not in cyclonedx-npm's tree: ${missing.join(', ')}`);

  const rootRef = bom.metadata.component['bom-ref'];
  const keptRefs = new Set([rootRef, ...kept.map((c) => c['bom-ref'])]);
  const edges = new Map((bom.dependencies ?? []).map((d) => [d.ref, d.dependsOn ?? []]));
  // Bundled packages reachable from ref through packages that were not bundled.
  const reach = (ref) => {
    const out = new Set();
    const seen = new Set([ref]);
    const stack = [...(edges.get(ref) ?? [])];
    while (stack.length) {
      const r = stack.pop();
      if (seen.has(r)) continue;
      seen.add(r);
      if (keptRefs.has(r)) out.add(r);
      else stack.push(...(edges.get(r) ?? []));
    }
    return [...out].sort();
  };

  const node = {
    type: 'platform',
    'bom-ref': `node@${process.versions.node}`,
    name: 'node',
    version: process.versions.node,
    description: 'Node.js runtime: the single executable is this Node binary with the bundle injected',
    licenses: [{ license: { id: 'MIT' } }],
    purl: `pkg:generic/node@${process.versions.node}`,
  };
  const component = {
    ...bom.metadata.component,
    hashes: [{ alg: 'SHA-256', content: exeSha }],
    properties: [...(bom.metadata.component.properties ?? []), { name: 'vault-plugin-ts:git-commit', value: commit }],
  };
  // A serial number must differ per BOM and be stable for one: derive it from the executable.
  const h = createHash('sha256').update(`vault-plugin-ts sbom ${exeSha}`).digest('hex');
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  return {
    ...bom,
    serialNumber: `urn:uuid:${uuid}`,
    metadata: { ...bom.metadata, timestamp: new Date(epoch * 1000).toISOString(), component },
    components: [node, ...kept],
    dependencies: [...keptRefs]
      .sort()
      .map((ref) => ({ ref, dependsOn: ref === rootRef ? [node['bom-ref'], ...reach(ref)] : reach(ref) }))
      .concat([{ ref: node['bom-ref'], dependsOn: [] }]),
  };
}

/** Node's own licence file (it lists the licences of V8, OpenSSL, ICU and the rest). */
function findNodeLicense() {
  const prefix = path.dirname(path.dirname(fs.realpathSync(process.execPath)));
  const candidates = [
    path.join(prefix, 'LICENSE'),
    path.join(prefix, 'share', 'doc', 'node', 'LICENSE'),
    path.join(prefix, 'share', 'doc', 'nodejs', 'LICENSE'),
  ];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) fail(`no Node.js LICENSE file found (looked at ${candidates.join(', ')}); the executable embeds Node and must ship its licence`);
  return found;
}

function thirdPartyLicenses(bundled, nodeLicense) {
  const rule = '='.repeat(78);
  const parts = [
    'Third-party software in vault-plugin-ts\n\n' +
      'The executable is the Node.js runtime with a bundle of the npm packages below\n' +
      '(the packages esbuild put into it; see sbom.cdx.json for the same list with\n' +
      'package URLs). Each licence text is copied from the package as installed by\n' +
      'npm ci from package-lock.json.\n',
    `${rule}\nnode ${process.versions.node} (Node.js runtime)\n${rule}\n\n${fs.readFileSync(nodeLicense, 'utf8').trim()}\n`,
  ];
  const unique = new Map();
  for (const p of bundled) if (!unique.has(`${p.name}@${p.version}`)) unique.set(`${p.name}@${p.version}`, p);
  const entries = [...unique.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, p]) => {
      const files = fs
        .readdirSync(p.abs)
        .filter((f) => /^(licen[cs]e|copying|notice)/i.test(f) && fs.statSync(path.join(p.abs, f)).isFile())
        .sort();
      const texts = files.map((f) => `--- ${f}\n\n${fs.readFileSync(path.join(p.abs, f), 'utf8').trim()}\n`);
      if (!texts.length) {
        const readme = fs.readdirSync(p.abs).find((f) => /^readme(\.md)?$/i.test(f));
        const section = readme && licenseSection(fs.readFileSync(path.join(p.abs, readme), 'utf8'));
        if (section) texts.push(`--- the licence section of ${readme} (the package ships no licence file)\n\n${section}\n`);
      }
      return { id, license: p.license, texts };
    });
  // A package with no licence text at all: point to the same declared licence's full text
  // as shipped by another bundled package (the standard text of, e.g., Apache-2.0).
  for (const e of entries) {
    if (e.texts.length) continue;
    const donor = entries.find((o) => o.license && o.license === e.license && o.texts.length && /^--- licen[cs]e/i.test(o.texts[0]));
    e.texts.push(
      `(the package ships no licence text; its package.json declares ${e.license ?? 'nothing'}` +
        (donor ? `, whose full text is reproduced under ${donor.id} in this file)\n` : ')\n'),
    );
  }
  for (const e of entries) parts.push(`${rule}\n${e.id}  (licence: ${e.license ?? 'undeclared'})\n${rule}\n\n${e.texts.join('\n')}`);
  return parts.join('\n');
}

/** A Markdown "License" section (ATX or setext heading) up to the next heading, or undefined. */
function licenseSection(markdown) {
  const lines = markdown.split(/\r?\n/);
  const isSetext = (i) => i + 1 < lines.length && /^(=+|-+)\s*$/.test(lines[i + 1]) && lines[i].trim() !== '';
  const isHeading = (i) => /^#{1,6}\s/.test(lines[i]) || isSetext(i);
  const start = lines.findIndex((l, i) => isHeading(i) && /^(#{1,6}\s*)?licen[cs]e\b/i.test(l.trim()));
  if (start < 0) return undefined;
  let end = start + (isSetext(start) ? 2 : 1);
  while (end < lines.length && !isHeading(end)) end++;
  const body = lines
    .slice(start + (isSetext(start) ? 2 : 1), end)
    .join('\n')
    .trim();
  return body || undefined;
}

function registerText(version, sha, built) {
  return `${built}

Verify, then copy the executable into Vault's plugin_directory on every Vault node:

  sha256sum -c SHA256SUMS
  ./vault-plugin-ts --version
  cp vault-plugin-ts <plugin_directory>/vault-plugin-ts

Vault 1.12 and later (versioned catalog; Vault checks that the plugin reports ${version}):

  vault plugin register -sha256=${sha} -version=${version} -command=vault-plugin-ts secret vault-plugin-ts
  vault plugin register -sha256=${sha} -version=${version} -command=vault-plugin-ts database vault-plugin-ts

  (To keep several versions side by side, give each file its own name, e.g.
  vault-plugin-ts-${version}, and use that name in -command.)

Vault 1.8 to 1.11 (no plugin versions; the catalog API):

  vault write sys/plugins/catalog/secret/vault-plugin-ts sha256=${sha} command=vault-plugin-ts
  vault write sys/plugins/catalog/database/vault-plugin-ts sha256=${sha} command=vault-plugin-ts

  Before 1.12, Vault runs secrets plugins in the VAULT_UNWRAP_TOKEN TLS mode: the plugin
  unwraps its certificate through Vault's API, so for an HTTPS Vault also pass the CA, e.g.
  env=VAULT_CACERT=/etc/vault/ca.pem on the secret entry.
`;
}
