// The client side of our HTTP/2 connection (src/goplugin/h2/connection.ts, role 'client'):
// end to end against node:http2's server (bodies of several MiB both ways through its
// windows, the server's concurrency limit), and frame by frame against a raw server for
// what a server may do wrong or on purpose: GOAWAY with streams above its last id, trailers
// that do not end the stream, push, streams we never opened, an answer before the request's
// end, and the connection going away when its stream ids run out.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionOptions, H2Connection, type H2Stream, type HeaderMap } from '../../src/goplugin/h2/connection';
import { ErrorCode, Flag, FrameType, frame, PREFACE, rstStreamFrame, Setting, settingsFrame } from '../../src/goplugin/h2/frames';
import { encodeHeaders, HpackDecoder } from '../../src/goplugin/h2/hpack';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Answer {
  headers?: HeaderMap;
  trailers?: HeaderMap;
  body: Buffer;
  closed: Promise<void>;
}

/** Open a request on `conn` with `body`, collecting what comes back. */
function request(conn: H2Connection, path: string, body: Buffer): { stream: H2Stream; answer: Answer } {
  const stream = conn.request(
    encodeHeaders([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':authority', 'localhost'],
      [':path', path],
    ]),
  );
  const chunks: Buffer[] = [];
  const answer = { body: Buffer.alloc(0) } as Answer;
  answer.closed = new Promise<void>((resolve) => {
    stream.onClose = () => {
      answer.body = Buffer.concat(chunks);
      resolve();
    };
  });
  stream.onHeaders = (h, trailers) => {
    if (trailers) answer.trailers = h;
    else answer.headers = h;
  };
  stream.onData = (c) => chunks.push(c);
  stream.finishBody(body);
  return { stream, answer };
}

async function clientTo(port: number, options: ConnectionOptions = {}): Promise<H2Connection> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const conn = new H2Connection(sock, () => undefined, { ...options, role: 'client' });
  cleanups.push(() => conn.destroy());
  return conn;
}

/** A client connection to a TCP listener of the test's own, and the server end of its socket (no HTTP/2 there). */
async function clientAndPeer(options: ConnectionOptions = {}): Promise<{ conn: H2Connection; peer: net.Socket }> {
  let resolveSock: (s: net.Socket) => void;
  const got = new Promise<net.Socket>((r) => {
    resolveSock = r;
  });
  const server = net.createServer((s) => resolveSock(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => server.close());
  const conn = await clientTo((server.address() as net.AddressInfo).port, options);
  const peer = await got;
  cleanups.push(() => peer.destroy());
  return { conn, peer };
}

describe('the client side against node:http2', () => {
  async function echoServer(settings: http2.Settings = {}): Promise<{ port: number; maxOpen: () => number }> {
    let open = 0;
    let maxOpen = 0;
    const server = http2.createServer({ settings });
    server.on('stream', (stream, headers) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      stream.on('close', () => open--);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        // Slow enough that the callers' streams overlap at the server.
        setTimeout(() => {
          stream.respond({ ':status': 200, 'x-path': String(headers[':path']) }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-bytes': String(body.length) }));
          stream.end(Buffer.concat([body, body]));
        }, 5);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => server.close());
    return { port: (server.address() as net.AddressInfo).port, maxOpen: () => maxOpen };
  }

  it('sends requests on odd streams and reads headers, a body of several MiB and trailers back, many at once', async () => {
    const { port } = await echoServer();
    const conn = await clientTo(port);
    const bodies = [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(3 * 1024 * 1024 + 17, 5)];
    const calls = bodies.map((b, i) => request(conn, `/p${i}`, b));
    expect(calls.map((c) => c.stream.id)).toEqual([1, 3, 5]);
    for (const [i, { answer }] of calls.entries()) {
      await answer.closed;
      expect(answer.headers?.[':status']).toBe('200');
      expect(answer.headers?.['x-path']).toBe(`/p${i}`);
      expect(answer.trailers).toMatchObject({ 'grpc-status': '0', 'x-bytes': String(bodies[i].length) });
      expect(answer.body.equals(Buffer.concat([bodies[i], bodies[i]]))).toBe(true);
    }
    expect(conn.openStreams).toBe(0);
    expect(conn.accepting).toBe(true);
  });

  it('is answered by a server whose header table is smaller than 4096 or empty (a table size update starts the next request)', async () => {
    for (const headerTableSize of [0, 1000]) {
      const { port } = await echoServer({ headerTableSize });
      const conn = await clientTo(port);
      while (!conn.established) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20)); // and our ACK of its SETTINGS read
      for (let i = 0; i < 3; i++) {
        const { answer } = request(conn, `/t${i}`, Buffer.from('ab'));
        await answer.closed;
        expect([headerTableSize, i, answer.headers?.[':status'], answer.trailers?.['grpc-status']]).toEqual([headerTableSize, i, '200', '0']);
      }
    }
  });

  it("keeps to the server's SETTINGS_MAX_CONCURRENT_STREAMS: the rest wait and all are answered", async () => {
    const { port, maxOpen } = await echoServer({ maxConcurrentStreams: 2 });
    const conn = await clientTo(port);
    // Let the server's SETTINGS arrive first, as they do before a real client's first call.
    await new Promise<void>((r) => {
      const t = setInterval(() => {
        if (!conn.established) return;
        clearInterval(t);
        r();
      }, 5);
    });
    const calls = Array.from({ length: 10 }, (_, i) => request(conn, `/w${i}`, Buffer.from(`body ${i}`)));
    await Promise.all(calls.map((c) => c.answer.closed));
    expect(calls.map((c) => c.answer.body.toString())).toEqual(calls.map((_, i) => `body ${i}body ${i}`));
    expect(maxOpen()).toBe(2);
    expect(calls.map((c) => c.stream.id)).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i + 1));
  });
});

