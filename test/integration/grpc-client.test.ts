// The plugin's own unary gRPC client (src/goplugin/grpc-client.ts) against grpc-js's server
// and against our own GrpcServer, over mutual TLS, on TCP and on a unix socket (what Vault's
// broker announces on Linux): replies, error statuses, deadlines, cancellation, the idle
// connection's close and reconnect, and a server that goes away in the middle of a call.
import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, mtlsClientContext, type PluginIdentity } from '../../src/goplugin/autotls';
import { ConnectionBudget } from '../../src/goplugin/connection-budget';
import { GrpcClient, GrpcError, type ClientTarget } from '../../src/goplugin/grpc-client';
import { GrpcServer } from '../../src/goplugin/grpc-server';
import { ErrorCode, Flag, FrameType, frame, PREFACE, rstStreamFrame, Setting, settingsFrame } from '../../src/goplugin/h2/frames';
import { encodeHeaders, HpackDecoder } from '../../src/goplugin/h2/hpack';
import { methodDef, serviceDef } from '../../src/goplugin/protos';
import { waitFor } from '../support/vault';

const Check = methodDef<{ service: string }, { status: string }>('grpc.health.v1.Health', 'Check');
type Entry = { key: string; value: Buffer };
const Get = methodDef<{ key: string }, { entry?: Entry | null }>('pb.Storage', 'Get');
const Put = methodDef<{ entry: Entry }, { err?: string }>('pb.Storage', 'Put');
const REFUSAL = 'refused: 100% — ünïcode';

let host: PluginIdentity; // the server's (Vault's broker listener's) identity
let plugin: PluginIdentity; // the client's
let tmp: string;
const cleanups: Array<() => unknown> = [];
beforeAll(async () => {
  [host, plugin] = await Promise.all([generateIdentity(), generateIdentity()]);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'grpc-client-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What the server saw: calls waiting for an answer, cancellations, the last deadline and multiplex_id. */
interface Seen {
  hanging: number;
  cancelled: number;
  deadline?: number;
  multiplexId?: string;
  /** pb.Storage: what Put stored (Get answers it). */
  stored?: Buffer;
}

/** Health.Check by the requested service: '' answers, 'fail' is refused, 'hang' never answers. */
function healthService(seen: Seen): grpc.UntypedServiceImplementation {
  return {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen.deadline = Number(call.getDeadline());
      seen.multiplexId = String(call.metadata.get('multiplex_id')[0] ?? '');
      call.on('cancelled', () => seen.cancelled++);
      if (call.request.service === 'hang') seen.hanging++;
      else if (call.request.service === 'fail') cb({ code: grpc.status.FAILED_PRECONDITION, details: REFUSAL });
      else cb(null, { status: 'SERVING' });
    },
    Watch: () => undefined,
  };
}

/** pb.Storage with one value: Put keeps it, Get answers it. */
function storageService(seen: Seen): grpc.UntypedServiceImplementation {
  return {
    Put: (call: grpc.ServerUnaryCall<{ entry: Entry }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen.stored = call.request.entry.value;
      cb(null, {});
    },
    Get: (call: grpc.ServerUnaryCall<{ key: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, seen.stored ? { entry: { key: call.request.key, value: seen.stored } } : {}),
    Delete: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    List: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { keys: [] }),
  };
}

/** A server requiring the plugin's certificate, on TCP or a unix socket; `stop` shuts it down at once. */
type ServerKind = 'grpc-js over TCP' | 'grpc-js over a unix socket' | 'GrpcServer over TCP';
async function startServer(kind: ServerKind, seen: Seen): Promise<{ target: ClientTarget; stop: () => void }> {
  if (kind === 'GrpcServer over TCP') {
    const s = new GrpcServer();
    s.addService(serviceDef('grpc.health.v1.Health'), healthService(seen));
    s.addService(serviceDef('pb.Storage'), storageService(seen));
    const port = await s.listen(0, { certPem: host.certPem, keyPem: host.keyPem, clientCaPem: plugin.certPem });
    return { target: { host: '127.0.0.1', port }, stop: () => s.forceShutdown() };
  }
  const s = new grpc.Server();
  s.addService(serviceDef('grpc.health.v1.Health'), healthService(seen));
  s.addService(serviceDef('pb.Storage'), storageService(seen));
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(plugin.certPem),
    [{ private_key: Buffer.from(host.keyPem), cert_chain: Buffer.from(host.certPem) }],
    true,
  );
  const socket = path.join(tmp, `s${Math.random().toString(36).slice(2)}`);
  const address = kind === 'grpc-js over TCP' ? '127.0.0.1:0' : `unix:${socket}`;
  const port = await new Promise<number>((res, rej) => s.bindAsync(address, creds, (e, p) => (e ? rej(e) : res(p))));
  return { target: kind === 'grpc-js over TCP' ? { host: '127.0.0.1', port } : { path: socket }, stop: () => s.forceShutdown() };
}

