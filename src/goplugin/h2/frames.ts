// HTTP/2 frames (RFC 9113 section 4 and 6): the numbers, and builders for the frames a
// server sends. Every frame is a 9-octet header (24-bit length, type, flags, 31-bit stream
// id) and its payload.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const Setting = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
  ENABLE_CONNECT_PROTOCOL: 8, // RFC 8441
  NO_RFC7540_PRIORITIES: 9, // RFC 9218
} as const;

export const ErrorCode = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  SETTINGS_TIMEOUT: 4,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  CONNECT_ERROR: 10,
  ENHANCE_YOUR_CALM: 11,
  INADEQUATE_SECURITY: 12,
  HTTP_1_1_REQUIRED: 13,
} as const;

export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_WINDOW = 0x7fffffff;

/** Write a frame header at `at`. */
export function writeHeader(buf: Buffer, at: number, length: number, type: number, flags: number, stream: number): void {
  buf[at] = length >>> 16;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf.writeUInt32BE(stream, at + 5);
}

/** A frame with its payload copied in. */
export function frame(type: number, flags: number, stream: number, payload?: Buffer): Buffer {
  const len = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(9 + len);
  writeHeader(out, 0, len, type, flags, stream);
  payload?.copy(out, 9);
  return out;
}

/** SETTINGS with the given (id, value) pairs. */
export function settingsFrame(values: ReadonlyArray<readonly [number, number]>): Buffer {
  const p = Buffer.allocUnsafe(6 * values.length);
  values.forEach(([id, v], i) => {
    p.writeUInt16BE(id, 6 * i);
    p.writeUInt32BE(v, 6 * i + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, p);
}

export function windowUpdateFrame(stream: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(13);
  writeHeader(out, 0, 4, FrameType.WINDOW_UPDATE, 0, stream);
  out.writeUInt32BE(increment, 9);
  return out;
}

export function rstStreamFrame(stream: number, code: number): Buffer {
  const out = Buffer.allocUnsafe(13);
  writeHeader(out, 0, 4, FrameType.RST_STREAM, 0, stream);
  out.writeUInt32BE(code, 9);
  return out;
}

export function goawayFrame(lastStream: number, code: number, debug = ''): Buffer {
  const d = Buffer.from(debug, 'utf8');
  const p = Buffer.allocUnsafe(8 + d.length);
  p.writeUInt32BE(lastStream, 0);
  p.writeUInt32BE(code, 4);
  d.copy(p, 8);
  return frame(FrameType.GOAWAY, 0, 0, p);
}
