// One HTTP/2 connection (RFC 9113) over a duplex socket (TLS or TCP), either side of it: the
// server side for the plugin's gRPC server (the peer's streams arrive through onStream), the
// client side for its calls back to Vault over the broker (streams opened with request()).
// Preface, SETTINGS, PING, flow control both ways, HEADERS + CONTINUATION, DATA, RST_STREAM,
// GOAWAY. No push, no priorities (PRIORITY is checked and ignored). Errors end the stream
// (RST_STREAM) or the connection (GOAWAY), never the process. What a tick queues goes out in
// one socket write. A stream is stream.ts; which header fields are allowed, fields.ts.
import type { Duplex } from 'node:stream';
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameType,
  frame,
  goawayFrame,
  MAX_WINDOW,
  PREFACE,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
  writeHeader,
} from './frames';
import { type HeaderMap, headerMap, validField } from './fields';
import { type HeaderList, HpackDecoder, HpackEncoder } from './hpack';
import { H2Stream, type OutHeaders, STREAM_HIGH_WATER } from './stream';

// What users of a connection need, from one place.
export { H2Stream, type OutHeaders, STREAM_HIGH_WATER } from './stream';
export type { HeaderMap } from './fields';

export interface ConnectionOptions {
  /** Which side of the connection this is (default server). */
  role?: 'server' | 'client';
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer may open (server side). */
  maxConcurrentStreams?: number;
  /**
   * Our receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE) and for the connection. The
   * connection's starts at 65,535 for the peer whatever we would like (only WINDOW_UPDATE
   * changes it, upward), so a smaller connectionWindow is taken as 65,535.
   */
  streamWindow?: number;
  connectionWindow?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a bigger request header list resets its stream. */
  maxHeaderListSize?: number;
  /** How long the peer has to acknowledge our SETTINGS (default 10 s). */
  settingsTimeoutMs?: number;
  /** Client side: the last stream id to open before going away (default 2^31 - 1; for tests). */
  lastStreamId?: number;
}

const noop = () => undefined;

/**
 * Control frames a peer may make us answer (PING, SETTINGS, RST_STREAM for a stream error
 * it caused) or streams it may reset while open (the "rapid reset" pattern) in one second
 * before the connection is closed with ENHANCE_YOUR_CALM. Vault's Go client sends a few: a
 * BDP ping per window of data, a reset per request its caller abandons.
 */
export const MAX_CHATTER_PER_SECOND = 1000;

/**
 * Output backpressure: a stream's DATA waits while this many bytes are queued for the socket
 * in this tick, or while the socket's own buffer is past its high-water mark (write()
 * returned false: until 'drain'). Control frames and HEADERS never wait (so a PING is
 * answered while a big response is stuck): they are bounded by MAX_CHATTER_PER_SECOND and
 * MAX_OUTPUT_BACKLOG. Also the largest DATA frame we send.
 */
export const OUTPUT_HIGH_WATER = 64 * 1024;

/** Bytes waiting for a peer that does not read them, past which its connection is dropped. */
export const MAX_OUTPUT_BACKLOG = 4 * 1024 * 1024;

