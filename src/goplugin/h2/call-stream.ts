// A request stream of our own HTTP/2 layer (connection.ts) as a gRPC call's stream
// (../grpc-call.ts). Headers go as lists for the connection's HPACK encoder; a unary answer
// is HEADERS + DATA + trailers, which the connection sends in one socket write.
import type { CallStream } from '../grpc-call';
import { Code, percentEncoded } from '../grpc-wire';
import type { H2Stream } from './stream';
import { ErrorCode } from './frames';
import { encodeHeaders } from './hpack';

// Frozen: the connection's encoder keeps their blocks (HpackEncoder.encode).
const OK_HEADERS: ReadonlyArray<[string, string]> = Object.freeze([
  [':status', '200'],
  ['content-type', 'application/grpc'],
]);
const OK_TRAILERS: ReadonlyArray<[string, string]> = Object.freeze([['grpc-status', '0']]);
const NOT_GRPC = encodeHeaders([[':status', '415']]);

/**
 * The status as a header list: trailers, or (with `headers`) a trailers-only response. Lists,
 * not blocks: the connection's encoder indexes content-type and grpc-status in the peer's
 * table, after which they cost an octet each.
 */
function statusFields(code: number, details: string, headers: boolean): ReadonlyArray<[string, string]> {
  if (code === Code.OK && !details && !headers) return OK_TRAILERS;
  const list: Array<[string, string]> = headers ? [...OK_HEADERS] : [];
  list.push(['grpc-status', String(code)]);
  if (details) list.push(['grpc-message', percentEncoded(details)]);
  return list;
}

/** `stream` as a gRPC call's stream. */
export function h2CallStream(stream: H2Stream): CallStream {
  return {
    get done() {
      return stream.closed;
    },
    sendHeaders: () => stream.respond(OK_HEADERS, false),
    trailersOnly: (code, details) => stream.respond(statusFields(code, details, true), true),
    notGrpc: () => stream.respond(NOT_GRPC, true),
    write: (framed) => stream.write(framed),
    get buffered() {
      return stream.queuedBytes;
    },
    onDrain(fn) {
      stream.onDrain = fn;
    },
    overflow: () => stream.reset(ErrorCode.ENHANCE_YOUR_CALM),
    finish: (code, details) => stream.end(statusFields(code, details, false)),
    onData(fn) {
      stream.onData = fn;
    },
    onEnd(fn) {
      stream.onEnd = fn;
    },
    onClose(fn) {
      stream.onClose = fn;
    },
  };
}
