// The operator settings that bound what a managed-key config can make the plugin do:
// which PKCS#11 modules it may load (PLUGIN_PKCS11_LIBRARIES), which credential files it
// may read (PLUGIN_CREDENTIAL_FILES) and whether cloud SDKs may use ambient credentials
// (PLUGIN_AMBIENT_CREDENTIALS). Set outside the API, so writing a mount's managed-keys
// path cannot widen them. Checked through the real SoftHSM2 module and the emulators.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pkcs11Key } from '../../src/keys/pkcs11';
import { GcpKmsKey } from '../../src/keys/gcpckms';
import { AwsKmsKey } from '../../src/keys/awskms';
import { parseKeyConfig } from '../../src/keys/config';
import { SecretsBackend } from '../../src/secrets/backend';
import { MemoryStorage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';
import { startGcpKms, type GcpKmsEmulator } from '../emulators/gcpkms';
import { startAwsKms, type AwsKmsEmulator } from '../emulators/awskms';
import { makeServerCerts } from '../support/certs';

const PIN = '8642-pin';
const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-opset-')));
const SETTINGS = ['PLUGIN_PKCS11_LIBRARIES', 'PLUGIN_CREDENTIAL_FILES', 'PLUGIN_AMBIENT_CREDENTIALS', 'PLUGIN_AMBIENT_ENDPOINTS'];
const saved = { ...process.env };
let library = '';
/** The directory the module really is in (Debian's /usr/lib/softhsm/libsofthsm2.so is a link into the multiarch directory). */
let moduleDir = '';
const opened: Array<{ close(): Promise<void> }> = [];

function setting(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[`VAULT_${name}`];
  else process.env[`VAULT_${name}`] = value;
}
afterEach(() => {
  for (const s of SETTINGS) {
    setting(s, saved[`VAULT_${s}`]);
    delete process.env[`BAO_${s}`];
  }
});

beforeAll(() => {
  const out = execFileSync('bash', [path.resolve(__dirname, '../../scripts/softhsm-setup.sh'), path.join(dir, 'hsm'), 'opset', '1111', PIN], {
    encoding: 'utf8',
  });
  process.env.SOFTHSM2_CONF = /SOFTHSM2_CONF=(.*)/.exec(out)![1];
  library = /library=(.*)/.exec(out)![1];
  moduleDir = path.dirname(fs.realpathSync(library));
});
afterAll(async () => {
  for (const k of opened) await k.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function openHsm(name: string, lib: string): Promise<Pkcs11Key> {
  const p = parseKeyConfig('pkcs11', name, { library: lib, token_label: 'opset', pin: PIN, key_label: 'k', allow_generate_key: true });
  const k = await Pkcs11Key.open(name, p.fields, p.common);
  opened.push(k);
  return k;
}

/** A request through the secrets engine, as Vault would send it: the error message and HTTP status. */
async function write(be: SecretsBackend, p: string, data: Record<string, unknown>): Promise<{ status: number; message: string } | undefined> {
  try {
    await be.handle('update', p, data, { displayName: 'token', mountPoint: 'transit/' });
    return undefined;
  } catch (e) {
    return { status: (e as { status?: number }).status ?? 500, message: (e as Error).message };
  }
}
const backend = (store = new MemoryStorage()) => new SecretsBackend(store, createLogger({ level: 'error', sink: () => undefined }));

describe('PKCS#11 modules: only what PLUGIN_PKCS11_LIBRARIES allows is ever loaded', () => {
  it('unset: no module may be loaded — a 400 naming the setting, before the module is touched', async () => {
    setting('PLUGIN_PKCS11_LIBRARIES', undefined);
    await expect(openHsm('unset', library)).rejects.toMatchObject({ kind: 'invalid', message: expect.stringMatching(/PLUGIN_PKCS11_LIBRARIES/) });
    const r = await write(backend(), 'managed-keys/pkcs11/unset', { library, token_label: 'opset', pin: PIN, key_label: 'k' });
    expect(r).toMatchObject({ status: 400, message: expect.stringMatching(/no PKCS#11 module may be loaded.*VAULT_PLUGIN_PKCS11_LIBRARIES/) });
    expect(r!.message).not.toContain(PIN);
  });

  it("a module outside the list is refused; the module's own directory or exact path allows it", async () => {
    setting('PLUGIN_PKCS11_LIBRARIES', `${dir}/elsewhere/`);
    await expect(openHsm('outside', library)).rejects.toThrow(/is not allowed by the operator setting PLUGIN_PKCS11_LIBRARIES/);
    setting('PLUGIN_PKCS11_LIBRARIES', `/nonexistent/:${moduleDir}/`);
    const k = await openHsm('in-dir', library);
    expect(k.describe().backend).toBe('pkcs11');
    setting('PLUGIN_PKCS11_LIBRARIES', library);
    await openHsm('exact', library);
  });

  it('a symlink inside an allowed directory that points outside it is refused (the target is a real module)', async () => {
    const allowed = path.join(dir, 'allowed-mods');
    fs.mkdirSync(allowed, { recursive: true });
    fs.symlinkSync(library, path.join(allowed, 'escape.so'));
    setting('PLUGIN_PKCS11_LIBRARIES', `${allowed}/`);
    await expect(openHsm('escape', path.join(allowed, 'escape.so'))).rejects.toThrow(/PLUGIN_PKCS11_LIBRARIES/);
  });

  it('a path that is not a module is refused by the list before anything is loaded; an allowed non-module is a clear load error', async () => {
    const notAModule = path.join(dir, 'not-a-module.so');
    fs.writeFileSync(notAModule, 'not an ELF file');
    setting('PLUGIN_PKCS11_LIBRARIES', `${moduleDir}/`);
    for (const p of [notAModule, '/dev/zero', '/etc/passwd', 'relative.so', `${moduleDir}/../../../etc/passwd`, path.join(dir, 'missing.so')]) {
      const err = await openHsm('nope', p).catch((e) => e);
      expect(err.message, p).toMatch(/is not allowed by the operator setting PLUGIN_PKCS11_LIBRARIES/);
      expect(err.message, p).not.toMatch(/cannot load/); // never handed to dlopen
    }
    setting('PLUGIN_PKCS11_LIBRARIES', notAModule);
    await expect(openHsm('junk', notAModule)).rejects.toThrow(/cannot load PKCS#11 library/);
    // Allowed, but not a regular file: never handed to dlopen (a FIFO would block it for good).
    const fifo = path.join(dir, 'module-fifo.so');
    execFileSync('mkfifo', [fifo]);
    setting('PLUGIN_PKCS11_LIBRARIES', `${dir}/`);
    for (const p of [fifo, dir]) await expect(openHsm('fifo', p)).rejects.toThrow(/is not allowed by the operator setting PLUGIN_PKCS11_LIBRARIES/);
  });

  it('the check is made again whenever a module is loaded: a link re-pointed after the config was written is refused on reopen (restart)', async () => {
    setting('PLUGIN_PKCS11_LIBRARIES', `${moduleDir}/`);
    const link = path.join(dir, 'current.so');
    fs.symlinkSync(library, link);
    const store = new MemoryStorage();
    const cfg = { library: link, token_label: 'opset', pin: PIN, key_label: 'k' };
    expect(await write(backend(store), 'managed-keys/pkcs11/swapped', cfg)).toBeUndefined();
    // The link now points at a file outside the list (which would fail to load anyway).
    const evil = path.join(dir, 'evil.so');
    fs.writeFileSync(evil, 'payload');
    fs.rmSync(link);
    fs.symlinkSync(evil, link);
    const restarted = backend(store); // a new process reading the stored config
    let err: unknown;
    try {
      await restarted.handle('read', 'managed-keys/pkcs11/swapped', {}, { displayName: 'token', mountPoint: 'transit/' });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ status: 400, message: expect.stringMatching(/is not allowed by the operator setting PLUGIN_PKCS11_LIBRARIES/) });
    expect(await write(backend(store), 'managed-keys/pkcs11/swapped2', cfg)).toMatchObject({ status: 400 });
  });

  it('BAO_ names are read when the VAULT_ name is unset (OpenBao)', async () => {
    setting('PLUGIN_PKCS11_LIBRARIES', undefined);
    process.env.BAO_PLUGIN_PKCS11_LIBRARIES = library;
    await openHsm('bao', library);
  });
});

describe('cloud credentials: files only from PLUGIN_CREDENTIAL_FILES, ambient only with PLUGIN_AMBIENT_CREDENTIALS=true', () => {
  let gcp: GcpKmsEmulator;
  let aws: AwsKmsEmulator;
  const credDir = path.join(dir, 'creds');
  const outsideDir = path.join(dir, 'outside');
  beforeAll(async () => {
    const pki = makeServerCerts({ dns: ['localhost'], ips: [] });
    [gcp, aws] = await Promise.all([startGcpKms({ certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem }), startAwsKms()]);
    gcp.createKey('ec', 'EC_SIGN_P256_SHA256');
    fs.mkdirSync(credDir, { recursive: true });
    fs.mkdirSync(outsideDir, { recursive: true });
    fs.writeFileSync(path.join(credDir, 'sa.json'), gcp.credentialsJson);
    fs.writeFileSync(path.join(outsideDir, 'sa.json'), gcp.credentialsJson);
    fs.symlinkSync(path.join(outsideDir, 'sa.json'), path.join(credDir, 'escape.json'));
    execFileSync('mkfifo', [path.join(credDir, 'fifo.json')]);
  });
  afterAll(async () => {
    await Promise.all([gcp.close(), aws.close()]);
  });

  const gcpOpen = async (extra: Record<string, unknown>) => {
    const p = parseKeyConfig('gcpckms', 'g', {
      project: gcp.project,
      region: gcp.location,
      key_ring: gcp.keyRing,
      crypto_key: 'ec',
      endpoint: gcp.endpoint,
      endpoint_ca: gcp.caPem,
      ...extra,
    });
    const k = await GcpKmsKey.open('g', p.fields, p.common);
    opened.push(k);
    return k;
  };
  const ONE_MESSAGE =
    /^credentials: not a credential file this plugin may read \(allowed by the operator setting PLUGIN_CREDENTIAL_FILES; a regular file of at most 1048576 bytes\)$/;

  it('the service-account JSON itself always works; a path only when the list allows it', async () => {
    expect((await gcpOpen({ credentials: gcp.credentialsJson })).describe().backend).toBe('gcpckms');
    setting('PLUGIN_CREDENTIAL_FILES', undefined);
    const err = await gcpOpen({ credentials: path.join(credDir, 'sa.json') }).catch((e) => e);
    expect(err).toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(/credentials: give the service-account JSON itself.*PLUGIN_CREDENTIAL_FILES/),
    });
    setting('PLUGIN_CREDENTIAL_FILES', `${credDir}/`);
    // (This config names its endpoint, the emulator: the operator lists it, see below.)
    setting('PLUGIN_AMBIENT_ENDPOINTS', gcp.endpoint);
    const k = await gcpOpen({ credentials: path.join(credDir, 'sa.json') });
    expect(await k.verify(Buffer.from('m'), await k.sign(Buffer.from('m'), { hash: 'sha256' }), { hash: 'sha256' })).toBe(true);
  });

  it("the operator's credential file never signs requests to an endpoint the config names, unless the operator lists that endpoint", async () => {
    // The writer of the config does not hold the file's service-account key; a JWT it signs,
    // sent to a server the writer runs, would be a bearer token for Cloud KMS as that account.
    setting('PLUGIN_CREDENTIAL_FILES', `${credDir}/`);
    const before = gcp.calls.length;
    const err = await gcpOpen({ credentials: path.join(credDir, 'sa.json') }).catch((e) => e);
    expect(err).toMatchObject({ kind: 'invalid', message: expect.stringMatching(/gcpckms key "g": .*configured endpoint.*PLUGIN_AMBIENT_ENDPOINTS/) });
    expect(gcp.calls.length).toBe(before);
    setting('PLUGIN_AMBIENT_ENDPOINTS', 'elsewhere.example:443');
    await expect(gcpOpen({ credentials: path.join(credDir, 'sa.json') })).rejects.toThrow(/PLUGIN_AMBIENT_ENDPOINTS/);
    expect(gcp.calls.length).toBe(before);
    // The service-account JSON given in the config is the writer's own: any endpoint.
    setting('PLUGIN_AMBIENT_ENDPOINTS', undefined);
    expect((await gcpOpen({ credentials: gcp.credentialsJson })).describe().backend).toBe('gcpckms');
  });

  it('outside the list, through a symlink out of an allowed directory, missing: one message that does not say whether the path exists', async () => {
    setting('PLUGIN_CREDENTIAL_FILES', `${credDir}/`);
    for (const p of [path.join(outsideDir, 'sa.json'), path.join(credDir, 'escape.json'), path.join(credDir, 'missing.json'), '/etc/passwd', 'relative.json']) {
      const err = await gcpOpen({ credentials: p }).catch((e) => e);
      expect(err.message, p).toMatch(ONE_MESSAGE);
    }
  });

  it("devices, FIFOs and the process's own descriptors are refused without blocking, even when the list allows them", async () => {
    setting('PLUGIN_CREDENTIAL_FILES', `/dev/:/proc/:${credDir}/`);
    for (const p of ['/dev/zero', '/dev/stdin', '/proc/self/fd/1', '/proc/self/fd/0', path.join(credDir, 'fifo.json'), credDir]) {
      const err = await gcpOpen({ credentials: p }).catch((e) => e);
      expect(err.message, p).toMatch(ONE_MESSAGE);
    }
  }, 15_000);

  it('AWS without access_key/secret_key uses the SDK chain only when PLUGIN_AMBIENT_CREDENTIALS=true', async () => {
    const id = aws.createKey('ECC_NIST_P256').id;
    const cfg = { kms_key: id, endpoint: aws.url, region: aws.region };
    const open = async () => {
      const p = parseKeyConfig('awskms', 'a', cfg);
      const k = await AwsKmsKey.open('a', p.fields, p.common);
      opened.push(k);
      return k;
    };
    setting('PLUGIN_AMBIENT_CREDENTIALS', undefined);
    await expect(open()).rejects.toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(/awskms key "a": no access_key\/secret_key configured.*PLUGIN_AMBIENT_CREDENTIALS/),
    });
    const r = await write(backend(), 'managed-keys/awskms/a', cfg);
    expect(r).toMatchObject({ status: 400, message: expect.stringMatching(/PLUGIN_AMBIENT_CREDENTIALS/) });
    setting('PLUGIN_AMBIENT_CREDENTIALS', 'false');
    await expect(open()).rejects.toThrow(/PLUGIN_AMBIENT_CREDENTIALS/);
    // Allowed: the SDK's environment credentials (what an instance role would provide),
    // but never to an endpoint the config names unless the operator lists that endpoint.
    setting('PLUGIN_AMBIENT_CREDENTIALS', 'true');
    process.env.AWS_ACCESS_KEY_ID = aws.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = aws.secretAccessKey;
    try {
      await expect(open()).rejects.toThrow(/ambient credentials are not sent to a configured endpoint .*PLUGIN_AMBIENT_ENDPOINTS/);
      setting('PLUGIN_AMBIENT_ENDPOINTS', 'https://elsewhere.example');
      await expect(open()).rejects.toThrow(/PLUGIN_AMBIENT_ENDPOINTS/);
      setting('PLUGIN_AMBIENT_ENDPOINTS', `https://elsewhere.example, ${aws.url}`);
      const k = await open();
      expect(k.describe().spec).toEqual({ kind: 'ec', curve: 'P-256' });
    } finally {
      setting('PLUGIN_AMBIENT_ENDPOINTS', undefined);
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it('Google Cloud without credentials uses application default credentials only when PLUGIN_AMBIENT_CREDENTIALS=true', async () => {
    setting('PLUGIN_AMBIENT_CREDENTIALS', undefined);
    await expect(gcpOpen({})).rejects.toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(/gcpckms key "g": no credentials configured.*PLUGIN_AMBIENT_CREDENTIALS/),
    });
    // Allowed: ADC is consulted (here it points at nothing, so the SDK's own error comes back).
    setting('PLUGIN_AMBIENT_CREDENTIALS', 'true');
    process.env.GOOGLE_APPLICATION_CREDENTIALS = path.join(dir, 'no-adc.json');
    try {
      const err = await gcpOpen({}).catch((e) => e);
      expect(err.message).toMatch(/gcpckms key "g"/);
      expect(err.message).not.toMatch(/PLUGIN_AMBIENT_CREDENTIALS/);
    } finally {
      delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    }
  });
});
