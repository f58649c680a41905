// The header fields RFC 9113 section 8 allows: a received header block as a HeaderMap, or
// undefined when it is malformed (the connection then resets the stream with PROTOCOL_ERROR).
import type { HeaderList } from './hpack';

/** Request headers as node:http2 gives them: lower-case names, a repeated name's values in an array. */
export type HeaderMap = Record<string, string | string[]>;

/** RFC 9113 8.2.1: octets a field name must not hold (a colon only starts a pseudo-header); a value's. */
const BAD_NAME = /[\0- A-Z:\x7f-\xff]/;
const BAD_VALUE = /[\0\r\n]|^[ \t]|[ \t]$/;
/** 8.2.2: fields of HTTP/1.1 connections; te is allowed with "trailers" only. */
const CONNECTION_SPECIFIC = new Set(['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade']);
/** 8.3.1: the pseudo-headers of a request (:protocol only with SETTINGS_ENABLE_CONNECT_PROTOCOL, which we do not send). */
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':path', ':authority']);

/** Field names already found valid (a peer sends the same few on every call): their check is skipped. */
const validNames = new Set<string>();

/** A regular field a request may carry (8.2.1, 8.2.2). */
export function validField(name: string, value: string): boolean {
  if (BAD_VALUE.test(value) || (name === 'te' && value !== 'trailers')) return false;
  if (validNames.has(name)) return true;
  if (name === '' || BAD_NAME.test(name) || CONNECTION_SPECIFIC.has(name)) return false;
  if (validNames.size < 256) validNames.add(name);
  return true;
}

/** The pseudo-headers each kind of header block may carry (8.3). */
const PSEUDO = { request: REQUEST_PSEUDO, response: new Set([':status']), trailers: new Set<string>() };

/**
 * A header list as a HeaderMap; undefined when malformed (8.1.1, 8.2, 8.3): a bad name or
 * value, a connection-specific field, a pseudo-header not of its kind, after a field or
 * twice, a content-length that is not a number; a request without :method, :scheme or :path
 * (CONNECT, which has neither, is not served), a response without a three-digit :status.
 */
export function headerMap(list: HeaderList, kind: keyof typeof PSEUDO): HeaderMap | undefined {
  const h: HeaderMap = Object.create(null);
  let fields = false;
  for (const [n, v] of list) {
    if (n[0] === ':') {
      if (fields || !PSEUDO[kind].has(n) || Object.hasOwn(h, n) || BAD_VALUE.test(v)) return undefined;
    } else {
      if (!validField(n, v)) return undefined;
      fields = true;
    }
    const had = Object.hasOwn(h, n) ? h[n] : undefined;
    h[n] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  const cl = h['content-length'];
  if (cl !== undefined && (typeof cl !== 'string' || !/^\d{1,15}$/.test(cl))) return undefined;
  if (kind === 'response') return typeof h[':status'] === 'string' && /^\d{3}$/.test(h[':status']) ? h : undefined;
  if (kind === 'trailers') return h;
  return typeof h[':method'] === 'string' && h[':method'] !== 'CONNECT' && h[':scheme'] && h[':path'] ? h : undefined;
}
