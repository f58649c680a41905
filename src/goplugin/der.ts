// Just enough DER to write certificates (autotls.ts, pki/cert-writer.ts), and the one reader
// of DER elements (strictElement, readElement) that every DER walk here goes through. Lengths
// use the definite form; every value written is small and well-formed by construction. Each
// element is written into one buffer sized from its parts (a certificate is ~40 elements:
// building each from Buffer.concat of header pieces was ~15% of a PKI issue's own CPU).

/** Bytes of the length octets for a content of n bytes. */
const lengthOctets = (n: number): number => (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5);

/** A DER element of `tag` whose content is `parts` in order. */
function element(tag: number, parts: readonly Uint8Array[]): Buffer {
  let n = 0;
  for (const p of parts) n += p.length;
  const lo = lengthOctets(n);
  const out = Buffer.allocUnsafe(1 + lo + n);
  out[0] = tag;
  if (lo === 1) out[1] = n;
  else {
    out[1] = 0x80 | (lo - 1);
    for (let i = lo, v = n; i > 1; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  }
  let at = 1 + lo;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A DER element: tag, length, body. */
export const tlv = (tag: number, body: Uint8Array): Buffer => element(tag, [body]);
/** A DER SEQUENCE of the items. */
export const seq = (...items: Uint8Array[]): Buffer => element(0x30, items);
/** A DER SET of the items (in the order given). */
export const set = (...items: Uint8Array[]): Buffer => element(0x31, items);
/** An explicitly tagged [n] context-specific element. */
export const explicit = (n: number, inner: Uint8Array): Buffer => element(0xa0 | n, [inner]);
// Every element is copied into its parent, so the two BOOLEANs can be shared (Buffer.from of
// an array, per call, showed in PKI issue profiles).
const TRUE = Buffer.from([0x01, 0x01, 0xff]);
const FALSE = Buffer.from([0x01, 0x01, 0x00]);
/** A DER BOOLEAN. */
export const bool = (v: boolean): Buffer => (v ? TRUE : FALSE);
/** A DER OCTET STRING. */
export const octets = (b: Uint8Array): Buffer => element(0x04, [b]);
/** A DER UTF8String. */
export const utf8 = (s: string): Buffer => element(0x0c, [Buffer.from(s, 'utf8')]);
/** BIT STRING with `unused` trailing bits in the last byte. */
export const bits = (b: Uint8Array, unused = 0): Buffer => element(0x03, [Uint8Array.of(unused), b]);

const ZERO = Uint8Array.of(0);
/** Non-negative INTEGER from big-endian bytes, minimally encoded. */
export function uint(b: Uint8Array): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return element(0x02, v[0] & 0x80 ? [ZERO, v] : [v]); // a set top bit would read as negative
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
  return element(0x06, [Uint8Array.from(out)]);
}

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5). */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'latin1')) : tlv(0x18, Buffer.from(iso, 'latin1'));
}

/** PEM armour (RFC 7468) for DER bytes under a label such as "CERTIFICATE" or "X509 CRL". */
export function pem(der: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;
}

/** The DER inside a PEM block (its armour lines and white space dropped). */
export function pemDer(pemText: string): Buffer {
  return Buffer.from(pemText.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** One DER element: its tag, where its content starts and where it ends. */
export interface DerElement {
  tag: number;
  content: number;
  end: number;
}

/**
 * The one DER element reader. The element at `at`, ending by `limit` (the end of `der` unless
 * given), if its length is DER's: definite, in the fewest octets, at most four of them (as Go's
 * x509 reads DER: a long form for a length under 128, a leading zero octet, the indefinite form
 * are refused); undefined otherwise. For readers that answer "not this" rather than throw.
 */
export function strictElement(der: Buffer, at: number, limit = der.length): DerElement | undefined {
  if (at + 2 > limit) return undefined;
  let length = der[at + 1];
  let content = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n < 1 || n > 4 || content + n > limit || der[content] === 0) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[content + i];
    if (length < 0x80) return undefined;
    content += n;
  }
  return content + length <= limit ? { tag: der[at], content, end: content + length } : undefined;
}

/**
 * Whether `der` is one DER element with nothing after it, every constructed element inside it
 * made of strict elements that fill it exactly: what Go's parsers ask of an imported
 * certificate or key before reading it (OpenSSL also reads BER's longer length forms). Values
 * inside primitive elements (an extension's OCTET STRING) are their readers' business.
 */
export function isDer(der: Buffer): boolean {
  const top = strictElement(der, 0);
  return !!top && top.end === der.length && fills(der, top, 0);
}

/**
 * The DER of `pemOrDer` (a PEM block's body, or DER bytes as they are) if it is strict DER
 * (isDer); otherwise an Error. The one "strict DER or refuse" step of every import of a
 * certificate or key: each caller catches it and answers in its own words.
 */
export function strictDer(pemOrDer: string | Buffer): Buffer {
  const der = typeof pemOrDer === 'string' ? pemDer(pemOrDer) : pemOrDer;
  if (!isDer(der)) throw new Error('not DER: a length not in its shortest definite form, data after the element, or an element overrunning its parent');
  return der;
}

/** Nesting deeper than any certificate or key goes: refused rather than recursed into. */
const MAX_DER_DEPTH = 64;

function fills(der: Buffer, e: DerElement, depth: number): boolean {
  if (!(e.tag & 0x20)) return true; // primitive
  if (depth >= MAX_DER_DEPTH) return false;
  for (let at = e.content; at < e.end; ) {
    const child = strictElement(der, at, e.end);
    if (!child || !fills(der, child, depth + 1)) return false;
    at = child.end;
  }
  return true;
}

/** strictElement for readers that throw: `error()` (each caller's own words) where it answers undefined. */
export function readElement(
  der: Buffer,
  at: number,
  error: () => Error = () => new Error('DER: malformed or truncated element'),
  limit = der.length,
): DerElement {
  const e = strictElement(der, at, limit);
  if (!e) throw error();
  return e;
}
