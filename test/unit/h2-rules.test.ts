// RFC 9113 rules of our HTTP/2 connection (src/goplugin/h2/connection.ts, stream.ts,
// fields.ts) that a mutation sweep found nothing else checked: what our SETTINGS say, the
// connection errors of frames on the wrong stream or of the wrong size, flow control at its
// exact bounds both ways, trailers, graceful close, and the limits of stream writes. Frames
// are fed to the connection over an in-memory socket and its output parsed back.
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Route, serveStream } from '../../src/goplugin/grpc-call';
import { frame as grpcFrame } from '../../src/goplugin/grpc-wire';
import { h2CallStream } from '../../src/goplugin/h2/call-stream';
import { H2Connection, type H2Stream, MAX_CHATTER_PER_SECOND, OUTPUT_HIGH_WATER, STREAM_HIGH_WATER } from '../../src/goplugin/h2/connection';
import { headerMap, validField } from '../../src/goplugin/h2/fields';
import {
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameType,
  frame,
  goawayFrame,
  PREFACE,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../../src/goplugin/h2/frames';
import { encodeHeaders, HpackDecoder } from '../../src/goplugin/h2/hpack';
import { methodDef } from '../../src/goplugin/protos';

type Frame = { type: number; flags: number; id: number; payload: Buffer };

/**
 * A socket in memory: what the connection writes is kept; `feed` is what the peer sends.
 * While `stalled`, nothing written is taken (a peer that does not read).
 */
class MemSocket extends Duplex {
  readonly written: Buffer[] = [];
  stalled = false;
  override write(chunk: Buffer): boolean {
    this.written.push(chunk);
    return super.write(chunk);
  }
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (!this.stalled) cb();
  }
  feed(...bufs: Buffer[]): void {
    this.emit('data', bufs.length === 1 ? bufs[0] : Buffer.concat(bufs));
  }
  frames(): Frame[] {
    const all = Buffer.concat(this.written);
    const out: Frame[] = [];
    // A client's output starts with the preface octets.
    for (let pos = all.subarray(0, PREFACE.length).equals(PREFACE) ? PREFACE.length : 0; pos + 9 <= all.length; ) {
      const len = all.readUIntBE(pos, 3);
      out.push({ type: all[pos + 3], flags: all[pos + 4], id: all.readUInt32BE(pos + 5) & 0x7fffffff, payload: all.subarray(pos + 9, pos + 9 + len) });
      pos += 9 + len;
    }
    return out;
  }
  first(type: number, id?: number): Frame | undefined {
    return this.frames().find((f) => f.type === type && (id === undefined || f.id === id));
  }
  /** The code of the GOAWAY we sent, if any. */
  goaway(): number | undefined {
    return this.first(FrameType.GOAWAY)?.payload.readUInt32BE(4);
  }
  rst(id: number): number | undefined {
    return this.first(FrameType.RST_STREAM, id)?.payload.readUInt32BE(0);
  }
  dataBytes(id?: number): number {
    return this.frames()
      .filter((f) => f.type === FrameType.DATA && (id === undefined || f.id === id))
      .reduce((n, f) => n + f.payload.length, 0);
  }
}

/** Whether our END_STREAM went out on stream `id`. */
const ended = (sock: MemSocket, id: number) =>
  sock.frames().some((f) => f.id === id && f.flags & Flag.END_STREAM && f.type !== FrameType.SETTINGS && f.type !== FrameType.PING);

/** Output is flushed in a microtask; a macrotask later it has been written. */
const tick = () => new Promise<void>((r) => setImmediate(r));

const req = (path: string) =>
  encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    ['content-type', 'application/grpc'],
  ]);
const headers = (id: number, block: Buffer, flags = 0) => frame(FrameType.HEADERS, Flag.END_HEADERS | flags, id, block);

/** A server connection past the preface (the peer's SETTINGS `settings`, and its ACK of ours). */
function server(
  onStream: (s: H2Stream) => void = () => undefined,
  settings: Array<[number, number]> = [],
  opts: ConstructorParameters<typeof H2Connection>[2] = {},
) {
  const sock = new MemSocket();
  const conn = new H2Connection(sock, (s) => onStream(s), opts);
  sock.feed(PREFACE, settingsFrame(settings), frame(FrameType.SETTINGS, Flag.ACK, 0));
  return { sock, conn };
}

