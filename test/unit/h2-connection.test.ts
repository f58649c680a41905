// Our HTTP/2 server connection (src/goplugin/h2/connection.ts) frame by frame, from a raw
// client socket: preface and SETTINGS, PING, flow control both ways (a 12 MB response
// through a small window), CONTINUATION, padding, PRIORITY, unknown frames, RST_STREAM,
// and protocol errors answered with GOAWAY or RST_STREAM. node:http2's client checks the
// same connection end to end.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { H2Connection, type H2Stream, type HeaderMap, MAX_CHATTER_PER_SECOND, STREAM_HIGH_WATER } from '../../src/goplugin/h2/connection';
import { ErrorCode, Flag, FrameType, frame, PREFACE, Setting, settingsFrame, windowUpdateFrame } from '../../src/goplugin/h2/frames';
import { encodeHeaders, HpackDecoder } from '../../src/goplugin/h2/hpack';

type Frame = { type: number; flags: number; id: number; payload: Buffer };

/** What the test server saw, and how it answers: echo the body; /big answers `big` bytes; /hang never answers. */
const seen: { headers: HeaderMap[]; closed: number[]; body: Map<number, number> } = { headers: [], closed: [], body: new Map() };
let big = 12 * 1024 * 1024;
const connections = new Set<H2Connection>();
/** /pressure: what write() returned, the bytes queued after, and when onDrain came. */
const pressure = { writes: [] as boolean[], queued: 0, drains: 0, queuedAtDrain: -1 };

function onStream(s: H2Stream, h: HeaderMap): void {
  seen.headers.push(h);
  if (h[':path'] === '/pressure') {
    s.respond(encodeHeaders([[':status', '200']]), false);
    for (let i = 0; i < 4; i++) pressure.writes.push(s.write(Buffer.alloc(40_000, i)));
    pressure.queued = s.queuedBytes;
    s.onDrain = () => {
      pressure.drains++;
      pressure.queuedAtDrain = s.queuedBytes;
      s.end(encodeHeaders([['grpc-status', '0']]));
    };
    return;
  }
  const chunks: Buffer[] = [];
  s.onData = (c) => chunks.push(c);
  s.onClose = () => seen.closed.push(s.id);
  s.onEnd = () => {
    const body = Buffer.concat(chunks);
    seen.body.set(s.id, body.length);
    if (h[':path'] === '/hang') return;
    if (h[':path'] === '/throw') throw new Error('a handler that throws');
    s.respond(encodeHeaders([[':status', '200']]), false);
    if (h[':path'] === '/big') s.write(Buffer.alloc(big, 7));
    else s.write(body);
    s.end(encodeHeaders([['grpc-status', '0']]));
  };
}

