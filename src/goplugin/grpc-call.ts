// One gRPC call as its handler sees it, and the dispatch of a request stream to its route,
// for either HTTP/2 layer (h2/, the default, or node:http2): each wraps its stream as a
// CallStream. The calls have the members this code base's handlers use, as @grpc/grpc-js's
// server calls: request, metadata.get, cancelled and the 'cancelled' event, getDeadline,
// write/end, 'drain' and 'data'/'end' for streams, and a unary callback.
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { type CallMetadata, Code, deadlineOf, frame, HeaderMetadata, MessageReader } from './grpc-wire';

export type Method = grpc.MethodDefinition<unknown, unknown>;
/** A served method and its handler. */
export interface Route {
  method: Method;
  handler: (...args: never[]) => void;
}
type Status = { code?: number; details?: string; message?: string } | null | undefined;

/**
 * Bytes a streaming call may leave queued for a peer that does not read them, writing on
 * after write() returned false: past it the call ends as RESOURCE_EXHAUSTED and the queue is
 * dropped. One message is never too big (queued alone); a handler that waits for 'drain'
 * never gets near it.
 */
export const MAX_CALL_BACKLOG = 4 * 1024 * 1024;

/** What a call needs of its HTTP/2 stream. */
export interface CallStream {
  /** Closed or reset: nothing more can be sent. */
  readonly done: boolean;
  /** 200 application/grpc; the status follows in trailers (finish). */
  sendHeaders(): void;
  /** The status alone in the one HEADERS frame, ending the stream (no message). */
  trailersOnly(code: number, details: string): void;
  /** HTTP 415 for a request that is not gRPC. */
  notGrpc(): void;
  /** One framed message; false when the stream asks the writer to wait (until onDrain), or takes no more. */
  write(framed: Buffer): boolean;
  /** Bytes written and not yet sent: waiting for the peer's flow-control window or the socket. */
  readonly buffered: number;
  /** After write() returned false: the stream takes writes again. */
  onDrain(fn: () => void): void;
  /** End the stream at once, dropping what is queued: RST_STREAM ENHANCE_YOUR_CALM, which gRPC clients read as RESOURCE_EXHAUSTED. */
  overflow(): void;
  /** The trailers with the status, after what was written. */
  finish(code: number, details: string): void;
  /** Request body chunks; the client's half-close; the stream's end, once, whatever ended it. */
  onData(fn: (chunk: Buffer) => void): void;
  onEnd(fn: () => void): void;
  onClose(fn: () => void): void;
}

/**
 * One call. 'cancelled' is emitted once if the stream closes before the server finished the
 * call; 'drain' when a streaming call's write() returned false and it may write again.
 */
export class ServerCall extends EventEmitter {
  cancelled = false;
  request: unknown;
  private finished = false;
  private responded = false;
  /** Ended for writing past MAX_CALL_BACKLOG (the stream's close then reports 'cancelled'). */
  private overflowed = false;

  constructor(
    private readonly stream: CallStream,
    readonly metadata: CallMetadata,
    private readonly method: Method,
    private readonly deadline: number,
  ) {
    super();
  }

  /** The stream closed: a cancellation unless the call had finished. */
  closed(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }

  getDeadline(): number {
    return this.deadline;
  }

  /** Send the response headers once, before the first message. */
  private respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.stream.sendHeaders();
  }

  /**
   * Stream one message (server- and bidi-streaming calls). False: wait for 'drain' (or the
   * call is over). A writer that does not wait is cut off at MAX_CALL_BACKLOG.
   */
  write(message: unknown): boolean {
    if (this.finished || this.overflowed || this.stream.done) return false;
    let body: Buffer;
    try {
      body = frame(this.method.responseSerialize(message));
    } catch {
      return false;
    }
    const queued = this.stream.buffered;
    if (queued > 0 && queued + body.length > MAX_CALL_BACKLOG) {
      // The peer does not read and the handler does not wait: nothing better can reach the
      // client now (trailers would queue behind the DATA), so the stream is reset.
      this.overflowed = true;
      this.stream.overflow();
      return false;
    }
    this.respond();
    return this.stream.write(body);
  }

  /** End the call: OK, or the error's status (trailers-only when nothing was sent). */
  end(error?: Status): void {
    if (this.finished || this.overflowed || this.stream.done) {
      this.finished = true;
      return;
    }
    this.finished = true;
    const code = error ? (error.code ?? Code.UNKNOWN) : Code.OK;
    const details = error ? (error.details ?? error.message ?? '') : '';
    if (!this.responded) {
      this.responded = true;
      this.stream.trailersOnly(code, details);
      return;
    }
    this.stream.finish(code, details);
  }

  /** A unary call's answer: one message then OK, or the error's status. */
  reply(error: Status, message?: unknown): void {
    if (this.finished || this.overflowed || this.stream.done) return;
    if (error) {
      this.end(error);
      return;
    }
    let body: Buffer;
    try {
      body = frame(this.method.responseSerialize(message));
    } catch (e) {
      this.end({ code: Code.INTERNAL, details: `the response could not be encoded: ${(e as Error).message}` });
      return;
    }
    this.finished = true;
    this.respond();
    this.stream.write(body);
    this.stream.finish(Code.OK, '');
  }
}

