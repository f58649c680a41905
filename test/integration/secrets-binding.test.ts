// The secrets role's gRPC binding in-process, with this test as Vault: metadata mode,
// SystemView TTL units, bounded request data, and calls Vault cancels without a deadline.
import { afterEach, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { generateIdentity, type PluginIdentity } from '../../src/goplugin/autotls';
import { pem } from '../../src/goplugin/der';
import { serve } from '../../src/goplugin/server';
import { serviceDef } from '../../src/goplugin/protos';
import { clientCtor } from '../support/grpc-clients';
import { createLogger } from '../../src/goplugin/log';
import type { LaunchEnv } from '../../src/goplugin/env';
import { backendVersions, cancellation, jsonNestedDeeperThan, ttlSeconds } from '../../src/secrets/plugin';
import { EventEmitter } from 'node:events';
import { MemoryStorage } from '../../src/storage/storage';
import { registerEngine } from '../../src/secrets/engines';
import { leaseEngine, seen } from '../support/lease-engine/engine';

const log = createLogger({ level: 'error', sink: () => undefined });
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface HostOpts {
  /** Storage Get never answers (a stuck Vault); each such call is recorded. */
  stuckGet?: boolean;
  /** SystemView TTLs as Vault sends them: Go durations in nanoseconds. */
  maxLeaseTtlNs?: string;
  defaultLeaseTtlNs?: string;
}

/** Start the secrets role as Vault would (AutoMTLS, or plain gRPC in metadata mode) and play Vault's side. */
async function vault(metadataMode: boolean, protocol: { version: 4 | 5; multiplexId?: string } = { version: 4 }) {
  const host: PluginIdentity = await generateIdentity();
  const env: LaunchEnv = {
    role: 'backend',
    clientVersions: [protocol.version],
    minPort: 20000,
    maxPort: 30000,
    clientCertPem: metadataMode ? undefined : host.certPem,
    metadataMode,
  };
  let line = '';
  const plugin = await serve({
    env,
    log,
    versions: backendVersions(),
    writeHandshake: (l) => {
      line = l;
    },
    exit: () => undefined,
    parentPollMs: 60_000,
  });
  cleanups.push(() => plugin.shutdown('test end'));
  const cert = line.split('|')[5];
  const creds = cert
    ? grpc.credentials.createSsl(Buffer.from(pem(Buffer.from(cert, 'base64'), 'CERTIFICATE')), Buffer.from(host.keyPem), Buffer.from(host.certPem))
    : grpc.credentials.createInsecure();
  const opts = { 'grpc.ssl_target_name_override': 'localhost' };
  const mk = (svc: string): grpc.Client => {
    const C = clientCtor(svc);
    const c = new C(`127.0.0.1:${plugin.port}`, creds, opts);
    cleanups.push(() => grpc.Client.prototype.close.call(c));
    return c;
  };
  const backend = mk('pb.Backend');
  const stream = (mk('plugin.GRPCBroker') as Any).StartStream() as grpc.ClientDuplexStream<unknown, unknown>;
  stream.on('data', () => undefined);
  stream.on('error', () => undefined);
  cleanups.push(() => stream.end());

  const storageCalls: string[] = [];
  const stuck: Array<grpc.ServerUnaryCall<unknown, unknown>> = [];
  /** Serve Storage + SystemView on a broker listener as Vault does, announce it, and return its id. */
  const offer = async (store: MemoryStorage, o: HostOpts = {}): Promise<number> => {
    const s = new grpc.Server();
    const rec = (name: string, fn: (c: Any, cb: Any) => void) => (c: Any, cb: Any) => {
      storageCalls.push(name);
      fn(c, cb);
    };
    s.addService(serviceDef('pb.Storage'), {
      Get: rec('Get', (c, cb) => {
        if (o.stuckGet) {
          stuck.push(c);
          return;
        }
        void store.get(c.request.key).then((v) => cb(null, v ? { entry: { key: c.request.key, value: v } } : {}));
      }),
      Put: rec('Put', (c, cb) => void store.put(c.request.entry.key, c.request.entry.value).then(() => cb(null, {}))),
      Delete: rec('Delete', (c, cb) => void store.delete(c.request.key).then(() => cb(null, {}))),
      List: rec('List', (c, cb) => void store.list(c.request.prefix).then((keys) => cb(null, { keys }))),
    });
    s.addService(serviceDef('pb.SystemView'), {
      DefaultLeaseTTL: (_c: Any, cb: Any) => cb(null, { TTL: o.defaultLeaseTtlNs ?? o.maxLeaseTtlNs ?? '0' }),
      MaxLeaseTTL: (_c: Any, cb: Any) => cb(null, { TTL: o.maxLeaseTtlNs ?? '0' }),
      Tainted: (_c: Any, cb: Any) => cb(null, { tainted: false }),
      LocalMount: (_c: Any, cb: Any) => cb(null, { local: false }),
    });
    const serverCreds = metadataMode
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(host.keyPem), cert_chain: Buffer.from(host.certPem) }], false);
    const port = await new Promise<number>((res, rej) => s.bindAsync('127.0.0.1:0', serverCreds, (e, p) => (e ? rej(e) : res(p))));
    cleanups.push(() => s.forceShutdown());
    const id = 100 + Math.floor(Math.random() * 1000);
    stream.write({ service_id: id, network: 'tcp', address: `127.0.0.1:${port}` });
    return id;
  };
  const call = <T = Any>(method: string, req: unknown, callOpts: grpc.CallOptions = { deadline: Date.now() + 10_000 }): Promise<T> & { cancel(): void } => {
    let handle!: grpc.ClientUnaryCall;
    const md = new grpc.Metadata();
    if (protocol.multiplexId !== undefined) md.set('multiplex_id', protocol.multiplexId);
    const p = new Promise<T>((res, rej) => {
      handle = (backend as Any)[method](req, md, callOpts, (e: Error | null, r: T) => (e ? rej(e) : res(r)));
    });
    return Object.assign(p, { cancel: () => handle.cancel() });
  };
  const request = (operation: string, path: string, data: unknown, callOpts?: grpc.CallOptions) =>
    call('HandleRequest', { request: { operation, path, data: typeof data === 'string' ? data : JSON.stringify(data) } }, callOpts);
  return { call, request, offer, storageCalls, stuck };
}

