// The wrapping-token TLS mode (Vault before 1.12): the plugin unwraps VAULT_UNWRAP_TOKEN
// at a fake Vault API (HTTP and HTTPS), serves mTLS with the unwrapped certificate, and
// dials the host's broker with it. Certificates are shaped as Vault makes them: one
// self-signed P-521 certificate, CN and SAN a random UUID, used by both ends.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { serve } from '../../src/goplugin/server';
import { methodDef, serviceDef } from '../../src/goplugin/protos';
import { clientCtor } from '../support/grpc-clients';
import { createLogger } from '../../src/goplugin/log';
import { readLaunchEnv, type LaunchEnv } from '../../src/goplugin/env';
import { unwrapLegacyTls, vaultAddrFromToken, type VaultApiSettings } from '../../src/goplugin/unwrap';
import { makeServerCerts, type TestPki } from '../support/certs';
import type { RuntimeContext } from '../../src/goplugin/server';

const log = createLogger({ level: 'error', sink: () => undefined });
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface VaultCert {
  name: string;
  certPem: string;
  keyPem: string;
  certDerB64: string;
  keySec1B64: string;
}

/** A certificate as Vault's plugin runner makes it for the wrapping-token mode. */
function vaultPluginCert(): VaultCert {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-legacy-'));
  try {
    const name = randomUUID();
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-521',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=DNS:${name}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement',
        '-addext',
        'extendedKeyUsage=clientAuth,serverAuth',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
      ],
      { cwd: d, stdio: 'pipe' },
    );
    const certPem = fs.readFileSync(path.join(d, 'c.pem'), 'utf8');
    const keyPem = fs.readFileSync(path.join(d, 'k.pem'), 'utf8');
    const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const sec1 = createPrivateKey(keyPem).export({ type: 'sec1', format: 'der' });
    return { name, certPem, keyPem, certDerB64: der.toString('base64'), keySec1B64: sec1.toString('base64') };
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

