// A small deterministic fuzz of our HTTP/2 layer (src/goplugin/h2/): random and mutated
// HPACK blocks fed to the decoder, and random and mutated frame sequences fed to a server
// connection over an in-memory socket, from a seeded PRNG. Whatever arrives: no exception
// escapes, the connection either goes on or ends with a GOAWAY (its last frame), its output
// is whole frames with known error codes, and what it holds stays bounded.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { H2Connection, type H2Stream, type HeaderMap, OUTPUT_HIGH_WATER } from '../../src/goplugin/h2/connection';
import { DEFAULT_MAX_FRAME, ErrorCode, Flag, FrameType, frame, PREFACE, Setting, settingsFrame, windowUpdateFrame } from '../../src/goplugin/h2/frames';
import { encodeHeaders, HpackDecoder, HpackError } from '../../src/goplugin/h2/hpack';
import { CODES, huffmanDecode } from '../../src/goplugin/h2/huffman';

/** mulberry32: a small seeded PRNG, so that a failure can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)],
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}
type Rng = ReturnType<typeof prng>;

// ---- HPACK blocks ----

/** An HPACK integer (RFC 7541 5.1), sometimes padded with redundant 0x80 octets. */
function hpackInt(r: Rng, value: number, prefix: number, flags: number): number[] {
  const mask = (1 << prefix) - 1;
  if (value < mask) return [flags | value];
  const out = [flags | mask];
  let v = value - mask;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  if (r.chance(0.02)) {
    // The same value, padded with 0x80 octets: up to 5 continuation octets in all are allowed.
    out.push(v | 0x80);
    for (let i = r.chance(0.2) ? 150 : r.int(8); i > 0; i--) out.push(0x80);
    v = 0;
  }
  out.push(v);
  return out;
}

/** Huffman-code `text` (Appendix B), padded with ones. */
function huffman(text: Buffer): Buffer {
  const out: number[] = [];
  let acc = 0;
  let n = 0;
  for (const c of text) {
    const [code, len] = CODES[c];
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** i) & 1);
      if (++n === 8) {
        out.push(acc);
        acc = 0;
        n = 0;
      }
    }
  }
  if (n) out.push((acc << (8 - n)) | ((1 << (8 - n)) - 1));
  return Buffer.from(out);
}

function hpackString(r: Rng, text: string): Buffer {
  const raw = Buffer.from(text, 'latin1');
  const h = raw.length < 100 && r.chance(0.4);
  const body = h ? huffman(raw) : raw;
  return Buffer.concat([Buffer.from(hpackInt(r, body.length, 7, h ? 0x80 : 0)), body]);
}

const NAMES = [
  ':method',
  ':scheme',
  ':path',
  ':authority',
  ':status',
  ':foo',
  'content-type',
  'te',
  'content-length',
  'grpc-timeout',
  'x-a',
  'X-Up',
  'connection',
  '',
];
const VALUES = ['POST', 'http', '/echo', '/big', '/hang', '/throw', '/reset', '/only', 'application/grpc', 'trailers', '3', '1S', 'a\r\nb', ' x', '', 'v'];

/** One field of a header block, in any literal representation (RFC 7541 6.2), or (with probability `bad`) an index that may be past the tables. */
function field(r: Rng, name: string, value: string, bad: number): Buffer {
  // The first octets, then the name unless they index it, then the value.
  const literal = (first: number[], newName = true) => Buffer.concat([Buffer.from(first), ...(newName ? [hpackString(r, name)] : []), hpackString(r, value)]);
  if (r.chance(bad)) {
    return r.chance(0.5)
      ? Buffer.from(hpackInt(r, r.chance(0.1) ? r.int(1 << 20) : 1 + r.int(70), 7, 0x80)) // indexed
      : literal(hpackInt(r, 1 + r.int(70), 6, 0x40), false); // incremental indexing, indexed name
  }
  return literal([r.pick([0x40, 0x10, 0x00])]); // incremental indexing, never indexed, without indexing
}