/** A client connection whose server has sent its SETTINGS and acknowledged ours. */
function client(settings: Array<[number, number]> = []) {
  const sock = new MemSocket();
  const conn = new H2Connection(sock, () => undefined, { role: 'client' });
  sock.feed(settingsFrame(settings), frame(FrameType.SETTINGS, Flag.ACK, 0));
  const open = (path: string) => {
    const s = conn.request(req(path));
    s.finishBody();
    return s;
  };
  return { sock, conn, open };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('our SETTINGS and connection window', () => {
  it("a server's SETTINGS say its options (streams, window, header list, no push); the connection window is raised to its option", async () => {
    const sock = new MemSocket();
    new H2Connection(sock, () => undefined, { maxConcurrentStreams: 7, streamWindow: 5000, connectionWindow: 100_000, maxHeaderListSize: 9000 });
    await tick();
    const [settings, update] = sock.frames();
    expect(settings.type).toBe(FrameType.SETTINGS);
    const said = new Map<number, number>();
    for (let i = 0; i < settings.payload.length; i += 6) said.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    expect(Object.fromEntries(said)).toEqual({
      [Setting.MAX_CONCURRENT_STREAMS]: 7,
      [Setting.INITIAL_WINDOW_SIZE]: 5000,
      [Setting.MAX_HEADER_LIST_SIZE]: 9000,
      [Setting.ENABLE_PUSH]: 0,
    });
    // From the fixed initial 65,535 to 100,000.
    expect([update.type, update.id, update.payload.readUInt32BE(0)]).toEqual([FrameType.WINDOW_UPDATE, 0, 100_000 - DEFAULT_WINDOW]);
  });
});

describe('connection errors (GOAWAY with the code RFC 9113 gives, naming the last stream the peer opened)', () => {
  const open1 = headers(1, req('/a'));
  // What each sends, the code, and the last stream id its GOAWAY names (1 unless said).
  const cases: Array<[string, Buffer[], number, number?]> = [
    [
      'CONTINUATION of another stream (6.10)',
      [frame(FrameType.HEADERS, 0, 1, req('/a').subarray(0, 3)), frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, req('/a').subarray(3))],
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    ['PRIORITY on stream 0 (6.3)', [open1, frame(FrameType.PRIORITY, 0, 0, Buffer.alloc(5))], ErrorCode.PROTOCOL_ERROR],
    ['RST_STREAM on stream 0 (6.4)', [open1, rstStreamFrame(0, ErrorCode.CANCEL)], ErrorCode.PROTOCOL_ERROR],
    ['RST_STREAM of 3 octets (6.4)', [open1, frame(FrameType.RST_STREAM, 0, 1, Buffer.alloc(3))], ErrorCode.FRAME_SIZE_ERROR],
    ['RST_STREAM of 5 octets (6.4)', [open1, frame(FrameType.RST_STREAM, 0, 1, Buffer.alloc(5))], ErrorCode.FRAME_SIZE_ERROR],
    ['PING on a stream (6.7)', [open1, frame(FrameType.PING, 0, 1, Buffer.alloc(8))], ErrorCode.PROTOCOL_ERROR],
    ['GOAWAY on a stream (6.8)', [open1, frame(FrameType.GOAWAY, 0, 1, Buffer.alloc(8))], ErrorCode.PROTOCOL_ERROR],
    ['SETTINGS ACK with a payload (6.5)', [open1, frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(6))], ErrorCode.FRAME_SIZE_ERROR],
    ['SETTINGS of 5 octets (6.5)', [open1, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5))], ErrorCode.FRAME_SIZE_ERROR],
    ['SETTINGS on a stream (6.5)', [open1, frame(FrameType.SETTINGS, 0, 1)], ErrorCode.PROTOCOL_ERROR],
    ['MAX_FRAME_SIZE above 2^24-1 (6.5.2)', [open1, settingsFrame([[Setting.MAX_FRAME_SIZE, 0x1000000]])], ErrorCode.PROTOCOL_ERROR],
    ['a connection WINDOW_UPDATE of 0 (6.9)', [open1, windowUpdateFrame(0, 0)], ErrorCode.PROTOCOL_ERROR],
    ['padding as long as the DATA payload (6.1)', [open1, frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([4, 0, 0, 0]))], ErrorCode.PROTOCOL_ERROR],
    [
      'HEADERS padding longer than the rest (6.2)',
      [frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED, 1, Buffer.from([2, 0x82]))],
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    ['DATA on an odd stream the peer has not opened (5.1)', [open1, frame(FrameType.DATA, 0, 3, Buffer.from('x'))], ErrorCode.PROTOCOL_ERROR],
    ['HEADERS on a stream the peer opened and reset (5.1)', [open1, rstStreamFrame(1, ErrorCode.CANCEL), headers(1, req('/b'))], ErrorCode.PROTOCOL_ERROR],
    ['WINDOW_UPDATE on an odd stream the peer has not opened (5.1)', [open1, windowUpdateFrame(3, 1)], ErrorCode.PROTOCOL_ERROR],
  ];
  for (const [what, input, code, last = 1] of cases)
    it(what, async () => {
      const { sock, conn } = server();
      sock.feed(...input);
      await tick();
      expect(sock.goaway()).toBe(code);
      expect(sock.first(FrameType.GOAWAY)!.payload.readUInt32BE(0)).toBe(last);
      expect(conn.closed).toBe(true);
    });

  it('a SETTINGS ACK before the peer sent its SETTINGS (3.4)', async () => {
    const sock = new MemSocket();
    new H2Connection(sock, () => undefined);
    sock.feed(PREFACE, frame(FrameType.SETTINGS, Flag.ACK, 0));
    await tick();
    expect(sock.goaway()).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('HEADERS padding that leaves an empty fragment is fine (the block follows in CONTINUATION)', async () => {
    const opened: H2Stream[] = [];
    const { sock } = server((s) => opened.push(s));
    sock.feed(frame(FrameType.HEADERS, Flag.PADDED, 1, Buffer.from([3, 0, 0, 0])), frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, req('/a')));
    await tick();
    expect(sock.goaway()).toBeUndefined();
    expect(opened.length).toBe(1);
  });

  it('a PRIORITY frame of the wrong size resets its stream with FRAME_SIZE_ERROR (6.3); the connection lives on', async () => {
    const { sock } = server();
    sock.feed(headers(1, req('/a')), frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(4)), frame(FrameType.PRIORITY, 0, 3, Buffer.alloc(6)));
    await tick();
    expect([sock.rst(1), sock.rst(3), sock.goaway()]).toEqual([ErrorCode.FRAME_SIZE_ERROR, ErrorCode.FRAME_SIZE_ERROR, undefined]);
  });

  it('a stream that depends on itself in HEADERS with padding and priority is reset (5.3.1): the dependency follows the pad length', async () => {
    const { sock } = server();
    // Pad length 2, then stream dependency 3 and weight, the block, 2 octets of padding.
    const payload = (id: number) => Buffer.concat([Buffer.from([2, 0, 0, 0, id, 16]), req('/a'), Buffer.alloc(2)]);
    sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY, 3, payload(3)));
    sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY, 5, payload(3)));
    await tick();
    expect([sock.rst(3), sock.rst(5), sock.goaway()]).toEqual([ErrorCode.PROTOCOL_ERROR, undefined, undefined]);
  });

  it('a GOAWAY from a client with the reserved bit set in its last stream id: the bit is not part of the id (6.8)', async () => {
    const { sock, conn, open } = client();
    const [a, b] = [open('/a'), open('/b')];
    await tick();
    const p = Buffer.alloc(8);
    p.writeUInt32BE(0x80000001, 0);
    sock.feed(frame(FrameType.GOAWAY, 0, 0, p));
    // Stream 3 is above the last id (1): not processed, it may be sent again elsewhere.
    expect([a.closed, b.closed, b.unprocessed]).toEqual([false, true, true]);
    expect(conn.accepting).toBe(false);
  });

  it('client side: frames on the next stream id, which we have not opened, are a connection error (5.1)', async () => {
    const { sock, open } = client();
    open('/a');
    sock.feed(headers(3, encodeHeaders([[':status', '200']])));
    await tick();
    expect(sock.goaway()).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});