/** A proxy in front of `upstream` (same kind of address) that counts connections and can cut them. */
async function countingProxy(upstream: ClientTarget) {
  let opened = 0;
  const live = new Set<net.Socket>();
  const proxy = net.createServer((inbound) => {
    opened++;
    const outbound = net.connect(upstream as net.NetConnectOpts);
    live.add(inbound).add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const end = () => {
      live.delete(inbound);
      live.delete(outbound);
      inbound.destroy();
      outbound.destroy();
    };
    for (const s of [inbound, outbound]) s.on('close', end).on('error', end);
  });
  const socket = path.join(tmp, `p${Math.random().toString(36).slice(2)}`);
  await new Promise<void>((r) => ('path' in upstream ? proxy.listen(socket, r) : proxy.listen(0, '127.0.0.1', r)));
  const target: ClientTarget = 'path' in upstream ? { path: socket } : { host: '127.0.0.1', port: (proxy.address() as net.AddressInfo).port };
  const cut = () => {
    for (const s of live) s.destroy();
  };
  cleanups.push(() => {
    cut();
    proxy.close();
  });
  return { target, opened: () => opened, open: () => live.size / 2, cut };
}

const clientOf = (target: ClientTarget, idleMs = 60_000, ca = host.certPem, own: PluginIdentity = plugin) => {
  const c = new GrpcClient(target, { tls: { secureContext: mtlsClientContext(ca, own), servername: 'localhost' }, idleMs });
  cleanups.push(() => c.close());
  return c;
};

/** The call's error (the test fails if it succeeds), and how long it took. */
/** The call's error and how long it took, timed from before the call is made (its deadline starts there). */
async function failure(call: () => Promise<unknown>): Promise<{ error: GrpcError; ms: number }> {
  const t0 = Date.now();
  const error = await call().then(
    (r) => {
      throw new Error(`expected a failure, got ${JSON.stringify(r)}`);
    },
    (e: GrpcError) => e,
  );
  expect(error).toBeInstanceOf(GrpcError);
  return { error, ms: Date.now() - t0 };
}