type Frame = { type: number; flags: number; id: number; payload: Buffer };

/** A raw HTTP/2 server for one connection: the client's frames in, ours out. */
async function rawServer(): Promise<{
  conn: H2Connection;
  frames: Frame[];
  send(b: Buffer): void;
  next(type: number): Promise<Frame>;
  settings: Map<number, number>;
}> {
  const { conn, peer: sock } = await clientAndPeer();
  const frames: Frame[] = [];
  let buf = Buffer.alloc(0);
  let prefaceSeen = false;
  let wake: () => void = () => undefined;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (!prefaceSeen && buf.length >= PREFACE.length) {
      expect(buf.subarray(0, PREFACE.length).equals(PREFACE)).toBe(true);
      buf = buf.subarray(PREFACE.length);
      prefaceSeen = true;
    }
    while (prefaceSeen && buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      frames.push({ type: buf[3], flags: buf[4], id: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
      buf = buf.subarray(9 + len);
    }
    wake();
  });
  const next = async (type: number): Promise<Frame> => {
    for (let seen = 0; ; ) {
      const i = frames.findIndex((f, k) => k >= seen && f.type === type);
      if (i >= 0) return frames.splice(i, 1)[0];
      seen = 0;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  };
  const send = (b: Buffer) => sock.write(b);
  // The server's preface, and its acknowledgement of the client's SETTINGS.
  send(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 100]]));
  const s = await next(FrameType.SETTINGS);
  const settings = new Map<number, number>();
  for (let i = 0; i < s.payload.length; i += 6) settings.set(s.payload.readUInt16BE(i), s.payload.readUInt32BE(i + 2));
  send(frame(FrameType.SETTINGS, Flag.ACK, 0));
  return { conn, frames, send, next, settings };
}

const headersFrame = (id: number, list: Array<[string, string]>, flags = 0) => frame(FrameType.HEADERS, Flag.END_HEADERS | flags, id, encodeHeaders(list));
const goaway = (last: number, code = ErrorCode.NO_ERROR) => {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(last, 0);
  p.writeUInt32BE(code, 4);
  return frame(FrameType.GOAWAY, 0, 0, p);
};

describe('the client side before the server speaks', () => {
  it("opens at most 100 streams until the server's first SETTINGS, then the rest (its SETTINGS set no limit)", async () => {
    const { conn, peer } = await clientAndPeer();
    const headers = () => {
      let n = 0;
      for (let i = 0; i + 9 <= seen.length; i += 9 + seen.readUIntBE(i, 3)) if (seen[i + 3] === FrameType.HEADERS) n++;
      return n;
    };
    let seen = Buffer.alloc(0);
    peer.on('data', (d: Buffer) => {
      seen = Buffer.concat([seen, d]);
    });
    for (let i = 0; i < 150; i++) request(conn, `/r${i}`, Buffer.alloc(0));
    await new Promise((r) => setTimeout(r, 50));
    seen = seen.subarray(PREFACE.length);
    expect(headers()).toBe(100);
    peer.write(settingsFrame([]));
    await new Promise((r) => setTimeout(r, 50));
    expect(headers()).toBe(150);
  });
});