describe('SETTINGS_TIMEOUT', () => {
  it('is 10 s by default (6.5.3)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const sock = new MemSocket();
    new H2Connection(sock, () => undefined);
    sock.feed(PREFACE, settingsFrame([]));
    vi.advanceTimersByTime(9999);
    expect(sock.goaway()).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(sock.goaway()).toBe(ErrorCode.SETTINGS_TIMEOUT);
  });
});

describe('PING and the chatter limit', () => {
  it('a PING ACK is not answered', async () => {
    const { sock } = server();
    sock.feed(frame(FrameType.PING, Flag.ACK, 0, Buffer.alloc(8)));
    await tick();
    expect(sock.frames().filter((f) => f.type === FrameType.PING)).toEqual([]);
  });

  it(`answers ${MAX_CHATTER_PER_SECOND} PINGs in a second, and as many in each next second; one more in a second ends the connection`, async () => {
    let now = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    const { sock } = server();
    now += 1000; // the SETTINGS of the set-up counted in the second before
    const pings = (n: number) => Array.from({ length: n }, (_, i) => frame(FrameType.PING, 0, 0, Buffer.alloc(8, i & 0xff)));
    const acks = () => sock.frames().filter((f) => f.type === FrameType.PING && f.flags & Flag.ACK).length;
    sock.feed(...pings(MAX_CHATTER_PER_SECOND));
    await tick();
    expect([acks(), sock.goaway()]).toEqual([MAX_CHATTER_PER_SECOND, undefined]);
    for (let second = 1; second <= 3; second++) {
      now += 1000;
      sock.feed(...pings(MAX_CHATTER_PER_SECOND));
      await tick();
      expect([acks(), sock.goaway()]).toEqual([(second + 1) * MAX_CHATTER_PER_SECOND, undefined]);
    }
    now += 999;
    sock.feed(...pings(1));
    await tick();
    expect(sock.goaway()).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  });
});