/** A header block: mostly a request (in any representation), with size updates, odd fields, mutations. */
function headerBlock(r: Rng, bad = 0.1): Buffer {
  const out: Buffer[] = [];
  if (r.chance(0.1)) out.push(Buffer.from(hpackInt(r, r.chance(0.8) ? r.int(4097) : 4097 + r.int(1 << 20), 5, 0x20)));
  const request: Array<[string, string]> = [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', r.pick(['/echo', '/big', '/hang', '/throw', '/throw-on-close', '/reset', '/only'])],
    ['content-type', 'application/grpc'],
  ];
  for (const [n, v] of request) if (!r.chance(bad / 5)) out.push(r.chance(0.5) ? encodeHeaders([[n, v]]) : field(r, n, v, bad));
  for (let i = r.int(3); i > 0; i--)
    out.push(r.chance(bad) ? field(r, r.pick(NAMES), r.pick(VALUES), bad) : field(r, `x-${r.int(20)}`, 'v'.repeat(r.int(200)), bad));
  if (r.chance(bad / 5)) out.push(Buffer.from(hpackInt(r, r.int(5000), 5, 0x20))); // a size update after a field
  if (r.chance(0.005)) out.push(field(r, 'x-big', 'v'.repeat(60_000 + r.int(10_000)), 0)); // about the 64 KiB list limit
  return mutate(r, Buffer.concat(out), bad / 2);
}

/** Sometimes flip, insert, drop or truncate a few bytes. */
function mutate(r: Rng, b: Buffer, p: number): Buffer {
  if (!r.chance(p) || b.length === 0) return b;
  const out = Buffer.from(b);
  switch (r.int(3)) {
    case 0:
      for (let i = 1 + r.int(3); i > 0; i--) out[r.int(out.length)] = r.int(256);
      return out;
    case 1:
      return out.subarray(0, r.int(out.length));
    default: {
      const at = r.int(out.length);
      return Buffer.concat([out.subarray(0, at), r.bytes(1 + r.int(4)), out.subarray(at)]);
    }
  }
}

// ---- frames ----

const IDS = [0, 1, 2, 3, 4, 5, 7, 9, 11, 0x7fffffff];

/**
 * A frame of any type on a likely stream. Each way of being malformed is taken with
 * probability `state.bad` (per case: a mostly polite peer, or a hostile one); `next` is the
 * next new stream id, `block` the rest of a header block to send in CONTINUATION.
 */