let server: net.Server;
let port: number;
beforeAll(async () => {
  server = net.createServer((sock) => {
    const c = new H2Connection(sock, onStream);
    connections.add(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => {
  for (const c of connections) c.destroy();
  server.close();
});

/** A raw client: frames in, frames out. */
class Raw {
  frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  readonly sock: net.Socket;
  readonly hpack = new HpackDecoder();

  constructor(
    settings: Array<[number, number]> = [],
    preface = true,
    private readonly ackSettings = true,
    to = port,
  ) {
    this.sock = net.connect(to, '127.0.0.1');
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        const f = { type: this.buf[3], flags: this.buf[4], id: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
        this.frames.push(f);
        // Acknowledge the server's SETTINGS, as every client must (unless a test says not to).
        if (this.ackSettings && f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK)) this.sock.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    if (preface) this.send(PREFACE, settingsFrame(settings));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(...bufs: Buffer[]): void {
    this.sock.write(Buffer.concat(bufs));
  }

  async until<T>(fn: () => T | undefined | false, ms = 5000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error('timed out');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  find(type: number, id?: number, flags = 0): Frame | undefined {
    return this.frames.find((f) => f.type === type && (id === undefined || f.id === id) && (f.flags & flags) === flags);
  }

  goaway(): Promise<number> {
    return this.until(() => {
      const g = this.find(FrameType.GOAWAY);
      return g ? g.payload.readUInt32BE(4) + 1 : undefined;
    }).then((c) => c - 1);
  }

  close(): void {
    this.sock.destroy();
  }
}

const req = (path: string) =>
  encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'x'],
    ['content-type', 'application/grpc'],
  ]);

describe('H2Connection', () => {
  it('sends SETTINGS and a connection WINDOW_UPDATE, ACKs SETTINGS and PING, ignores unknown frames and PRIORITY', async () => {
    const c = new Raw();
    await c.until(() => c.find(FrameType.SETTINGS, 0, Flag.ACK));
    const s = c.frames.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))!;
    expect(s.payload.length % 6).toBe(0);
    expect(c.find(FrameType.WINDOW_UPDATE, 0)).toBeDefined();
    c.send(
      frame(0xfa, 0xff, 0, Buffer.from('ignored')),
      frame(FrameType.PRIORITY, 0, 9, Buffer.alloc(5)),
      frame(FrameType.PING, 0, 0, Buffer.from('12345678')),
    );
    const ping = await c.until(() => c.find(FrameType.PING, 0, Flag.ACK));
    expect(ping.payload.toString()).toBe('12345678');
    expect(c.find(FrameType.GOAWAY)).toBeUndefined();
    c.close();
  });

  it('serves a request in HEADERS + CONTINUATION with padding and priority, and a padded DATA body; one write per answer', async () => {
    const c = new Raw();
    const block = req('/echo');
    const padded = Buffer.concat([Buffer.from([3]), Buffer.alloc(5), block.subarray(0, 10), Buffer.alloc(3)]);
    c.send(frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, padded), frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(10)));
    c.send(frame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, Buffer.concat([Buffer.from([2]), Buffer.from('hello'), Buffer.alloc(2)])));
    const trailers = await c.until(() => c.find(FrameType.HEADERS, 1, Flag.END_STREAM));
    expect(c.hpack.decode(c.find(FrameType.HEADERS, 1)!.payload)).toEqual([[':status', '200']]);
    expect(c.find(FrameType.DATA, 1)!.payload.toString()).toBe('hello');
    expect(c.hpack.decode(trailers.payload)).toEqual([['grpc-status', '0']]);
    expect(seen.headers.at(-1)![':path']).toBe('/echo');
    c.close();
  });

  it('streams a 12 MB response through a small window, queueing DATA until WINDOW_UPDATEs come; applies MAX_FRAME_SIZE', async () => {
    const c = new Raw([
      [Setting.INITIAL_WINDOW_SIZE, 100_000],
      [Setting.MAX_FRAME_SIZE, 32_768],
    ]);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, req('/big')));
    let got = 0;
    let counted = 0;
    for (;;) {
      await c.until(() => c.frames.length > counted);
      const fresh = c.frames.slice(counted);
      counted += fresh.length;
      const data = fresh.filter((f) => f.type === FrameType.DATA);
      for (const f of data) expect(f.payload.length).toBeLessThanOrEqual(32_768);
      const n = data.reduce((a, f) => a + f.payload.length, 0);
      got += n;
      // The stream window (100,000) bounds what is in flight; give back what arrived.
      expect(got).toBeLessThanOrEqual(big);
      if (fresh.some((f) => f.type === FrameType.HEADERS && f.flags & Flag.END_STREAM)) break;
      if (n) c.send(windowUpdateFrame(0, n), windowUpdateFrame(1, n));
    }
    expect(got).toBe(big);
    c.close();
  });

  it('stops producing DATA while the socket is backed up by a peer that does not read (bounded buffer), resumes on drain', async () => {
    let socket: net.Socket | undefined;
    const slow = net.createServer((sock) => {
      socket = sock;
      connections.add(new H2Connection(sock, onStream));
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const before = big;
    big = 32 * 1024 * 1024;
    try {
      // Flow control would let all of it through at once: only the socket can say stop.
      const c = new Raw([[Setting.INITIAL_WINDOW_SIZE, 0x7fffffff]], true, true, (slow.address() as net.AddressInfo).port);
      c.send(windowUpdateFrame(0, 0x7fffffff - 65_535));
      await c.until(() => c.find(FrameType.SETTINGS, 0, Flag.ACK));
      c.sock.pause();
      c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, req('/big')));
      let peak = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 25));
        peak = Math.max(peak, socket!.writableLength);
      }
      expect(peak).toBeLessThan(1024 * 1024);
      c.sock.resume();
      await c.until(() => c.find(FrameType.HEADERS, 1, Flag.END_STREAM), 20_000);
      expect(c.frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0)).toBe(big);
      c.close();
    } finally {
      big = before;
      slow.close();
    }
  });

  it('write() returns false once STREAM_HIGH_WATER bytes wait for the window; onDrain once fewer wait', async () => {
    const c = new Raw();
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, req('/pressure')));
    await c.until(() => pressure.writes.length === 4);
    // 160,000 bytes written, 65,535 sent (the initial window): false once 64 KiB wait.
    expect(pressure.writes).toEqual([true, true, true, false]);
    expect(pressure.queued).toBe(160_000 - 65_535);
    expect(pressure.queued).toBeGreaterThanOrEqual(STREAM_HIGH_WATER);
    await new Promise((r) => setTimeout(r, 50));
    expect(pressure.drains).toBe(0);
    c.send(windowUpdateFrame(0, 100_000), windowUpdateFrame(1, 100_000));
    await c.until(() => c.find(FrameType.HEADERS, 1, Flag.END_STREAM));
    expect(pressure.drains).toBe(1);
    expect(pressure.queuedAtDrain).toBeLessThan(STREAM_HIGH_WATER); // below it, not necessarily empty
    expect(c.frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0)).toBe(160_000);
    c.close();
  });

  it('gives a 12 MB request body back its window, and RST_STREAM from the client closes the stream', async () => {
    const c = new Raw();
    await c.until(() => c.find(FrameType.SETTINGS, 0, Flag.ACK));
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, req('/hang')));
    const chunk = Buffer.alloc(16_384, 1);
    const total = 12 * 1024 * 1024;
    // Beyond the initial windows only if the server gives them back.
    for (let sent = 0; sent < total; sent += chunk.length) c.send(frame(FrameType.DATA, sent + chunk.length >= total ? Flag.END_STREAM : 0, 1, chunk));
    await c.until(() => seen.body.get(1) === total && seen.body, 10_000);
    expect(c.find(FrameType.GOAWAY)).toBeUndefined();
    c.send(frame(FrameType.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])));
    await c.until(() => seen.closed.includes(1));
    c.close();
  });

  it('cancels open streams when the socket goes', async () => {
    const before = seen.closed.length;
    const c = new Raw();
    c.send(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, req('/hang')),
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, req('/hang')),
    );
    await c.until(() => seen.headers.filter((h) => h[':path'] === '/hang').length >= 3);
    c.close();
    await c.until(() => seen.closed.length >= before + 2);
  });

  const errors: Array<[string, (c: Raw) => void | Promise<void>, number]> = [
    ['a bad preface', (c) => c.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), ErrorCode.PROTOCOL_ERROR],
    ['DATA on stream 0', (c) => c.send(frame(FrameType.DATA, 0, 0, Buffer.from('x'))), ErrorCode.PROTOCOL_ERROR],
    ['a frame above the max frame size', (c) => c.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(20_000))), ErrorCode.FRAME_SIZE_ERROR],
    [
      'an undecodable header block',
      (c) => c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))),
      ErrorCode.COMPRESSION_ERROR,
    ],
    [
      'a frame between HEADERS and CONTINUATION',
      (c) => c.send(frame(FrameType.HEADERS, 0, 1, req('/x').subarray(0, 3)), frame(FrameType.PING, 0, 0, Buffer.alloc(8))),
      ErrorCode.PROTOCOL_ERROR,
    ],
    ['a PING of the wrong size', (c) => c.send(frame(FrameType.PING, 0, 0, Buffer.alloc(7))), ErrorCode.FRAME_SIZE_ERROR],
    ['a connection WINDOW_UPDATE beyond 2^31-1', (c) => c.send(windowUpdateFrame(0, 0x7fffffff)), ErrorCode.FLOW_CONTROL_ERROR],
    ['a bad INITIAL_WINDOW_SIZE', (c) => c.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0x80000000]])), ErrorCode.FLOW_CONTROL_ERROR],
    ['a bad MAX_FRAME_SIZE', (c) => c.send(settingsFrame([[Setting.MAX_FRAME_SIZE, 100]])), ErrorCode.PROTOCOL_ERROR],
    ['ENABLE_PUSH of 2', (c) => c.send(settingsFrame([[Setting.ENABLE_PUSH, 2]])), ErrorCode.PROTOCOL_ERROR],
    ['ENABLE_CONNECT_PROTOCOL of 2', (c) => c.send(settingsFrame([[Setting.ENABLE_CONNECT_PROTOCOL, 2]])), ErrorCode.PROTOCOL_ERROR],
    ['NO_RFC7540_PRIORITIES of 2', (c) => c.send(settingsFrame([[Setting.NO_RFC7540_PRIORITIES, 2]])), ErrorCode.PROTOCOL_ERROR],
    ['an even stream id', (c) => c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 2, req('/x'))), ErrorCode.PROTOCOL_ERROR],
    [
      'a header block beyond the bound',
      (c) => {
        for (let i = 0; i < 20; i++) c.send(frame(i ? FrameType.CONTINUATION : FrameType.HEADERS, 0, 1, Buffer.alloc(16_000)));
      },
      ErrorCode.ENHANCE_YOUR_CALM,
    ],
    ['bad padding', (c) => c.send(frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([5, 1]))), ErrorCode.PROTOCOL_ERROR],
    ...(
      [
        ['DATA', frame(FrameType.DATA, 0, 2, Buffer.from('x'))],
        ['RST_STREAM', frame(FrameType.RST_STREAM, 0, 2, Buffer.alloc(4))],
        ['WINDOW_UPDATE', windowUpdateFrame(2, 1)],
      ] as const
    ).map(([what, f]): [string, (c: Raw) => void, number] => [
      // Stream 2 is below the last stream the client opened (3) but even: only we could open it (5.1.1).
      `${what} on an even stream, which is idle`,
      (c) => c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 3, req('/hang')), f),
      ErrorCode.PROTOCOL_ERROR,
    ]),
    ['a GOAWAY shorter than 8 octets', (c) => c.send(frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(4))), ErrorCode.FRAME_SIZE_ERROR],
    [
      'HEADERS too short for its PRIORITY fields',
      (c) => c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PRIORITY, 1, Buffer.alloc(3))),
      ErrorCode.FRAME_SIZE_ERROR,
    ],
    ['a PADDED DATA frame without its pad length', (c) => c.send(frame(FrameType.DATA, Flag.PADDED, 1)), ErrorCode.FRAME_SIZE_ERROR],
    [
      // Each empty fragment was kept (and free under the byte bound): memory grew without end.
      'a flood of empty CONTINUATION frames',
      async (c) => {
        await c.until(() => c.find(FrameType.SETTINGS)); // so that our SETTINGS ACK does not land inside the block
        c.send(frame(FrameType.HEADERS, 0, 1, req('/x').subarray(0, 3)), ...Array.from({ length: 100_000 }, () => frame(FrameType.CONTINUATION, 0, 1)));
      },
      ErrorCode.ENHANCE_YOUR_CALM,
    ],
  ];
  for (const [what, act, code] of errors)
    it(`answers ${what} with GOAWAY (${code}) and closes`, async () => {
      const c = new Raw([], what !== 'a bad preface');
      await act(c);
      expect(await c.goaway()).toBe(code);
      await c.until(() => c.closed);
    });

  it('ends a connection that floods it with PINGs, SETTINGS, reset streams or stream errors (ENHANCE_YOUR_CALM), and serves one that stays under the limit', async () => {
    const pings = new Raw();
    pings.send(...Array.from({ length: MAX_CHATTER_PER_SECOND + 1 }, (_, i) => frame(FrameType.PING, 0, 0, Buffer.alloc(8, i & 0xff))));
    expect(await pings.goaway()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    const settings = new Raw();
    settings.send(...Array.from({ length: MAX_CHATTER_PER_SECOND + 1 }, () => settingsFrame([])));
    expect(await settings.goaway()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    // "Rapid reset": open a stream the server is working on, reset it, again and again.
    const resets = new Raw();
    const opened: Buffer[] = [];
    for (let i = 0; i <= MAX_CHATTER_PER_SECOND; i++) {
      const id = 2 * i + 1;
      opened.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, req('/hang')), frame(FrameType.RST_STREAM, 0, id, Buffer.alloc(4)));
    }
    resets.send(...opened);
    expect(await resets.goaway()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    // Stream errors it provokes, each answered with RST_STREAM: PRIORITY frames of the wrong size.
    const provoked = new Raw();
    provoked.send(...Array.from({ length: MAX_CHATTER_PER_SECOND + 1 }, (_, i) => frame(FrameType.PRIORITY, 0, 2 * i + 1, Buffer.alloc(4))));
    expect(await provoked.goaway()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    // Under the limit: 100 PINGs all answered, no GOAWAY.
    const calm = new Raw();
    calm.send(...Array.from({ length: 100 }, (_, i) => frame(FrameType.PING, 0, 0, Buffer.alloc(8, i))));
    await calm.until(() => calm.frames.filter((f) => f.type === FrameType.PING && f.flags & Flag.ACK).length === 100);
    expect(calm.find(FrameType.GOAWAY)).toBeUndefined();
    for (const c of [pings, settings, resets, provoked, calm]) c.close();
  });

  it('ends a connection whose client never acknowledges the SETTINGS (SETTINGS_TIMEOUT)', async () => {
    const quick = net.createServer((sock) => connections.add(new H2Connection(sock, onStream, { settingsTimeoutMs: 200 })));
    await new Promise<void>((r) => quick.listen(0, '127.0.0.1', r));
    try {
      const to = (quick.address() as net.AddressInfo).port;
      const silent = new Raw([], true, false, to);
      expect(await silent.goaway()).toBe(ErrorCode.SETTINGS_TIMEOUT);
      const polite = new Raw([], true, true, to);
      polite.send(frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
      await polite.until(() => polite.find(FrameType.PING, 0, Flag.ACK));
      await new Promise((r) => setTimeout(r, 400));
      expect(polite.find(FrameType.GOAWAY)).toBeUndefined();
      silent.close();
      polite.close();
    } finally {
      quick.close();
    }
  });

  it('resets (RST_STREAM) a malformed request, an oversized header list, DATA after END_STREAM and a throwing handler; the connection lives on', async () => {
    const c = new Raw();
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, encodeHeaders([[':method', 'POST']]))); // no :path
    const huge = Buffer.concat([req('/x'), encodeHeaders([['big', 'v'.repeat(70_000)]])]); // above MAX_HEADER_LIST_SIZE
    for (let off = 0; off < huge.length; off += 16_000)
      c.send(
        frame(
          off ? FrameType.CONTINUATION : FrameType.HEADERS,
          (off + 16_000 >= huge.length ? Flag.END_HEADERS : 0) | (off ? 0 : Flag.END_STREAM),
          3,
          huge.subarray(off, off + 16_000),
        ),
      );
    c.send(
      frame(FrameType.HEADERS, Flag.END_HEADERS, 5, req('/hang')),
      frame(FrameType.DATA, Flag.END_STREAM, 5, Buffer.from('a')),
      frame(FrameType.DATA, 0, 5, Buffer.from('b')),
    );
    const rst = (id: number) => c.until(() => c.find(FrameType.RST_STREAM, id)).then((f) => f.payload.readUInt32BE(0));
    expect(await rst(1)).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(await rst(3)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
    expect(await rst(5)).toBe(ErrorCode.STREAM_CLOSED);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 9, req('/throw')));
    expect(await rst(9)).toBe(ErrorCode.INTERNAL_ERROR);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 11, req('/echo')));
    await c.until(() => c.find(FrameType.HEADERS, 11, Flag.END_STREAM));
    expect(c.find(FrameType.GOAWAY)).toBeUndefined();
    c.close();
  });

  it('resets malformed requests (8.1.1, 8.2, 8.3): bad names, values, pseudo-headers, connection fields, trailers, content-length', async () => {
    const c = new Raw();
    const base: Array<[string, string]> = [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/echo'],
      [':authority', 'x'],
      ['content-type', 'application/grpc'],
    ];
    const without = (name: string) => base.filter(([n]) => n !== name);
    const bad: Array<Array<[string, string]>> = [
      [[':status', '200'], ...base], // a response pseudo-header
      [[':protocol', 'websocket'], ...base], // extended CONNECT is not enabled
      [...base.slice(0, 3), [':foo', 'x'], ...base.slice(3)],
      without(':scheme'),
      [...without(':path'), [':path', '']],
      [[':method', 'CONNECT'], ...without(':method')],
      [...base, ['connection', 'keep-alive']],
      [...base, ['transfer-encoding', 'chunked']],
      [...base, ['te', 'gzip']],
      [...base, ['x-a', 'a\r\nb']],
      [...base, ['x-a', 'a\0b']],
      [...base, ['x-a', ' padded']],
      [...base, ['x a', 'v']],
      [...base, ['x:a', 'v']],
      [...base, ['', 'v']],
      [...base, ['x-\u00e9', 'v']],
      [...base, ['content-length', '-1']],
      [...base, ['content-length', '1'], ['content-length', '1']],
    ];
    let id = 1;
    for (const list of bad) {
      c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, id, encodeHeaders(list)), frame(FrameType.DATA, Flag.END_STREAM, id, Buffer.from('ab')));
      id += 2;
    }
    const rst = (n: number) => c.until(() => c.find(FrameType.RST_STREAM, n)).then((f) => f.payload.readUInt32BE(0));
    for (let n = 1; n < id; n += 2) expect([n, await rst(n)]).toEqual([n, ErrorCode.PROTOCOL_ERROR]);
    expect(seen.headers.some((h) => h[':path'] === '/echo' && h['x-a'] !== undefined)).toBe(false);
    // A body longer than content-length, a shorter one, trailers with a pseudo-header.
    const cl = (n: string) => encodeHeaders([...base, ['content-length', n]]);
    const more = id;
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, more, cl('1')), frame(FrameType.DATA, 0, more, Buffer.from('ab')));
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, more + 2, cl('3')), frame(FrameType.DATA, Flag.END_STREAM, more + 2, Buffer.from('ab')));
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, more + 4, cl('3')));
    c.send(
      frame(FrameType.HEADERS, Flag.END_HEADERS, more + 6, req('/hang')),
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, more + 6, encodeHeaders([[':path', '/x']])),
    );
    for (let n = more; n <= more + 6; n += 2) expect([n, await rst(n)]).toEqual([n, ErrorCode.PROTOCOL_ERROR]);
    // Well-formed: te: trailers, a matching content-length, trailers without pseudo-headers.
    const ok = more + 8;
    c.send(
      frame(FrameType.HEADERS, Flag.END_HEADERS, ok, encodeHeaders([...base, ['te', 'trailers'], ['content-length', '2'], ['x-a', 'a b']])),
      frame(FrameType.DATA, 0, ok, Buffer.from('ab')),
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, ok, encodeHeaders([['x-trailer', 'v']])),
    );
    const data = await c.until(() => c.find(FrameType.DATA, ok));
    expect(data.payload.toString()).toBe('ab');
    await c.until(() => c.find(FrameType.HEADERS, ok, Flag.END_STREAM));
    expect(c.find(FrameType.RST_STREAM, ok)).toBeUndefined();
    expect(c.find(FrameType.GOAWAY)).toBeUndefined();
    c.close();
  });

  it('resets a stream that depends on itself, in PRIORITY or HEADERS (5.3.1); the connection lives on', async () => {
    const c = new Raw();
    const dependsOn = (id: number) => Buffer.from([0, 0, 0, id, 16]);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, req('/hang')), frame(FrameType.PRIORITY, 0, 1, dependsOn(1)));
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM | Flag.PRIORITY, 3, Buffer.concat([dependsOn(3), req('/echo')])));
    const rst = (id: number) => c.until(() => c.find(FrameType.RST_STREAM, id)).then((f) => f.payload.readUInt32BE(0));
    expect(await rst(1)).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(await rst(3)).toBe(ErrorCode.PROTOCOL_ERROR);
    // Depending on another stream is fine.
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM | Flag.PRIORITY, 5, Buffer.concat([dependsOn(1), req('/echo')])));
    await c.until(() => c.find(FrameType.HEADERS, 5, Flag.END_STREAM));
    expect(c.find(FrameType.RST_STREAM, 5)).toBeUndefined();
    expect(c.find(FrameType.GOAWAY)).toBeUndefined();
    c.close();
  });

  it('starts the first header block after a smaller SETTINGS_HEADER_TABLE_SIZE with a table size update to it (RFC 7541 4.2), and only that one', async () => {
    const c = new Raw([[Setting.HEADER_TABLE_SIZE, 100]]);
    await c.until(() => c.find(FrameType.SETTINGS, 0, Flag.ACK));
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, req('/echo')));
    const trailers = await c.until(() => c.find(FrameType.HEADERS, 1, Flag.END_STREAM));
    const first = c.find(FrameType.HEADERS, 1)!;
    // 001xxxxx with a 5-bit prefix: 100 = 31 + 69; then :status 200 (static index 8).
    expect([...first.payload]).toEqual([0x3f, 69, 0x88]);
    expect(c.hpack.decode(first.payload)).toEqual([[':status', '200']]);
    expect(c.hpack.decode(trailers.payload)).toEqual([['grpc-status', '0']]);
    expect(trailers.payload[0] & 0xe0).not.toBe(0x20);
    c.close();
  });

  it('answers node:http2 clients whose header table is smaller than 4096 or empty', async () => {
    for (const headerTableSize of [0, 1000]) {
      const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { headerTableSize } });
      session.on('error', () => undefined);
      for (let i = 0; i < 3; i++) {
        const answer = await new Promise<string>((resolve) => {
          const r = session.request({ ':method': 'POST', ':path': '/echo', 'content-type': 'application/grpc' });
          let status = '';
          r.on('response', (h) => {
            status = String(h[':status']);
          });
          r.on('trailers', (t) => resolve(`${status} ${t['grpc-status']}`));
          r.on('error', (e) => resolve(e.message));
          r.end('x');
        });
        expect([headerTableSize, i, answer]).toEqual([headerTableSize, i, '200 0']);
      }
      session.destroy();
    }
  });

  it('serves node:http2 clients end to end: several streams at once, bodies both ways, GOAWAY on close()', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const one = (path: string, body: Buffer) =>
      new Promise<{ status: number; body: Buffer; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
        const r = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc' });
        const parts: Buffer[] = [];
        let status = 0;
        let trailers: http2.IncomingHttpHeaders = {};
        r.on('response', (h) => {
          status = Number(h[':status']);
        });
        r.on('trailers', (t) => {
          trailers = t;
        });
        r.on('data', (d) => parts.push(d));
        r.on('end', () => resolve({ status, body: Buffer.concat(parts), trailers }));
        r.on('error', reject);
        r.end(body);
      });
    big = 3 * 1024 * 1024;
    const results = await Promise.all([one('/echo', Buffer.alloc(2_000_000, 3)), one('/big', Buffer.alloc(0)), one('/echo', Buffer.from('x'))]);
    expect(results.map((r) => [r.status, r.body.length, r.trailers['grpc-status']])).toEqual([
      [200, 2_000_000, '0'],
      [200, big, '0'],
      [200, 1, '0'],
    ]);
    const goaway = new Promise<number>((r) => session.once('goaway', (code) => r(code)));
    for (const c of connections) c.close();
    expect(await goaway).toBe(ErrorCode.NO_ERROR);
    session.destroy();
  });
});