describe('flow control at its bounds', () => {
  it("a stream's receive window counts every DATA frame: past it, FLOW_CONTROL_ERROR on that stream; up to it, fine (6.9.1)", async () => {
    const { sock } = server(() => undefined, [], { streamWindow: 1000 });
    sock.feed(headers(1, req('/a')), headers(3, req('/b')));
    // Below half the window: no WINDOW_UPDATE yet, so 400 + 601 is past it and 400 + 600 is not.
    sock.feed(frame(FrameType.DATA, 0, 1, Buffer.alloc(400)), frame(FrameType.DATA, 0, 1, Buffer.alloc(601)));
    sock.feed(frame(FrameType.DATA, 0, 3, Buffer.alloc(400)), frame(FrameType.DATA, 0, 3, Buffer.alloc(600)));
    await tick();
    expect([sock.rst(1), sock.rst(3), sock.goaway()]).toEqual([ErrorCode.FLOW_CONTROL_ERROR, undefined, undefined]);
  });

  it('the connection receive window is given back as DATA arrives: far more than it goes through (6.9)', async () => {
    const { sock } = server(() => undefined, [], { connectionWindow: 100_000, streamWindow: 1 << 20 });
    sock.feed(headers(1, req('/a')));
    const chunk = Buffer.alloc(16_000);
    for (let i = 0; i < 40; i++) sock.feed(frame(FrameType.DATA, 0, 1, chunk));
    await tick();
    expect(sock.goaway()).toBeUndefined();
    const given = sock
      .frames()
      .filter((f) => f.type === FrameType.WINDOW_UPDATE && f.id === 0)
      .slice(1) // the initial raise
      .reduce((n, f) => n + f.payload.readUInt32BE(0), 0);
    expect(given).toBeGreaterThanOrEqual(40 * 16_000 - 100_000);
  });

  it('a connectionWindow option below 65,535 cannot shrink the connection window the peer starts with (6.9.2): 65,535 octets are taken', async () => {
    const { sock } = server(() => undefined, [], { connectionWindow: 1000, streamWindow: 1 << 20 });
    sock.feed(headers(1, req('/a')));
    for (let i = 0; i < 3; i++) sock.feed(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_384)));
    sock.feed(frame(FrameType.DATA, 0, 1, Buffer.alloc(DEFAULT_WINDOW - 3 * 16_384)));
    await tick();
    expect(sock.goaway()).toBeUndefined();
    // Given back once half of it (32,768 octets) had arrived, as any window is; no raise before.
    expect(
      sock
        .frames()
        .filter((f) => f.type === FrameType.WINDOW_UPDATE && f.id === 0)
        .map((f) => f.payload.readUInt32BE(0)),
    ).toEqual([32_768]);
  });

  it("DATA waiting for a window of 0 goes out when the peer's SETTINGS raise INITIAL_WINDOW_SIZE (6.9.2)", async () => {
    const { sock } = server(
      (s) => {
        s.respond([[':status', '200']], false);
        s.write(Buffer.alloc(3000, 1));
        s.end([['grpc-status', '0']]);
      },
      [[Setting.INITIAL_WINDOW_SIZE, 0]],
    );
    sock.feed(headers(1, req('/a'), Flag.END_STREAM));
    await tick();
    expect(sock.dataBytes(1)).toBe(0);
    sock.feed(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 2000]]));
    await tick();
    expect(sock.dataBytes(1)).toBe(2000);
    sock.feed(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 3000]]));
    await tick();
    expect(sock.dataBytes(1)).toBe(3000);
    expect(sock.frames().at(-1)).toMatchObject({ type: FrameType.HEADERS, id: 1 });
  });

  it("DATA keeps to the connection's send window as well as the stream's (6.9.1)", async () => {
    const { sock } = server(
      (s) => {
        s.respond([[':status', '200']], false);
        s.write(Buffer.alloc(100_000, 1));
      },
      [[Setting.INITIAL_WINDOW_SIZE, 1_000_000]],
    );
    sock.feed(headers(1, req('/a'), Flag.END_STREAM));
    await tick();
    expect(sock.dataBytes(1)).toBe(DEFAULT_WINDOW);
    sock.feed(windowUpdateFrame(0, 10_000));
    await tick();
    expect(sock.dataBytes(1)).toBe(DEFAULT_WINDOW + 10_000);
  });

  it('DATA frames are at most OUTPUT_HIGH_WATER octets whatever MAX_FRAME_SIZE and the windows allow', async () => {
    const { sock } = server(
      (s) => {
        s.respond([[':status', '200']], false);
        s.write(Buffer.alloc(1 << 20, 1));
        s.end([['grpc-status', '0']]);
      },
      [
        [Setting.MAX_FRAME_SIZE, 0xffffff],
        [Setting.INITIAL_WINDOW_SIZE, 2 << 20],
      ],
    );
    sock.feed(windowUpdateFrame(0, 2 << 20), headers(1, req('/a'), Flag.END_STREAM));
    for (let i = 0; i < 100 && !ended(sock, 1); i++) await tick();
    const data = sock.frames().filter((f) => f.type === FrameType.DATA);
    expect(data.reduce((n, f) => n + f.payload.length, 0)).toBe(1 << 20);
    expect(Math.max(...data.map((f) => f.payload.length))).toBe(OUTPUT_HIGH_WATER);
  });

  it("a peer that does not read gets no more DATA for its WINDOW_UPDATEs while the socket's buffer is past its mark", async () => {
    const { sock } = server(
      (s) => {
        s.respond([[':status', '200']], false);
        s.write(Buffer.alloc(8 << 20, 1));
      },
      [[Setting.INITIAL_WINDOW_SIZE, 16 << 20]],
    );
    sock.feed(windowUpdateFrame(0, 16 << 20));
    sock.stalled = true;
    sock.feed(headers(1, req('/a'), Flag.END_STREAM));
    for (let i = 0; i < 5; i++) await tick();
    const before = sock.writableLength;
    expect(sock.writableNeedDrain).toBe(true);
    for (let i = 0; i < 40; i++) {
      sock.feed(windowUpdateFrame(1, 1), windowUpdateFrame(0, 1));
      await tick();
    }
    // What the WINDOW_UPDATEs made us write: the (unanswered) frames themselves, no DATA.
    expect(sock.writableLength).toBe(before);
  });

  it('DATA paused for OUTPUT_HIGH_WATER resumes by itself when the socket takes the write without asking for drain', async () => {
    const sock = new (class extends MemSocket {
      constructor() {
        super({ writableHighWaterMark: 16 << 20 });
      }
    })();
    new H2Connection(sock, (s) => {
      s.respond([[':status', '200']], false);
      s.write(Buffer.alloc(1 << 20, 1));
      s.end([['grpc-status', '0']]);
    });
    sock.feed(PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 2 << 20]]), frame(FrameType.SETTINGS, Flag.ACK, 0), windowUpdateFrame(0, 2 << 20));
    sock.feed(headers(1, req('/a'), Flag.END_STREAM));
    for (let i = 0; i < 50 && !ended(sock, 1); i++) await tick();
    expect(sock.dataBytes(1)).toBe(1 << 20);
    expect(sock.frames().at(-1)).toMatchObject({ type: FrameType.HEADERS, id: 1, flags: Flag.END_HEADERS | Flag.END_STREAM });
  });
});

