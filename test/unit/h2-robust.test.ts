// Our HTTP/2 server connection (src/goplugin/h2/connection.ts) against a misbehaving peer,
// over an in-memory socket: frames are fed to it synchronously and its output parsed back.
import { Duplex } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { H2Connection, type H2Stream, MAX_OUTPUT_BACKLOG, OUTPUT_HIGH_WATER } from '../../src/goplugin/h2/connection';
import {
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameType,
  frame,
  goawayFrame,
  MAX_WINDOW,
  PREFACE,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../../src/goplugin/h2/frames';
import { encodeHeaders } from '../../src/goplugin/h2/hpack';

type Frame = { type: number; flags: number; id: number; payload: Buffer };

/**
 * A socket in memory: what the connection writes is kept, in the order of its write() calls;
 * `feed` is what the peer sends. While `stalled`, nothing written is taken (a peer that does
 * not read): it stays in the socket's buffer.
 */
class MemSocket extends Duplex {
  readonly written: Buffer[] = [];
  stalled = false;
  private waiting: Array<() => void> = [];
  override write(chunk: Buffer): boolean {
    this.written.push(chunk);
    return super.write(chunk);
  }
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (this.stalled) this.waiting.push(cb);
    else cb();
  }
  /** The peer reads again. */
  unstall(): void {
    this.stalled = false;
    for (const cb of this.waiting.splice(0)) cb();
  }
  feed(...bufs: Buffer[]): void {
    this.emit('data', bufs.length === 1 ? bufs[0] : Buffer.concat(bufs));
  }
  /** The frames written so far. */
  frames(): Frame[] {
    const all = Buffer.concat(this.written);
    const out: Frame[] = [];
    for (let pos = 0; pos + 9 <= all.length; ) {
      const len = all.readUIntBE(pos, 3);
      out.push({ type: all[pos + 3], flags: all[pos + 4], id: all.readUInt32BE(pos + 5) & 0x7fffffff, payload: all.subarray(pos + 9, pos + 9 + len) });
      pos += 9 + len;
    }
    return out;
  }
}

/** Output is flushed in a microtask; a macrotask later it has been written. */
const tick = () => new Promise<void>((r) => setImmediate(r));

const req = (path: string) =>
  encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    ['content-type', 'application/grpc'],
  ]);

/** A connection past the preface, whose streams are handed to `onStream`. */
function connect(onStream: (s: H2Stream) => void = () => undefined, settings: Array<[number, number]> = []) {
  const sock = new MemSocket();
  const conn = new H2Connection(sock, (s) => onStream(s));
  sock.feed(PREFACE, settingsFrame(settings), frame(FrameType.SETTINGS, Flag.ACK, 0));
  return { sock, conn };
}