describe('H2Connection response headers through its HPACK encoder, decoded by node:http2', () => {
  /** Seeded: the response to request `n`, long values among them so that entries are evicted. */
  function responseOf(n: number) {
    let a = n * 2654435761;
    const rand = (k: number) => {
      a = (Math.imul(a ^ (a >>> 15), 2246822519) + 0x9e3779b9) >>> 0;
      return a % k;
    };
    const contentType = ['application/grpc', 'application/grpc+proto', `application/grpc+${'x'.repeat(rand(3000))}`][rand(3)];
    const status = String([0, 0, 0, 5, 13][rand(5)]);
    const message = rand(3) === 0 ? `failed ${'m'.repeat(rand(200))}` : '';
    const trailersOnly = rand(5) === 0;
    return { contentType, status, message, trailersOnly };
  }

  it('answers 600 requests (20 at a time) with repeating and evicted fields while the client changes its SETTINGS_HEADER_TABLE_SIZE', async () => {
    const srv = net.createServer((sock) => {
      const c = new H2Connection(sock, (s, h) => {
        const r = responseOf(Number(h['x-n']));
        const head: Array<[string, string]> = [
          [':status', '200'],
          ['content-type', r.contentType],
          ['x-n', String(h['x-n'])],
        ];
        const trailers: Array<[string, string]> = [['grpc-status', r.status]];
        if (r.message) trailers.push(['grpc-message', r.message]);
        s.onEnd = () => {
          if (r.trailersOnly) return s.respond([...head, ...trailers], true);
          s.respond(head, false);
          s.write(Buffer.from('body'));
          s.end(trailers);
        };
      });
      connections.add(c);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const session = http2.connect(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`);
    session.on('error', () => undefined);
    const one = (n: number) =>
      new Promise<unknown>((resolve) => {
        const r = session.request({ ':method': 'POST', ':path': '/x', 'x-n': String(n) });
        const got: Record<string, unknown> = {};
        r.on('response', (h) => Object.assign(got, { contentType: h['content-type'], n: h['x-n'], status: h['grpc-status'], message: h['grpc-message'] }));
        r.on('trailers', (t) => Object.assign(got, { status: t['grpc-status'], message: t['grpc-message'] }));
        r.on('error', (e) => resolve({ n, error: e.message }));
        r.on('close', () => resolve(got));
        r.resume();
        r.end();
      });
    const sizes = [4096, 0, 100, 4096, 1000, 64, 8192, 300];
    for (let batch = 0; batch < 30; batch++) {
      if (batch % 4 === 3) session.settings({ headerTableSize: sizes[batch % sizes.length] });
      const ns = Array.from({ length: 20 }, (_, i) => batch * 20 + i);
      const answers = await Promise.all(ns.map(one));
      expect(answers).toEqual(
        ns.map((n) => {
          const r = responseOf(n);
          return { contentType: r.contentType, n: String(n), status: r.status, message: r.message || undefined };
        }),
      );
    }
    session.destroy();
    srv.close();
  });
});