describe('trailers from the client', () => {
  it('after END_STREAM: STREAM_CLOSED (5.1); without END_STREAM: PROTOCOL_ERROR (8.1); over MAX_HEADER_LIST_SIZE: ENHANCE_YOUR_CALM', async () => {
    const { sock } = server(() => undefined, [], { maxHeaderListSize: 300 });
    const trailers = encodeHeaders([['x-t', 'v']]);
    sock.feed(headers(1, req('/a'), Flag.END_STREAM), headers(1, trailers, Flag.END_STREAM));
    sock.feed(headers(3, req('/a')), headers(3, trailers));
    sock.feed(headers(5, req('/a')), headers(5, encodeHeaders([['x-t', 'v'.repeat(400)]]), Flag.END_STREAM));
    await tick();
    expect([sock.rst(1), sock.rst(3), sock.rst(5), sock.goaway()]).toEqual([
      ErrorCode.STREAM_CLOSED,
      ErrorCode.PROTOCOL_ERROR,
      ErrorCode.ENHANCE_YOUR_CALM,
      undefined,
    ]);
  });
});

describe('our side of a stream', () => {
  it('a response header block past the frame size goes as HEADERS + CONTINUATION, END_STREAM on the HEADERS only (6.2, 6.10)', async () => {
    const message = 'm'.repeat(40_000);
    const { sock } = server((s) =>
      s.respond(
        [
          [':status', '200'],
          ['grpc-status', '13'],
          ['grpc-message', message],
        ],
        true,
      ),
    );
    sock.feed(headers(1, req('/a'), Flag.END_STREAM));
    await tick();
    const fs = sock.frames().filter((f) => f.id === 1);
    expect(fs.length).toBeGreaterThanOrEqual(2);
    expect(fs.map((f) => [f.type, f.flags])).toEqual([
      [FrameType.HEADERS, Flag.END_STREAM],
      ...fs.slice(1, -1).map(() => [FrameType.CONTINUATION, 0]),
      [FrameType.CONTINUATION, Flag.END_HEADERS],
    ]);
    for (const f of fs) expect(f.payload.length).toBeLessThanOrEqual(16_384);
    expect(new HpackDecoder().decode(Buffer.concat(fs.map((f) => f.payload)), 65_536)).toEqual([
      [':status', '200'],
      ['grpc-status', '13'],
      ['grpc-message', message],
    ]);
  });

  it('a server that answers before the request ends tells the client to stop sending: RST_STREAM NO_ERROR after its END_STREAM (8.1)', async () => {
    const { sock } = server((s) => s.respond([[':status', '200']], true));
    sock.feed(headers(1, req('/a')), headers(3, req('/b'), Flag.END_STREAM));
    await tick();
    expect(sock.frames().map((f) => [f.type, f.id, f.type === FrameType.RST_STREAM ? f.payload.readUInt32BE(0) : f.flags])).toEqual(
      expect.arrayContaining([
        [FrameType.HEADERS, 1, Flag.END_HEADERS | Flag.END_STREAM],
        [FrameType.RST_STREAM, 1, ErrorCode.NO_ERROR],
        [FrameType.HEADERS, 3, Flag.END_HEADERS | Flag.END_STREAM],
      ]),
    );
    expect(sock.rst(3)).toBeUndefined();
  });

  it('write() is false once exactly STREAM_HIGH_WATER bytes wait; after end(), write, respond and end do nothing', async () => {
    const got: unknown[] = [];
    const { sock } = server((s) => {
      s.respond([[':status', '200']], false);
      got.push(s.write(Buffer.alloc(DEFAULT_WINDOW + STREAM_HIGH_WATER - 1, 1)));
      got.push(s.queuedBytes, s.write(Buffer.alloc(1, 2)), s.queuedBytes);
      s.end([['grpc-status', '0']]);
      got.push(s.write(Buffer.alloc(10, 3)), s.queuedBytes);
      s.respond([[':status', '500']], true);
      s.end([['grpc-status', '13']]);
    });
    sock.feed(headers(1, req('/a'), Flag.END_STREAM));
    await tick();
    expect(got).toEqual([true, STREAM_HIGH_WATER - 1, false, STREAM_HIGH_WATER, false, STREAM_HIGH_WATER]);
    sock.feed(windowUpdateFrame(0, 1 << 20), windowUpdateFrame(1, 1 << 20));
    for (let i = 0; i < 50 && !ended(sock, 1); i++) await tick();
    const fs = sock.frames().filter((f) => f.id === 1);
    expect(fs.filter((f) => f.type === FrameType.HEADERS).length).toBe(2);
    expect(sock.dataBytes(1)).toBe(DEFAULT_WINDOW + STREAM_HIGH_WATER);
    const body = Buffer.concat(fs.filter((f) => f.type === FrameType.DATA).map((f) => f.payload));
    expect(body.at(-1)).toBe(2);
    const decoder = new HpackDecoder();
    expect(fs.filter((f) => f.type === FrameType.HEADERS).map((f) => decoder.decode(f.payload, 65_536))).toEqual([
      [[':status', '200']],
      [['grpc-status', '0']],
    ]);
  });
});