/** A JWT-shaped wrapping token (Vault signs it; the plugin reads the addr claim unverified, as Vault's helper does). */
function wrappingToken(addr: string): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'ES512', typ: 'JWT' })}.${b({ addr, jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 60 })}.c2lnbmF0dXJl`;
}

interface FakeVault {
  addr: string;
  token: string;
  calls: number;
  tokensSeen: string[];
}

/**
 * Vault's sys/wrapping/unwrap for one wrapping token (made for the fake's own address):
 * answers it once with the certificate, then 400 as Vault does for a used token.
 * `hang` never answers; `status` answers every call with that status.
 */
async function fakeVault(cert: VaultCert, opts: { tls?: https.ServerOptions; hang?: boolean; status?: number } = {}): Promise<FakeVault> {
  const state: FakeVault = { addr: '', token: '', calls: 0, tokensSeen: [] };
  const handler: http.RequestListener = (req, res) => {
    state.calls++;
    state.tokensSeen.push(String(req.headers['x-vault-token'] ?? ''));
    if (opts.hang) return;
    res.setHeader('content-type', 'application/json');
    if (req.method !== 'PUT' || req.url !== '/v1/sys/wrapping/unwrap' || req.headers['x-vault-token'] !== state.token || state.calls > 1 || opts.status) {
      res.statusCode = opts.status ?? 400;
      res.end(JSON.stringify({ errors: ['wrapping token is not valid or does not exist'] }));
      return;
    }
    res.end(
      JSON.stringify({
        request_id: randomUUID(),
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        data: { ServerCert: cert.certDerB64, ServerKey: cert.keySec1B64 },
        wrap_info: null,
        warnings: null,
        auth: null,
      }),
    );
  };
  const server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  state.addr = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  state.token = wrappingToken(state.addr);
  return state;
}

function legacyEnv(token: string, vaultApi: VaultApiSettings = {}): LaunchEnv {
  return { role: 'backend', clientVersions: [4], minPort: 20000, maxPort: 30000, unwrapToken: token, vaultApi, metadataMode: false };
}

async function startLegacy(token: string, vaultApi: VaultApiSettings = {}) {
  let ctx!: RuntimeContext;
  let line = '';
  const plugin = await serve({
    env: legacyEnv(token, vaultApi),
    log,
    versions: {
      4: (_s, c) => {
        ctx = c;
      },
    },
    writeHandshake: (l) => {
      line = l;
    },
    exit: () => undefined,
    parentPollMs: 60_000,
  });
  cleanups.push(() => plugin.shutdown('test end'));
  return { plugin, ctx, line };
}

/** A gRPC client presenting `id`, trusting `ca`, checking the server name Vault's client checks. */
function client(svc: string, addr: string, ca: string, id: { certPem: string; keyPem: string }, name: string): grpc.Client {
  const C = clientCtor(svc);
  const c = new C(addr, grpc.credentials.createSsl(Buffer.from(ca), Buffer.from(id.keyPem), Buffer.from(id.certPem)), {
    'grpc.ssl_target_name_override': name,
    'grpc.default_authority': name,
  });
  cleanups.push(() => grpc.Client.prototype.close.call(c));
  return c;
}
const unary = <T>(c: grpc.Client, m: string, req: unknown) =>
  new Promise<T>((res, rej) =>
    (c as unknown as Record<string, (...args: unknown[]) => unknown>)[m](req, { deadline: Date.now() + 5000 }, (e: Error | null, r: T) =>
      e ? rej(e) : res(r),
    ),
  );

let vaultCert: VaultCert;
let stranger: VaultCert;
let httpsPki: TestPki;
let tmp: string;
beforeAll(() => {
  vaultCert = vaultPluginCert();
  stranger = vaultPluginCert();
  httpsPki = makeServerCerts({ dns: ['localhost'], ips: ['127.0.0.1'] });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-legacy-files-'));
  for (const [f, v] of Object.entries({ 'ca.pem': httpsPki.caPem, 'client.pem': httpsPki.clientCertPem, 'client.key': httpsPki.clientKeyPem }))
    fs.writeFileSync(path.join(tmp, f), v);
  fs.mkdirSync(path.join(tmp, 'capath'));
  fs.writeFileSync(path.join(tmp, 'capath', 'a.pem'), httpsPki.otherCaPem);
  fs.writeFileSync(path.join(tmp, 'capath', 'b.pem'), httpsPki.caPem);
  fs.writeFileSync(path.join(tmp, 'capath', 'notes.txt'), 'not a certificate');
  return () => fs.rmSync(tmp, { recursive: true, force: true });
});

const httpsTls = (requestCert = false): https.ServerOptions => ({
  cert: httpsPki.certPem,
  key: httpsPki.keyPem,
  ca: httpsPki.caPem,
  requestCert,
  rejectUnauthorized: requestCert,
});

describe('wrapping-token TLS mode (VAULT_UNWRAP_TOKEN)', () => {
  it('unwraps once over HTTP, serves mTLS with the unwrapped certificate, refuses other clients', async () => {
    const vault = await fakeVault(vaultCert);
    const { plugin, line } = await startLegacy(vault.token);
    expect(vault.calls).toBe(1);
    expect(vault.tokensSeen).toEqual([vault.token]);
    // No certificate in the handshake: Vault already holds it.
    expect(line).toBe(`1|4|tcp|127.0.0.1:${plugin.port}|grpc`);
    const addr = `127.0.0.1:${plugin.port}`;
    // Vault's client: the same certificate, trusting it, expecting its CN as the server name.
    const h = client('grpc.health.v1.Health', addr, vaultCert.certPem, vaultCert, vaultCert.name);
    expect(await unary(h, 'Check', { service: 'plugin' })).toEqual({ status: 'SERVING' });
    // A client whose certificate Vault did not make is refused.
    const bad = client('grpc.health.v1.Health', addr, vaultCert.certPem, stranger, vaultCert.name);
    await expect(unary(bad, 'Check', { service: 'plugin' })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it("dials the host's broker listeners with the unwrapped certificate, checking theirs", async () => {
    const vault = await fakeVault(vaultCert);
    const { plugin, ctx } = await startLegacy(vault.token);
    // Vault's broker listener: presents the same certificate and requires the plugin's.
    const listen = async (id: VaultCert): Promise<number> => {
      const s = new grpc.Server();
      s.addService(serviceDef('grpc.health.v1.Health'), {
        Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }),
        Watch: () => undefined,
      });
      const port = await new Promise<number>((res, rej) =>
        s.bindAsync(
          '127.0.0.1:0',
          grpc.ServerCredentials.createSsl(
            Buffer.from(vaultCert.certPem),
            [{ private_key: Buffer.from(id.keyPem), cert_chain: Buffer.from(id.certPem) }],
            true,
          ),
          (e, p) => (e ? rej(e) : res(p)),
        ),
      );
      cleanups.push(() => s.forceShutdown());
      return port;
    };
    const good = await listen(vaultCert);
    const impostor = await listen(stranger);
    const broker = client('plugin.GRPCBroker', `127.0.0.1:${plugin.port}`, vaultCert.certPem, vaultCert, vaultCert.name);
    const stream = (broker as unknown as { StartStream: () => grpc.ClientDuplexStream<unknown, unknown> }).StartStream();
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    cleanups.push(() => stream.end());
    stream.write({ service_id: 3, network: 'tcp', address: `127.0.0.1:${good}` });
    stream.write({ service_id: 4, network: 'tcp', address: `127.0.0.1:${impostor}` });
    const check = methodDef('grpc.health.v1.Health', 'Check');
    const hc = await ctx.broker.dial(3);
    cleanups.push(() => hc.close());
    expect(await hc.unary(check, { service: '' })).toEqual({ status: 'SERVING' });
    const hi = await ctx.broker.dial(4);
    cleanups.push(() => hi.close());
    await expect(hi.unary(check, { service: '' })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('reaches an HTTPS Vault with VAULT_CACERT, VAULT_CAPATH or VAULT_SKIP_VERIFY, and presents VAULT_CLIENT_CERT/KEY', async () => {
    const ca = path.join(tmp, 'ca.pem');
    for (const settings of [{ caCert: ca }, { caPath: path.join(tmp, 'capath') }, { skipVerify: true }] as VaultApiSettings[]) {
      const vault = await fakeVault(vaultCert, { tls: httpsTls() });
      const t = await unwrapLegacyTls(vault.token, settings, 5000);
      expect(t.serverName).toBe(vaultCert.name);
      expect(t.caPem).toBe(t.certPem);
    }
    // Without trust in Vault's HTTPS certificate: a clear refusal, and the token is not in it.
    const untrusted = await fakeVault(vaultCert, { tls: httpsTls() });
    const e = await unwrapLegacyTls(untrusted.token, {}, 5000).catch((x: Error) => x);
    expect(String(e)).toMatch(/cannot unwrap the TLS certificate from Vault at https:\/\/127\.0\.0\.1:\d+: .*(self-signed|unable to verify|issuer)/i);
    expect(String(e)).not.toContain(untrusted.token);
    // A listener demanding a client certificate.
    const mtls = await fakeVault(vaultCert, { tls: httpsTls(true) });
    await expect(unwrapLegacyTls(mtls.token, { caCert: ca }, 5000)).rejects.toThrow(/cannot unwrap/);
    const mtls2 = await fakeVault(vaultCert, { tls: httpsTls(true) });
    const ok = await unwrapLegacyTls(mtls2.token, { caCert: ca, clientCert: path.join(tmp, 'client.pem'), clientKey: path.join(tmp, 'client.key') }, 5000);
    expect(ok.serverName).toBe(vaultCert.name);
  });

  it('fails fast and clearly: used token, non-200, unreachable, no answer, bad addr claim — never echoing the token', async () => {
    const used = await fakeVault(vaultCert);
    await unwrapLegacyTls(used.token, {}, 5000);
    const errors: string[] = [];
    const fail = async (p: Promise<unknown>, re: RegExp) => {
      const e = await p.then(
        () => undefined,
        (x: Error) => x,
      );
      expect(e, 'should have failed').toBeInstanceOf(Error);
      expect(e!.message).toMatch(re);
      errors.push(e!.message);
    };
    await fail(unwrapLegacyTls(used.token, {}, 5000), /HTTP 400: wrapping token is not valid or does not exist/);
    const down = await fakeVault(vaultCert, { status: 503 });
    await fail(unwrapLegacyTls(down.token, {}, 5000), /HTTP 503/);
    // a port nothing listens on
    const closed = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    await fail(unwrapLegacyTls(wrappingToken(`http://127.0.0.1:${closed}`), {}, 5000), /ECONNREFUSED/);
    const hang = await fakeVault(vaultCert, { hang: true });
    const t0 = Date.now();
    await fail(unwrapLegacyTls(hang.token, {}, 300), /no answer within 0\.3 s/);
    expect(Date.now() - t0).toBeLessThan(3000);
    await fail(unwrapLegacyTls(wrappingToken('file:///etc/passwd'), {}, 5000), /not an http\(s\) URL/);
    await fail(unwrapLegacyTls(wrappingToken('http://user:pw@127.0.0.1:1'), {}, 5000), /not an http\(s\) URL/);
    await fail(unwrapLegacyTls('s.notajwt', {}, 5000), /not a JWT/);
    expect(() => vaultAddrFromToken(wrappingToken(''))).toThrow(/no addr claim/);
    for (const m of errors) for (const t of [used.token, down.token, hang.token]) expect(m).not.toContain(t);
  });

  it("reads the token and the API settings under Vault's and OpenBao's names, flags overriding variables", () => {
    const cookie = { VAULT_BACKEND_PLUGIN: '6669da05-b1c8-4f49-97d9-c8e5bed98e20' };
    const v = readLaunchEnv({ ...cookie, VAULT_UNWRAP_TOKEN: 'a.b.c', VAULT_CACERT: '/v/ca.pem', VAULT_SKIP_VERIFY: 'true' })!;
    expect(v.unwrapToken).toBe('a.b.c');
    expect(v.vaultApi).toMatchObject({ caCert: '/v/ca.pem', skipVerify: true });
    const b = readLaunchEnv({
      ...cookie,
      BAO_UNWRAP_TOKEN: 'x.y.z',
      BAO_CAPATH: '/b/cas',
      BAO_CLIENT_CERT: '/b/c',
      BAO_CLIENT_KEY: '/b/k',
      BAO_TLS_SERVER_NAME: 'vault.internal',
    })!;
    expect(b.unwrapToken).toBe('x.y.z');
    expect(b.vaultApi).toMatchObject({ caPath: '/b/cas', clientCert: '/b/c', clientKey: '/b/k', serverName: 'vault.internal' });
    const f = readLaunchEnv({ ...cookie, VAULT_UNWRAP_TOKEN: 'a.b.c', VAULT_CACERT: '/v/ca.pem' }, [
      '-ca-cert=/f/ca.pem',
      '--client-cert',
      '/f/c',
      '-client-key=/f/k',
      '-tls-skip-verify',
      '-unknown=1',
    ])!;
    expect(f.vaultApi).toEqual({ caCert: '/f/ca.pem', clientCert: '/f/c', clientKey: '/f/k', skipVerify: true });
    expect(() => readLaunchEnv({ ...cookie, VAULT_UNWRAP_TOKEN: 'a.b.c', VAULT_SKIP_VERIFY: 'maybe' })).toThrow(/VAULT_SKIP_VERIFY is not a boolean/);
    // Settings for the unwrap call are not even read in the AutoMTLS mode.
    expect(readLaunchEnv({ ...cookie, PLUGIN_CLIENT_CERT: 'x', VAULT_SKIP_VERIFY: 'maybe' })!.vaultApi).toBeUndefined();
  });

  it("the executable: a failed unwrap is one error line in Vault's log and exit 1, within the bound", async () => {
    const exe = path.resolve(__dirname, '..', '..', 'dist', 'vault-plugin-ts');
    expect(fs.existsSync(exe), 'build first: node scripts/build.mjs').toBe(true);
    const hang = await fakeVault(vaultCert, { hang: true });
    const t0 = Date.now();
    const p = spawn(exe, [], {
      env: {
        VAULT_BACKEND_PLUGIN: '6669da05-b1c8-4f49-97d9-c8e5bed98e20',
        PLUGIN_PROTOCOL_VERSIONS: '4',
        VAULT_UNWRAP_TOKEN: hang.token,
        VAULT_VERSION: '1.8.0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(out).toBe('');
    const json = err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    const errorsLogged = json.filter((r) => r['@level'] === 'error');
    expect(errorsLogged).toHaveLength(1);
    expect(errorsLogged[0].error).toMatch(/cannot unwrap the TLS certificate from Vault at http:\/\/127\.0\.0\.1:\d+: no answer within 10 s/);
    expect(err).not.toContain(hang.token);
  }, 30_000);
});