describe('the client side against a raw server', () => {
  it('sends the preface, SETTINGS without push, then each request as HEADERS and DATA ending the stream', async () => {
    const srv = await rawServer();
    expect(srv.settings.get(Setting.ENABLE_PUSH)).toBe(0);
    expect(srv.settings.has(Setting.MAX_CONCURRENT_STREAMS)).toBe(false);
    request(srv.conn, '/a', Buffer.from('xyz'));
    const h = await srv.next(FrameType.HEADERS);
    expect(h.id).toBe(1);
    expect(new HpackDecoder().decode(h.payload, 65536)).toEqual([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':authority', 'localhost'],
      [':path', '/a'],
    ]);
    const d = await srv.next(FrameType.DATA);
    expect([d.id, d.flags & Flag.END_STREAM, d.payload.toString()]).toEqual([1, Flag.END_STREAM, 'xyz']);
  });

  it('a GOAWAY ends the streams above its last id unanswered, lets the others finish, and takes no new ones', async () => {
    const srv = await rawServer();
    const a = request(srv.conn, '/a', Buffer.from('1'));
    const b = request(srv.conn, '/b', Buffer.from('2'));
    await srv.next(FrameType.DATA);
    await srv.next(FrameType.DATA);
    srv.send(goaway(1));
    await b.answer.closed;
    expect(b.answer.headers).toBeUndefined();
    expect(b.stream.unprocessed).toBe(true); // its caller may send it again elsewhere
    expect(srv.conn.accepting).toBe(false);
    expect(() => request(srv.conn, '/c', Buffer.alloc(0))).toThrow('the connection is closing');
    srv.send(headersFrame(1, [[':status', '200']]));
    srv.send(headersFrame(1, [['grpc-status', '0']], Flag.END_STREAM));
    await a.answer.closed;
    expect(a.answer.trailers).toEqual({ 'grpc-status': '0' });
    expect(a.stream.unprocessed).toBe(false);
  });

  it('trailers without END_STREAM reset that stream (PROTOCOL_ERROR); the connection stays', async () => {
    const srv = await rawServer();
    const a = request(srv.conn, '/a', Buffer.alloc(0));
    await srv.next(FrameType.HEADERS);
    srv.send(headersFrame(1, [[':status', '200']]));
    srv.send(headersFrame(1, [['grpc-status', '0']]));
    await a.answer.closed;
    const rst = await srv.next(FrameType.RST_STREAM);
    expect([rst.id, rst.payload.readUInt32BE(0)]).toEqual([1, ErrorCode.PROTOCOL_ERROR]);
    expect(srv.conn.accepting).toBe(true);
  });

  it('response headers without :status reset the stream; a response on a stream we never opened, or a push, ends the connection', async () => {
    const srv = await rawServer();
    const a = request(srv.conn, '/a', Buffer.alloc(0));
    await srv.next(FrameType.HEADERS);
    srv.send(headersFrame(1, [['content-type', 'application/grpc']], Flag.END_STREAM));
    await a.answer.closed;
    expect((await srv.next(FrameType.RST_STREAM)).payload.readUInt32BE(0)).toBe(ErrorCode.PROTOCOL_ERROR);
    srv.send(headersFrame(7, [[':status', '200']]));
    const g = await srv.next(FrameType.GOAWAY);
    expect(g.payload.readUInt32BE(4)).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(srv.conn.closed).toBe(true);

    const srv2 = await rawServer();
    request(srv2.conn, '/a', Buffer.alloc(0));
    await srv2.next(FrameType.HEADERS);
    srv2.send(frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), encodeHeaders([[':method', 'GET']])])));
    expect((await srv2.next(FrameType.GOAWAY)).payload.readUInt32BE(4)).toBe(ErrorCode.PROTOCOL_ERROR);
    const srv3 = await rawServer();
    srv3.send(rstStreamFrame(2, ErrorCode.CANCEL));
    expect((await srv3.next(FrameType.GOAWAY)).payload.readUInt32BE(4)).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('interim (1xx) responses are skipped before the final one; one that ends the stream, a 101, or DATA before any response resets the stream', async () => {
    const srv = await rawServer();
    const a = request(srv.conn, '/a', Buffer.alloc(0));
    await srv.next(FrameType.HEADERS);
    srv.send(headersFrame(1, [[':status', '100']]));
    srv.send(headersFrame(1, [[':status', '103']]));
    srv.send(headersFrame(1, [[':status', '200']]));
    srv.send(frame(FrameType.DATA, 0, 1, Buffer.from('body')));
    srv.send(headersFrame(1, [['grpc-status', '0']], Flag.END_STREAM));
    await a.answer.closed;
    expect(a.answer.headers).toEqual({ ':status': '200' });
    expect(a.answer.trailers).toEqual({ 'grpc-status': '0' });
    expect(a.answer.body.toString()).toBe('body');

    // RFC 9113 8.1: malformed (a stream error), the connection stays.
    const malformed = [
      headersFrame(3, [[':status', '100']], Flag.END_STREAM),
      headersFrame(5, [[':status', '101']]),
      frame(FrameType.DATA, 0, 7, Buffer.from('body')),
    ];
    for (const [i, f] of malformed.entries()) {
      const id = 3 + 2 * i;
      const b = request(srv.conn, '/b', Buffer.alloc(0));
      expect(b.stream.id).toBe(id);
      srv.send(f);
      srv.send(headersFrame(id, [[':status', '200']]));
      srv.send(headersFrame(id, [['grpc-status', '0']], Flag.END_STREAM));
      await b.answer.closed;
      expect(b.answer.trailers).toBeUndefined();
      const rst = await srv.next(FrameType.RST_STREAM);
      expect([rst.id, rst.payload.readUInt32BE(0)]).toEqual([id, ErrorCode.PROTOCOL_ERROR]);
    }
    expect(srv.conn.accepting).toBe(true);
  });

  it('a server that enables push in its SETTINGS ends the connection (PROTOCOL_ERROR)', async () => {
    const srv = await rawServer();
    srv.send(settingsFrame([[Setting.ENABLE_PUSH, 1]]));
    expect((await srv.next(FrameType.GOAWAY)).payload.readUInt32BE(4)).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(srv.conn.closed).toBe(true);
  });

  it('an answer complete before the request body is out stops the body (RST_STREAM CANCEL)', async () => {
    const srv = await rawServer();
    // More than the default 65,535-octet window: the rest waits for a WINDOW_UPDATE that never comes.
    const a = request(srv.conn, '/a', Buffer.alloc(200_000));
    await srv.next(FrameType.HEADERS);
    srv.send(
      headersFrame(
        1,
        [
          [':status', '200'],
          ['grpc-status', '3'],
        ],
        Flag.END_STREAM,
      ),
    );
    await a.answer.closed;
    expect(a.answer.headers?.['grpc-status']).toBe('3');
    const rst = await srv.next(FrameType.RST_STREAM);
    expect([rst.id, rst.payload.readUInt32BE(0)]).toEqual([1, ErrorCode.CANCEL]);
    const sent = srv.frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    expect(sent).toBeLessThanOrEqual(65_535);
  });

  it('goes away by itself after its last stream id, and that stream still finishes', async () => {
    const { conn, peer } = await clientAndPeer({ lastStreamId: 3 });
    const received: Buffer[] = [];
    peer.on('data', (d: Buffer) => received.push(d));
    request(conn, '/a', Buffer.alloc(0));
    expect(conn.accepting).toBe(true);
    const last = request(conn, '/b', Buffer.alloc(0));
    expect(last.stream.id).toBe(3);
    expect(conn.accepting).toBe(false); // the next call goes to a new connection
    await new Promise((r) => setTimeout(r, 50));
    const all = Buffer.concat(received);
    // Its GOAWAY names no stream of the server's (it opened none), with NO_ERROR.
    const at = all.indexOf(Buffer.from([0, 0, 8, FrameType.GOAWAY, 0, 0, 0, 0, 0]));
    expect(at).toBeGreaterThan(0);
    expect(all.readUInt32BE(at + 9 + 4)).toBe(ErrorCode.NO_ERROR);
  });

  it('a request still waiting for a stream when the ids run out closes unprocessed (never sent: it may go to a new connection)', async () => {
    const { conn, peer } = await clientAndPeer({ lastStreamId: 3 });
    peer.write(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 1]]));
    while (!conn.established) await new Promise((r) => setTimeout(r, 5));
    const a = request(conn, '/a', Buffer.alloc(0));
    const b = request(conn, '/b', Buffer.alloc(0));
    const c = request(conn, '/c', Buffer.alloc(0));
    expect([a.stream.id, b.stream.id, c.stream.id]).toEqual([1, 0, 0]);
    peer.write(headersFrame(1, [[':status', '200']]));
    peer.write(headersFrame(1, [['grpc-status', '0']], Flag.END_STREAM));
    await a.answer.closed;
    await c.answer.closed;
    expect([b.stream.id, b.stream.closed, b.stream.unprocessed]).toEqual([3, false, false]);
    expect([c.stream.id, c.stream.unprocessed]).toEqual([0, true]);
    expect(a.stream.unprocessed).toBe(false);
  });
});