describe('graceful close and the end of the socket', () => {
  it('close(): GOAWAY naming the last stream the peer opened, new streams refused, the open one finishes, then the socket ends', async () => {
    let answer: H2Stream | undefined;
    const { sock, conn } = server((s) => {
      answer ??= s;
    });
    sock.feed(headers(1, req('/a'), Flag.END_STREAM), headers(3, req('/b'), Flag.END_STREAM));
    conn.close();
    sock.feed(headers(5, req('/c'), Flag.END_STREAM));
    await tick();
    const g = sock.first(FrameType.GOAWAY)!;
    expect([g.payload.readUInt32BE(0), g.payload.readUInt32BE(4)]).toEqual([3, ErrorCode.NO_ERROR]);
    expect(sock.rst(5)).toBe(ErrorCode.REFUSED_STREAM);
    expect(conn.openStreams).toBe(2);
    answer!.respond([[':status', '200']], true);
    sock.feed(rstStreamFrame(3, ErrorCode.CANCEL));
    await tick();
    expect(sock.writableEnded).toBe(true);
  });

  it('close() without open streams ends the socket at once; a peer that never closes its side is dropped 5 s later', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { sock, conn } = server();
    conn.close();
    expect(sock.writableEnded).toBe(true);
    vi.advanceTimersByTime(4999);
    expect(sock.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(sock.destroyed).toBe(true);
  });

  it('after a connection error, a peer that never closes its side is dropped 1 s later', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { sock } = server();
    sock.feed(frame(FrameType.PING, 0, 1, Buffer.alloc(8)));
    expect(sock.goaway()).toBe(ErrorCode.PROTOCOL_ERROR);
    expect([sock.writableEnded, sock.destroyed]).toEqual([true, false]);
    vi.advanceTimersByTime(999);
    expect(sock.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(sock.destroyed).toBe(true);
  });
});