function randomFrame(r: Rng, state: { next: number; block: Buffer | null; bad: number }): Buffer {
  const oops = () => r.chance(state.bad);
  // An open (or recently closed) stream, or now and then any id at all.
  const id = () => (oops() ? r.pick(IDS) : Math.max(1, state.next - 2 - 2 * r.int(2)));
  const flags = (...allowed: number[]) => allowed.reduce((f, a) => (r.chance(0.3) ? f | a : f), oops() ? r.int(256) : 0);
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0, 0);
    return b;
  };
  const size = (n: number) => (oops() ? r.int(2 * n + 2) : n);
  switch (r.int(12)) {
    case 0:
    case 1: {
      // HEADERS, sometimes padded, with priority, or split into CONTINUATION.
      const block = headerBlock(r, state.bad);
      const sid = oops() ? r.pick(IDS) : state.next;
      if (sid === state.next) state.next += 2;
      const f = flags(Flag.PADDED, Flag.PRIORITY, Flag.END_STREAM);
      const split = r.chance(0.2) ? r.int(block.length + 1) : block.length;
      const pad = f & Flag.PADDED ? r.int(20) : 0;
      const head = [...(f & Flag.PADDED ? [oops() ? r.int(256) : pad] : []), ...(f & Flag.PRIORITY ? [...u32(oops() ? sid : r.int(10)), r.int(256)] : [])];
      const payload = Buffer.concat([Buffer.from(head), block.subarray(0, split), Buffer.alloc(pad)]);
      const headers = frame(FrameType.HEADERS, f | (split < block.length ? 0 : Flag.END_HEADERS), sid, payload);
      if (split === block.length) return headers;
      if (oops()) {
        state.block = block.subarray(split); // maybe sent later, maybe never
        return headers;
      }
      return Buffer.concat([headers, frame(FrameType.CONTINUATION, Flag.END_HEADERS, sid, block.subarray(split))]);
    }
    case 2: {
      if (!state.block && !oops()) return frame(FrameType.PING, 0, 0, r.bytes(8));
      const rest = state.block ?? headerBlock(r, state.bad);
      state.block = null;
      return frame(FrameType.CONTINUATION, r.chance(0.8) ? Flag.END_HEADERS : 0, id(), rest);
    }
    case 3:
    case 4: {
      const f = flags(Flag.PADDED, Flag.END_STREAM);
      const body = r.bytes(oops() ? r.int(20_000) : r.int(300));
      const payload = f & Flag.PADDED ? Buffer.concat([Buffer.from([oops() ? r.int(256) : r.int(body.length + 1)]), body]) : body;
      return frame(FrameType.DATA, f, id(), payload);
    }
    case 5: {
      const inc = oops() ? r.pick([0, 0x7fffffff, 0x80000000, r.int(2 ** 32)]) : 1 + r.int(100_000);
      return frame(FrameType.WINDOW_UPDATE, 0, r.chance(0.4) ? 0 : id(), u32(inc).subarray(0, size(4)));
    }
    case 6: {
      if (r.chance(0.2)) return frame(FrameType.SETTINGS, Flag.ACK, 0, oops() ? r.bytes(6) : undefined);
      const polite: Array<[number, number]> = [
        [Setting.HEADER_TABLE_SIZE, r.int(1 << 16)],
        [Setting.MAX_CONCURRENT_STREAMS, r.int(1000)],
        [Setting.INITIAL_WINDOW_SIZE, r.int(1 << 20)],
        [Setting.MAX_FRAME_SIZE, 16_384 + r.int(100_000)],
        [Setting.MAX_HEADER_LIST_SIZE, r.int(1 << 20)],
        [0x4242, r.int(2 ** 32)],
      ];
      const edge = [0, 1, 2, 16_383, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000, 0xffffffff];
      const values = Array.from({ length: r.int(4) }, (): [number, number] => (oops() ? [r.int(11), r.pick(edge)] : r.pick(polite)));
      return oops() ? frame(FrameType.SETTINGS, 0, r.chance(0.5) ? 1 : 0, r.bytes(r.int(13))) : settingsFrame(values);
    }
    case 7:
      return frame(FrameType.PING, flags(Flag.ACK), oops() ? 1 : 0, r.bytes(size(8)));
    case 8:
      return frame(FrameType.RST_STREAM, 0, id(), u32(r.int(16)).subarray(0, size(4)));
    case 9: {
      const sid = id();
      return frame(FrameType.PRIORITY, 0, sid, Buffer.concat([u32(oops() ? sid : r.int(10)), Buffer.from([r.int(256)])]).subarray(0, size(5)));
    }
    case 10:
      if (!oops()) return frame(10 + r.int(246), r.int(256), r.pick(IDS), r.bytes(r.int(50))); // unknown types are ignored
      return r.chance(0.5) ? frame(FrameType.PUSH_PROMISE, 0, id(), r.bytes(r.int(20))) : frame(FrameType.GOAWAY, 0, 0, r.bytes(8 + r.int(20)));
    default: {
      if (!oops()) return frame(FrameType.PING, 0, 0, r.bytes(8));
      // A frame header that lies about its length, or plain noise.
      const b = r.bytes(9 + r.int(30));
      if (r.chance(0.5)) b.writeUIntBE(r.chance(0.5) ? r.int(40) : DEFAULT_MAX_FRAME + r.int(1000), 0, 3);
      return b;
    }
  }
}

/**
 * A socket in memory: what the connection writes is kept (in the order of its write() calls).
 * A `stalled` one takes nothing: a peer that does not read, and the socket's buffer fills.
 */
