// HPACK (RFC 7541): a decoder for the header blocks a peer sends, and two encoders, no
// Huffman: encodeHeaders (static-table indexes and literals without indexing, so the peer's
// dynamic table is never touched: blocks built once, sendable on any connection) and
// HpackEncoder (one per connection, which also indexes the few fields that repeat on every
// call, content-type, grpc-status, te, :path, :authority, in the peer's dynamic table).
// Names and values are latin1 text, as node:http2 gives them.
import { huffmanDecode } from './huffman';

/** The static table (Appendix A); index 1 is STATIC[0]. */
// biome-ignore format: a compact table
const STATIC: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

export type HeaderList = Array<[name: string, value: string]>;

/** A decoding failure: the connection must end with COMPRESSION_ERROR (RFC 7540 4.3). */
export class HpackError extends Error {}

/** An entry's size in the dynamic table: its octets plus 32 (4.1). */
const entrySize = (name: string, value: string) => name.length + value.length + 32;

export class HpackDecoder {
  /** Newest first. */
  private table: Array<[string, string]> = [];
  private size = 0;
  /** The current maximum the encoder chose (by size updates), at most `limit`. */
  private max: number;

  /** `limit`: our SETTINGS_HEADER_TABLE_SIZE (what size updates may ask for). */
  constructor(private readonly limit = 4096) {
    this.max = limit;
  }

  /** The dynamic table, newest first, and its size (for tests). */
  get state(): { entries: Array<[string, string]>; size: number } {
    return { entries: this.table.map(([n, v]) => [n, v]), size: this.size };
  }

  /**
   * Decode one complete header block. `maxListSize` bounds the decoded list (names, values
   * and 32 octets each); beyond it the block is still decoded, to keep the table in step,
   * and `oversized` is reported instead of the headers.
   */
  decode(block: Buffer, maxListSize = Number.POSITIVE_INFINITY): HeaderList | 'oversized' {
    const out: HeaderList = [];
    let listSize = 0;
    let pos = 0;
    let fieldSeen = false;
    const int = (prefix: number): number => {
      const mask = (1 << prefix) - 1;
      let v = block[pos++] & mask;
      if (v < mask) return v;
      // At most 5 continuation octets (35 bits, enough for 2^31-1): an encoder may pad a
      // value with 0x80 octets, but past that 2 ** shift reaches Infinity and 0 * Infinity is
      // NaN, which no check below would catch (5.1: a limit on octet length is allowed).
      for (let shift = 0; shift <= 28; shift += 7) {
        if (pos >= block.length) throw new HpackError('truncated integer');
        const b = block[pos++];
        v += (b & 0x7f) * 2 ** shift;
        if (v > 0x7fffffff) throw new HpackError('integer overflow');
        if (!(b & 0x80)) return v;
      }
      throw new HpackError('integer too long');
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError('truncated string');
      const huffman = (block[pos] & 0x80) !== 0;
      const len = int(7);
      if (pos + len > block.length) throw new HpackError('truncated string');
      const start = pos;
      pos += len;
      if (!huffman) return block.toString('latin1', start, pos);
      try {
        return huffmanDecode(block, start, pos);
      } catch (e) {
        throw new HpackError((e as Error).message);
      }
    };
    const entry = (index: number): readonly [string, string] => {
      if (index === 0) throw new HpackError('index 0');
      if (index <= STATIC.length) return STATIC[index - 1];
      const e = this.table[index - STATIC.length - 1];
      if (!e) throw new HpackError(`index ${index} is not in the table`);
      return e;
    };
    const emit = (name: string, value: string) => {
      listSize += entrySize(name, value);
      if (listSize <= maxListSize) out.push([name, value]);
    };
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) {
        // Indexed field (6.1).
        const [n, v] = entry(int(7));
        emit(n, v);
        fieldSeen = true;
      } else if (b & 0x40) {
        // Literal with incremental indexing (6.2.1).
        const idx = int(6);
        const name = idx ? entry(idx)[0] : str();
        const value = str();
        this.insert(name, value);
        emit(name, value);
        fieldSeen = true;
      } else if (b & 0x20) {
        // Dynamic table size update (6.3): only at the start of a block (4.2).
        if (fieldSeen) throw new HpackError('table size update after a field');
        const max = int(5);
        if (max > this.limit) throw new HpackError('table size update above the limit');
        this.max = max;
        this.evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001) (6.2.2, 6.2.3).
        const idx = int(4);
        const name = idx ? entry(idx)[0] : str();
        emit(name, str());
        fieldSeen = true;
      }
    }
    return listSize > maxListSize ? 'oversized' : out;
  }

  private insert(name: string, value: string): void {
    const size = entrySize(name, value);
    this.evict(size);
    // An entry larger than the table empties it and is not added (4.4).
    if (size > this.max) return;
    this.table.unshift([name, value]);
    this.size += size;
  }

  /** Evict the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.table.length && this.size + room > this.max) {
      const [n, v] = this.table.pop()!;
      this.size -= entrySize(n, v);
    }
  }
}

/** HPACK integer with an n-bit prefix, first byte's high bits `flags` (5.1). */
function pushInt(out: number[], value: number, prefix: number, flags: number): void {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out.push(flags | value);
    return;
  }
  out.push(flags | mask);
  let v = value - mask;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function pushString(out: number[], text: string): void {
  pushInt(out, text.length, 7, 0);
  for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 0xff);
}

const staticIndex = new Map<string, number>();
const staticNameIndex = new Map<string, number>();
STATIC.forEach(([n, v], i) => {
  if (!staticIndex.has(`${n}\0${v}`)) staticIndex.set(`${n}\0${v}`, i + 1);
  if (!staticNameIndex.has(n)) staticNameIndex.set(n, i + 1);
});

