// The plugin's own gRPC server (src/goplugin/grpc-server.ts) against grpc-js's client over
// mutual TLS: unary, server- and bidi-streaming calls, errors, cancellation, deadlines, big
// messages and refused clients. (The Go client, Vault's, is exercised by test/conformance
// and test/vault.)
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, type PluginIdentity } from '../../src/goplugin/autotls';
import { MAX_CALL_BACKLOG } from '../../src/goplugin/grpc-call';
import { GrpcServer } from '../../src/goplugin/grpc-server';
import { frame as grpcFrame } from '../../src/goplugin/grpc-wire';
import { ErrorCode, Flag, FrameType, frame, PREFACE, settingsFrame, windowUpdateFrame } from '../../src/goplugin/h2/frames';
import { encodeHeaders, HpackDecoder } from '../../src/goplugin/h2/hpack';
import { methodDef, serviceDef } from '../../src/goplugin/protos';
import { clientCtor } from '../support/grpc-clients';
import { waitFor } from '../support/vault';

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: any) => void) => grpc.ClientUnaryCall; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('GrpcServer (a lean gRPC server over node:http2)', () => {
  let plugin: PluginIdentity;
  let client: PluginIdentity;
  let server: GrpcServer;
  let port: number;
  const seen: { cancelled: number; deadline?: number; metadata?: string; md?: { get(key: string): unknown[] } } = { cancelled: 0 };
  let releaseHung: (() => void) | undefined;

  beforeAll(async () => {
    [plugin, client] = await Promise.all([generateIdentity(), generateIdentity()]);
    server = new GrpcServer();
    server.addService(serviceDef('grpc.health.v1.Health'), {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const svc = call.request.service;
        seen.metadata = String(call.metadata.get('multiplex_id')[0] ?? '');
        seen.md = call.metadata;
        seen.deadline = call.getDeadline() as number;
        if (svc === 'hang') {
          // Answers only when released or cancelled; counts the cancellation.
          call.on('cancelled', () => seen.cancelled++);
          releaseHung = () => cb(null, { status: 'SERVING' });
          return;
        }
        if (svc.startsWith('fail')) return cb({ code: grpc.status.FAILED_PRECONDITION, details: `refused: ${svc} — ünïcode %` });
        if (svc === 'throw') throw new Error('handler threw');
        call.on('cancelled', () => seen.cancelled++);
        cb(null, { status: 'NOT_SERVING' });
      },
      Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
        call.write({ status: 'SERVING' });
        call.write({ status: 'NOT_SERVING' });
        call.end();
      },
    });
    server.addService(serviceDef('plugin.GRPCBroker'), {
      StartStream: (call: grpc.ServerDuplexStream<{ service_id: number }, unknown>) => {
        call.on('data', (m: { service_id: number; address: string }) => call.write({ service_id: m.service_id + 1, network: 'tcp', address: m.address }));
        call.on('end', () => call.end());
      },
    });
    port = await server.listen(0, { certPem: plugin.certPem, keyPem: plugin.keyPem, clientCaPem: client.certPem });
  });
  afterAll(() => server.forceShutdown());

  const creds = (id: PluginIdentity) => grpc.credentials.createSsl(Buffer.from(plugin.certPem), Buffer.from(id.keyPem), Buffer.from(id.certPem));
  const opts = {
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost',
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  };
  const health = (id = client) => new (clientCtor('grpc.health.v1.Health'))(`127.0.0.1:${port}`, creds(id), opts);
  const start = (c: grpc.Client, service: string, md = new grpc.Metadata(), callOpts: grpc.CallOptions = {}) => {
    let call!: grpc.ClientUnaryCall;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const done = new Promise<{ err: grpc.ServiceError | null; reply: any }>((resolve) => {
      call = (Reflect.get(c, 'Check') as Unary).call(c, { service }, md, callOpts, (err, reply) => resolve({ err, reply }));
    });
    return { call, done };
  };
  const check = (c: grpc.Client, service: string, md?: grpc.Metadata, callOpts?: grpc.CallOptions) => start(c, service, md, callOpts).done;

  it('answers a unary call with its message and metadata, and emits no cancellation after a normal reply', async () => {
    const c = health();
    const md = new grpc.Metadata();
    md.set('multiplex_id', 'mount-1');
    const before = seen.cancelled;
    const r = await check(c, 'x', md);
    expect(r.err).toBeNull();
    expect(r.reply.status).toBe('NOT_SERVING');
    expect(seen.metadata).toBe('mount-1');
    expect(seen.deadline).toBe(Number.POSITIVE_INFINITY);
    await new Promise((res) => setTimeout(res, 50));
    expect(seen.cancelled).toBe(before);
    c.close();
  });

  it("gives handlers the call's metadata as grpc-js's Metadata.get does: every value, binary keys decoded, no HTTP/2 or gRPC headers", async () => {
    const c = health();
    const md = new grpc.Metadata();
    md.set('multiplex_id', 'mount-2');
    md.add('trace-bin', Buffer.from([0, 1, 2]));
    md.add('trace-bin', Buffer.from('ok'));
    const r = await check(c, 'x', md, { deadline: Date.now() + 60_000 });
    expect(r.err).toBeNull();
    expect(seen.md?.get('multiplex_id')).toEqual(['mount-2']);
    expect(seen.md?.get('Multiplex_ID')).toEqual(['mount-2']);
    expect(seen.md?.get('trace-bin')).toEqual([Buffer.from([0, 1, 2]), Buffer.from('ok')]);
    for (const k of [':path', 'content-type', 'te', 'grpc-timeout', 'user-agent', 'absent']) expect(seen.md?.get(k), k).toEqual([]);
    c.close();
  });

  it('sends an error status with its details (non-ASCII percent-encoded on the wire, decoded by the client)', async () => {
    const c = health();
    const r = await check(c, 'fail-1');
    expect(r.err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(r.err?.details).toBe('refused: fail-1 — ünïcode %');
    const t = await check(c, 'throw');
    expect(t.err?.code).toBe(grpc.status.UNKNOWN);
    expect(t.err?.details).toBe('handler threw');
    c.close();
  });

  it('tells the handler when the client cancels, and passes the deadline on', async () => {
    const c = health();
    const before = seen.cancelled;
    // The deadline an earlier call left must not answer for this one's.
    seen.deadline = undefined;
    const deadline = Date.now() + 60_000;
    const { call, done } = start(c, 'hang', new grpc.Metadata(), { deadline });
    await waitFor('the call to reach its handler', () => seen.deadline !== undefined, 5000, 10);
    // The deadline itself (grpc-timeout is in whole milliseconds, sent a little later), not Infinity.
    expect(seen.deadline).toBeGreaterThan(deadline - 2000);
    expect(seen.deadline).toBeLessThanOrEqual(deadline + 1000);
    await new Promise((res) => setTimeout(res, 150));
    expect(seen.cancelled).toBe(before);
    call.cancel();
    expect((await done).err?.code).toBe(grpc.status.CANCELLED);
    await new Promise((res) => setTimeout(res, 150));
    expect(seen.cancelled).toBe(before + 1);
    // A late answer goes nowhere and breaks nothing.
    releaseHung?.();
    expect((await check(c, 'x')).reply.status).toBe('NOT_SERVING');
    c.close();
  });

  it('ends a call past its grpc-timeout with DEADLINE_EXCEEDED', async () => {
    // From a client that keeps no deadline of its own (grpc-js ends its call at the deadline
    // whatever the server does): only the server's timer can end this call.
    const session = http2.connect(`https://localhost:${port}`, { ca: plugin.certPem, cert: client.certPem, key: client.keyPem });
    session.on('error', () => undefined);
    const Check = methodDef('grpc.health.v1.Health', 'Check');
    const t0 = Date.now();
    const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': Check.path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m' });
      let headers: Record<string, unknown> = {};
      req.on('response', (h) => {
        headers = { ...h };
      });
      req.on('trailers', (t) => {
        headers = { ...headers, ...t };
      });
      req.on('error', reject);
      const stop = setTimeout(() => req.close(), 5000); // never ended by the server: no status
      req.on('close', () => {
        clearTimeout(stop);
        resolve(headers);
      });
      req.resume();
      req.end(grpcFrame(Check.requestSerialize({ service: 'hang' })));
    });
    expect(trailers['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    releaseHung?.();
    session.close();
  });

  it('streams server messages and carries bidi streams both ways', async () => {
    const c = health();
    const got = await new Promise<string[]>((resolve, reject) => {
      const out: string[] = [];
      const s = (Reflect.get(c, 'Watch') as (req: unknown) => grpc.ClientReadableStream<{ status: string }>).call(c, { service: '' });
      s.on('data', (m) => out.push(m.status));
      s.on('error', reject);
      s.on('end', () => resolve(out));
    });
    expect(got).toEqual(['SERVING', 'NOT_SERVING']);
    c.close();

    const b = new (clientCtor('plugin.GRPCBroker'))(`127.0.0.1:${port}`, creds(client), opts);
    const echoed = await new Promise<number[]>((resolve, reject) => {
      const out: number[] = [];
      const s = (Reflect.get(b, 'StartStream') as () => grpc.ClientDuplexStream<unknown, { service_id: number }>).call(b);
      s.on('data', (m) => out.push(m.service_id));
      s.on('error', reject);
      s.on('end', () => resolve(out));
      for (const id of [1, 5, 9]) s.write({ service_id: id, network: 'tcp', address: 'x' });
      s.end();
    });
    expect(echoed).toEqual([2, 6, 10]);
    b.close();
  });

  it('reads a request of several MiB (one message over many DATA frames)', async () => {
    const c = health();
    const r = await check(c, 'b'.repeat(6 << 20));
    expect(r.err).toBeNull();
    expect(r.reply.status).toBe('NOT_SERVING');
    c.close();
  });

  it('answers UNIMPLEMENTED for an unknown method and for compressed messages', async () => {
    const session = http2.connect(`https://localhost:${port}`, { ca: plugin.certPem, cert: client.certPem, key: client.keyPem });
    const ask = (path: string, body: Buffer) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
        let headers: Record<string, unknown> = {};
        req.on('response', (h) => {
          headers = { ...h };
        });
        req.on('trailers', (t) => {
          headers = { ...headers, ...t };
        });
        req.on('error', reject);
        req.on('close', () => resolve(headers));
        req.resume();
        req.end(body);
      });
    const unknown = await ask('/no.Such/Method', Buffer.from([0, 0, 0, 0, 0]));
    expect(unknown['grpc-status']).toBe(String(grpc.status.UNIMPLEMENTED));
    const compressed = await ask('/grpc.health.v1.Health/Check', Buffer.from([1, 0, 0, 0, 0]));
    expect(compressed['grpc-status']).toBe(String(grpc.status.UNIMPLEMENTED));
    const truncated = await ask('/grpc.health.v1.Health/Check', Buffer.from([0, 0, 0, 0, 9, 1]));
    expect(truncated['grpc-status']).toBe(String(grpc.status.INTERNAL));
    session.close();
  });

  it('refuses a client whose certificate is not the expected one', async () => {
    const stranger = await generateIdentity();
    const c = health(stranger);
    const r = await check(c, 'x', new grpc.Metadata(), { deadline: Date.now() + 3000 });
    expect(r.err?.code).toBe(grpc.status.UNAVAILABLE);
    c.close();
  });
});

