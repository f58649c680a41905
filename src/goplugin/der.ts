// Just enough DER to write one certificate shape (see autotls.ts). Lengths use the
// definite form; every value here is small and well-formed by construction.
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A DER element: tag, length, body. */
export const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
/** A DER SEQUENCE of the items. */
export const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
/** A DER SET of the items (in the order given). */
export const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
/** An explicitly tagged [n] context-specific element. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
/** A DER BOOLEAN. */
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
/** A DER OCTET STRING. */
export const octets = (b: Buffer): Buffer => tlv(0x04, b);
/** A DER UTF8String. */
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
/** BIT STRING with `unused` trailing bits in the last byte. */
export const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));

/** Non-negative INTEGER from big-endian bytes, minimally encoded. */
export function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

/** Dotted OID text: a first arc of 0, 1 or 2, then at least one more arc, no leading zeros. */
export const OID_TEXT = /^[0-2](\.(0|[1-9]\d*))+$/;

/** OBJECT IDENTIFIER from dotted text; arcs of any size (e.g. 2.25.<UUID as an integer>). */
export function oid(dotted: string): Buffer {
  if (!OID_TEXT.test(dotted)) throw new Error(`not an OID: ${dotted.slice(0, 60)}`);
  const [a, b, ...rest] = dotted.split('.').map(BigInt);
  if (a < 2n && b >= 40n) throw new Error(`not an OID: ${dotted.slice(0, 60)}`);
  const out: number[] = [];
  for (const n of [40n * a + b, ...rest]) {
    const chunk: number[] = [];
    let v = n;
    do {
      chunk.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i] |= 0x80;
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5). */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

/** PEM armour (RFC 7468) for DER bytes under a label such as "CERTIFICATE" or "X509 CRL". */
export function pem(der: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;
}

/** One DER element at `at` (definite lengths): its tag, where its content starts and where it ends. */
export function readElement(der: Buffer, at: number): { tag: number; content: number; end: number } {
  if (at + 2 > der.length) throw new Error('DER: truncated');
  let length = der[at + 1];
  let content = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n < 1 || n > 4 || content + n > der.length) throw new Error('DER: bad length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[content + i];
    content += n;
  }
  if (content + length > der.length) throw new Error('DER: truncated');
  return { tag: der[at], content, end: content + length };
}