describe('the client side: requests waiting for a stream', () => {
  it('requests still waiting when the connection is destroyed close unprocessed (never sent); the open one does not', async () => {
    const { conn, peer } = await clientAndPeer();
    peer.write(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 1]]));
    while (!conn.established) await new Promise((r) => setTimeout(r, 5));
    const a = request(conn, '/a', Buffer.alloc(0));
    const waiting = [request(conn, '/w0', Buffer.alloc(0)), request(conn, '/w1', Buffer.alloc(0))];
    expect([a.stream.id, ...waiting.map((w) => w.stream.id)]).toEqual([1, 0, 0]);
    conn.destroy();
    expect([a.stream.closed, a.stream.unprocessed]).toEqual([true, false]); // it was sent: the server may have acted
    expect(waiting.map((w) => [w.stream.closed, w.stream.unprocessed])).toEqual([
      [true, true],
      [true, true],
    ]);
  });

  it('a waiting request that is cancelled leaves the queue at once (its headers and callbacks are not held until a stream frees), and is never sent', async () => {
    const { conn, peer } = await clientAndPeer();
    peer.write(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 1]]));
    while (!conn.established) await new Promise((r) => setTimeout(r, 5));
    const a = request(conn, '/a', Buffer.alloc(0));
    const waiting = Array.from({ length: 5 }, (_, i) => request(conn, `/w${i}`, Buffer.alloc(0)));
    expect(conn.openStreams).toBe(6);
    for (const w of waiting) w.stream.reset();
    expect(waiting.map((w) => w.stream.closed)).toEqual([true, true, true, true, true]);
    expect(conn.openStreams).toBe(1);
    const b = request(conn, '/b', Buffer.alloc(0));
    peer.write(headersFrame(1, [[':status', '200']]));
    peer.write(headersFrame(1, [['grpc-status', '0']], Flag.END_STREAM));
    await a.answer.closed;
    // The next to open is the one still waiting, on stream 3: the cancelled ones took no id.
    while (!b.stream.id) await new Promise((r) => setTimeout(r, 5));
    expect([b.stream.id, ...waiting.map((w) => w.stream.id)]).toEqual([3, 0, 0, 0, 0, 0]);
  });
});

