// The DER writer (src/goplugin/der.ts) at the edges of its encodings: length forms, INTEGER
// sign octets, OID arcs of one and several base-128 digits, nesting; each read back by
// readElement and, for whole structures, by openssl. And PKI's serial numbers.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bits, bool, explicit, octets, oid, readElement, seq, set, strictElement, time, tlv, uint, utf8 } from '../../src/goplugin/der';
import { newSerial } from '../../src/secrets/pki/ca';

const hex = (b: Buffer) => b.toString('hex');

describe('DER writer', () => {
  it('writes the short length form up to 127 bytes and the long form (1–3 octets) above', () => {
    for (const [n, header] of [
      [0, '0400'],
      [127, '047f'],
      [128, '048180'],
      [255, '0481ff'],
      [256, '04820100'],
      [65535, '0482ffff'],
      [65536, '0483010000'],
    ] as const) {
      const e = octets(Buffer.alloc(n, 7));
      expect(hex(e.subarray(0, header.length / 2))).toBe(header);
      expect(e.length).toBe(header.length / 2 + n);
      expect(readElement(e, 0)).toEqual({ tag: 0x04, content: header.length / 2, end: e.length });
    }
  });

  it('INTEGERs are minimal: leading zeros dropped, a zero octet before a set high bit', () => {
    expect(hex(uint(Buffer.from([0, 0, 5])))).toBe('020105');
    expect(hex(uint(Buffer.from([0x80])))).toBe('02020080');
    expect(hex(uint(Buffer.from([0, 0, 0x80, 1])))).toBe('0203008001');
    expect(hex(uint(Buffer.from([0])))).toBe('020100');
  });

  it('OIDs: the first two arcs in one subidentifier, large arcs in several base-128 digits, arcs beyond 2^53; as openssl encodes them', () => {
    const tmp = path.join(os.tmpdir(), `vpt-der-${process.pid}`);
    try {
      for (const id of ['2.5.29.17', '1.2.840.113549.1.1.11', '1.3.6.1.4.1.311.20.2.3', '2.999.1', '0.0', '2.25.329800735698586629295641978511506172918']) {
        execFileSync('openssl', ['asn1parse', '-genstr', `OID:${id}`, '-out', tmp], { stdio: 'pipe' });
        expect(hex(oid(id)), id).toBe(hex(fs.readFileSync(tmp)));
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    expect(hex(oid('2.5.29.17'))).toBe('0603551d11');
    expect(() => oid('1.40')).toThrow(/not an OID/);
    expect(() => oid('3.1')).toThrow(/not an OID/);
    expect(() => oid('1.02')).toThrow(/not an OID/);
  });

  it('strings, booleans, bit strings, explicit tags and times', () => {
    expect(hex(bool(true))).toBe('0101ff');
    expect(hex(bool(false))).toBe('010100');
    expect(hex(utf8('é'))).toBe('0c02c3a9');
    expect(hex(bits(Buffer.from([0x86]), 1))).toBe('03020186');
    expect(hex(explicit(3, tlv(0x05, Buffer.alloc(0))))).toBe('a3020500');
    expect(hex(time(new Date('2049-12-31T23:59:59Z')))).toBe('170d' + Buffer.from('491231235959Z').toString('hex'));
    expect(hex(time(new Date('2050-01-01T00:00:00Z')))).toBe('180f' + Buffer.from('20500101000000Z').toString('hex'));
  });

  it('a nested structure over 256 bytes is what openssl reads back', () => {
    const name = seq(set(seq(oid('2.5.4.3'), utf8('x'.repeat(300)))), set(seq(oid('2.5.4.10'), utf8('Example'))));
    const out = execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: name, encoding: 'utf8' });
    expect(out).toMatch(/commonName/);
    expect(out).toMatch(/UTF8STRING\s+:x{300}/);
    expect(out).toMatch(/organizationName/);
    expect(readElement(name, 0).end).toBe(name.length);
  });
});

describe('DER element reader', () => {
  const b = (h: string) => Buffer.from(h.replace(/ /g, ''), 'hex');
  const bad = () => new Error('caller words');

  it('short and long lengths (1 to 4 octets), as the writer writes them', () => {
    expect(strictElement(b('04 00'), 0)).toEqual({ tag: 0x04, content: 2, end: 2 });
    expect(strictElement(b('30 03 020105'), 0)).toEqual({ tag: 0x30, content: 2, end: 5 });
    for (const n of [128, 255, 256, 65535, 65536, 1 << 24]) {
      const e = octets(Buffer.alloc(n));
      const content = e.length - n;
      expect(strictElement(e, 0)).toEqual({ tag: 0x04, content, end: e.length });
      expect(readElement(e, 0)).toEqual({ tag: 0x04, content, end: e.length });
    }
    // Five length octets: refused (Go's x509 reads at most four).
    expect(strictElement(Buffer.concat([b('04 85 0100000000'), Buffer.alloc(8)]), 0)).toBeUndefined();
  });

  it('refuses a non-minimal length: the long form for a length under 128, a leading zero octet (Go refuses both)', () => {
    for (const h of ['04 81 01 00', '04 81 7f', '04 82 0080', '04 82 00ff', '04 83 000100']) {
      const d = Buffer.concat([b(h), Buffer.alloc(300)]);
      expect(strictElement(d, 0), h).toBeUndefined();
      expect(() => readElement(d, 0, bad), h).toThrow('caller words');
    }
    expect(strictElement(Buffer.concat([b('04 81 80'), Buffer.alloc(128)]), 0)).toEqual({ tag: 0x04, content: 3, end: 131 });
  });

  it('refuses the indefinite length form', () => {
    expect(strictElement(b('30 80 0500 0000'), 0)).toBeUndefined();
    expect(() => readElement(b('30 80 0500 0000'), 0)).toThrow(/DER: malformed or truncated element/);
  });

  it('refuses truncated input: no header, cut length octets, content past the end or past the limit', () => {
    for (const h of ['', '04', '04 82 01', '04 05 0102', '30 81']) {
      expect(strictElement(b(h), 0), h).toBeUndefined();
      expect(() => readElement(b(h), 0, bad), h).toThrow('caller words');
    }
    const d = b('30 03 04 01 07 ff');
    expect(strictElement(d, 0, 4)).toBeUndefined(); // ends beyond the limit
    expect(strictElement(d, 2, 5)).toEqual({ tag: 0x04, content: 4, end: 5 });
    expect(() => readElement(d, 2, bad, 4)).toThrow('caller words');
    expect(strictElement(d, 6)).toBeUndefined(); // at the end
  });

  it('leaves trailing data to the caller: the element ends where its length says', () => {
    const d = b('30 00 ff ff');
    expect(strictElement(d, 0)).toEqual({ tag: 0x30, content: 2, end: 2 });
    expect(readElement(d, 0)).toEqual({ tag: 0x30, content: 2, end: 2 });
  });
});

describe('PKI serial numbers', () => {
  it('are 20 bytes, positive, minimal and distinct (drawn from the shared random pool)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const { hex: h, display } = newSerial();
      expect(h).toMatch(/^[0-7][0-9a-f]{39}$/); // top bit clear: a positive INTEGER
      expect(h).not.toMatch(/^00/); // never a leading zero octet (it would not be minimal)
      expect(display).toBe(h.match(/../g)!.join(':'));
      seen.add(h);
    }
    expect(seen.size).toBe(5000);
  });
});
