// Our HTTP/2 server connection (src/goplugin/h2/connection.ts) against a misbehaving peer,
// over an in-memory socket: frames are fed to it synchronously and its output parsed back.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { H2Connection, type H2Stream } from '../../src/goplugin/h2/connection';
import { Flag, FrameType, frame, PREFACE, settingsFrame } from '../../src/goplugin/h2/frames';
import { encodeHeaders } from '../../src/goplugin/h2/hpack';

type Frame = { type: number; flags: number; id: number; payload: Buffer };

/** A socket in memory: what the connection writes is kept; `feed` is what the peer sends. */
class MemSocket extends Duplex {
  readonly written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.written.push(chunk);
    cb();
  }
  feed(...bufs: Buffer[]): void {
    this.emit('data', Buffer.concat(bufs));
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
function connect(onStream: (s: H2Stream) => void = () => undefined) {
  const sock = new MemSocket();
  const conn = new H2Connection(sock, (s) => onStream(s));
  sock.feed(PREFACE, settingsFrame([]), frame(FrameType.SETTINGS, Flag.ACK, 0));
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
});
