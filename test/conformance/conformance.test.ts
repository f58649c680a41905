// Runs the Go conformance host (HashiCorp's go-plugin client, as Vault uses it) against
// the built single executable. Builds both if needed.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { pgInfo } from '../support/db';
import { startAwsKms } from '../emulators/awskms';
import { startGcpKms } from '../emulators/gcpkms';
import { startAzureKv } from '../emulators/azurekv';
import { makeServerCerts } from '../support/certs';

const root = path.resolve(__dirname, '..', '..');
const exe = path.join(root, 'dist', 'vault-plugin-ts');
const host = path.join(root, '.build', 'conformance', 'bin', 'conformance');

function run(scenario: string, env: Record<string, string> = {}): { code: number | null; out: string } {
  const r = spawnSync(host, [scenario, exe], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function runAsync(scenario: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(host, [scenario, exe], { env: { ...process.env, ...env } });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      out += d;
    });
    const t = setTimeout(() => p.kill(), 240_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

function expectAllPassed(out: string, names: string[]): void {
  for (const n of names) expect(out, out).toContain(`ok - ${n}`);
  expect(out, out).not.toContain('FAIL -');
  expect(out, out).toMatch(/^\d+ passed, 0 failed$/m);
}

beforeAll(() => {
  // The suite script builds first; building here too keeps `vitest run` self-sufficient.
  if (!fs.existsSync(exe) || process.env.VPT_REBUILD === '1')
    execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs'), '--quiet'], { stdio: 'inherit' });
  if (hostIsStale()) execFileSync('bash', [path.join(root, 'scripts/conformance-build.sh')], { stdio: 'inherit' });
}, 300_000);

/** No host yet, or one older than its Go sources or the protos (a stale host checks what the plugin no longer does). */
function hostIsStale(): boolean {
  if (!fs.existsSync(host)) return true;
  const built = fs.statSync(host).mtimeMs;
  const sources = [
    ...fs
      .readdirSync(__dirname)
      .filter((f) => f.endsWith('.go'))
      .map((f) => path.join(__dirname, f)),
    ...fs.readdirSync(path.join(root, 'proto')).map((f) => path.join(root, 'proto', f)),
  ];
  return sources.some((f) => fs.statSync(f).mtimeMs > built);
}

describe("the README's demo (scripts/demo.sh runs this host scenario)", () => {
  it('runs end to end: every step the demo prints succeeds', async () => {
    const { code, out } = await runAsync('demo', { CONFORMANCE_PG: JSON.stringify(pgInfo()) });
    expect(out, out).not.toMatch(/ERROR/);
    expect(out, out).toContain('ok: revoked; new CRL');
    expect(out, out).toMatch(/^done in [\d.]+m?s$/m);
    expect(code, out).toBe(0);
  });
});

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
      "Vault's call deadline bounds the transaction: a timed-out NewUser never commits later",
      'a failing second statement leaves no role and no password in the error',
      '32 concurrent NewUser calls through the real client all succeed',
      '200 concurrent NewUser/DeleteUser pairs: no errors, nothing left, never above max_open_connections',
      'Close of one config leaves the other serving',
      'DeleteUser revokes (no login, no pg_roles row) and is idempotent',
      'root rotation: new password takes effect, plugin keeps working, and re-Initialize with it works',
      'a plugin killed mid-call: in-flight calls fail, a fresh process serves the same stored config',
      "no secret used in this run appears in the plugin's log output",
    ]);
    expect(code).toBe(0);
  });

  it('secrets engine: Setup over the real broker, transit through Vault-served storage, two mounts, restart, HSM and cloud managed keys', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-conf-hsm-'));
    const pki = makeServerCerts({ dns: ['localhost'], ips: [] });
    const tls = { certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem };
    const [aws, gcp, az] = await Promise.all([startAwsKms(), startGcpKms(tls), startAzureKv(tls)]);
    try {
      gcp.createKey('conf', 'EC_SIGN_P256_SHA256');
      az.createKey('conf', 'EC-HSM', { crv: 'P-384' });
      // Given as a path: the operator allows the directory with VAULT_PLUGIN_CREDENTIAL_FILES.
      const credDir = path.join(dir, 'creds');
      fs.mkdirSync(credDir);
      const credFile = path.join(credDir, 'gcp.json');
      fs.writeFileSync(credFile, gcp.credentialsJson, { mode: 0o600 });
      const kms = {
        awskms: { kms_key: aws.createKey('RSA_2048').id, access_key: aws.accessKeyId, secret_key: aws.secretAccessKey, endpoint: aws.url, region: aws.region },
        gcpckms: {
          credentials: credFile,
          project: gcp.project,
          region: gcp.location,
          key_ring: gcp.keyRing,
          crypto_key: 'conf',
          endpoint: gcp.endpoint,
          endpoint_ca: gcp.caPem,
        },
        azurekeyvault: {
          tenant_id: az.tenantId,
          client_id: az.clientId,
          client_secret: az.clientSecret,
          vault_name: 'v',
          key_name: 'conf',
          vault_url: az.vaultUrl,
          authority_host: az.base,
          endpoint_ca: az.caPem,
        },
      };
      const out = execFileSync('bash', [path.join(root, 'scripts/softhsm-setup.sh'), dir, 'conformance', '1111', '4242-hsm-pin'], { encoding: 'utf8' });
      const hsm = { Conf: /SOFTHSM2_CONF=(.*)/.exec(out)![1], Library: /library=(.*)/.exec(out)![1] };
      const pluginEnv = {
        VAULT_PLUGIN_PKCS11_LIBRARIES: /VAULT_PLUGIN_PKCS11_LIBRARIES=(.*)/.exec(out)![1],
        VAULT_PLUGIN_CREDENTIAL_FILES: `${credDir}/`,
        // The file's service account signs for the configured endpoint (the emulator) only because it is listed.
        VAULT_PLUGIN_AMBIENT_ENDPOINTS: gcp.endpoint,
      };
      const { code, out: o } = await runAsync('backend', {
        CONFORMANCE_HSM: JSON.stringify(hsm),
        CONFORMANCE_KMS: JSON.stringify(kms),
        CONFORMANCE_PLUGIN_ENV: JSON.stringify(pluginEnv),
      });
      expectAllPassed(o, [
        'launch secrets plugin at version 5 (multiplexed backend)',
        "Setup dials Vault's Storage over go-plugin's broker; Type is logical",
        "transit encrypt/decrypt round trip; the key lives in the host's storage",
        "bad input is a 400 with a message; unknown paths and operations are Vault's errors",
        'existence check drives create vs update',
        "mounts are isolated: mount-b neither sees nor decrypts mount-a's key",
        'a PKCS#11 managed key (SoftHSM2) works from the executable; transit signs through it',
        "managed keys: modules, credential files and ambient credentials only as the operator's settings allow (400s naming them)",
        'nothing lives only in the plugin: a restarted process decrypts with the stored key',
        "a PKI mount (-options=engine=pki): root, role and issue through the real client; SystemView's max lease TTL caps lifetimes; transit paths are not mounted there",
        "cloud KMS managed keys (AWS, Google, Azure SDKs loaded from the executable's lazy bundles) pass test/sign",
        "Cleanup on unmount; no secret in the plugin's logs",
      ]);
      expect(code).toBe(0);
    } finally {
      await Promise.all([aws.close(), gcp.close(), az.close()]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the plugin exits by itself when its host dies without shutting it down', async () => {
    const child = spawn(host, ['orphan', exe], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    await new Promise((r) => child.on('exit', r));
    const pid = Number(/pid (\d+)/.exec(out)?.[1]);
    expect(pid, out).toBeGreaterThan(0);
    // An exited process that nobody has reaped yet (re-parented to a PID 1 that does not
    // reap) is a zombie: it has exited, though kill(pid, 0) still finds it.
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 8000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });

  // pkcs11-slots is the operator's own command-line aid, not reachable through Vault: no allowlist.
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