class MemSocket extends Duplex {
  readonly written: Buffer[] = [];
  readonly errors: Error[] = [];
  constructor(readonly stalled: boolean) {
    super();
    this.on('error', (e) => this.errors.push(e));
  }
  override write(chunk: Buffer): boolean {
    this.written.push(chunk);
    return super.write(chunk);
  }
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (!this.stalled) cb();
  }
}

/** What the request pseudo-headers and fields the gRPC layer is given must be (RFC 9113 8.2, 8.3). */
function wellFormed(h: HeaderMap): boolean {
  for (const [n, v] of Object.entries(h))
    for (const x of Array.isArray(v) ? v : [v]) {
      if (/[^a-z0-9!#$%&'*+.^_`|~-]/.test(n.replace(/^:/, '')) || /[\0\r\n]/.test(x)) return false;
      if (n[0] === ':' && ![':method', ':scheme', ':path', ':authority'].includes(n)) return false;
      if (['connection', 'transfer-encoding', 'keep-alive', 'upgrade', 'proxy-connection'].includes(n) || (n === 'te' && x !== 'trailers')) return false;
    }
  return typeof h[':method'] === 'string' && typeof h[':scheme'] === 'string' && typeof h[':path'] === 'string' && h[':path'] !== '';
}
const malformed: HeaderMap[] = [];

/** What the gRPC layer might do with a stream, by :path. */
function onStream(s: H2Stream, h: HeaderMap): void {
  if (!wellFormed(h)) malformed.push(h);
  const path = h[':path'];
  if (path === '/throw') throw new Error('handler throws');
  if (path === '/throw-on-close') {
    s.onClose = () => {
      throw new Error('onClose throws');
    };
  }
  const ONLY = encodeHeaders([
    [':status', '200'],
    ['grpc-status', '5'],
  ]);
  if (path === '/reset') s.reset();
  else if (path === '/only') s.respond(ONLY, true);
  if (path === '/reset' || path === '/only') return;
  const body: Buffer[] = [];
  s.onData = (d) => body.push(d);
  s.onEnd = () => {
    if (path === '/hang') return;
    s.respond(encodeHeaders([[':status', '200']]), false);
    s.write(path === '/big' ? Buffer.alloc(600_000, 1) : Buffer.concat(body));
    s.end(encodeHeaders([['grpc-status', '0']]));
  };
}

const KNOWN_CODES = new Set<number>(Object.values(ErrorCode));
/**
 * The most a connection may hold, whatever the input's length: a frame of input, a header
 * block being received (4 x its 64 KiB header list limit), the HPACK table, and output not
 * flushed yet (DATA stops at OUTPUT_HIGH_WATER, plus one frame and control frames).
 */
const HELD_BOUND = 9 + DEFAULT_MAX_FRAME + 4 * 65_536 + 4096 + 4 * OUTPUT_HIGH_WATER;
/** The most a stalled socket's buffer may hold: its high-water mark, the write past it (DATA up to OUTPUT_HIGH_WATER and a frame), control frames. */
const STALLED_BOUND = 65_536 + 3 * OUTPUT_HIGH_WATER;

/** Whole frames, with the trailing bytes that are not one. */
function parse(out: Buffer): { frames: Array<{ type: number; id: number; payload: Buffer }>; rest: number } {
  const frames = [];
  let pos = 0;
  while (out.length - pos >= 9 && out.length - pos >= 9 + out.readUIntBE(pos, 3)) {
    const len = out.readUIntBE(pos, 3);
    frames.push({ type: out[pos + 3], id: out.readUInt32BE(pos + 5), payload: out.subarray(pos + 9, pos + 9 + len) });
    pos += 9 + len;
  }
  return { frames, rest: out.length - pos };
}

/**
 * What a connection wrote: whole frames, every error code a known one, and a GOAWAY (if any)
 * last and not INTERNAL_ERROR, which would be an exception of ours. Whether it sent one.
 */
function checkedOutput(out: Buffer): boolean {
  const { frames, rest } = parse(out);
  expect(rest).toBe(0);
  for (const f of frames)
    if (f.type === FrameType.RST_STREAM || f.type === FrameType.GOAWAY)
      expect(KNOWN_CODES.has(f.payload.readUInt32BE(f.type === FrameType.GOAWAY ? 4 : 0))).toBe(true);
  const goaway = frames.findIndex((f) => f.type === FrameType.GOAWAY);
  if (goaway < 0) return false;
  expect(frames[goaway].payload.readUInt32BE(4)).not.toBe(ErrorCode.INTERNAL_ERROR);
  expect(goaway).toBe(frames.length - 1);
  return true;
}

describe('h2 fuzz (seeded)', () => {
  it('HPACK: random and mutated blocks decode or fail with HpackError; the table stays within its limit', () => {
    const r = prng(0x5eed1);
    const wrong: string[] = [];
    for (let c = 0; c < 300; c++) {
      const limit = r.pick([0, 256, 4096]);
      const d = new HpackDecoder(limit);
      for (let i = 0; i < 20; i++) {
        const block = r.chance(0.2) ? r.bytes(r.int(60)) : headerBlock(r);
        try {
          const list = d.decode(block, 65_536);
          if (list !== 'oversized' && !list.every(([n, v]) => typeof n === 'string' && typeof v === 'string')) wrong.push(`case ${c}: ${list}`);
        } catch (e) {
          if (!(e instanceof HpackError)) throw e;
        }
        const { entries, size } = d.state;
        if (size > limit || entries.reduce((n, [a, b]) => n + a.length + b.length + 32, 0) !== size) wrong.push(`case ${c}: table of ${size} octets`);
      }
    }
    for (let c = 0; c < 2000; c++) {
      const b = r.bytes(r.int(40));
      try {
        if (huffmanDecode(b, 0, b.length).length > Math.ceil((b.length * 8) / 5)) wrong.push(`huffman ${b.toString('hex')}`);
      } catch (e) {
        if (!/^huffman: /.test((e as Error).message)) throw e;
      }
    }
    expect(wrong).toEqual([]);
  });

  it('connection: random and mutated frame sequences never throw, end cleanly or go on, and hold bounded memory', async () => {
    const r = prng(0xc0ffee);
    let ended = 0;
    for (let c = 0; c < 1500; c++) {
      const sock = new MemSocket(r.chance(0.5));
      const conn = new H2Connection(sock, onStream, { maxConcurrentStreams: r.pick([2, 100]) });
      const state = { next: 3, block: null as Buffer | null, bad: r.pick([0.002, 0.01, 0.05, 0.2]) };
      const settings = r.chance(0.5) ? [] : ([[Setting.INITIAL_WINDOW_SIZE, r.pick([0, 10, 65_535, 0x7fffffff])]] as Array<[number, number]>);
      // Sometimes all the window a response could want; a first stream, so that frames for open streams have one.
      const parts = [PREFACE, settingsFrame(settings), frame(FrameType.SETTINGS, Flag.ACK, 0), ...(r.chance(0.5) ? [windowUpdateFrame(0, 1 << 30)] : [])];
      parts.push(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(r, 0)));
      for (let i = 1 + r.int(25); i > 0; i--) parts.push(randomFrame(r, state));
      const input = mutate(r, Buffer.concat(parts), state.bad);
      // Fed in random pieces, some a byte long.
      for (let pos = 0; pos < input.length && !conn.closed; ) {
        const n = r.chance(0.1) ? 1 : 1 + r.int(4000);
        sock.emit('data', input.subarray(pos, pos + n));
        pos += n;
        expect(conn.bytesHeld).toBeLessThanOrEqual(HELD_BOUND);
      }
      await new Promise<void>((done) => setImmediate(done));
      expect(conn.openStreams).toBeLessThanOrEqual(100);
      expect(sock.errors).toEqual([]);
      if (sock.stalled && !sock.destroyed) expect(sock.writableLength).toBeLessThanOrEqual(STALLED_BOUND);
      if (checkedOutput(Buffer.concat(sock.written))) {
        expect(conn.closed).toBe(true);
        ended++;
      } else if (conn.closed) {
        // Ended gracefully: the peer sent GOAWAY and its streams are done, so we ended the socket.
        expect(sock.writableEnded).toBe(true);
        ended++;
      } else expect(conn.bytesHeld).toBeLessThanOrEqual(HELD_BOUND);
      conn.destroy();
    }
    // Both outcomes are exercised.
    expect(ended).toBeGreaterThan(300);
    expect(ended).toBeLessThan(1200);
    expect(malformed).toEqual([]);
  });

  it("client side: random and mutated frames from a server never throw, end cleanly or go on, hold bounded memory, and close each request's stream once", async () => {
    const r = prng(0xc11e47);
    let ended = 0;
    let answered = 0;
    const REQUEST = encodeHeaders([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':authority', 'localhost'],
      [':path', '/pb.Storage/Get'],
    ]);
    for (let c = 0; c < 800; c++) {
      const sock = new MemSocket(r.chance(0.3));
      const conn = new H2Connection(sock, () => undefined, { role: 'client' });
      const closes: number[] = [];
      const streams = Array.from({ length: 1 + r.int(4) }, (_, i) => {
        const s = conn.request(REQUEST);
        closes[i] = 0;
        s.onClose = () => {
          closes[i]++;
          if (r.chance(0.05)) throw new Error('onClose throws');
        };
        s.onHeaders = (_h, trailers) => {
          if (trailers) answered++;
        };
        s.finishBody(r.chance(0.5) ? r.bytes(r.chance(0.1) ? 100_000 : r.int(300)) : undefined);
        return s;
      });
      const state = { next: 1 + 2 * streams.length, block: null as Buffer | null, bad: r.pick([0.002, 0.01, 0.05, 0.2]) };
      const settings = r.chance(0.5) ? [] : ([[Setting.MAX_CONCURRENT_STREAMS, r.pick([0, 1, 100])]] as Array<[number, number]>);
      const parts = [settingsFrame(settings), frame(FrameType.SETTINGS, Flag.ACK, 0), ...(r.chance(0.5) ? [windowUpdateFrame(0, 1 << 30)] : [])];
      // Plausible answers on the streams we opened, among random frames.
      for (let i = 1 + r.int(25); i > 0; i--) {
        if (r.chance(0.4)) {
          const sid = 1 + 2 * r.int(streams.length);
          const trailersOnly = r.chance(0.3);
          parts.push(
            frame(
              FrameType.HEADERS,
              Flag.END_HEADERS | (trailersOnly ? Flag.END_STREAM : 0),
              sid,
              encodeHeaders([[':status', '200'], ['content-type', 'application/grpc'], ...(trailersOnly ? [['grpc-status', '0'] as [string, string]] : [])]),
            ),
          );
          if (!trailersOnly) {
            parts.push(frame(FrameType.DATA, 0, sid, r.bytes(r.int(200))));
            parts.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, sid, encodeHeaders([['grpc-status', '0']])));
          }
        } else parts.push(randomFrame(r, state));
      }
      const input = mutate(r, Buffer.concat(parts), state.bad);
      for (let pos = 0; pos < input.length && !conn.closed; ) {
        const n = r.chance(0.1) ? 1 : 1 + r.int(4000);
        sock.emit('data', input.subarray(pos, pos + n));
        pos += n;
        expect(conn.bytesHeld).toBeLessThanOrEqual(HELD_BOUND + 100_000); // our own request bodies waiting for window, too
      }
      await new Promise<void>((done) => setImmediate(done));
      expect(sock.errors).toEqual([]);
      const out = Buffer.concat(sock.written);
      expect(out.subarray(0, PREFACE.length).equals(PREFACE)).toBe(true);
      if (checkedOutput(out.subarray(PREFACE.length))) ended++;
      conn.destroy();
      expect(closes.every((n) => n === 1)).toBe(true);
    }
    expect(ended).toBeGreaterThan(100);
    expect(ended).toBeLessThan(790);
    expect(answered).toBeGreaterThan(100);
  });
});
