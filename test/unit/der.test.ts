// The DER writer (src/goplugin/der.ts) at the edges of its encodings: length forms, INTEGER
// sign octets, OID arcs of one and several base-128 digits, nesting; each read back by
// readElement and, for whole structures, by openssl. And PKI's serial numbers.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bits, bool, explicit, octets, oid, readElement, seq, set, time, tlv, uint, utf8 } from '../../src/goplugin/der';
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
