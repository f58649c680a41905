// HPACK (src/goplugin/h2/hpack.ts, huffman.ts) against RFC 7541 Appendix C: integers, the
// literal kinds, request and response sequences with and without Huffman, and the dynamic
// table (entries, size, evictions) after each block.
import { describe, expect, it } from 'vitest';
import { encodeHeaders, HpackDecoder, HpackEncoder, HpackError } from '../../src/goplugin/h2/hpack';

const entrySize = ([n, v]: [string, string]) => n.length + v.length + 32;
import { CODES, huffmanDecode } from '../../src/goplugin/h2/huffman';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
type Pairs = Array<[string, string]>;

function series(limit: number, steps: Array<{ block: string; headers: Pairs; table: Pairs; size: number }>) {
  const d = new HpackDecoder(limit);
  for (const s of steps) {
    expect(d.decode(hex(s.block))).toEqual(s.headers);
    expect(d.state).toEqual({ entries: s.table, size: s.size });
  }
}

const FROZEN = [
  [
    [':status', '200'],
    ['content-type', 'application/grpc'],
  ],
  [['grpc-status', '0']],
  [
    [':path', '/plugin.GRPCBroker/StartStream'],
    ['te', 'trailers'],
    ['x-other', 'constant'],
  ],
].map((l) => Object.freeze(l.map((p) => Object.freeze(p))));

