// One HTTP/2 stream of a connection (connection.ts), as the gRPC layer uses it: callbacks
// for what the peer sends, respond/write/end (server side) or write/finishBody (client side)
// for what we send, and its flow-control and backpressure state, which the connection keeps.
import type { H2Connection } from './connection';
import { ErrorCode } from './frames';
import type { HeaderMap } from './fields';

const noop = () => undefined;

/**
 * Headers to send: a list, encoded by the connection when it sends them (so it may index them
 * in the peer's dynamic table), or a block of encodeHeaders (which never touches that table).
 */
export type OutHeaders = Buffer | ReadonlyArray<readonly [string, string]>;

/**
 * A stream's own backpressure: write() returns false once this many body bytes wait in its
 * queue (for the peer's flow-control window, or for the socket), and onDrain tells when the
 * queue is below it again. What the writer does past it is its business (grpc-call.ts caps it).
 */
export const STREAM_HIGH_WATER = 64 * 1024;

/**
 * One stream. On the server side the gRPC layer sets the callbacks and answers with
 * respond/write/end; on the client side it writes the request body, finishes it with
 * finishBody, and reads the response through onHeaders, onData and onClose.
 */
export class H2Stream {
  /** A chunk of the peer's body. */
  onData: (chunk: Buffer) => void = noop;
  /** The peer half-closed the stream (END_STREAM). */
  onEnd: () => void = noop;
  /** Client side: the response headers, then (`trailers`) the trailers; `endStream`: the last of the response. */
  onHeaders: (headers: HeaderMap, trailers: boolean, endStream: boolean) => void = noop;
  /** The stream is closed: answered, reset by either side, or its connection gone. Once. */
  onClose: () => void = noop;
  /** write() returned false, and the queue is below STREAM_HIGH_WATER again. */
  onDrain: () => void = noop;
  closed = false;
  remoteEnded = false;
  /** Our END_STREAM is queued (trailers waiting for data to drain count). */
  localEnded = false;
  sendWindow: number;
  recvWindow: number;
  recvPending = 0;
  /** The request's content-length, if it has one, and the body bytes received so far (8.1.1). */
  contentLength?: number;
  received = 0;
  /** DATA payloads waiting for flow-control window, and the trailers to send after them. */
  queue: Buffer[] = [];
  /** The bytes in `queue`. */
  queuedBytes = 0;
  /** write() returned false: onDrain is due. */
  needDrain = false;
  trailers?: OutHeaders;
  /** Client side: END_STREAM goes on the last DATA frame once the queue is out. */
  endWithData = false;
  /** Client side: the response headers have come (what follows them are trailers). */
  headersSeen = false;
  /** The code of the RST_STREAM that ended the stream: the peer's, or ours for a stream error it caused. */
  resetCode?: number;
  /**
   * Client side: closed unanswered and certainly not processed by the server: above the last
   * stream id of its GOAWAY, or still waiting to open when the connection went away. Its
   * request may be sent again on another connection.
   */
  unprocessed = false;

  constructor(
    private readonly conn: H2Connection,
    /** 0 on the client side until the stream opens (waiting for the peer's concurrency limit). */
    public id: number,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Send the response headers (OutHeaders); with `endStream`, the response is complete (trailers-only). */
  respond(block: OutHeaders, endStream: boolean): void {
    if (this.closed || this.localEnded) return;
    this.conn.sendHeaders(this, block, endStream);
  }

  /** Queue body bytes; false once STREAM_HIGH_WATER bytes wait (then onDrain), or when the stream takes no more. */
  write(data: Buffer): boolean {
    if (this.closed || this.localEnded) return false;
    this.queue.push(data);
    this.queuedBytes += data.length;
    this.conn.pump(this);
    if (this.queuedBytes < STREAM_HIGH_WATER) return !this.closed;
    this.needDrain = true;
    return false;
  }

  /** Finish with trailers (OutHeaders, encoded when they go) once the queued body is out. */
  end(trailerBlock: OutHeaders): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.trailers = trailerBlock;
    this.conn.pump(this);
  }

  /** Client side: the request body is complete, with `last` its last bytes (END_STREAM on the last DATA frame). */
  finishBody(last?: Buffer): void {
    if (this.closed || this.localEnded) return;
    if (last?.length) {
      this.queue.push(last);
      this.queuedBytes += last.length;
    }
    this.localEnded = true;
    this.endWithData = true;
    this.conn.pump(this);
  }

  /** Reset the stream (RST_STREAM). */
  reset(code: number = ErrorCode.CANCEL): void {
    this.conn.resetStream(this, code);
  }
}