const body = (r: Any) => (r.response?.data ? JSON.parse(r.response.data) : undefined);

describe('metadata mode', () => {
  it('answers Setup, Type, SpecialPaths and Cleanup only: no broker dial, no storage, every other call refused', async () => {
    const v = await vault(true);
    const store = new MemoryStorage();
    const id = await v.offer(store);
    expect(await v.call('Setup', { broker_id: id, Config: {}, backendUUID: 'u' })).toEqual({ err: '' });
    expect((await v.call('Setup', { broker_id: id, Config: { engine: 'kv' }, backendUUID: 'u' })).err).toMatch(/unknown engine "kv"/);
    expect(await v.call('Type', {})).toEqual({ type: 1 });
    expect((await v.call('SpecialPaths', {})).paths).toMatchObject({ unauthenticated: [], seal_wrap_storage: ['managed-keys/', 'policy/'] });
    for (const [m, req] of [
      ['HandleRequest', { request: { operation: 'update', path: 'keys/k', data: '{}' } }],
      ['HandleExistenceCheck', { request: { operation: 'update', path: 'keys/k' } }],
      ['InvalidateKey', { key: 'policy/k' }],
      ['Initialize', {}],
    ] as const) {
      await expect(v.call(m, req), m).rejects.toMatchObject({
        code: grpc.status.FAILED_PRECONDITION,
        details: expect.stringMatching(/not served in metadata mode/),
      });
    }
    expect(await v.call('Cleanup', {})).toEqual({});
    expect(v.storageCalls).toEqual([]);
    expect(store.data.size).toBe(0);
  });
});