describe('H2Connection against a misbehaving peer', () => {
  it('contains a stream callback that throws on close: the connection lives on, destroy() does not throw', async () => {
    const { sock, conn } = connect((s) => {
      s.onClose = () => {
        throw new Error('onClose throws');
      };
    });
    sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, req('/a')), frame(FrameType.RST_STREAM, 0, 1, Buffer.alloc(4, 0)));
    sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS, 3, req('/b')));
    await tick();
    expect(sock.frames().find((f) => f.type === FrameType.GOAWAY)).toBeUndefined();
    expect(conn.openStreams).toBe(1);
    expect(() => conn.destroy()).not.toThrow();
    expect(conn.openStreams).toBe(0);
  });

  it('holds DATA back while the socket is full, answers PING meanwhile, then sends the rest in order with the trailers last', async () => {
    const chunks = 64;
    const { sock } = connect(
      (s) => {
        s.onEnd = () => {
          s.respond(encodeHeaders([[':status', '200']]), false);
          for (let i = 0; i < chunks; i++) s.write(Buffer.alloc(65_536, i));
          s.end(encodeHeaders([['grpc-status', '0']]));
        };
      },
      [[Setting.INITIAL_WINDOW_SIZE, MAX_WINDOW]],
    );
    sock.feed(windowUpdateFrame(0, MAX_WINDOW - DEFAULT_WINDOW));
    await tick();
    sock.stalled = true;
    sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, req('/big')));
    for (let i = 0; i < 5; i++) await tick();
    const dataBytes = (fs: Frame[]) => fs.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    // Flow control allows all 4 MiB; the socket's buffer holds what one write past its mark can leave.
    expect(dataBytes(sock.frames())).toBeLessThanOrEqual(sock.writableHighWaterMark + OUTPUT_HIGH_WATER);
    expect(sock.writableLength).toBeLessThanOrEqual(sock.writableHighWaterMark + OUTPUT_HIGH_WATER + 1024);
    sock.feed(frame(FrameType.PING, 0, 0, Buffer.from('stuck?..')));
    await tick();
    expect(sock.frames().find((f) => f.type === FrameType.PING && f.flags & Flag.ACK)).toBeDefined();
    sock.unstall();
    // Until nothing more is written for a few turns.
    for (let quiet = 0, n = -1; quiet < 3; await tick()) {
      quiet = sock.written.length === n ? quiet + 1 : 0;
      n = sock.written.length;
    }
    const frames = sock.frames().filter((f) => f.id === 1);
    expect(frames.at(-1)!.type).toBe(FrameType.HEADERS);
    expect(frames.at(-1)!.flags & Flag.END_STREAM).toBeTruthy();
    const body = Buffer.concat(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload));
    expect(body.length).toBe(chunks * 65_536);
    for (let i = 0; i < chunks; i++) expect(body[i * 65_536] === i && body[i * 65_536 + 65_535] === i).toBe(true);
  });

  it('drops a peer that does not read once MAX_OUTPUT_BACKLOG bytes wait for it (HEADERS do not wait for the socket)', async () => {
    const big = encodeHeaders([['grpc-message', 'x'.repeat(60_000)]]);
    const { sock, conn } = connect((s) => s.respond(big, true), [[Setting.MAX_FRAME_SIZE, 0xffffff]]);
    sock.stalled = true;
    let closed = false;
    conn.onClose = () => {
      closed = true;
    };
    for (let id = 1; id < 400 && !closed; id += 2) {
      sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, req('/x')));
      await tick();
    }
    expect(closed).toBe(true);
    expect(sock.destroyed).toBe(true);
    expect(sock.writableLength).toBeLessThanOrEqual(MAX_OUTPUT_BACKLOG);
  });

  it('joins a frame that arrives a byte at a time once, not again with every byte', () => {
    let got = 0;
    const { sock } = connect((s) => {
      s.onData = (d) => {
        got += d.length;
      };
    });
    sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, req('/a')));
    const f = Buffer.concat([frame(FrameType.DATA, 0, 1, Buffer.alloc(16_384, 1)), frame(FrameType.DATA, 0, 1, Buffer.alloc(16_384, 2))]);
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      for (let i = 0; i < f.length; i++) sock.feed(f.subarray(i, i + 1));
      const copied = concat.mock.results.reduce((n, r) => n + (r.value as Buffer).length, 0);
      // Once per frame (and its 9-octet header); it was once per byte: 268 MB copied for these 32 KiB.
      expect(copied).toBeLessThan(2 * f.length);
    } finally {
      concat.mockRestore();
    }
    expect(got).toBe(32_768);
  });

  it('after a GOAWAY from the peer and its last stream, ends the socket and then ignores what still arrives (no write after end)', async () => {
    const { sock, conn } = connect();
    let error: Error | undefined;
    sock.on('error', (e) => {
      error = e;
    });
    sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, req('/a')), goawayFrame(1, ErrorCode.NO_ERROR), frame(FrameType.RST_STREAM, 0, 1, Buffer.alloc(4)));
    await tick();
    expect(sock.writableEnded).toBe(true);
    const before = sock.written.length;
    sock.feed(frame(FrameType.PING, 0, 0, Buffer.alloc(8)), frame(FrameType.HEADERS, Flag.END_HEADERS, 1, req('/b')));
    await tick();
    expect(error).toBeUndefined();
    expect(sock.destroyed).toBe(false);
    expect(sock.written.length).toBe(before);
    conn.destroy();
    // The same in one chunk, with a frame after the end that is a connection error.
    const other = connect();
    other.sock.on('error', (e) => {
      error = e;
    });
    other.sock.feed(
      frame(FrameType.HEADERS, Flag.END_HEADERS, 1, req('/a')),
      goawayFrame(1, ErrorCode.NO_ERROR),
      frame(FrameType.RST_STREAM, 0, 1, Buffer.alloc(4)),
      frame(FrameType.PING, 0, 1, Buffer.alloc(8)),
    );
    await tick();
    expect(error).toBeUndefined();
    expect(other.sock.writableEnded).toBe(true);
    expect(other.sock.destroyed).toBe(false);
    other.conn.destroy();
  });

  it('answers flow-control and stream-limit violations as RFC 9113 says (5.1.2, 6.9, 6.9.1, 6.9.2)', async () => {
    const sock = new MemSocket();
    new H2Connection(sock, () => undefined, { streamWindow: 1000, maxConcurrentStreams: 3 });
    sock.feed(PREFACE, settingsFrame([]), frame(FrameType.SETTINGS, Flag.ACK, 0));
    for (const id of [1, 3, 5, 7]) sock.feed(frame(FrameType.HEADERS, Flag.END_HEADERS, id, req('/a')));
    sock.feed(
      frame(FrameType.DATA, 0, 1, Buffer.alloc(1001)), // beyond the stream's window
      windowUpdateFrame(3, 0), // a zero increment on a stream
      windowUpdateFrame(5, MAX_WINDOW), // past 2^31-1 on a stream
    );
    await tick();
    const rst = (id: number) =>
      sock
        .frames()
        .find((f) => f.type === FrameType.RST_STREAM && f.id === id)
        ?.payload.readUInt32BE(0);
    expect([rst(1), rst(3), rst(5), rst(7)]).toEqual([
      ErrorCode.FLOW_CONTROL_ERROR,
      ErrorCode.PROTOCOL_ERROR,
      ErrorCode.FLOW_CONTROL_ERROR,
      ErrorCode.REFUSED_STREAM,
    ]);
    expect(sock.frames().find((f) => f.type === FrameType.GOAWAY)).toBeUndefined();
    // A new INITIAL_WINDOW_SIZE that takes an open stream's window past 2^31-1 is a connection error.
    sock.feed(
      frame(FrameType.HEADERS, Flag.END_HEADERS, 9, req('/a')),
      windowUpdateFrame(9, MAX_WINDOW - DEFAULT_WINDOW),
      settingsFrame([[Setting.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW + 1]]),
    );
    await tick();
    expect(
      sock
        .frames()
        .find((f) => f.type === FrameType.GOAWAY)
        ?.payload.readUInt32BE(4),
    ).toBe(ErrorCode.FLOW_CONTROL_ERROR);
  });
});