for (const kind of ['grpc-js over TCP', 'grpc-js over a unix socket', 'GrpcServer over TCP'] as const) {
  describe(`GrpcClient against ${kind}, over mutual TLS`, () => {
    const setup = async (idleMs?: number) => {
      const seen: Seen = { hanging: 0, cancelled: 0 };
      const server = await startServer(kind, seen);
      cleanups.push(server.stop);
      const proxy = await countingProxy(server.target);
      return { seen, server, proxy, client: clientOf(proxy.target, idleMs) };
    };

    it('makes a unary call: request and metadata out, reply back, deadline sent as grpc-timeout', async () => {
      const { seen, proxy, client } = await setup();
      expect(proxy.opened()).toBe(0); // connects on the first call, not before
      expect(await client.unary(Check, { service: '' }, { timeoutMs: 20_000, metadata: { multiplex_id: 'mount-1' } })).toEqual({ status: 'SERVING' });
      expect(seen.multiplexId).toBe('mount-1');
      expect(seen.deadline).toBeGreaterThan(Date.now() + 15_000);
      expect(seen.deadline).toBeLessThanOrEqual(Date.now() + 20_000);
      expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
      expect(proxy.opened()).toBe(1); // one connection for both calls
      // Metadata cannot replace the call's own headers.
      expect(await client.unary(Check, { service: '' }, { metadata: { ':path': '/grpc.health.v1.Health/Nope', 'grpc-timeout': '1n' } })).toEqual({
        status: 'SERVING',
      });
    });

    it('carries messages of a few MiB both ways (many DATA frames, flow control), and several calls at once', async () => {
      const { seen, client } = await setup();
      const value = Buffer.alloc(3 * 1024 * 1024 + 3); // under grpc-js's default 4 MiB receive limit
      for (let i = 0; i < value.length; i += 4096) value[i] = i % 251;
      expect(await client.unary(Put, { entry: { key: 'k', value } })).toEqual({ err: '' });
      expect(seen.stored?.equals(value)).toBe(true);
      const replies = await Promise.all([1, 2, 3].map(() => client.unary(Get, { key: 'k' })));
      for (const r of replies) expect(Buffer.from(r.entry?.value ?? []).equals(value)).toBe(true);
    });

    it("fails with the server's status code and its message, percent-decoded", async () => {
      const { client } = await setup();
      const { error } = await failure(() => client.unary(Check, { service: 'fail' }));
      expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(error.details).toBe(REFUSAL);
    });

    it('ends a call past its deadline with DEADLINE_EXCEEDED, and the server sees it end', async () => {
      const { seen, client } = await setup();
      const { error, ms } = await failure(() => client.unary(Check, { service: 'hang' }, { timeoutMs: 300 }));
      expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(ms).toBeGreaterThanOrEqual(250);
      expect(ms).toBeLessThan(5000); // ends rather than hangs; a loaded CI machine can be seconds late
      await waitFor('the server to see the call end', () => seen.cancelled === 1, 2000, 20);
      expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' }); // the connection stays usable
    });

    it('cancels a call when its signal aborts, and the cancellation reaches the server', async () => {
      const { seen, client } = await setup();
      const abort = new AbortController();
      const pending = failure(() => client.unary(Check, { service: 'hang' }, { timeoutMs: 60_000, signal: abort.signal }));
      await waitFor('the call to reach the server', () => seen.hanging === 1, 2000, 10);
      expect(seen.cancelled).toBe(0);
      abort.abort();
      const { error, ms } = await pending;
      expect(error.code).toBe(grpc.status.CANCELLED);
      expect(ms).toBeLessThan(2000);
      await waitFor('the server to see the cancellation', () => seen.cancelled === 1, 2000, 10);
      // An already aborted signal: the call is not made at all.
      expect((await failure(() => client.unary(Check, { service: '' }, { signal: abort.signal }))).error.code).toBe(grpc.status.CANCELLED);
      expect(seen.hanging).toBe(1);
    });

    it('closes its connection after the idle time without calls, and connects again on the next call', { timeout: 15_000 }, async () => {
      const { proxy, client } = await setup(1000);
      expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
      expect(proxy.open()).toBe(1);
      // A call in flight keeps it open past the idle time.
      const slow = failure(() => client.unary(Check, { service: 'hang' }, { timeoutMs: 1500 }));
      await new Promise((r) => setTimeout(r, 1200));
      expect(proxy.open()).toBe(1);
      expect((await slow).error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      const ended = Date.now();
      await waitFor('the idle connection to close', () => proxy.open() === 0, 5000, 50);
      expect(Date.now() - ended).toBeGreaterThanOrEqual(900);
      expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
      expect(proxy.opened()).toBe(2);
      expect(proxy.open()).toBe(1);
    });

    it('fails a call in flight with UNAVAILABLE at once when the connection drops, and reconnects for the next', async () => {
      const { seen, proxy, client } = await setup();
      const pending = failure(() => client.unary(Check, { service: 'hang' }, { timeoutMs: 60_000 }));
      await waitFor('the call to reach the server', () => seen.hanging === 1, 2000, 10);
      proxy.cut();
      const { error, ms } = await pending;
      expect(error.code).toBe(grpc.status.UNAVAILABLE);
      expect(ms).toBeLessThan(2000);
      expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
      expect(proxy.opened()).toBe(2);
    });

    it('fails a call in flight with UNAVAILABLE at once when the server shuts down', async () => {
      const { seen, server, client } = await setup();
      const pending = failure(() => client.unary(Check, { service: 'hang' }, { timeoutMs: 60_000 }));
      await waitFor('the call to reach the server', () => seen.hanging === 1, 2000, 10);
      server.stop();
      const { error, ms } = await pending;
      expect(error.code).toBe(grpc.status.UNAVAILABLE);
      expect(ms).toBeLessThan(2000);
      // Nothing listens any more: the next call fails too, as UNAVAILABLE, without waiting for its deadline.
      const next = await failure(() => client.unary(Check, { service: '' }, { timeoutMs: 60_000 }));
      expect(next.error.code).toBe(grpc.status.UNAVAILABLE);
      expect(next.ms).toBeLessThan(2000);
    });
  });
}

describe('GrpcClients sharing a connection budget (many mounts of one process)', () => {
  /** `n` clients (60 s idle time) of one server behind a counting proxy, sharing `budget`. */
  async function budgetClients(n: number, budget: ConnectionBudget) {
    const server = await startServer('GrpcServer over TCP', { hanging: 0, cancelled: 0 });
    cleanups.push(server.stop);
    const proxy = await countingProxy(server.target);
    const clients = Array.from({ length: n }, () => {
      const c = new GrpcClient(proxy.target, {
        tls: { secureContext: mtlsClientContext(host.certPem, plugin), servername: 'localhost' },
        idleMs: 60_000,
        budget,
      });
      cleanups.push(() => c.close());
      return c;
    });
    return { proxy, budget, clients };
  }

  /** Waits (≤ 3 s, collecting garbage) until nothing holds what `ref` points to. */
  async function collected(what: string, ref: WeakRef<object>): Promise<void> {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await waitFor(
      `${what} to be collected`,
      async () => {
        await new Promise((r) => setImmediate(r));
        gc();
        return ref.deref() === undefined;
      },
      3000,
      50,
    );
  }

  it('past the budget, connections idle for the short time close, least recently used first; busy ones stay; closed ones reconnect', {
    timeout: 15_000,
  }, async () => {
    const { proxy, budget, clients } = await budgetClients(5, new ConnectionBudget(2, 1000));
    // One call in flight on client 0 the whole time: never closed, whatever the budget.
    const held = failure(() => clients[0].unary(Check, { service: 'hang' }, { timeoutMs: 5000 }));
    for (const c of clients.slice(1)) expect(await c.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    expect(proxy.open()).toBe(5);
    expect(budget.openConnections).toBe(5);
    // Past the short idle time only the budget's 2 stay: the busy one and the most recently used (client 4).
    await waitFor('idle connections over the budget to close', () => proxy.open() === 2, 5000, 20);
    expect(budget.openConnections).toBe(2);
    expect(proxy.opened()).toBe(5);
    expect(await clients[4].unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    expect(proxy.opened()).toBe(5); // client 4 kept its connection
    expect(await clients[1].unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    expect(proxy.opened()).toBe(6); // client 1 connected again
    expect((await held).error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('a client whose connection the budget closed keeps nothing of it (an idle mount holds no closed session)', async () => {
    const { proxy, clients } = await budgetClients(1, new ConnectionBudget(0, 50));
    expect(await clients[0].unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    const session = new WeakRef((clients[0] as unknown as { session: object }).session);
    await waitFor('the budget to close the idle connection', () => proxy.open() === 0, 3000, 10);
    await collected('the closed session', session);
    expect(await clients[0].unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
  });

  it("an idle client's timers keep nothing of the request that last used it (its async context)", async () => {
    const { proxy, clients } = await budgetClients(2, new ConnectionBudget(1, 60_000));
    const store = new AsyncLocalStorage<object>();
    let request: object | undefined = { big: Buffer.alloc(1 << 20) };
    const ref = new WeakRef(request);
    // Two clients' calls end inside a request's context: one arms its idle timer, the other the budget's timer too.
    await store.run(request, async () => {
      for (const c of clients) expect(await c.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    });
    request = undefined;
    expect(proxy.open()).toBe(2);
    await collected("the request's context, while the idle timers wait,", ref);
    expect(proxy.open()).toBe(2);
  });

  it('within the budget, idle connections stay open for the full idle time', async () => {
    const { proxy, budget, clients } = await budgetClients(3, new ConnectionBudget(3, 100));
    for (const c of clients) await c.unary(Check, { service: '' });
    await new Promise((r) => setTimeout(r, 400));
    expect(proxy.open()).toBe(3);
    expect(budget.openConnections).toBe(3);
  });
});

describe('GrpcClient when the connection cannot be made or is refused', () => {
  it('a server whose certificate does not chain to our CA: UNAVAILABLE, naming the TLS failure', async () => {
    const seen: Seen = { hanging: 0, cancelled: 0 };
    const server = await startServer('GrpcServer over TCP', seen);
    cleanups.push(server.stop);
    const stranger = await generateIdentity();
    const { error, ms } = await failure(() => clientOf(server.target, 60_000, stranger.certPem).unary(Check, { service: '' }, { timeoutMs: 60_000 }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toMatch(/certificate/);
    expect(ms).toBeLessThan(2000);
  });

  it('a server that refuses our certificate: UNAVAILABLE', async () => {
    const seen: Seen = { hanging: 0, cancelled: 0 };
    const server = await startServer('grpc-js over TCP', seen);
    cleanups.push(server.stop);
    const stranger = await generateIdentity();
    const { error, ms } = await failure(() => clientOf(server.target, 60_000, host.certPem, stranger).unary(Check, { service: '' }, { timeoutMs: 60_000 }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(ms).toBeLessThan(2000);
    expect(seen.multiplexId).toBeUndefined(); // the call never reached the handler
  });

  it('nothing listening: UNAVAILABLE; a peer that never answers: DEADLINE_EXCEEDED at the deadline', async () => {
    const gone = net.createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const port = (gone.address() as net.AddressInfo).port;
    await new Promise((r) => gone.close(r));
    expect((await failure(() => clientOf({ host: '127.0.0.1', port }).unary(Check, { service: '' }))).error.code).toBe(grpc.status.UNAVAILABLE);

    const accepted: net.Socket[] = [];
    let dropped = 0;
    const silent = net.createServer((s) => {
      accepted.push(s);
      s.resume()
        .on('error', () => undefined)
        .on('close', () => dropped++);
    }); // accepts, never speaks TLS
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of accepted) s.destroy();
      silent.close();
    });
    const client = clientOf({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port });
    const { error, ms } = await failure(() => client.unary(Check, { service: '' }, { timeoutMs: 300 }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(ms).toBeLessThan(2000);
    // The connection that never came up is dropped, and the next call tries a new one.
    await waitFor('the stuck connection to be dropped', () => dropped === 1, 2000, 20);
    expect((await failure(() => client.unary(Check, { service: '' }, { timeoutMs: 300 }))).error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(accepted).toHaveLength(2);
  });

  it('a server that completes the TLS handshake but never sends its SETTINGS: DEADLINE_EXCEEDED, and the connection is dropped', async () => {
    const accepted: tls.TLSSocket[] = [];
    let dropped = 0;
    // Takes our certificate and h2, then says nothing (a stuck or overloaded server).
    const mute = tls.createServer(
      { cert: host.certPem, key: host.keyPem, ca: plugin.certPem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
      (s) => {
        accepted.push(s);
        s.resume()
          .on('error', () => undefined)
          .on('close', () => dropped++);
      },
    );
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of accepted) s.destroy();
      mute.close();
    });
    const client = clientOf({ host: '127.0.0.1', port: (mute.address() as net.AddressInfo).port });
    const { error, ms } = await failure(() => client.unary(Check, { service: '' }, { timeoutMs: 300 }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(ms).toBeLessThan(2000);
    expect(accepted).toHaveLength(1);
    // Not kept for the next call, which would only wait for its deadline too.
    await waitFor('the connection without SETTINGS to be dropped', () => dropped === 1, 2000, 20);
    expect((await failure(() => client.unary(Check, { service: '' }, { timeoutMs: 300 }))).error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(accepted).toHaveLength(2);
  });

  it('a closed client refuses calls with UNAVAILABLE', async () => {
    const c = clientOf({ host: '127.0.0.1', port: 9 });
    c.close();
    expect((await failure(() => c.unary(Check, { service: '' }))).error).toMatchObject({ code: grpc.status.UNAVAILABLE, details: 'the client is closed' });
  });
});

describe('GrpcClient and HTTP/2 GOAWAY (plain HTTP/2 server)', () => {
  /** A gRPC-shaped server over plain HTTP/2 whose behaviour per stream the test decides. */
  async function rawServer(onStream: (stream: http2.ServerHttp2Stream) => void, budget?: ConnectionBudget) {
    const sessions = new Set<http2.ServerHttp2Session>();
    const server = http2.createServer();
    server.on('session', (s) => sessions.add(s).size);
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('end', () => onStream(stream));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of sessions) s.destroy();
      server.close();
    });
    const client = new GrpcClient({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }, { idleMs: 60_000, budget });
    cleanups.push(() => client.close());
    return { client, sessions };
  }
  const ok = (stream: http2.ServerHttp2Stream) => {
    const body = Check.responseSerialize({ status: 'SERVING' });
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]));
  };

  it('after a GOAWAY, new calls go to a new connection; the call left on the old one fails with UNAVAILABLE when it closes', async () => {
    let first: http2.Http2Session | undefined;
    const budget = new ConnectionBudget(8, 60_000);
    const { client, sessions } = await rawServer((stream) => {
      if (first) return ok(stream);
      first = stream.session;
      first?.goaway(); // shutting down: the call in flight is left hanging, new ones are not taken
    }, budget);
    const left = failure(() => client.unary(Check, { service: '' }, { timeoutMs: 60_000 }));
    await waitFor('the GOAWAY', () => first, 2000, 10);
    await new Promise((r) => setTimeout(r, 100));
    expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    expect(sessions.size).toBe(2);
    first?.destroy();
    const { error, ms } = await left;
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(ms).toBeLessThan(2000);
    // The old connection's close gave back its slot, and left the new, idle one where the budget can close it.
    await waitFor('the old connection to close', () => budget.openConnections === 1, 2000, 10);
    expect(budget.idleConnections).toBe(1);
  });

  it("a stream the server resets: its status by the RST_STREAM code, as gRPC's PROTOCOL-HTTP2.md maps them; the connection stays", async () => {
    const { NGHTTP2_PROTOCOL_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;
    const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY } = http2.constants;
    let code = 0;
    const { client, sessions } = await rawServer((stream) => (code < 0 ? ok(stream) : stream.close(code)));
    const expected: Array<[number, number, RegExp]> = [
      // Not processed: retryable (UNAVAILABLE), and saying why.
      [NGHTTP2_REFUSED_STREAM, grpc.status.UNAVAILABLE, /refused/i],
      [NGHTTP2_CANCEL, grpc.status.CANCELLED, /CANCEL/],
      [NGHTTP2_ENHANCE_YOUR_CALM, grpc.status.RESOURCE_EXHAUSTED, /ENHANCE_YOUR_CALM/],
      [NGHTTP2_INADEQUATE_SECURITY, grpc.status.PERMISSION_DENIED, /INADEQUATE_SECURITY/],
      [NGHTTP2_PROTOCOL_ERROR, grpc.status.INTERNAL, /PROTOCOL_ERROR/],
      [NGHTTP2_INTERNAL_ERROR, grpc.status.INTERNAL, /INTERNAL_ERROR/],
    ];
    for (const [rst, status, details] of expected) {
      code = rst;
      const { error } = await failure(() => client.unary(Check, { service: '' }));
      expect([rst, error.code, error.details]).toEqual([rst, status, expect.stringMatching(details)]);
    }
    code = -1;
    expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    expect(sessions.size).toBe(1);
  });

  it('a response without a gRPC status: an error by its HTTP status, not a hang', async () => {
    const { client } = await rawServer((stream) => stream.respond({ ':status': 503 }, { endStream: true }));
    expect((await failure(() => client.unary(Check, { service: '' }))).error).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/HTTP 503/),
    });
  });
});

describe('GrpcClient transparent retry (raw HTTP/2 frames from the server)', () => {
  /** A request as the raw server saw it: which connection (0 first), its stream id, grpc-timeout. */
  interface RawRequest {
    conn: number;
    id: number;
    timeout: string;
    send(b: Buffer): void;
  }
  /**
   * A gRPC server of raw HTTP/2 frames over plain TCP, to send what node:http2's server will
   * not (a GOAWAY with a lower last stream id, a refusal after response headers). `act` decides
   * what to do with each complete request, by its order (0 first). `settings` are its SETTINGS.
   */
  async function frameServer(act: (n: number, r: RawRequest) => void, settings: Array<[number, number]> = []) {
    const requests: RawRequest[] = [];
    const sockets: net.Socket[] = [];
    const server = net.createServer((sock) => {
      const conn = sockets.push(sock) - 1;
      sock.on('error', () => undefined);
      const decoder = new HpackDecoder();
      const timeouts = new Map<number, string>();
      const send = (b: Buffer) => {
        if (!sock.destroyed) sock.write(b);
      };
      const ended = (id: number) => {
        const r: RawRequest = { conn, id, timeout: timeouts.get(id) ?? '', send };
        requests.push(r);
        act(requests.length - 1, r);
      };
      let buf = Buffer.alloc(0);
      let prefaceSeen = false;
      send(settingsFrame(settings));
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!prefaceSeen) {
          if (buf.length < PREFACE.length) return;
          buf = buf.subarray(PREFACE.length);
          prefaceSeen = true;
        }
        while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
          const [len, type, flags, id] = [buf.readUIntBE(0, 3), buf[3], buf[4], buf.readUInt32BE(5) & 0x7fffffff];
          let p = buf.subarray(9, 9 + len);
          buf = buf.subarray(9 + len);
          if (type === FrameType.SETTINGS && !(flags & Flag.ACK)) send(frame(FrameType.SETTINGS, Flag.ACK, 0));
          if (type === FrameType.HEADERS) {
            if (flags & Flag.PADDED) p = p.subarray(1, p.length - p[0]);
            if (flags & Flag.PRIORITY) p = p.subarray(5);
            const list = decoder.decode(p);
            if (list !== 'oversized') timeouts.set(id, list.find(([n]) => n === 'grpc-timeout')?.[1] ?? '');
          }
          if ((type === FrameType.HEADERS || type === FrameType.DATA) && flags & Flag.END_STREAM) ended(id);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    const client = new GrpcClient({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }, { idleMs: 60_000 });
    cleanups.push(() => client.close());
    return { client, requests, sockets };
  }

  const RESPONSE = encodeHeaders([
    [':status', '200'],
    ['content-type', 'application/grpc'],
  ]);
  const answer = (r: RawRequest) => {
    const body = Check.responseSerialize({ status: 'SERVING' });
    r.send(frame(FrameType.HEADERS, Flag.END_HEADERS, r.id, RESPONSE));
    r.send(frame(FrameType.DATA, 0, r.id, Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body])));
    r.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, r.id, encodeHeaders([['grpc-status', '0']])));
  };
  const goawayFrame = (last: number, code = 0) => {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(last, 0);
    p.writeUInt32BE(code, 4);
    return frame(FrameType.GOAWAY, 0, 0, p);
  };
  const refuse = (r: RawRequest, code: number = ErrorCode.REFUSED_STREAM) => r.send(rstStreamFrame(r.id, code));

  it('a stream refused (REFUSED_STREAM) before any response is sent again once, within the deadline, and succeeds', async () => {
    const { client, requests } = await frameServer((n, r) => (n === 0 ? refuse(r) : answer(r)));
    expect(await client.unary(Check, { service: '' }, { timeoutMs: 20_000 })).toEqual({ status: 'SERVING' });
    expect(requests.map((r) => [r.conn, r.id])).toEqual([
      [0, 1],
      [0, 3], // the connection still takes calls: the retry goes there
    ]);
    // The retry carries what is left of the deadline, not the whole of it again.
    const [first, second] = requests.map((r) => Number(/^(\d+)m$/.exec(r.timeout)?.[1]));
    expect(first).toBeLessThanOrEqual(20_000);
    expect(second).toBeLessThanOrEqual(first);
    expect(second).toBeGreaterThan(15_000);
  });

  it('refused twice: one retry only, then UNAVAILABLE', async () => {
    const { client, requests } = await frameServer((_n, r) => refuse(r));
    const { error } = await failure(() => client.unary(Check, { service: '' }));
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/REFUSED_STREAM/) });
    expect(requests).toHaveLength(2);
  });

  it('a call above the last stream id of a GOAWAY is sent again once, on a new connection, and succeeds', async () => {
    const { client, requests } = await frameServer((n, r) => (n === 0 ? r.send(goawayFrame(0)) : answer(r)));
    expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    expect(requests.map((r) => [r.conn, r.id])).toEqual([
      [0, 1],
      [1, 1],
    ]);
  });

  it("calls open and waiting behind the server's stream limit when a GOAWAY comes: those above its last id are retried, the one below is answered", async () => {
    let goingAway = false;
    // One stream at a time on the first connection: the second and third calls wait for it.
    const { client, requests } = await frameServer(
      (_n, r) => {
        if (goingAway) {
          goingAway = false;
          r.send(goawayFrame(r.id));
        }
        answer(r);
      },
      [[Setting.MAX_CONCURRENT_STREAMS, 1]],
    );
    // The first connection up, its SETTINGS read: the calls below wait for its stream limit.
    expect(await client.unary(Check, { service: '' })).toEqual({ status: 'SERVING' });
    goingAway = true;
    const calls = [0, 1, 2].map(() => client.unary(Check, { service: '' }, { timeoutMs: 10_000 }));
    expect(await Promise.all(calls)).toEqual([0, 1, 2].map(() => ({ status: 'SERVING' })));
    expect(requests.map((r) => [r.conn, r.id])).toEqual([
      [0, 1],
      [0, 3],
      [1, 1],
      [1, 3],
    ]);
  });

  it('not retried: a refusal after the response headers, another reset code, a call below the GOAWAY last stream id', async () => {
    let behaviour: (r: RawRequest) => void = answer;
    const { client, requests, sockets } = await frameServer((_n, r) => behaviour(r));
    behaviour = (r) => {
      r.send(frame(FrameType.HEADERS, Flag.END_HEADERS, r.id, RESPONSE));
      refuse(r);
    };
    expect((await failure(() => client.unary(Check, { service: '' }))).error).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/reset \(REFUSED_STREAM\)/),
    });
    expect(requests).toHaveLength(1);
    for (const [code, status] of [
      [ErrorCode.INTERNAL_ERROR, grpc.status.INTERNAL],
      [ErrorCode.CANCEL, grpc.status.CANCELLED],
      [ErrorCode.ENHANCE_YOUR_CALM, grpc.status.RESOURCE_EXHAUSTED],
    ]) {
      requests.length = 0;
      behaviour = (r) => refuse(r, code);
      expect((await failure(() => client.unary(Check, { service: '' }))).error.code).toBe(status);
      expect(requests).toHaveLength(1);
    }
    // Processed, maybe: the connection goes away with the call's stream at or below its last id.
    requests.length = 0;
    behaviour = (r) => {
      r.send(goawayFrame(r.id));
      setTimeout(() => sockets[r.conn].destroy(), 20);
    };
    expect((await failure(() => client.unary(Check, { service: '' }))).error.code).toBe(grpc.status.UNAVAILABLE);
    expect(requests).toHaveLength(1);
  });

  it('no retry past the deadline: a GOAWAY that comes after it leaves DEADLINE_EXCEEDED', async () => {
    const { client, requests } = await frameServer((n, r) => {
      if (n === 0) setTimeout(() => r.send(goawayFrame(0)), 400);
      else answer(r);
    });
    const { error } = await failure(() => client.unary(Check, { service: '' }, { timeoutMs: 200 }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 400));
    expect(requests).toHaveLength(1);
  });
});
