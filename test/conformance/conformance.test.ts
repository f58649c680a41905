// Runs the Go conformance host (HashiCorp's go-plugin client, as Vault uses it) against
// the built single executable. Builds both if needed.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { pgInfo } from '../support/db';

const root = path.resolve(__dirname, '..', '..');
const exe = path.join(root, 'dist', 'vault-plugin-ts');
const host = path.join(root, '.build', 'conformance', 'bin', 'conformance');

function run(scenario: string, env: Record<string, string> = {}): { code: number | null; out: string } {
  const r = spawnSync(host, [scenario, exe], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function expectAllPassed(out: string, names: string[]): void {
  for (const n of names) expect(out, out).toContain(`ok - ${n}`);
  expect(out, out).not.toContain('FAIL -');
  expect(out, out).toMatch(/^\d+ passed, 0 failed$/m);
}

beforeAll(() => {
  // The suite script builds first; building here too keeps `vitest run` self-sufficient.
  if (!fs.existsSync(exe) || process.env.VPT_REBUILD === '1') execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs'), '--quiet'], { stdio: 'inherit' });
  if (!fs.existsSync(host)) execFileSync('bash', [path.join(root, 'scripts/conformance-build.sh')], { stdio: 'inherit' });
}, 300_000);

describe('go-plugin conformance (real client, AutoMTLS, empty environment)', () => {
  it('runtime: handshake, health, Type, mTLS refusals, shutdown', () => {
    const { code, out } = run('runtime');
    expectAllPassed(out, [
      'refuses to run without the magic cookie',
      'handshake accepted over AutoMTLS, highest common version (6) chosen',
      'health reports SERVING for service "plugin"',
      'Database.Type answers over mTLS',
      'TLS client without a certificate is refused',
      'TLS client with a foreign certificate is refused',
      'Shutdown over the controller ends the process',
      'a client offering only version 5 gets version 5, without multiplexing',
    ]);
    expect(code).toBe(0);
  });

  it('database: two multiplexed configs on real PostgreSQL through the real client', () => {
    const { code, out } = run('database', { CONFORMANCE_PG: JSON.stringify(pgInfo()) });
    expectAllPassed(out, [
      'Initialize two configs on one process; the stored config comes back',
      'NewUser issues credentials that log in (SCRAM), with VALID UNTIL set',
      'UpdateUser renews and rotates; the new password logs in, the old does not',
      'a failing second statement leaves no role and no password in the error',
      '32 concurrent NewUser calls through the real client all succeed',
      'Close of one config leaves the other serving',
      'DeleteUser revokes (no login, no pg_roles row) and is idempotent',
      'root rotation: new password takes effect, plugin keeps working, and re-Initialize with it works',
      'a plugin killed mid-flight: a fresh process serves the same stored config',
      'no secret used in this run appears in the plugin\'s log output',
    ]);
    expect(code).toBe(0);
  });

  it('the plugin exits by itself when its host dies without shutting it down', async () => {
    const child = spawn(host, ['orphan', exe], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    await new Promise((r) => child.on('exit', r));
    const pid = Number(/pid (\d+)/.exec(out)?.[1]);
    expect(pid, out).toBeGreaterThan(0);
    const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const deadline = Date.now() + 5000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });

  it('the executable loads a PKCS#11 module through its embedded native addon, with an empty environment', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-sea-hsm-'));
    try {
      const out = execFileSync('bash', [path.join(root, 'scripts/softhsm-setup.sh'), dir, 'sea-token'], { encoding: 'utf8' });
      const conf = /SOFTHSM2_CONF=(.*)/.exec(out)![1];
      const library = /library=(.*)/.exec(out)![1];
      const r = spawnSync(exe, ['pkcs11-slots', library], { env: { SOFTHSM2_CONF: conf }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).map((s: { label: string }) => s.label)).toContain('sea-token');
      const bad = spawnSync(exe, ['pkcs11-slots', '/nonexistent.so'], { env: {}, encoding: 'utf8' });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/cannot load PKCS#11 library \/nonexistent.so/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