describe('the client side and a GOAWAY from the server', () => {
  it('ends its socket at once when no stream is open, or once the last open one is done', async () => {
    const idle = client();
    idle.sock.feed(goawayFrame(0, ErrorCode.NO_ERROR));
    expect([idle.conn.accepting, idle.sock.writableEnded]).toEqual([false, true]);

    const busy = client();
    const a = busy.open('/a');
    busy.sock.feed(goawayFrame(1, ErrorCode.NO_ERROR));
    expect([busy.conn.accepting, busy.sock.writableEnded]).toEqual([false, false]);
    busy.sock.feed(headers(1, encodeHeaders([[':status', '200']])), headers(1, encodeHeaders([['grpc-status', '0']]), Flag.END_STREAM));
    expect([a.closed, busy.sock.writableEnded]).toEqual([true, true]);
  });
});

describe('the client side: requests waiting for a stream', () => {
  it('open in the order they were made: one made as a stream closes waits behind those already waiting', async () => {
    const { conn, open } = client([[Setting.MAX_CONCURRENT_STREAMS, 1]]);
    const a = open('/a');
    const b = open('/b');
    let c: H2Stream | undefined;
    a.onClose = () => {
      c = open('/c');
    };
    expect([a.id, b.id]).toEqual([1, 0]);
    a.reset();
    expect([b.id, c!.id]).toEqual([3, 0]);
    b.reset();
    expect(c!.id).toBe(5);
    expect(conn.accepting).toBe(true);
  });
});

describe('header fields (RFC 9113 8.2, 8.3)', () => {
  const base: Array<[string, string]> = [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', '/a'],
  ];
  it('refuses what a request may not carry', () => {
    const bad: Array<Array<[string, string]>> = [
      [...base, ['x-a', 'trailing ']],
      [...base, ['x-a', 'tab\t']],
      [...base, ['x-a', '\tlead']],
      [...base, ['x-\x7f', 'v']],
      [...base, ['X-Upper', 'v']],
      [...base, ['keep-alive', '5']],
      [...base, ['proxy-connection', 'x']],
      [...base, ['upgrade', 'h2c']],
      [...base, ['content-length', '1234567890123456']],
      [base[0], ['x-a', 'v'], base[1], base[2]], // a pseudo-header after a field
      [...base, [':path', '/b']], // twice
      [base[0], base[1], [':path', '/a\r\nx: y']],
    ];
    for (const list of bad) expect([list, headerMap(list, 'request')]).toEqual([list, undefined]);
    expect(headerMap([...base, ['content-length', '123456789012345'], ['x-a', 'in side']], 'request')).toBeDefined();
    expect(headerMap([[':status', '2000']], 'response')).toBeUndefined();
    expect(headerMap([[':status', '20']], 'response')).toBeUndefined();
    expect(headerMap([[':status', '204']], 'response')).toEqual({ ':status': '204' });
  });

  it('a header list exactly at the size bound is decoded, one octet more is oversized; the last static entry (61) is static', () => {
    // www-authenticate (static 61, an empty value): 16 + 32 octets; x: 1 + 1 + 32.
    const block = Buffer.concat([Buffer.from([0x80 | 61]), encodeHeaders([['x', 'y']])]);
    expect(new HpackDecoder().decode(block, 48 + 34)).toEqual([
      ['www-authenticate', ''],
      ['x', 'y'],
    ]);
    expect(new HpackDecoder().decode(block, 48 + 33)).toBe('oversized');
  });

  it('te is allowed with "trailers" only, however often it was seen before', () => {
    for (let i = 0; i < 3; i++) {
      expect(validField('te', 'trailers')).toBe(true);
      expect(validField('te', 'gzip')).toBe(false);
    }
  });
});