/** A connection error: GOAWAY with this code. */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class H2Connection {
  private readonly client: boolean;
  private readonly streams = new Map<number, H2Stream>();
  /** Client side: the next stream id to open, and streams waiting for the peer's concurrency limit. */
  private nextStreamId = 1;
  /** The last stream id this connection will open (less than 2^31; lower in tests). */
  private readonly lastStreamId: number;
  private readonly waiting: Array<{ stream: H2Stream; block: OutHeaders }> = [];
  /**
   * The peer's SETTINGS_MAX_CONCURRENT_STREAMS. Unlimited until its SETTINGS say otherwise
   * (RFC 9113 6.5.2), but a client opens at most 100 before the server's first SETTINGS
   * arrive, as Go's and nghttp2's clients do: a server with a lower limit would refuse the rest.
   */
  private peerMaxStreams = Number.POSITIVE_INFINITY;
  private peerSettingsSeen = false;
  private readonly decoder = new HpackDecoder(4096);
  /**
   * Our header blocks, encoded as they are sent: the peer's dynamic table follows their order.
   * It also says a smaller SETTINGS_HEADER_TABLE_SIZE of the peer's at the start of the next
   * block (RFC 7541 4.2), which nghttp2 (node:http2) requires: it fails that block otherwise.
   */
  private readonly encoder = new HpackEncoder();
  private readonly maxStreams: number;
  private readonly streamWindow: number;
  private readonly connWindow: number;
  private readonly maxHeaderList: number;
  /**
   * Received bytes not parsed yet, joined only once `inNeeded` are there (the next frame
   * whole): a frame sent a byte at a time was copied again with every byte, quadratic.
   */
  private inbuf: Buffer[] = [];
  private inBytes = 0;
  private inNeeded = 0;
  private prefaceSeen = false;
  private settingsSeen = false;
  private lastPeerStream = 0;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow: number;
  private connRecvPending = 0;
  /** A header block being received in HEADERS + CONTINUATION frames. */
  private block: { id: number; endStream: boolean; selfDependent: boolean; chunks: Buffer[]; bytes: number; wire: number } | null = null;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  /** Streams whose queued DATA waits for window or for the socket, in the order they get their turn. */
  private readonly blocked = new Set<H2Stream>();
  /** DATA stopped for the socket (OUTPUT_HIGH_WATER); 'drain', or the next turn after a write the socket took, resumes it. */
  private outputPaused = false;
  private resumeQueued = false;
  private goingAway = false;
  /** Frames the peer made us answer or abandon in the current second (PING, SETTINGS, stream errors, RST_STREAM of a stream in use). */
  private chatter = 0;
  private chatterSince = 0;
  /** Until the peer acknowledges our SETTINGS (RFC 9113 6.5.3: SETTINGS_TIMEOUT otherwise). */
  private settingsTimer?: NodeJS.Timeout;
  /** After our end of the socket: destroys it if the peer never closes its side. */
  private endTimer?: NodeJS.Timeout;
  closed = false;
  /** The socket's error, if it failed (a refused TLS handshake, a reset). */
  socketError?: Error;
  /** Called when the connection is over (socket closed). */
  onClose: () => void = noop;

  constructor(
    private readonly socket: Duplex,
    private readonly onStream: (stream: H2Stream, headers: HeaderMap) => void,
    opts: ConnectionOptions = {},
  ) {
    this.client = opts.role === 'client';
    if (this.client) this.peerMaxStreams = 100;
    this.lastStreamId = opts.lastStreamId ?? MAX_WINDOW;
    this.maxStreams = opts.maxConcurrentStreams ?? 1000;
    this.streamWindow = opts.streamWindow ?? 1 << 20;
    this.connWindow = Math.max(opts.connectionWindow ?? 16 << 20, DEFAULT_WINDOW);
    this.maxHeaderList = opts.maxHeaderListSize ?? 65_536;
    this.connRecvWindow = this.connWindow;
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', (e: Error) => {
      this.socketError ??= e;
    });
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.pumpBlocked());
    // Our preface (a client's starts with the fixed octets; the server sends none): SETTINGS,
    // then the connection window raised from its fixed initial 65,535.
    if (this.client) {
      this.prefaceSeen = true;
      this.send(PREFACE);
    }
    this.send(
      settingsFrame([
        ...(this.client ? [] : [[Setting.MAX_CONCURRENT_STREAMS, this.maxStreams] as const]),
        [Setting.INITIAL_WINDOW_SIZE, this.streamWindow],
        [Setting.MAX_HEADER_LIST_SIZE, this.maxHeaderList],
        [Setting.ENABLE_PUSH, 0],
      ]),
    );
    if (this.connWindow > DEFAULT_WINDOW) this.send(windowUpdateFrame(0, this.connWindow - DEFAULT_WINDOW));
    this.connRecvWindow = this.connWindow;
    this.settingsTimer = setTimeout(() => this.fail(ErrorCode.SETTINGS_TIMEOUT, 'SETTINGS not acknowledged'), opts.settingsTimeoutMs ?? 10_000);
    this.settingsTimer.unref();
  }

  /**
   * Closed, or we ended the socket (GOAWAY exchanged, every stream done): what still arrives
   * is not served, as an answer would be a write after the end, which destroys the socket.
   */
  private get over(): boolean {
    return this.closed || this.socket.writableEnded;
  }

  /** Open streams (for tests and shutdown). */
  get openStreams(): number {
    return this.streams.size + this.waiting.length;
  }

  /** Whether new streams may be opened: not closed, and no GOAWAY either way. */
  get accepting(): boolean {
    return !this.closed && !this.goingAway;
  }

  /** Whether the peer's SETTINGS have come (the connection is up). */
  get established(): boolean {
    return this.settingsSeen;
  }

  /** Keep the process alive for this connection, or not (an idle client connection does not). */
  ref(): void {
    (this.socket as Partial<{ ref(): void }>).ref?.();
  }

  unref(): void {
    (this.socket as Partial<{ unref(): void }>).unref?.();
  }

  /**
   * Client side: open a stream with a request's headers (OutHeaders). The body follows with
   * write() and finishBody(). Past the peer's SETTINGS_MAX_CONCURRENT_STREAMS it waits for
   * one of ours to close. Throws once the connection no longer accepts streams.
   */
  request(block: OutHeaders): H2Stream {
    if (!this.client) throw new Error('request() is for the client side');
    if (!this.accepting) throw new Error('the connection is closing');
    const s = new H2Stream(this, 0, this.peerInitialWindow, this.streamWindow);
    if (this.streams.size < this.peerMaxStreams && !this.waiting.length) this.open(s, block);
    else this.waiting.push({ stream: s, block });
    return s;
  }

  private open(s: H2Stream, block: OutHeaders): void {
    s.id = this.nextStreamId;
    this.nextStreamId += 2;
    s.sendWindow = this.peerInitialWindow;
    this.streams.set(s.id, s);
    this.sendHeaders(s, block, false);
    this.pump(s);
    // Stream ids are 31 bits and never reused: near the end, the connection goes away
    // gracefully and its owner opens the next one (days of calls at thousands a second).
    if (this.nextStreamId > this.lastStreamId) this.close();
  }

  /** Client side: open waiting streams while the peer's limit allows. */
  private openWaiting(): void {
    while (this.waiting.length && this.streams.size < this.peerMaxStreams && this.accepting) {
      const { stream, block } = this.waiting.shift()!;
      if (!stream.closed) this.open(stream, block);
    }
  }

  /**
   * Bytes held for the peer (for tests): input not parsed yet, a header block being received,
   * output not written yet and the socket's buffer, the HPACK table. Not the streams' queued
   * DATA, which the gRPC layer wrote.
   */
  get bytesHeld(): number {
    return this.inBytes + (this.block?.bytes ?? 0) + this.outBytes + this.socket.writableLength + this.decoder.state.size;
  }

  /** Graceful end: GOAWAY(NO_ERROR), no new streams; the socket ends when the open ones are done. */
  close(): void {
    if (this.closed || this.goingAway) return;
    this.goingAway = true;
    for (const w of this.waiting.splice(0)) this.closeUnprocessed(w.stream);
    this.send(goawayFrame(this.lastPeerStream, ErrorCode.NO_ERROR));
    if (this.streams.size === 0) this.endSocket();
  }

  /** Immediate end: every open stream is closed (cancelled), the socket destroyed. */
  destroy(): void {
    clearTimeout(this.settingsTimer);
    clearTimeout(this.endTimer);
    if (!this.closed) {
      this.closed = true;
      this.out = [];
      this.outBytes = 0;
      // Waiting requests were never sent: their callers may send them again elsewhere.
      for (const w of this.waiting.splice(0)) this.closeUnprocessed(w.stream);
      for (const s of [...this.streams.values()]) this.closeStream(s);
      this.onClose();
    }
    if (!this.socket.destroyed) this.socket.destroy();
  }

  // ---- input ----

  private onBytes(chunk: Buffer): void {
    if (this.over) return;
    this.inbuf.push(chunk);
    this.inBytes += chunk.length;
    if (this.inBytes < this.inNeeded) return;
    const buf = this.inbuf.length === 1 ? this.inbuf[0] : Buffer.concat(this.inbuf, this.inBytes);
    let pos = 0;
    try {
      if (!this.prefaceSeen) {
        const n = Math.min(buf.length, PREFACE.length);
        if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad client preface');
        if (n < PREFACE.length) {
          this.keepInput(buf, 0);
          return;
        }
        this.prefaceSeen = true;
        pos = PREFACE.length;
      }
      while (buf.length - pos >= 9) {
        const len = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2];
        if (len > DEFAULT_MAX_FRAME) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'frame too large');
        if (buf.length - pos < 9 + len) break;
        const type = buf[pos + 3];
        const flags = buf[pos + 4];
        const id = buf.readUInt32BE(pos + 5) & 0x7fffffff;
        const payload = buf.subarray(pos + 9, pos + 9 + len);
        pos += 9 + len;
        this.onFrame(type, flags, id, payload);
        if (this.over) return;
      }
      this.keepInput(buf, pos);
    } catch (e) {
      if (e instanceof ConnectionError) this.fail(e.code, e.message);
      else this.fail(ErrorCode.INTERNAL_ERROR, 'internal error');
    }
  }

  /** Keep `buf` from `pos` for the next bytes; what they must complete: the preface (checked as it comes), a frame header, the frame. */
  private keepInput(buf: Buffer, pos: number): void {
    this.inbuf.length = 0;
    if (pos === buf.length) {
      // The usual case: the read ended on a frame boundary.
      this.inBytes = 0;
      this.inNeeded = this.prefaceSeen ? 9 : 0;
      return;
    }
    const rest = buf.subarray(pos);
    this.inbuf.push(rest);
    this.inBytes = rest.length;
    // A frame header here had its length checked by onBytes.
    this.inNeeded = !this.prefaceSeen ? 0 : rest.length < 9 ? 9 : 9 + rest.readUIntBE(0, 3);
  }

  private onFrame(type: number, flags: number, id: number, p: Buffer): void {
    if (!this.settingsSeen) {
      if (type !== FrameType.SETTINGS || flags & Flag.ACK) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS expected first');
      this.settingsSeen = true;
    }
    if (this.block && type !== FrameType.CONTINUATION) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION expected');
    switch (type) {
      case FrameType.DATA:
        this.onData(flags, id, p);
        return;
      case FrameType.HEADERS:
        this.onHeaders(flags, id, p);
        return;
      case FrameType.CONTINUATION:
        if (!this.block || this.block.id !== id) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'unexpected CONTINUATION');
        this.addFragment(p);
        if (flags & Flag.END_HEADERS) this.headersDone();
        return;
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (p.length !== 5) this.streamError(id, ErrorCode.FRAME_SIZE_ERROR);
        else if ((p.readUInt32BE(0) & 0x7fffffff) === id) this.streamError(id, ErrorCode.PROTOCOL_ERROR); // 5.3.1: depends on itself
        return;
      case FrameType.RST_STREAM: {
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM size');
        if (this.idle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
        const s = this.streams.get(id);
        if (s) {
          this.countChatter();
          s.resetCode = p.readUInt32BE(0);
          this.closeStream(s);
        }
        return;
      }
      case FrameType.SETTINGS:
        this.onSettings(flags, id, p);
        return;
      case FrameType.PUSH_PROMISE:
        // A client may not push; a server may not either, as ours said ENABLE_PUSH 0.
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE');
      case FrameType.PING:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (p.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING size');
        if (!(flags & Flag.ACK)) {
          this.countChatter();
          this.send(frame(FrameType.PING, Flag.ACK, 0, p));
        }
        return;
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (p.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY size');
        this.onGoaway(p.readUInt32BE(0) & 0x7fffffff);
        return;
      case FrameType.WINDOW_UPDATE:
        this.onWindowUpdate(id, p);
        return;
      default:
        return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  /**
   * The peer opens no more streams (a client) or takes no more of ours (a server). Ours above
   * its last stream id were not processed: they close unanswered (their callers may retry on
   * a new connection), as do those still waiting; the open ones finish, then the socket ends.
   */
  private onGoaway(lastStream: number): void {
    this.goingAway = true;
    if (this.client) {
      for (const w of this.waiting.splice(0)) this.closeUnprocessed(w.stream);
      for (const s of [...this.streams.values()]) if (s.id > lastStream) this.closeUnprocessed(s);
      if (this.streams.size === 0 && !this.closed) this.endSocket();
    }
  }

  /**
   * Idle (5.1): a stream id no stream of this connection has used yet. A server's peer opens
   * odd ones up from the last it opened; the even ones only the server could open (ours never
   * does: no push). A client opens the odd ones itself, and took ENABLE_PUSH 0 from the server.
   */
  private idle(id: number): boolean {
    if (this.client) return id % 2 === 0 || id >= this.nextStreamId;
    return id % 2 === 0 || id > this.lastPeerStream;
  }

  /** One more frame of chatter; past MAX_CHATTER_PER_SECOND in a second the connection ends. */
  private countChatter(): void {
    const now = Date.now();
    if (now - this.chatterSince >= 1000) {
      this.chatterSince = now;
      this.chatter = 0;
    }
    if (++this.chatter > MAX_CHATTER_PER_SECOND) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many PING, SETTINGS or RST_STREAM frames');
  }

  private onSettings(flags: number, id: number, p: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (p.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      clearTimeout(this.settingsTimer);
      return;
    }
    if (p.length % 6) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS size');
    this.countChatter();
    if (!this.peerSettingsSeen) {
      this.peerSettingsSeen = true;
      this.peerMaxStreams = Number.POSITIVE_INFINITY; // what the peer does not limit is unlimited
    }
    for (let i = 0; i < p.length; i += 6) {
      const key = p.readUInt16BE(i);
      const v = p.readUInt32BE(i + 2);
      // Flags: 0 or 1 (RFC 9113 6.5.2, RFC 8441 3, RFC 9218 2.1).
      if ((key === Setting.ENABLE_PUSH || key === Setting.ENABLE_CONNECT_PROTOCOL || key === Setting.NO_RFC7540_PRIORITIES) && v > 1)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `setting ${key} is not 0 or 1`);
      // A server cannot enable push (6.5.2).
      if (key === Setting.ENABLE_PUSH && v === 1 && this.client) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'a server set ENABLE_PUSH');
      if (key === Setting.INITIAL_WINDOW_SIZE) {
        if (v > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE');
        const delta = v - this.peerInitialWindow;
        this.peerInitialWindow = v;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'window overflow');
        }
      }
      if (key === Setting.MAX_FRAME_SIZE) {
        if (v < DEFAULT_MAX_FRAME || v > 0xffffff) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'MAX_FRAME_SIZE');
        this.peerMaxFrame = v;
      }
      if (key === Setting.MAX_CONCURRENT_STREAMS) this.peerMaxStreams = v;
      if (key === Setting.HEADER_TABLE_SIZE) this.encoder.setLimit(v);
      // MAX_HEADER_LIST_SIZE: our response headers are a few short fields.
    }
    this.send(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.pumpBlocked();
    if (this.client) this.openWaiting();
  }

  private onWindowUpdate(id: number, p: Buffer): void {
    if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
    const inc = p.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      this.pumpBlocked();
      return;
    }
    if (this.idle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
    const s = this.streams.get(id);
    if (!s) return;
    if (inc === 0) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) {
      this.streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    this.pump(s);
  }

  private onData(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    let data = p;
    if (flags & Flag.PADDED) {
      if (p.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'DATA too short for its pad length');
      if (p[0] >= p.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad padding');
      data = p.subarray(1, p.length - p[0]);
    }
    // The whole frame counts against both windows (6.9.1); the connection's is given back at once.
    if (p.length > this.connRecvWindow) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window exceeded');
    this.connRecvWindow -= p.length;
    this.connRecvPending += p.length;
    if (this.connRecvPending >= this.connWindow / 2) {
      this.send(windowUpdateFrame(0, this.connRecvPending));
      this.connRecvWindow += this.connRecvPending;
      this.connRecvPending = 0;
    }
    const s = this.streams.get(id);
    if (!s) {
      if (this.idle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      return; // a stream we closed: what was in flight is dropped
    }
    if (s.remoteEnded) {
      this.streamError(id, ErrorCode.STREAM_CLOSED);
      return;
    }
    // A response's body follows its headers (8.1).
    if (this.client && !s.headersSeen) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (p.length > s.recvWindow) {
      this.streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    s.recvWindow -= p.length;
    const end = (flags & Flag.END_STREAM) !== 0;
    s.received += data.length;
    if (!bodyLengthFits(s, end)) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (!end) {
      s.recvPending += p.length;
      if (s.recvPending >= this.streamWindow / 2) {
        this.send(windowUpdateFrame(id, s.recvPending));
        s.recvWindow += s.recvPending;
        s.recvPending = 0;
      }
    }
    if (data.length) this.guard(s, () => s.onData(data));
    if (end && !s.closed) this.remoteEnd(s);
  }

  private onHeaders(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    // Pad length (1 octet), then stream dependency and weight (5), both optional.
    const padded = flags & Flag.PADDED ? 1 : 0;
    const start = padded + (flags & Flag.PRIORITY ? 5 : 0);
    if (p.length < start) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for its flags');
    const end = p.length - (padded ? p[0] : 0);
    if (start > end) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad padding');
    // Priorities are not used, but a stream that depends on itself is an error (5.3.1).
    const selfDependent = flags & Flag.PRIORITY ? (p.readUInt32BE(padded) & 0x7fffffff) === id : false;
    this.block = { id, endStream: (flags & Flag.END_STREAM) !== 0, selfDependent, chunks: [], bytes: 0, wire: 0 };
    this.addFragment(p.subarray(start, end));
    if (flags & Flag.END_HEADERS) this.headersDone();
  }

  private addFragment(fragment: Buffer): void {
    const b = this.block!;
    if (fragment.length) b.chunks.push(fragment);
    b.bytes += fragment.length;
    // The bound counts each frame's 9-octet header too: empty CONTINUATION frames are not free.
    b.wire += 9 + fragment.length;
    if (b.wire > 4 * this.maxHeaderList) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
  }

  private headersDone(): void {
    const { id, endStream, selfDependent, chunks, bytes } = this.block!;
    this.block = null;
    // Decoded whatever becomes of the stream: the dynamic table must stay in step.
    let list: HeaderList | 'oversized';
    try {
      list = this.decoder.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, bytes), this.maxHeaderList);
    } catch (e) {
      throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, (e as Error).message);
    }
    const open = this.streams.get(id);
    if (this.client) {
      this.responseHeaders(id, open, list, endStream);
      return;
    }
    if (open) {
      // Trailers from the client: they must end the stream, and hold no pseudo-header (8.1).
      if (open.remoteEnded) this.streamError(id, ErrorCode.STREAM_CLOSED);
      else if (list === 'oversized') this.streamError(id, ErrorCode.ENHANCE_YOUR_CALM);
      else if (!endStream || selfDependent || !bodyLengthFits(open, true) || !list.every(([n, v]) => validField(n, v)))
        this.streamError(id, ErrorCode.PROTOCOL_ERROR);
      else this.remoteEnd(open);
      return;
    }
    if (id % 2 === 0 || id <= this.lastPeerStream) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on a closed or server stream');
    this.lastPeerStream = id;
    if (this.goingAway || this.streams.size >= this.maxStreams) {
      this.streamError(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (selfDependent) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (list === 'oversized') {
      this.streamError(id, ErrorCode.ENHANCE_YOUR_CALM);
      return;
    }
    const headers = headerMap(list, 'request');
    if (!headers) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const s = new H2Stream(this, id, this.peerInitialWindow, this.streamWindow);
    if (typeof headers['content-length'] === 'string') s.contentLength = Number(headers['content-length']);
    if (!bodyLengthFits(s, endStream)) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    this.streams.set(id, s);
    if (endStream) s.remoteEnded = true;
    this.guard(s, () => {
      this.onStream(s, headers);
      if (endStream && !s.closed) s.onEnd();
    });
  }

  /** Client side: a response's headers, or its trailers (which must end the stream). */
  private responseHeaders(id: number, s: H2Stream | undefined, list: HeaderList | 'oversized', endStream: boolean): void {
    if (!s) {
      if (this.idle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on a stream we did not open');
      return; // a stream we closed: what was in flight is dropped
    }
    if (s.remoteEnded) {
      this.streamError(id, ErrorCode.STREAM_CLOSED);
      return;
    }
    const trailers = s.headersSeen;
    const headers = list === 'oversized' ? undefined : headerMap(list, trailers ? 'trailers' : 'response');
    // An interim response (1xx) comes before the final one, never ending the stream; 101 is not HTTP/2's (8.1, 8.6).
    const interim = !trailers && headers?.[':status']?.[0] === '1';
    if (!headers || (trailers && !endStream) || (interim && (endStream || headers[':status'] === '101'))) {
      this.streamError(id, list === 'oversized' ? ErrorCode.ENHANCE_YOUR_CALM : ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (interim) return;
    s.headersSeen = true;
    this.guard(s, () => s.onHeaders(headers, trailers, endStream));
    if (endStream && !s.closed) this.remoteEnd(s);
  }

  /** Run the gRPC layer's code for a stream: if it throws, only that stream is reset. */
  private guard(s: H2Stream, fn: () => void): void {
    try {
      fn();
    } catch {
      this.resetStream(s, ErrorCode.INTERNAL_ERROR);
    }
  }

  private remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    this.guard(s, () => s.onEnd());
    if (s.closed) return;
    const sent = s.localEnded && !s.queue.length && !s.trailers && !s.endWithData;
    if (sent) this.closeStream(s);
    // A response complete before its request (a gRPC status while the body was going out): stop sending.
    else if (this.client) this.resetStream(s, ErrorCode.CANCEL);
  }

  // ---- output ----

  /** Queue bytes; everything queued in this tick goes out in one write. */
  private send(b: Buffer): void {
    if (this.over) return;
    this.out.push(b);
    this.outBytes += b.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (!this.out.length || this.socket.destroyed || this.socket.writableEnded) return;
    const b = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
    this.out = [];
    this.outBytes = 0;
    // A peer that makes us write (PING, SETTINGS, provoked resets) but does not read is
    // dropped: not even a GOAWAY would reach it.
    if (this.socket.writableLength + b.length > MAX_OUTPUT_BACKLOG) {
      this.destroy();
      return;
    }
    // Taken without reaching the socket's high-water mark: no 'drain' will come, resume now.
    if (this.socket.write(b) && this.outputPaused) this.resumeSoon();
  }

  /** DATA resumes on the next turn of the event loop, not in this one: input and timers get their turn. */
  private resumeSoon(): void {
    if (this.resumeQueued) return;
    this.resumeQueued = true;
    setImmediate(() => {
      this.resumeQueued = false;
      this.pumpBlocked();
    });
  }

  /** The socket has enough to write for now (see OUTPUT_HIGH_WATER). */
  private outputFull(): boolean {
    return this.outBytes >= OUTPUT_HIGH_WATER || this.socket.writableNeedDrain;
  }

  /** HEADERS (and CONTINUATION when the block is bigger than the peer's frame size). */
  sendHeaders(s: H2Stream, headers: OutHeaders, endStream: boolean): void {
    let block: Buffer;
    if (!Buffer.isBuffer(headers)) block = this.encoder.encode(headers);
    else {
      const updates = this.encoder.updates();
      block = updates ? Buffer.concat([updates, headers]) : headers;
    }
    const max = this.peerMaxFrame;
    let off = 0;
    do {
      const n = Math.min(max, block.length - off);
      const last = off + n >= block.length;
      const type = off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (last ? Flag.END_HEADERS : 0) | (endStream && off === 0 ? Flag.END_STREAM : 0);
      const f = Buffer.allocUnsafe(9 + n);
      writeHeader(f, 0, n, type, flags, s.id);
      block.copy(f, 9, off, off + n);
      this.send(f);
      off += n;
    } while (off < block.length);
    if (endStream) this.localEnd(s);
  }

  /** Send what the windows allow of a stream's queued DATA, then its trailers once the queue is empty. */
  pump(s: H2Stream): void {
    this.pumpQueue(s);
    if (s.needDrain && s.queuedBytes < STREAM_HIGH_WATER && !s.closed) {
      s.needDrain = false;
      // Not from inside pump(): the writer's next write would come back into it.
      queueMicrotask(() => {
        if (!s.closed) this.guard(s, () => s.onDrain());
      });
    }
  }

  private pumpQueue(s: H2Stream): void {
    if (!s.id || s.closed) return; // not open yet (client side, waiting for the peer's limit)
    while (s.queue.length) {
      const avail = Math.min(this.connSendWindow, s.sendWindow);
      if (avail <= 0) {
        this.blocked.add(s);
        return;
      }
      if (this.outputFull()) {
        // To the back of the line: the streams take turns as the socket drains.
        this.blocked.delete(s);
        this.blocked.add(s);
        this.outputPaused = true;
        return;
      }
      const head = s.queue[0];
      const n = Math.min(avail, this.peerMaxFrame, OUTPUT_HIGH_WATER, head.length);
      const last = s.endWithData && n === head.length && s.queue.length === 1;
      const h = Buffer.allocUnsafe(9);
      writeHeader(h, 0, n, FrameType.DATA, last ? Flag.END_STREAM : 0, s.id);
      this.send(h);
      if (n === head.length) {
        s.queue.shift();
        this.send(head);
      } else {
        s.queue[0] = head.subarray(n);
        this.send(head.subarray(0, n));
      }
      this.connSendWindow -= n;
      s.sendWindow -= n;
      s.queuedBytes -= n;
      if (last) {
        s.endWithData = false;
        this.blocked.delete(s);
        this.localEnd(s);
        return;
      }
    }
    this.blocked.delete(s);
    if (s.endWithData) {
      // A body that was empty, or whose last bytes went out earlier: END_STREAM on an empty DATA frame.
      s.endWithData = false;
      this.send(frame(FrameType.DATA, Flag.END_STREAM, s.id));
      this.localEnd(s);
      return;
    }
    if (s.trailers) {
      const t = s.trailers;
      s.trailers = undefined;
      this.sendHeaders(s, t, true);
    }
  }

  private pumpBlocked(): void {
    this.outputPaused = false;
    for (const s of this.blocked) {
      // Stop once the socket is full again: pump() then moved its stream to the back of the
      // set, where this loop would meet it again.
      if (this.connSendWindow <= 0 || this.outputPaused) return;
      this.pump(s);
    }
  }

  /**
   * Our END_STREAM is sent. A server's stream is then done (a client still sending is told to
   * stop, 8.1); a client's waits for the response unless that already ended.
   */
  private localEnd(s: H2Stream): void {
    s.localEnded = true;
    if (this.client) {
      if (s.remoteEnded) this.closeStream(s);
      return;
    }
    if (!s.remoteEnded) this.send(rstStreamFrame(s.id, ErrorCode.NO_ERROR));
    this.closeStream(s);
  }

  resetStream(s: H2Stream, code: number): void {
    if (s.closed) return;
    if (s.id) this.send(rstStreamFrame(s.id, code));
    this.closeStream(s);
  }

  /** A stream error the peer provoked: RST_STREAM; counted as chatter, as each makes us write a frame. */
  private streamError(id: number, code: number): void {
    this.countChatter();
    const s = this.streams.get(id);
    if (s) {
      if (!s.closed) s.resetCode = code;
      this.resetStream(s, code);
    } else this.send(rstStreamFrame(id, code));
  }

  private closeStream(s: H2Stream): void {
    if (s.closed) return;
    s.closed = true;
    s.queue = [];
    s.queuedBytes = 0;
    s.trailers = undefined;
    s.endWithData = false;
    if (this.streams.get(s.id) === s) this.streams.delete(s.id);
    else if (!s.id) {
      // Client side, still waiting for a stream (cancelled, or past its deadline): out of the
      // queue now, not when a stream frees, so its headers and callbacks are not held.
      const i = this.waiting.findIndex((w) => w.stream === s);
      if (i >= 0) this.waiting.splice(i, 1);
    }
    this.blocked.delete(s);
    // Not guard(): the stream is closed already. A throw here would end the whole connection,
    // or, from the socket's 'close' event (destroy), escape as an uncaught exception.
    try {
      s.onClose();
    } catch {}
    if (this.goingAway && this.streams.size === 0 && !this.closed) this.endSocket();
    else if (this.client && this.waiting.length) this.openWaiting();
  }

  /** Client side: close a stream the server never saw or said it did not process (see H2Stream.unprocessed). */
  private closeUnprocessed(s: H2Stream): void {
    if (!s.closed) s.unprocessed = true;
    this.closeStream(s);
  }

  /** A connection error: GOAWAY with its code, open streams closed, then the socket ends. */
  private fail(code: number, message: string): void {
    if (this.closed) return;
    // Only the GOAWAY goes out, but after a client's preface (the octets and its SETTINGS) if
    // that is still queued: a GOAWAY must not be the first thing a server reads.
    const preface = this.client && this.out[0] === PREFACE ? this.out.slice(0, 2) : [];
    this.out = [...preface, goawayFrame(this.lastPeerStream, code, message.slice(0, 100))];
    this.flush();
    if (this.closed) return; // the peer was not reading (flush dropped it)
    this.closed = true;
    for (const w of this.waiting.splice(0)) this.closeUnprocessed(w.stream);
    for (const s of [...this.streams.values()]) this.closeStream(s);
    this.onClose();
    this.socket.end();
    this.endTimer = setTimeout(() => this.destroy(), 1000);
    this.endTimer.unref();
  }

  private endSocket(): void {
    this.flush();
    this.socket.end();
    // A peer that never closes its side does not hold the socket.
    this.endTimer = setTimeout(() => this.destroy(), 5000);
    this.endTimer.unref();
  }
}

/** The body received so far fits the request's content-length: not longer, and, once ended, as long (8.1.1). */
function bodyLengthFits(s: H2Stream, ended: boolean): boolean {
  return s.contentLength === undefined || (ended ? s.received === s.contentLength : s.received <= s.contentLength);
}