describe('Huffman code (Appendix B)', () => {
  it('is a complete canonical code of 257 symbols', () => {
    expect(CODES).toHaveLength(257);
    expect(CODES.reduce((k, [, bits]) => k + 2 ** -bits, 0)).toBe(1);
    const sorted = CODES.map(([code, bits], sym) => ({ code, bits, sym })).sort((a, b) => a.bits - b.bits || a.sym - b.sym);
    let next = 0;
    let len = sorted[0].bits;
    for (const e of sorted) {
      next *= 2 ** (e.bits - len);
      len = e.bits;
      expect(e.code).toBe(next++);
    }
  });

  it('decodes the Appendix C strings and refuses EOS and bad padding', () => {
    const cases: Array<[string, string]> = [
      ['f1e3 c2e5 f23a 6ba0 ab90 f4ff', 'www.example.com'],
      ['a8eb 1064 9cbf', 'no-cache'],
      ['25a8 49e9 5ba9 7d7f', 'custom-key'],
      ['6402', '302'],
      ['9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3', 'https://www.example.com'],
    ];
    for (const [h, text] of cases) expect(huffmanDecode(hex(h), 0, hex(h).length)).toBe(text);
    expect(() => huffmanDecode(hex('ffffffff'), 0, 4)).toThrow(/EOS/); // 30 one bits: EOS
    expect(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff ff'), 0, 13)).toThrow(/padding/); // 8+ bits of padding
    expect(() => huffmanDecode(hex('00'), 0, 1)).toThrow(/padding/); // '0' then 3 zero bits
  });
});

describe('HpackDecoder (Appendix C)', () => {
  it('C.1 integers: 10 and 1337 in a 5-bit prefix (as table size updates), 42 as a full octet string length', () => {
    const d = new HpackDecoder(4096);
    expect(d.decode(hex('2a'))).toEqual([]); // size update to 10
    expect(d.decode(hex('3f9a0a'))).toEqual([]); // size update to 1337
    expect(() => new HpackDecoder(1000).decode(hex('3f9a0a'))).toThrow(HpackError); // above our limit
    expect(() => d.decode(hex('3fffffffffff0f'))).toThrow(HpackError); // overflow
  });

  it('refuses over-long integers (5.1): a size update, an index or a string length padded with 0x80 octets', () => {
    const long = (first: number, rest: Buffer) => Buffer.concat([Buffer.from([first]), Buffer.alloc(150, 0x80), Buffer.from([0]), rest]);
    const d = new HpackDecoder(4096);
    // Once read as NaN, a size update disabled eviction and a string length swallowed the block.
    expect(() => d.decode(long(0x3f, Buffer.alloc(0)))).toThrow(/too long/);
    expect(() => d.decode(long(0xff, Buffer.alloc(0)))).toThrow(/too long/);
    expect(() => d.decode(Buffer.concat([Buffer.from([0x00]), long(0x7f, Buffer.from('rest'))]))).toThrow(/too long/);
    // Padding within 5 octets is still a value: 31 as 0x1f + 0x80 0x80 0x00 in a 5-bit prefix.
    expect(d.decode(hex('3f 80 80 00'))).toEqual([]);
    for (let i = 0; i < 200; i++) d.decode(Buffer.concat([hex('40 03'), Buffer.from('abc'), Buffer.from([100]), Buffer.alloc(100, 120)]));
    expect(d.state.size).toBeLessThanOrEqual(4096);
  });

  it('C.2 literal kinds and an indexed field', () => {
    series(4096, [
      {
        block: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
        headers: [['custom-key', 'custom-header']],
        table: [['custom-key', 'custom-header']],
        size: 55,
      },
    ]);
    series(4096, [{ block: '040c 2f73 616d 706c 652f 7061 7468', headers: [[':path', '/sample/path']], table: [], size: 0 }]);
    series(4096, [{ block: '1008 7061 7373 776f 7264 0673 6563 7265 74', headers: [['password', 'secret']], table: [], size: 0 }]);
    series(4096, [{ block: '82', headers: [[':method', 'GET']], table: [], size: 0 }]);
  });

  const req1: Pairs = [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ];
  const req2: Pairs = [...req1, ['cache-control', 'no-cache']];
  const req3: Pairs = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ];
  const t1: Pairs = [[':authority', 'www.example.com']];
  const t2: Pairs = [['cache-control', 'no-cache'], ...t1];
  const t3: Pairs = [['custom-key', 'custom-value'], ...t2];

  it('C.3 requests without Huffman', () =>
    series(4096, [
      { block: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', headers: req1, table: t1, size: 57 },
      { block: '8286 84be 5808 6e6f 2d63 6163 6865', headers: req2, table: t2, size: 110 },
      { block: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', headers: req3, table: t3, size: 164 },
    ]));

  it('C.4 requests with Huffman', () =>
    series(4096, [
      { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', headers: req1, table: t1, size: 57 },
      { block: '8286 84be 5886 a8eb 1064 9cbf', headers: req2, table: t2, size: 110 },
      { block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', headers: req3, table: t3, size: 164 },
    ]));

  const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
  const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
  const loc = 'https://www.example.com';
  const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
  const r1: Pairs = [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', date1],
    ['location', loc],
  ];
  const r2: Pairs = [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', date1],
    ['location', loc],
  ];
  const r3: Pairs = [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', date2],
    ['location', loc],
    ['content-encoding', 'gzip'],
    ['set-cookie', cookie],
  ];
  const rt1: Pairs = [
    ['location', loc],
    ['date', date1],
    ['cache-control', 'private'],
    [':status', '302'],
  ];
  const rt2: Pairs = [
    [':status', '307'],
    ['location', loc],
    ['date', date1],
    ['cache-control', 'private'],
  ];
  const rt3: Pairs = [
    ['set-cookie', cookie],
    ['content-encoding', 'gzip'],
    ['date', date2],
  ];

  it('C.5 responses without Huffman, table of 256 octets with evictions', () =>
    series(256, [
      {
        block:
          '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        headers: r1,
        table: rt1,
        size: 222,
      },
      { block: '4803 3330 37c1 c0bf', headers: r2, table: rt2, size: 222 },
      {
        block:
          '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
        headers: r3,
        table: rt3,
        size: 215,
      },
    ]));

  it('C.6 responses with Huffman, table of 256 octets with evictions', () =>
    series(256, [
      {
        block: '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        headers: r1,
        table: rt1,
        size: 222,
      },
      { block: '4883 640e ffc1 c0bf', headers: r2, table: rt2, size: 222 },
      {
        block:
          '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
        headers: r3,
        table: rt3,
        size: 215,
      },
    ]));

  it('evicts on a size update, refuses bad indexes and truncation, reports an oversized list but keeps the table in step', () => {
    const d = new HpackDecoder(4096);
    d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'));
    expect(d.state.size).toBe(57);
    d.decode(hex('20')); // size update to 0: empties the table
    expect(d.state).toEqual({ entries: [], size: 0 });
    expect(() => d.decode(hex('be'))).toThrow(HpackError); // index 62: nothing there
    expect(() => d.decode(hex('80'))).toThrow(HpackError); // index 0
    expect(() => d.decode(hex('400a 6375'))).toThrow(HpackError); // truncated string
    expect(() => d.decode(hex('82 20'))).toThrow(HpackError); // size update after a field
    const e = new HpackDecoder(4096);
    expect(e.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'), 100)).toBe('oversized');
    expect(e.state.size).toBe(57);
  });
});

describe('encodeHeaders', () => {
  it('indexes static matches, sends other fields as literals without indexing, and round-trips', () => {
    expect(encodeHeaders([[':status', '200']])).toEqual(hex('88'));
    const list: Pairs = [
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '13'],
      ['grpc-message', 'x'.repeat(300)],
    ];
    const block = encodeHeaders(list);
    expect(block.subarray(0, 3)).toEqual(hex('88 0f10'));
    const d = new HpackDecoder();
    expect(d.decode(block)).toEqual(list);
    expect(d.state.size).toBe(0);
  });
});

/** mulberry32, seeded: a failure can be replayed. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** The dynamic table size updates a block starts with (6.3). */
function sizeUpdates(block: Buffer): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < block.length && (block[pos] & 0xe0) === 0x20) {
    let v = block[pos++] & 0x1f;
    if (v === 0x1f)
      for (let shift = 0; ; shift += 7) {
        const b = block[pos++];
        v += (b & 0x7f) * 2 ** shift;
        if (!(b & 0x80)) break;
      }
    out.push(v);
  }
  return out;
}

describe('HpackEncoder (one per connection: the fields that repeat go in the dynamic table)', () => {
  it('adds content-type, grpc-status, te, :path and :authority to the table once, then sends each as one octet; other fields stay literals', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    const response: Pairs = [
      [':status', '200'],
      ['content-type', 'application/grpc'],
    ];
    const trailers: Pairs = [['grpc-status', '0']];
    const first = e.encode(response);
    expect(first[1]).toBe(0x40 | 31); // literal with incremental indexing, name: static content-type
    expect(d.decode(first)).toEqual(response);
    expect(d.decode(e.encode(trailers))).toEqual(trailers);
    // Newest first: grpc-status 0 is 62, content-type 63.
    expect(e.encode(response)).toEqual(hex('88 bf'));
    expect(e.encode(trailers)).toEqual(hex('be'));
    const request: Pairs = [
      [':method', 'POST'],
      [':path', '/pb.Storage/Get'],
      ['grpc-timeout', '30000m'],
      ['multiplex_id', 'mount-1'],
    ];
    expect(d.decode(e.encode(request))).toEqual(request);
    const again = e.encode(request);
    expect(d.decode(again)).toEqual(request);
    expect(again.subarray(0, 2)).toEqual(hex('83 be')); // :method POST static, :path newest
    expect(d.state.entries).toEqual([
      [':path', '/pb.Storage/Get'],
      ['grpc-status', '0'],
      ['content-type', 'application/grpc'],
    ]);
  });

  it('says a smaller SETTINGS_HEADER_TABLE_SIZE at the start of the next block, the smallest since the last block first, then the latest (4.2)', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    const ct: Pairs = [['content-type', 'application/grpc']];
    d.decode(e.encode(ct));
    e.setLimit(8192); // above our 4096: nothing to say
    expect(e.encode(ct)).toEqual(hex('be'));
    e.setLimit(0);
    e.setLimit(100);
    const block = e.encode(ct);
    expect(sizeUpdates(block)).toEqual([0, 100]);
    expect(d.decode(block)).toEqual(ct);
    expect(d.state.size).toBe(entrySize(ct[0]));
    e.setLimit(50);
    expect(sizeUpdates(e.updates()!)).toEqual([50]);
    expect(e.updates()).toBeUndefined();
    // 48 < 16 + 12 + 32: too big for a table of 50, so a literal without indexing.
    const big: Pairs = [['content-type', 'application/grpc+proto-and-more']];
    const b = e.encode(big);
    expect(b[0] >> 4).toBe(0);
    expect(d.decode(Buffer.concat([hex('3f13'), b]))).toEqual(big);
  });

  it("gives a frozen list's kept block while the table is unchanged, and builds it again after an insertion, an eviction or a size change", () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    const response = Object.freeze([
      [':status', '200'],
      ['content-type', 'application/grpc'],
    ]) as unknown as Pairs;
    const mutable: Pairs = [
      [':status', '200'],
      ['content-type', 'application/grpc'],
    ];
    expect(d.decode(e.encode(response))).toEqual(response); // inserts content-type: not kept
    const kept = e.encode(response);
    expect(kept).toEqual(hex('88 be'));
    expect(e.encode(response)).toBe(kept); // the same Buffer
    expect(e.encode(mutable)).not.toBe(kept); // only frozen lists are kept
    expect(d.decode(kept)).toEqual(response);
    // An insertion moves content-type from 62 to 63.
    expect(d.decode(e.encode([['grpc-status', '0']]))).toEqual([['grpc-status', '0']]);
    const moved = e.encode(response);
    expect(moved).toEqual(hex('88 bf'));
    expect(d.decode(moved)).toEqual(response);
    // A smaller table evicts content-type: the next block says the size and adds it again.
    e.setLimit(60);
    const after = e.encode(response);
    expect(sizeUpdates(after)).toEqual([60]);
    expect(d.decode(after)).toEqual(response);
    expect(e.encode(response)).toEqual(hex('88 be'));
  });

  it('round-trips a seeded stream of blocks with table size changes and evictions through HpackDecoder', () => {
    const names = [':path', ':authority', 'content-type', 'te', 'grpc-status', 'grpc-message', 'x-other', ':status'];
    for (let seed = 1; seed <= 40; seed++) {
      const rand = prng(seed);
      const e = new HpackEncoder();
      const d = new HpackDecoder(4096);
      let limit = 4096;
      let announced = 4096; // the table size the decoder was last told
      for (let block = 0; block < 200; block++) {
        let lowest = announced;
        const changes = rand(6) === 0 ? 1 + rand(3) : 0;
        for (let i = 0; i < changes; i++) {
          limit = [0, 1, 40, 100, 500, 4096, 8000][rand(7)];
          lowest = Math.min(lowest, limit);
          e.setLimit(limit);
        }
        // A third of the blocks are frozen lists sent again and again (their blocks are kept).
        let list: Pairs = [];
        if (rand(3) === 0) list = FROZEN[rand(FROZEN.length)] as Pairs;
        else
          for (let i = rand(6); i >= 0; i--) {
            const name = names[rand(names.length)];
            const value = rand(4) === 0 ? 'v'.repeat(rand(3000)) : `${name}-${rand(12)}`;
            list.push([name, value]);
          }
        const bytes = e.encode(list);
        const updates = sizeUpdates(bytes);
        // Below the table's size at some point since the last block: the first update says so (4.2).
        if (lowest < announced) expect(updates[0]).toBeLessThanOrEqual(lowest);
        if (updates.length) {
          announced = updates[updates.length - 1];
          expect(announced).toBeLessThanOrEqual(Math.min(limit, 4096));
        }
        expect([seed, block, d.decode(bytes)]).toEqual([seed, block, list]);
        expect(d.state.size).toBeLessThanOrEqual(Math.min(limit, 4096));
      }
    }
  });
});