describe('special paths', () => {
  // Vault learns them from SpecialPaths after Setup (in metadata mode in Vault 1.8): a PKI
  // mount must let `curl` read its CA and CRL without a token, a transit mount nothing.
  for (const metadataMode of [true, false]) {
    it(`are the mount's engine's (${metadataMode ? 'metadata mode' : 'in service'})`, async () => {
      const v = await vault(metadataMode);
      const store = new MemoryStorage();
      expect(await v.call('Setup', { broker_id: await v.offer(store), Config: { engine: 'pki' }, backendUUID: 'u' })).toEqual({ err: '' });
      const pki = (await v.call('SpecialPaths', {})).paths;
      expect(pki.unauthenticated).toEqual(expect.arrayContaining(['ca/pem', 'ca', 'ca_chain', 'crl', 'crl/pem', 'cert/*']));
      expect(pki.seal_wrap_storage).toContain('pki/ca');
      // The OCSP responder: open to all, and its POST body binary (current Vault passes it as http_raw_body).
      expect(pki.unauthenticated).toEqual(expect.arrayContaining(['ocsp', 'ocsp/*']));
      expect(pki.binary).toEqual(['ocsp']);
      expect(await v.call('Setup', { broker_id: await v.offer(store), Config: {}, backendUUID: 'u' })).toEqual({ err: '' });
      expect((await v.call('SpecialPaths', {})).paths.unauthenticated).toEqual([]);
    });
  }
});