describe('GrpcServer: a streaming handler whose client does not read (backpressure, MAX_CALL_BACKLOG)', () => {
  const servers: GrpcServer[] = [];
  const sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.forceShutdown();
    for (const s of sockets.splice(0)) s.destroy();
  });

  const CHUNK = Buffer.alloc(64 * 1024, 7);
  const StreamStdio = methodDef<unknown, { channel: number; data: Buffer }>('plugin.GRPCStdio', 'StreamStdio');
  const MESSAGE = 5 + StreamStdio.responseSerialize({ channel: 1, data: CHUNK }).length;

  async function stdioServer(handler: (call: grpc.ServerWritableStream<unknown, unknown>) => void): Promise<number> {
    const s = new GrpcServer();
    servers.push(s);
    s.addService(serviceDef('plugin.GRPCStdio'), { StreamStdio: handler });
    return s.listen(0);
  }

  /**
   * One StreamStdio call from a client of raw HTTP/2 frames that gives the server no
   * flow-control window beyond the initial 65,535 octets until `read()`: from then on it
   * gives back what it receives, as a client that reads does.
   */
  async function rawCall(port: number) {
    const sock = net.connect(port, '127.0.0.1');
    sockets.push(sock);
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    const decoder = new HpackDecoder();
    const seen = { data: 0, rst: undefined as number | undefined, trailers: undefined as Record<string, string> | undefined, closed: false };
    let reading = false;
    const grant = (n: number) => {
      if (n > 0) sock.write(Buffer.concat([windowUpdateFrame(0, n), windowUpdateFrame(1, n)]));
    };
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const [len, type, flags] = [buf.readUIntBE(0, 3), buf[3], buf[4]];
        const p = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === FrameType.SETTINGS && !(flags & Flag.ACK)) sock.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
        if (type === FrameType.DATA) {
          seen.data += len;
          if (reading) grant(len);
        }
        if (type === FrameType.HEADERS) {
          const list = decoder.decode(p);
          if (list !== 'oversized' && flags & Flag.END_STREAM) seen.trailers = Object.fromEntries(list);
        }
        if (type === FrameType.RST_STREAM) seen.rst = p.readUInt32BE(0);
        if ((type === FrameType.HEADERS && flags & Flag.END_STREAM) || type === FrameType.RST_STREAM) seen.closed = true;
      }
    });
    const headers = encodeHeaders([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':authority', 'localhost'],
      [':path', StreamStdio.path],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ]);
    sock.write(
      Buffer.concat([
        PREFACE,
        settingsFrame([]),
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headers),
        frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from([0, 0, 0, 0, 0])),
      ]),
    );
    return {
      seen,
      read() {
        reading = true;
        grant(seen.data); // what the initial window let through
      },
    };
  }

  /** Bytes in ArrayBuffers after a full garbage collection. */
  function arrayBuffersHeld(): number {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    return process.memoryUsage().arrayBuffers;
  }

  it("a handler that writes on past write() === false is cut off at MAX_CALL_BACKLOG: RST_STREAM ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED), 'cancelled', the queue freed", async () => {
    const handler = { firstRefused: -1, taken: 0, cancelled: false, done: false };
    const port = await stdioServer((call) => {
      call.on('cancelled', () => {
        handler.cancelled = true;
      });
      // 64 MiB at once, as a handler that ignores backpressure would.
      for (let i = 0; i < 1024; i++) {
        if (call.write({ channel: 1, data: CHUNK })) handler.taken++;
        else if (handler.firstRefused < 0) handler.firstRefused = i;
      }
      handler.done = true;
    });
    const before = arrayBuffersHeld();
    const { seen } = await rawCall(port);
    await waitFor('the handler to have written', () => handler.done, 5000, 10);
    await waitFor('the stream to be reset', () => seen.closed, 3000, 10);
    expect(seen.rst).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(seen.trailers).toBeUndefined();
    await waitFor("the handler's 'cancelled'", () => handler.cancelled, 2000, 10);
    // Backpressure from the second message on (our layer sends the first within the initial window).
    expect(handler.firstRefused).toBeGreaterThanOrEqual(0);
    expect(handler.firstRefused).toBeLessThanOrEqual(1);
    expect(handler.taken).toBeLessThanOrEqual(1);
    // The 64 MiB written is not held: at most what the cap let queue, and that is freed with the
    // stream (asked again for a while: a loaded machine frees collected buffers late). The bound
    // is well below the cap: a queue kept after the reset holds just under MAX_CALL_BACKLOG
    // (63 of its 64 messages are 4,129,000 octets), which "below the cap" let pass.
    await waitFor(
      'the queue to be freed',
      async () => {
        await new Promise((r) => setTimeout(r, 20));
        return arrayBuffersHeld() - before < MAX_CALL_BACKLOG / 4;
      },
      3000,
      10,
    );
  });

  it("a handler that waits for 'drain' sends all of a stream far bigger than MAX_CALL_BACKLOG to a client that reads late", async () => {
    const COUNT = 96; // 6 MiB
    const handler = { refused: 0, drains: 0 };
    const port = await stdioServer((call) => {
      let i = 0;
      const more = () => {
        while (i < COUNT) {
          i++;
          if (!call.write({ channel: 1, data: CHUNK })) {
            handler.refused++;
            call.once('drain', () => {
              handler.drains++;
              more();
            });
            return;
          }
        }
        call.end();
      };
      more();
    });
    const call = await rawCall(port);
    await new Promise((r) => setTimeout(r, 300)); // not reading: the handler waits
    expect(handler.refused).toBe(1);
    expect(handler.drains).toBe(0);
    call.read();
    await waitFor('the call to end', () => call.seen.closed, 10_000, 10);
    expect(call.seen.rst).toBeUndefined();
    expect(call.seen.trailers).toEqual({ 'grpc-status': '0' });
    expect(call.seen.data).toBe(COUNT * MESSAGE);
    expect(handler.drains).toBe(handler.refused);
    expect(handler.drains).toBeGreaterThan(1);
  });
});