/** A literal field, with incremental indexing (6.2.1) or without (6.2.2); its name a static index where the table has it. */
function pushLiteral(out: number[], name: string, value: string, indexing: boolean): void {
  const idx = staticNameIndex.get(name);
  const flags = indexing ? 0x40 : 0;
  if (idx) pushInt(out, idx, indexing ? 6 : 4, flags);
  else {
    out.push(flags);
    pushString(out, name);
  }
  pushString(out, value);
}

/** Encode a header list: a static-table match is indexed, anything else a literal without indexing. */
export function encodeHeaders(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const full = staticIndex.get(`${name}\0${value}`);
    if (full) pushInt(out, full, 7, 0x80);
    else pushLiteral(out, name, value, false);
  }
  return Buffer.from(out);
}

/**
 * The fields HpackEncoder indexes: the same on every call of a connection (a path per
 * method), and nothing a caller chose (metadata), no grpc-message or grpc-timeout.
 */
const INDEXED_NAMES = new Set([':authority', ':path', 'content-type', 'te', 'grpc-status']);

/** Our table's largest size whatever the peer allows (the default, as Go's and nghttp2's encoders). */
const ENCODER_TABLE_MAX = 4096;

/**
 * One connection's encoder (its blocks must go out in the order they are encoded). It keeps
 * the peer's dynamic table in step (4.4: an entry in, the oldest out past the size), holding
 * only each entry's key and size, and says the size the peer's SETTINGS_HEADER_TABLE_SIZE
 * leaves it in size updates at the start of the next block (4.2, 6.3).
 */
export class HpackEncoder {
  /** Entries oldest first, and the insertion number of each key; the newest has `inserted - 1`. */
  private readonly entries: Array<{ key: string; size: number; seq: number }> = [];
  private readonly seqOf = new Map<string, number>();
  private inserted = 0;
  private size = 0;
  /** Changes with every insertion and size change: what a kept block's indices depend on. */
  private version = 0;
  /** Blocks of frozen header lists, valid while `version` is unchanged (see encode). */
  private readonly kept = new WeakMap<object, { version: number; block: Buffer }>();
  /** The table's size as the peer's decoder knows it. */
  private max = ENCODER_TABLE_MAX;
  /** Since the last block: the smallest size the peer's settings allowed, and the latest. */
  private lowest?: number;
  private latest?: number;

  /** The peer's SETTINGS_HEADER_TABLE_SIZE, on receipt: said (and applied) at the start of the next block. */
  setLimit(limit: number): void {
    const size = Math.min(limit, ENCODER_TABLE_MAX);
    this.lowest = Math.min(this.lowest ?? this.max, size);
    this.latest = size;
  }

  /** The size updates owed, for a block built apart (encodeHeaders) to start with; undefined when none. */
  updates(): Buffer | undefined {
    if (this.latest === undefined) return undefined;
    const out: number[] = [];
    this.pushUpdates(out);
    return out.length ? Buffer.from(out) : undefined;
  }

  /**
   * Encode a header block: static matches and table entries indexed, an INDEXED_NAMES field new
   * to the table added to it, the rest literals without indexing. A frozen list's block is kept
   * and given again while the table is as it was (no entry added, no size changed, no size
   * update owed): a gRPC server sends the same response headers and OK trailers on every call.
   */
  encode(headers: ReadonlyArray<readonly [string, string]>): Buffer {
    if (this.latest === undefined) {
      const kept = this.kept.get(headers);
      if (kept && kept.version === this.version) return kept.block;
    }
    const before = this.version;
    const block = this.build(headers);
    if (this.version === before && Object.isFrozen(headers)) this.kept.set(headers, { version: before, block });
    return block;
  }

  private build(headers: ReadonlyArray<readonly [string, string]>): Buffer {
    const out: number[] = [];
    if (this.latest !== undefined) this.pushUpdates(out);
    for (const [name, value] of headers) {
      const key = `${name}\0${value}`;
      const full = staticIndex.get(key);
      if (full) {
        pushInt(out, full, 7, 0x80);
        continue;
      }
      if (INDEXED_NAMES.has(name)) {
        const seq = this.seqOf.get(key);
        if (seq !== undefined) {
          pushInt(out, STATIC.length + this.inserted - seq, 7, 0x80);
          continue;
        }
        const size = entrySize(name, value);
        if (size <= this.max) {
          pushLiteral(out, name, value, true);
          this.insert(key, size);
          continue;
        }
      }
      pushLiteral(out, name, value, false);
    }
    return Buffer.from(out);
  }

  /** The smallest size since the last block if below the table's, then the latest if that differs (4.2). */
  private pushUpdates(out: number[]): void {
    const lowest = this.lowest!;
    const latest = this.latest!;
    this.lowest = this.latest = undefined;
    if (lowest < this.max) {
      pushInt(out, lowest, 5, 0x20);
      this.resize(lowest);
    }
    if (latest !== this.max) {
      pushInt(out, latest, 5, 0x20);
      this.resize(latest);
    }
  }

  private resize(max: number): void {
    this.version++;
    this.max = max;
    this.evict(0);
  }

  private insert(key: string, size: number): void {
    this.version++;
    this.evict(size);
    this.entries.push({ key, size, seq: this.inserted });
    this.seqOf.set(key, this.inserted++);
    this.size += size;
  }

  /** Evict the oldest entries until `room` more octets fit, as the peer's decoder does. */
  private evict(room: number): void {
    while (this.entries.length && this.size + room > this.max) {
      const e = this.entries.shift()!;
      this.size -= e.size;
      this.seqOf.delete(e.key);
    }
  }
}