describe("the mount's SystemView", () => {
  it('reads Go durations (nanoseconds) as seconds, without precision loss', () => {
    expect(ttlSeconds('3600000000000')).toBe(3600);
    expect(ttlSeconds('9223372036854775807')).toBe(9223372036);
    expect(ttlSeconds('2764800000000000')).toBe(32 * 86400); // Vault's default max lease TTL
    expect(ttlSeconds('0')).toBe(0);
    expect(ttlSeconds(undefined)).toBe(0);
    expect(ttlSeconds('nonsense')).toBe(0);
  });

  it("caps a PKI certificate at the mount's max lease TTL (vault secrets tune -max-lease-ttl=1h)", async () => {
    const v = await vault(false);
    const id = await v.offer(new MemoryStorage(), { maxLeaseTtlNs: String(3600n * 1_000_000_000n) });
    expect(await v.call('Setup', { broker_id: id, Config: { engine: 'pki' }, backendUUID: 'u' })).toEqual({ err: '' });
    // As Vault: the root too is capped at the mount's max lease TTL, with its warning.
    const root = await v.request('update', 'root/generate/internal', { common_name: 'Root', ttl: '87600h' });
    expect(root.err ?? null).toBeNull();
    const rootLife = (new Date(new X509Certificate(body(root).certificate).validTo).getTime() - Date.now()) / 1000;
    expect(rootLife).toBeLessThanOrEqual(3600 + 60);
    expect(root.response.warnings.join(' ')).toMatch(/TTL "87600h0m0s" is longer than permitted maxTTL "1h0m0s", so maxTTL is being used/);
    // A leaf capped at 1h would end after that root: cut to it (as Vault would need too).
    await v.request('update', `issuer/${body(root).issuer_id}`, { leaf_not_after_behavior: 'truncate' });
    await v.request('update', 'roles/web', { allowed_domains: 'example.com', allow_subdomains: true });
    const r = await v.request('update', 'issue/web', { common_name: 'www.example.com', ttl: '5h' });
    const issued = body(r);
    expect(issued?.certificate, JSON.stringify(r)).toBeDefined();
    const lifetime = (new Date(new X509Certificate(issued.certificate).validTo).getTime() - Date.now()) / 1000;
    expect(lifetime).toBeLessThanOrEqual(3600 + 60);
    expect(lifetime).toBeGreaterThan(3600 - 120);
    expect(r.response.warnings.join(' ')).toMatch(/TTL "5h0m0s" is longer than permitted maxTTL "1h0m0s", so maxTTL is being used/);
  });

  it("gives a PKI certificate the mount's default lease TTL when neither the request nor the role sets one (vault secrets tune -default-lease-ttl=10h)", async () => {
    const v = await vault(false);
    const hourNs = 3600n * 1_000_000_000n;
    const id = await v.offer(new MemoryStorage(), { defaultLeaseTtlNs: String(10n * hourNs), maxLeaseTtlNs: String(100n * hourNs) });
    expect(await v.call('Setup', { broker_id: id, Config: { engine: 'pki' }, backendUUID: 'u' })).toEqual({ err: '' });
    expect((await v.request('update', 'root/generate/internal', { common_name: 'Root', ttl: '87600h' })).err ?? null).toBeNull();
    await v.request('update', 'roles/web', { allowed_domains: 'example.com', allow_subdomains: true });
    const lifetime = (r: Any) => (new Date(new X509Certificate(body(r).certificate).validTo).getTime() - Date.now()) / 3600_000;
    const plain = await v.request('update', 'issue/web', { common_name: 'www.example.com' });
    expect(lifetime(plain), JSON.stringify(plain)).toBeCloseTo(10, 1);
    expect(plain.response.warnings ?? []).toEqual([]);
    // A role ttl, then a request ttl, win over the mount's default, as in Vault.
    await v.request('update', 'roles/web', { allowed_domains: 'example.com', allow_subdomains: true, ttl: '3h' });
    expect(lifetime(await v.request('update', 'issue/web', { common_name: 'www.example.com' }))).toBeCloseTo(3, 1);
    expect(lifetime(await v.request('update', 'issue/web', { common_name: 'www.example.com', ttl: '2h' }))).toBeCloseTo(2, 1);
    // The mount's default above the role's max_ttl is cut to it, without a warning (as Vault 1.8 was seen to).
    await v.request('update', 'roles/short', { allowed_domains: 'example.com', allow_subdomains: true, max_ttl: '1h' });
    const capped = await v.request('update', 'issue/short', { common_name: 'www.example.com' });
    expect(lifetime(capped)).toBeCloseTo(1, 1);
    expect(capped.response.warnings ?? []).toEqual([]);
  });
});

describe('request data', () => {
  it('nested 5,000 levels deep is a quick 400, not a call left hanging', async () => {
    const v = await vault(false);
    const id = await v.offer(new MemoryStorage());
    await v.call('Setup', { broker_id: id, Config: {}, backendUUID: 'u' });
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const t0 = Date.now();
    const r = await v.request('create', 'encrypt/k', `{"batch_input":[{"plaintext":"aGk=","reference":${deep}}]}`, { deadline: Date.now() + 5000 });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(body(r)).toEqual({ error: 'request data is nested deeper than 64 levels' });
    // Nesting within the bound still works, reference echoed back.
    const ok = '['.repeat(50) + '"x"' + ']'.repeat(50);
    const r2 = await v.request('create', 'encrypt/k', `{"batch_input":[{"plaintext":"aGk=","reference":${ok}}]}`);
    expect(JSON.stringify(body(r2)?.batch_results?.[0]?.reference), JSON.stringify(r2)).toBe(ok);
  });

  it('depth is counted outside strings only', () => {
    expect(jsonNestedDeeperThan('{"a":"[[[[[[[["}', 2)).toBe(false);
    expect(jsonNestedDeeperThan('{"a":"\\"[[[","b":[[1]]}', 2)).toBe(true);
    expect(jsonNestedDeeperThan('[[1],[2],[3]]', 2)).toBe(false);
  });
});

