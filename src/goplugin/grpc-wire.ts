// gRPC over HTTP/2, the parts our server (grpc-server.ts, on either HTTP/2 layer) and our
// client (grpc-client.ts) speak: message framing, grpc-message's percent-encoding,
// grpc-timeout, a call's metadata as handlers read it.
// Each message is 1 byte "compressed" flag (0: identity), 4 bytes big-endian length, the
// protobuf bytes. No @grpc/grpc-js here: the client must not need it loaded.

/** One length-prefixed message. */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/**
 * Splits an HTTP/2 body into gRPC messages. A large message arrives in many HTTP/2 DATA
 * chunks (16 KiB each by default): they are kept as they come and joined once, when the
 * whole message is in, so reading a message costs time linear in its size.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private length = 0;
  /** Length of the message whose header has been read; -1 while waiting for a header. */
  private size = -1;

  /** Add a chunk; returns the complete messages it finished, or an error text. */
  push(chunk: Buffer): Buffer[] | string {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const out: Buffer[] = [];
    for (;;) {
      if (this.size < 0) {
        if (this.length < 5) return out;
        const head = this.first(5);
        if (head[0] !== 0) return 'compressed messages are not supported (grpc-encoding identity only)';
        this.size = head.readUInt32BE(1);
      }
      if (this.length < 5 + this.size) return out;
      const all = this.first(this.length);
      out.push(all.subarray(5, 5 + this.size));
      const rest = all.subarray(5 + this.size);
      this.chunks = rest.length ? [rest] : [];
      this.length = rest.length;
      this.size = -1;
    }
  }

  /** The first chunk, joined with the ones after it until it holds at least `n` bytes. */
  private first(n: number): Buffer {
    if (this.chunks[0].length < n) {
      let take = 0;
      let bytes = 0;
      while (bytes < n) bytes += this.chunks[take++].length;
      this.chunks.splice(0, take, Buffer.concat(this.chunks.slice(0, take), bytes));
    }
    return this.chunks[0];
  }

  /** Bytes of an incomplete message left at the end of the body. */
  get pending(): number {
    return this.length;
  }
}

/** grpc-message's encoding (gRPC over HTTP/2): UTF-8, every byte outside printable ASCII, and "%", as %XX. */
export function percentEncoded(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8'))
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** The text of a grpc-message header; a "%" not followed by two hex digits is kept as it is (the spec asks clients to be lenient). */
export function percentDecoded(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value[i] === '%' ? value.slice(i + 1, i + 3) : '';
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(value.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A grpc-timeout header for `ms` milliseconds (at most 8 digits, so long ones go in seconds). */
export function timeoutHeader(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  return whole < 1e8 ? `${whole}m` : `${Math.min(99_999_999, Math.ceil(whole / 1000))}S`;
}

/**
 * gRPC's status codes (fixed by its spec, doc/statuscodes.md; the same numbers as
 * google.rpc.Code). Ours, so that neither server nor client needs @grpc/grpc-js loaded.
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A response without grpc-status, by its HTTP status (gRPC's mapping for proxies and other non-gRPC servers). */
export function codeOfHttpStatus(status: number): number {
  if (status === 400) return Code.INTERNAL;
  if (status === 401) return Code.UNAUTHENTICATED;
  if (status === 403) return Code.PERMISSION_DENIED;
  if (status === 404) return Code.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return Code.UNAVAILABLE;
  return Code.UNKNOWN;
}

/** A call's metadata as handlers read it: every value of a key (lower case), as grpc-js's Metadata.get gives them. */
export interface CallMetadata {
  get(key: string): Array<string | Buffer>;
}

/**
 * The call's metadata: every header that is not HTTP/2's or gRPC's own ("-bin" keys carry
 * base64 bytes). Read from the headers when asked: handlers look at one key at most
 * (multiplex_id), so nothing is copied for the others on every call.
 */
export class HeaderMetadata implements CallMetadata {
  constructor(private readonly headers: Readonly<Record<string, string | string[] | undefined>>) {}

  get(key: string): Array<string | Buffer> {
    const k = key.toLowerCase();
    const v = Object.hasOwn(this.headers, k) ? this.headers[k] : undefined;
    if (k.startsWith(':') || k.startsWith('grpc-') || k === 'content-type' || k === 'te' || k === 'user-agent' || v === undefined) return [];
    const list = Array.isArray(v) ? [...v] : [v];
    // A repeated header's values may arrive joined with ", " (node:http2); base64 has no comma, so binary values split back.
    return k.endsWith('-bin') ? list.flatMap((one) => one.split(',').map((b) => Buffer.from(b.trim(), 'base64'))) : list;
  }
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The grpc-timeout header as an absolute deadline (epoch ms), or Infinity. */
export function deadlineOf(value: string | string[] | undefined): number {
  const m = typeof value === 'string' ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  return m ? Date.now() + Number(m[1]) * TIMEOUT_UNIT_MS[m[2]] : Number.POSITIVE_INFINITY;
}