describe('the client side: request headers through its HPACK encoder, decoded by node:http2', () => {
  it('sends 600 requests (20 at a time) with repeating and evicted :path, :authority and content-type while the server changes its SETTINGS_HEADER_TABLE_SIZE', async () => {
    const server = http2.createServer();
    const sessions: http2.ServerHttp2Session[] = [];
    server.on('session', (s) => sessions.push(s));
    server.on('stream', (stream, headers) => {
      const { ':path': path, ':authority': authority, 'content-type': contentType, te, 'x-n': n } = headers;
      stream.respond({ ':status': 200 });
      stream.end(JSON.stringify({ path, authority, contentType, te, n }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => server.close());
    const conn = await clientTo((server.address() as net.AddressInfo).port);
    const fieldsOf = (n: number) => {
      const long = (k: number) => 'p'.repeat((n * 7919) % k);
      return {
        path: [`/pb.Storage/Get`, `/pb.Storage/Put`, `/pb.Storage/${long(3000)}`][n % 3],
        authority: ['localhost', `host-${n % 4}`][n % 2],
        contentType: ['application/grpc', `application/grpc+${long(500)}`][n % 5 === 0 ? 1 : 0],
        te: 'trailers',
        n: String(n),
      };
    };
    const sizes = [0, 4096, 100, 1000, 64, 4096];
    for (let batch = 0; batch < 30; batch++) {
      if (batch % 4 === 3) for (const s of sessions) s.settings({ headerTableSize: sizes[batch % sizes.length] });
      const ns = Array.from({ length: 20 }, (_, i) => batch * 20 + i);
      const calls = ns.map((n) => {
        const f = fieldsOf(n);
        const stream = conn.request([
          [':method', 'POST'],
          [':scheme', 'http'],
          [':authority', f.authority],
          [':path', f.path],
          ['content-type', f.contentType],
          ['te', f.te],
          ['x-n', f.n],
        ]);
        const chunks: Buffer[] = [];
        stream.onData = (c) => chunks.push(c);
        const done = new Promise<unknown>((resolve) => {
          stream.onClose = () => resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : { reset: stream.resetCode });
        });
        stream.finishBody();
        return done;
      });
      expect(await Promise.all(calls)).toEqual(ns.map(fieldsOf));
    }
    expect(conn.accepting).toBe(true);
  });
});