type Handler = (call: ServerCall, reply?: ServerCall['reply']) => void;

/** Serve one request stream with the route its :path names. */
export function serveStream(routes: ReadonlyMap<string, Route>, stream: CallStream, headers: Readonly<Record<string, string | string[] | undefined>>): void {
  const ct = headers['content-type'];
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) {
    stream.notGrpc();
    return;
  }
  const path = headers[':path'];
  const route = typeof path === 'string' ? routes.get(path) : undefined;
  if (!route) {
    stream.trailersOnly(Code.UNIMPLEMENTED, `unknown method ${String(path).slice(0, 200)}`);
    return;
  }
  const enc = headers['grpc-encoding'];
  if (enc !== undefined && enc !== 'identity') {
    stream.trailersOnly(Code.UNIMPLEMENTED, `grpc-encoding ${String(enc).slice(0, 40)} is not supported`);
    return;
  }

  const { method } = route;
  const handler = route.handler as Handler;
  const deadline = deadlineOf(headers['grpc-timeout']);
  const call = new ServerCall(stream, new HeaderMetadata(headers), method, deadline);
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadline)) {
    timer = setTimeout(() => call.end({ code: Code.DEADLINE_EXCEEDED, details: 'deadline exceeded' }), Math.max(0, deadline - Date.now()));
    timer.unref();
  }
  stream.onClose(() => {
    if (timer) clearTimeout(timer);
    call.closed();
  });
  const reader = new MessageReader();
  const decode = (bytes: Buffer): unknown => method.requestDeserialize(bytes);
  const run = () => (method.responseStream ? handler(call) : handler(call, (e, m) => call.reply(e, m)));
  if (method.responseStream) stream.onDrain(() => call.emit('drain'));

  if (method.requestStream) {
    // Client- or bidi-streaming: each message as 'data', the client's half-close as 'end'.
    stream.onData((chunk) => {
      const msgs = reader.push(chunk);
      if (typeof msgs === 'string') return call.end({ code: Code.UNIMPLEMENTED, details: msgs });
      for (const b of msgs) {
        let msg: unknown;
        try {
          msg = decode(b);
        } catch (e) {
          return call.end({ code: Code.INTERNAL, details: `the request could not be decoded: ${(e as Error).message}` });
        }
        call.emit('data', msg);
      }
    });
    stream.onEnd(() => call.emit('end'));
    run();
    return;
  }

  // Unary and server-streaming: exactly one request message, then the handler.
  let request: Buffer | undefined;
  let failed = false;
  stream.onData((chunk) => {
    if (failed) return;
    const msgs = reader.push(chunk);
    if (typeof msgs === 'string' || msgs.length > 1 || (msgs.length === 1 && request)) {
      failed = true;
      return call.end({ code: Code.UNIMPLEMENTED, details: typeof msgs === 'string' ? msgs : 'a unary call carries one request message' });
    }
    if (msgs.length) request = msgs[0];
  });
  stream.onEnd(() => {
    if (failed) return;
    if (!request || reader.pending) return call.end({ code: Code.INTERNAL, details: 'the call ended without a complete request message' });
    try {
      call.request = decode(request);
    } catch (e) {
      return call.end({ code: Code.INTERNAL, details: `the request could not be decoded: ${(e as Error).message}` });
    }
    try {
      run();
    } catch (e) {
      call.end({ code: Code.UNKNOWN, details: (e as Error).message });
    }
  });
}