describe('a gRPC call over a stream (call-stream.ts)', () => {
  /** A connection whose stream 1 does `act` with its call stream; the header blocks sent on it, decoded in order. */
  async function call(act: (c: ReturnType<typeof h2CallStream>) => void) {
    const { sock } = server((s) => act(h2CallStream(s)));
    sock.feed(headers(1, req('/a'), Flag.END_STREAM));
    for (let i = 0; i < 20 && !ended(sock, 1); i++) await tick();
    const decoder = new HpackDecoder();
    return sock
      .frames()
      .filter((f) => f.id === 1 && f.type === FrameType.HEADERS)
      .map((f) => ({ end: (f.flags & Flag.END_STREAM) !== 0, fields: decoder.decode(f.payload, 65_536) }));
  }

  it('trailers-only: :status 200, content-type and the status in the one HEADERS frame, ending the stream', async () => {
    expect(await call((c) => c.trailersOnly(5, 'not here'))).toEqual([
      {
        end: true,
        fields: [
          [':status', '200'],
          ['content-type', 'application/grpc'],
          ['grpc-status', '5'],
          ['grpc-message', 'not here'],
        ],
      },
    ]);
  });

  it('trailers: the status, and its details (percent-encoded) when there are any, OK included', async () => {
    const head = { end: false, fields: [[':status', '200'] as const, ['content-type', 'application/grpc'] as const] };
    const finished = (code: number, details: string) =>
      call((c) => {
        c.sendHeaders();
        c.write(Buffer.from([0, 0, 0, 0, 0]));
        c.finish(code, details);
      });
    expect(await finished(0, '')).toEqual([head, { end: true, fields: [['grpc-status', '0']] }]);
    expect(await finished(0, 'fine')).toEqual([
      head,
      {
        end: true,
        fields: [
          ['grpc-status', '0'],
          ['grpc-message', 'fine'],
        ],
      },
    ]);
    expect(await finished(13, '100% ü')).toEqual([
      head,
      {
        end: true,
        fields: [
          ['grpc-status', '13'],
          ['grpc-message', '100%25 %C3%BC'],
        ],
      },
    ]);
  });

  it('a request that is not gRPC: 415, ending the stream', async () => {
    expect(await call((c) => c.notGrpc())).toEqual([{ end: true, fields: [[':status', '415']] }]);
  });
});

describe('a gRPC call served over our stream (grpc-call.ts serveStream)', () => {
  const Check = methodDef<{ service: string }, { status: string }>('grpc.health.v1.Health', 'Check');
  const StreamStdio = methodDef<unknown, { channel: number; data: Buffer }>('plugin.GRPCStdio', 'StreamStdio');
  const BIG = 5 * 1024 * 1024; // above MAX_CALL_BACKLOG
  const routes = new Map<string, Route>([
    [
      Check.path,
      {
        method: Check as Route['method'],
        handler: ((_call: unknown, cb: (e: null, r: { status: string }) => void) => cb(null, { status: 'SERVING' })) as Route['handler'],
      },
    ],
    [
      StreamStdio.path,
      {
        method: StreamStdio as Route['method'],
        handler: ((call: { write(m: unknown): boolean; end(): void }) => {
          call.write({ channel: 1, data: Buffer.alloc(BIG, 1) });
          call.end();
        }) as Route['handler'],
      },
    ],
  ]);

  /** One call on stream 1 with `fields` added to its headers and `body` as its DATA: the DATA octets and the status that came back. */
  async function serve(path: string, body: Buffer, fields: Array<[string, string]> = []) {
    const sock = new MemSocket();
    const conn = new H2Connection(sock, (s, h) => serveStream(routes, h2CallStream(s), h));
    sock.feed(PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 16 << 20]]), frame(FrameType.SETTINGS, Flag.ACK, 0), windowUpdateFrame(0, 16 << 20));
    const block = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', path], ['content-type', 'application/grpc'], ...fields]);
    sock.feed(headers(1, block), frame(FrameType.DATA, Flag.END_STREAM, 1, body));
    for (let i = 0; i < 200 && !ended(sock, 1) && sock.rst(1) === undefined; i++) await tick();
    const decoder = new HpackDecoder();
    const status = sock
      .frames()
      .filter((f) => f.type === FrameType.HEADERS && f.id === 1)
      .flatMap((f) => decoder.decode(f.payload, 65_536) as Array<[string, string]>)
      .find(([n]) => n === 'grpc-status')?.[1];
    conn.destroy();
    return { data: sock.dataBytes(1), status, rst: sock.rst(1) };
  }
  const request = (service: string) => grpcFrame(Check.requestSerialize({ service }));

  it('a unary call: one message served; two, or one and part of another, are refused', async () => {
    expect((await serve(Check.path, request('a'))).status).toBe('0');
    expect((await serve(Check.path, Buffer.concat([request('a'), request('b')]))).status).toBe('12'); // UNIMPLEMENTED
    expect((await serve(Check.path, Buffer.concat([request('a'), request('b').subarray(0, 3)]))).status).toBe('13'); // INTERNAL
  });

  it('grpc-encoding identity is served, any other refused (UNIMPLEMENTED)', async () => {
    expect((await serve(Check.path, request('a'), [['grpc-encoding', 'identity']])).status).toBe('0');
    expect((await serve(Check.path, request('a'), [['grpc-encoding', 'gzip']])).status).toBe('12');
  });

  it('one message bigger than MAX_CALL_BACKLOG goes out whole when nothing else is queued', async () => {
    const r = await serve(StreamStdio.path, grpcFrame(Buffer.alloc(0)));
    expect(r).toMatchObject({ status: '0', rst: undefined });
    expect(r.data).toBeGreaterThan(BIG);
  });
});