describe('calls Vault cancels (Vault 1.8 sets no deadline)', () => {
  it('a cancelled request cancels its storage call at once instead of waiting out the storage deadline', async () => {
    const v = await vault(false);
    const id = await v.offer(new MemoryStorage(), { stuckGet: true });
    await v.call('Setup', { broker_id: id, Config: {}, backendUUID: 'u' });
    const pending = v.request('read', 'keys/k', {}, {}); // no deadline, as Vault 1.8 calls
    pending.catch(() => undefined);
    for (let i = 0; i < 100 && !v.stuck.length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(v.stuck).toHaveLength(1);
    const storageCall = v.stuck[0];
    let storageCancelled = false;
    storageCall.on('cancelled', () => {
      storageCancelled = true;
    });
    pending.cancel();
    await expect(pending).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    for (let i = 0; i < 100 && !storageCancelled; i++) await new Promise((r) => setTimeout(r, 20));
    expect(storageCancelled || storageCall.cancelled).toBe(true);
  });
});

describe('cancellation of one call', () => {
  // As grpc-js's ServerUnaryCall: the cancelled flag is set, then 'cancelled' emitted.
  const fakeCall = () => {
    const call = Object.assign(new EventEmitter(), { cancelled: false });
    return Object.assign(call, {
      cancel: () => {
        call.cancelled = true;
        call.emit('cancelled');
      },
    });
  };
  const asCall = (c: ReturnType<typeof fakeCall>) => c as unknown as grpc.ServerUnaryCall<unknown, unknown>;
  it('aborts when Vault cancels before the reply', () => {
    const call = fakeCall();
    const c = cancellation(asCall(call));
    call.cancel();
    expect(c.signal.aborted).toBe(true);
    c.release();
    expect(c.signal.aborted).toBe(true); // and stays so after the reply
  });
  it('a waiting storage call hears the cancel at once; the gRPC call is listened to only while one waits', () => {
    const call = fakeCall();
    const c = cancellation(asCall(call));
    expect(call.listenerCount('cancelled')).toBe(0);
    let heard = 0;
    const gone = () => {
      heard += 100;
    };
    c.signal.addEventListener(
      'abort',
      () => {
        heard++;
      },
      { once: true },
    );
    c.signal.addEventListener('abort', gone);
    c.signal.removeEventListener('abort', gone);
    expect(call.listenerCount('cancelled')).toBe(1);
    call.cancel();
    expect(heard).toBe(1);
    call.emit('cancelled');
    expect(heard).toBe(1);
    c.signal.addEventListener('abort', () => {
      heard++;
    }); // after the abort: never called, as an AbortSignal
    call.emit('cancelled');
    expect(heard).toBe(1);
  });
  it('stops listening once the reply is sent (grpc-js emits cancelled after every call: no abort, no listener left)', () => {
    const call = fakeCall();
    const c = cancellation(asCall(call));
    c.signal.addEventListener('abort', () => {
      throw new Error('no abort after the reply');
    });
    c.release();
    call.cancel();
    expect(c.signal.aborted).toBe(false);
    expect(call.listenerCount('cancelled')).toBe(0);
  });
});

describe('an engine added as one folder and one registry line', () => {
  registerEngine(leaseEngine); // the one line; the folder is test/support/lease-engine/
  const S = 1_000_000_000n;
  const leaseCall = (v: Awaited<ReturnType<typeof vault>>, operation: 'renew' | 'revoke', secret: Any, data = '{}') =>
    v.call('HandleRequest', { request: { operation, path: 'creds/app', data, secret } });

  it('is mounted by name, with its special paths, and its responses carry leased secrets', async () => {
    const v = await vault(false);
    const store = new MemoryStorage();
    expect(await v.call('Setup', { broker_id: await v.offer(store), Config: { engine: 'toy-lease' }, backendUUID: 'u' })).toEqual({ err: '' });
    expect((await v.call('SpecialPaths', {})).paths).toMatchObject({
      root: [],
      unauthenticated: ['public'],
      local_storage: [],
      seal_wrap_storage: ['managed-keys/', 'tokens/'],
    });
    const issued = await v.request('read', 'creds/app', {});
    expect(body(issued).token).toMatch(/^t\.app-/);
    const secret = issued.response.secret;
    expect(secret.lease_options).toMatchObject({ TTL: String(60n * S), renewable: true });
    const internal = JSON.parse(secret.internal_data);
    expect(internal).toEqual({ id: expect.stringMatching(/^app-/), secret_type: 'toy_token' });
    expect(store.data.has(`tokens/${internal.id}`)).toBe(true);
    // A response without a secret carries none.
    expect((await v.request('read', 'keys', {})).response?.secret ?? null).toBeNull();
  });

  it("routes Vault's renew and revoke to the handlers of the secret's declared type", async () => {
    const v = await vault(false);
    const store = new MemoryStorage();
    await v.call('Setup', { broker_id: await v.offer(store), Config: { engine: 'toy-lease' }, backendUUID: 'u' });
    const issued = await v.request('read', 'creds/app', {});
    const secret = { ...issued.response.secret, lease_id: 'toy/creds/app/L1' };
    const id = JSON.parse(secret.internal_data).id;

    // Renew as Vault sends it: the kept secret, the client's increment in nanoseconds.
    const renewed = await leaseCall(v, 'renew', { ...secret, lease_options: { ...secret.lease_options, increment: String(120n * S) } }, issued.response.data);
    expect(renewed.err ?? null, JSON.stringify(renewed)).toBeNull();
    expect(renewed.response.secret.lease_options).toMatchObject({ TTL: String(120n * S), renewable: true });
    expect(JSON.parse(renewed.response.secret.internal_data)).toEqual({ id, secret_type: 'toy_token' });
    expect(
      (await leaseCall(v, 'renew', { ...secret, lease_options: { ...secret.lease_options, increment: String(3600n * S) } })).response.secret.lease_options.TTL,
    ).toBe(String(300n * S));

    // Revoke reaches the type's handler, which deletes the token; a renewal after it is refused.
    expect((await leaseCall(v, 'revoke', secret)).err ?? null).toBeNull();
    expect(store.data.has(`tokens/${id}`)).toBe(false);
    expect(body(await leaseCall(v, 'renew', secret))).toEqual({ error: 'token was revoked' });

    // A type without a renew handler: renewing is Vault's unsupported operation; revoking works.
    const once = (await v.request('read', 'once', {})).response.secret;
    expect(once.lease_options.renewable).toBe(false);
    expect((await leaseCall(v, 'renew', once)).err).toMatchObject({ err_type: 5, err_msg: 'unsupported operation' });
    expect((await leaseCall(v, 'revoke', once)).err ?? null).toBeNull();

    // A secret this engine does not declare, or none at all, is refused, as Vault's framework refuses it.
    const foreign = { ...secret, internal_data: JSON.stringify({ secret_type: 'database_creds' }) };
    expect(body(await leaseCall(v, 'renew', foreign))).toEqual({ error: 'secret is unsupported by this backend' });
    expect(body(await leaseCall(v, 'revoke', { ...secret, internal_data: '{}' }))).toEqual({ error: 'secret is unsupported by this backend' });
    expect(body(await leaseCall(v, 'revoke', { ...secret, internal_data: '{nope' }))).toEqual({ error: 'secret internal data is not JSON' });
    expect((await leaseCall(v, 'renew', null)).err).toMatchObject({ err_msg: expect.stringMatching(/request has no secret/) });
  });

  it("runs a path's existence check on the request's body and captures, as Vault's SDK does", async () => {
    const v = await vault(false);
    await v.call('Setup', { broker_id: await v.offer(new MemoryStorage()), Config: { engine: 'toy-lease' }, backendUUID: 'u' });
    const check = (data: string | undefined, path = 'things/a') =>
      v.call('HandleExistenceCheck', { request: { operation: 'update', path, data, display_name: 'token-alice' } });
    seen.existence.length = 0;
    expect(await check(JSON.stringify({ value: 'present' }))).toMatchObject({ check_found: true, exists: true });
    expect(await check(JSON.stringify({ value: 'absent' }))).toMatchObject({ check_found: true, exists: false });
    expect(seen.existence).toEqual([
      { name: 'a', value: 'present', displayName: 'token-alice' },
      { name: 'a', value: 'absent', displayName: 'token-alice' },
    ]);
    // A body that does not parse, or a field the check reads that does not validate, is no
    // existence answer: the request itself (sent on as an update) answers the 400. A field the
    // check does not read is not looked at (the body is read on demand, as Vault's FieldData).
    expect(await check('{nope')).toMatchObject({ check_found: false, exists: false });
    expect(await check(JSON.stringify({ value: { not: 'a string' } }))).toMatchObject({ check_found: false, exists: false });
    expect(seen.existence).toHaveLength(2);
    expect(await check(JSON.stringify({ n: 'seven', value: 'present' }))).toMatchObject({ check_found: true, exists: true });
    expect(body(await v.request('update', 'things/a', { n: 'seven' })).error).toMatch(/n/);
    // A path without a check answers "not found" without looking at the body.
    expect(await check(JSON.stringify({ value: 'present' }), 'once')).toMatchObject({ check_found: false, exists: false });
  });

  it("gets Vault's periodic function, invalidations and cleanup", async () => {
    const v = await vault(false);
    await v.call('Setup', { broker_id: await v.offer(new MemoryStorage()), Config: { engine: 'toy-lease' }, backendUUID: 'u' });
    const before = { ...seen, invalidated: [...seen.invalidated] };
    await v.request('rollback', '', {});
    expect(seen.periodic).toBe(before.periodic + 1);
    await v.call('InvalidateKey', { key: 'tokens/x' });
    expect(seen.invalidated).toEqual([...before.invalidated, 'tokens/x']);
    await v.call('Cleanup', {});
    expect(seen.cleanups).toBe(before.cleanups + 1);
  });
});

describe('the multiplex id (one rule for both roles, goplugin/multiplex.ts)', () => {
  for (const metadataMode of [false, true]) {
    it(`a multiplexed call naming no mount is refused, as Vault's own servers refuse it${metadataMode ? ' (metadata mode)' : ''}`, async () => {
      const v = await vault(metadataMode, { version: 5 });
      for (const [m, req] of [
        ['Setup', { broker_id: await v.offer(new MemoryStorage()), Config: {}, backendUUID: 'u' }],
        ['SpecialPaths', {}],
      ] as const) {
        await expect(v.call(m, req), m).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/no multiplex_id/) });
      }
      expect(v.storageCalls).toEqual([]);
    });
  }

  it('a multiplexed mount is found by its id', async () => {
    const v = await vault(false, { version: 5, multiplexId: 'mount-a' });
    expect(await v.call('Setup', { broker_id: await v.offer(new MemoryStorage()), Config: { engine: 'pki' }, backendUUID: 'u' })).toEqual({ err: '' });
    expect((await v.call('SpecialPaths', {})).paths.unauthenticated).toContain('ca/pem');
    await expect(vault(false, { version: 5, multiplexId: '' }).then((w) => w.call('SpecialPaths', {}))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/empty multiplex_id/),
    });
  });

  it('version 4 (Vault 1.8, never multiplexed) serves its one mount, with no id (every other test here) or any id', async () => {
    const v = await vault(false, { version: 4, multiplexId: 'ignored' });
    expect(await v.call('Setup', { broker_id: await v.offer(new MemoryStorage()), Config: {}, backendUUID: 'u' })).toEqual({ err: '' });
    expect(body(await v.request('update', 'keys/k', {}))).toMatchObject({ name: 'k', type: 'aes256-gcm96' });
  });
});
