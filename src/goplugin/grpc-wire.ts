// gRPC over HTTP/2, the parts both our server (grpc-server.ts) and our client
// (grpc-client.ts) speak: message framing, grpc-message's percent-encoding, grpc-timeout.
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

/** Splits an HTTP/2 body into gRPC messages. */
export class MessageReader {
  private buffered: Buffer[] = [];
  private length = 0;

  /** Add a chunk; returns the complete messages it finished, or an error text. */
  push(chunk: Buffer): Buffer[] | string {
    this.buffered.push(chunk);
    this.length += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.length < 5) return out;
      const head = this.buffered.length === 1 ? this.buffered[0] : Buffer.concat(this.buffered, this.length);
      this.buffered = [head];
      if (head[0] !== 0) return 'compressed messages are not supported (grpc-encoding identity only)';
      const size = head.readUInt32BE(1);
      if (this.length < 5 + size) return out;
      out.push(head.subarray(5, 5 + size));
      const rest = head.subarray(5 + size);
      this.buffered = rest.length ? [rest] : [];
      this.length = rest.length;
    }
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
