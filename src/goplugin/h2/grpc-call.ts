// gRPC calls on our own HTTP/2 layer (connection.ts): the same call semantics as
// grpc-server.ts gives its handlers over node:http2 (request, metadata.get, cancelled and
// 'cancelled', getDeadline, write/end, 'data'/'end', trailers-only errors, UNIMPLEMENTED
// for unknown methods). A unary answer is HEADERS + DATA + trailers in one socket write.
import { EventEmitter } from 'node:events';
import type { Route } from '../grpc-server';
import { type CallMetadata, Code, deadlineOf, frame, HeaderMetadata, MessageReader, percentEncoded } from '../grpc-wire';
import type { H2Stream, HeaderMap } from './connection';
import { encodeHeaders } from './hpack';

type Method = Route['method'];
type Status = { code?: number; details?: string; message?: string } | null | undefined;

const OK_HEADERS: ReadonlyArray<[string, string]> = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
];
const RESPONSE_HEADERS = encodeHeaders(OK_HEADERS);
const OK_TRAILERS = encodeHeaders([['grpc-status', '0']]);

/** The status as a header block: trailers, or (with `headers`) a trailers-only response. */
function statusBlock(code: number, details: string, headers: boolean): Buffer {
  if (code === Code.OK && !details && !headers) return OK_TRAILERS;
  const list: Array<[string, string]> = headers ? [...OK_HEADERS] : [];
  list.push(['grpc-status', String(code)]);
  if (details) list.push(['grpc-message', percentEncoded(details)]);
  return encodeHeaders(list);
}

class H2Call extends EventEmitter {
  cancelled = false;
  request: unknown;
  private finished = false;
  private responded = false;

  constructor(
    private readonly stream: H2Stream,
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

  private respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.stream.respond(RESPONSE_HEADERS, false);
  }

  write(message: unknown): boolean {
    if (this.finished || this.stream.closed) return false;
    let body: Buffer;
    try {
      body = frame(this.method.responseSerialize(message));
    } catch {
      return false;
    }
    this.respond();
    this.stream.write(body);
    return true;
  }

  end(error?: Status): void {
    if (this.finished || this.stream.closed) {
      this.finished = true;
      return;
    }
    this.finished = true;
    const code = error ? (error.code ?? Code.UNKNOWN) : Code.OK;
    const details = error ? (error.details ?? error.message ?? '') : '';
    if (!this.responded) {
      this.responded = true;
      this.stream.respond(statusBlock(code, details, true), true);
      return;
    }
    this.stream.end(statusBlock(code, details, false));
  }

  reply(error: Status, message?: unknown): void {
    if (this.finished || this.stream.closed) return;
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
    this.stream.end(OK_TRAILERS);
  }
}

/** Serve one request stream with the route its :path names. */
export function serveH2Stream(routes: ReadonlyMap<string, Route>, stream: H2Stream, headers: HeaderMap): void {
  const path = headers[':path'] as string;
  const trailersOnly = (code: number, details: string) => stream.respond(statusBlock(code, details, true), true);
  const ct = headers['content-type'];
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) {
    stream.respond(encodeHeaders([[':status', '415']]), true);
    return;
  }
  const route = routes.get(path);
  if (!route) {
    trailersOnly(Code.UNIMPLEMENTED, `unknown method ${String(path).slice(0, 200)}`);
    return;
  }
  const enc = headers['grpc-encoding'];
  if (enc !== undefined && enc !== 'identity') {
    trailersOnly(Code.UNIMPLEMENTED, `grpc-encoding ${String(enc).slice(0, 40)} is not supported`);
    return;
  }

  const { method, handler } = route;
  const deadline = deadlineOf(headers['grpc-timeout']);
  const call = new H2Call(stream, new HeaderMetadata(headers), method, deadline);
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadline)) {
    timer = setTimeout(() => call.end({ code: Code.DEADLINE_EXCEEDED, details: 'deadline exceeded' }), Math.max(0, deadline - Date.now()));
    timer.unref();
  }
  stream.onClose = () => {
    if (timer) clearTimeout(timer);
    call.closed();
  };
  const reader = new MessageReader();
  const decode = (bytes: Buffer): unknown => method.requestDeserialize(bytes);

  if (method.requestStream) {
    stream.onData = (chunk) => {
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
    };
    stream.onEnd = () => call.emit('end');
    if (method.responseStream) (handler as (c: H2Call) => void)(call);
    else (handler as (c: H2Call, cb: H2Call['reply']) => void)(call, (e, m) => call.reply(e, m));
    return;
  }

  let request: Buffer | undefined;
  let failed = false;
  stream.onData = (chunk) => {
    if (failed) return;
    const msgs = reader.push(chunk);
    if (typeof msgs === 'string' || msgs.length > 1 || (msgs.length === 1 && request)) {
      failed = true;
      return call.end({ code: Code.UNIMPLEMENTED, details: typeof msgs === 'string' ? msgs : 'a unary call carries one request message' });
    }
    if (msgs.length) request = msgs[0];
  };
  stream.onEnd = () => {
    if (failed) return;
    if (!request || reader.pending) return call.end({ code: Code.INTERNAL, details: 'the call ended without a complete request message' });
    try {
      call.request = decode(request);
    } catch (e) {
      return call.end({ code: Code.INTERNAL, details: `the request could not be decoded: ${(e as Error).message}` });
    }
    try {
      if (method.responseStream) (handler as (c: H2Call) => void)(call);
      else (handler as (c: H2Call, cb: H2Call['reply']) => void)(call, (e, m) => call.reply(e, m));
    } catch (e) {
      call.end({ code: Code.UNKNOWN, details: (e as Error).message });
    }
  };
}
