// gRPC's wire details shared by our server and client (src/goplugin/grpc-wire.ts): framing,
// grpc-message's percent-encoding both ways, grpc-timeout, and statuses of non-gRPC answers.
import { describe, expect, it, vi } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { Code, codeOfHttpStatus, frame, MessageReader, percentDecoded, percentEncoded, timeoutHeader } from '../../src/goplugin/grpc-wire';

describe('grpc-message percent-encoding', () => {
  it('round-trips any text: "%", controls and non-ASCII as %XX of their UTF-8 bytes', () => {
    for (const text of ['plain text: ok', '100% sure', 'line1\nline2\ttab', 'ünïcode — ✓ 𝄞', '%25 is not decoded twice', '']) {
      const wire = percentEncoded(text);
      expect(wire).toMatch(/^[\x20-\x7e]*$/);
      expect(percentDecoded(wire)).toBe(text);
    }
    expect(percentEncoded('a%b\n')).toBe('a%25b%0A');
    // Printable ASCII but "%" goes as it is, the ends of the range (space, "~") too.
    expect(percentEncoded(' !$~ plain')).toBe(' !$~ plain');
    expect(percentEncoded('\x1f\x7f')).toBe('%1F%7F');
  });

  it('keeps a "%" that is not followed by two hex digits, as the spec asks of a lenient client', () => {
    expect(percentDecoded('50% off')).toBe('50% off');
    expect(percentDecoded('%zz%4')).toBe('%zz%4');
    expect(percentDecoded('ends with %')).toBe('ends with %');
    expect(percentDecoded('%c3%bc and %C3%BC')).toBe('ü and ü');
  });
});

describe('grpc-timeout', () => {
  it('is milliseconds while they fit in 8 digits, then whole seconds (rounded up, capped at 8 digits)', () => {
    expect(timeoutHeader(30_000)).toBe('30000m');
    expect(timeoutHeader(0.2)).toBe('1m');
    expect(timeoutHeader(-5)).toBe('0m');
    expect(timeoutHeader(99_999_999)).toBe('99999999m');
    expect(timeoutHeader(100_000_000)).toBe('100000S');
    expect(timeoutHeader(100_000_001)).toBe('100001S');
    expect(timeoutHeader(1e15)).toBe('99999999S');
  });
});

describe('framing', () => {
  it('splits messages across and within chunks, and reports a partial one', () => {
    const a = frame(Buffer.from('first'));
    const b = frame(Buffer.alloc(0));
    const c = frame(Buffer.from('third message'));
    const all = Buffer.concat([a, b, c]);
    const reader = new MessageReader();
    const got: string[] = [];
    for (const piece of [all.subarray(0, 3), all.subarray(3, 12), all.subarray(12, all.length - 2)]) {
      const out = reader.push(piece);
      if (typeof out === 'string') throw new Error(out);
      got.push(...out.map((m) => m.toString()));
    }
    expect(got).toEqual(['first', '']);
    expect(reader.pending).toBe(c.length - 2);
    expect(reader.push(all.subarray(all.length - 2))).toEqual([Buffer.from('third message')]);
    expect(reader.pending).toBe(0);
    // An empty message alone in its chunk (an empty request: its 5-byte header only) is whole.
    expect(reader.push(b)).toEqual([Buffer.alloc(0)]);
    expect(reader.pending).toBe(0);
  });

  it('reads a large message in 16 KiB chunks by joining them once (a 12 MB request took 30 s when every chunk re-joined the rest)', () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 7);
    const wire = Buffer.concat([frame(body), frame(Buffer.from('next'))]);
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      const reader = new MessageReader();
      const got: Buffer[] = [];
      // Chunk edges that split the 5-byte headers too.
      for (let at = 0; at < wire.length; at += 16 * 1024 - 3) {
        const out = reader.push(wire.subarray(at, at + 16 * 1024 - 3));
        if (typeof out === 'string') throw new Error(out);
        got.push(...out);
      }
      expect(got.map((m) => m.length)).toEqual([body.length, 4]);
      expect(got[0].equals(body)).toBe(true);
      expect(got[1].toString()).toBe('next');
      // Bytes copied by joining: about the message once, not once per chunk.
      const copied = concat.mock.calls.reduce((n, [list]) => n + (list as Buffer[]).reduce((m, b) => m + b.length, 0), 0);
      expect(copied).toBeLessThan(2 * wire.length);
    } finally {
      concat.mockRestore();
    }
  });

  it('refuses a compressed message', () => {
    const compressed = frame(Buffer.from('x'));
    compressed[0] = 1;
    expect(new MessageReader().push(compressed)).toMatch(/compressed messages are not supported/);
  });
});

describe('a response without grpc-status', () => {
  it("gets gRPC's status for its HTTP status", () => {
    expect(codeOfHttpStatus(400)).toBe(Code.INTERNAL);
    expect(codeOfHttpStatus(401)).toBe(Code.UNAUTHENTICATED);
    expect(codeOfHttpStatus(403)).toBe(Code.PERMISSION_DENIED);
    expect(codeOfHttpStatus(404)).toBe(Code.UNIMPLEMENTED);
    for (const s of [429, 502, 503, 504]) expect(codeOfHttpStatus(s)).toBe(Code.UNAVAILABLE);
    expect(codeOfHttpStatus(500)).toBe(Code.UNKNOWN);
  });
});

describe('status codes', () => {
  it("are gRPC's, every one of them (grpc-js's list, which the plugin no longer loads)", () => {
    const theirs = Object.fromEntries(Object.entries(grpc.status).filter(([k]) => Number.isNaN(Number(k))));
    expect(Code).toEqual(theirs);
  });
});
