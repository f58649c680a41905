// Transit batches (secrets/transit/context.ts batch()) in a process shared by every mount:
// two large batches running at once let other work in within one slice of the process's
// budget (util/slices), and a batch answers exactly what the same items answer one by one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { batch } from '../../src/secrets/transit/context';
import { UserError, type Request } from '../../src/secrets/framework';
import { SLICE_MS } from '../../src/util/slices';
import { workerThreads } from '../../src/util/workers';
import { backendMount } from '../support/backend';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('batch() and other work', () => {
  afterEach(() => vi.restoreAllMocks());

  const request = (items: unknown[]): Request =>
    ({
      data: { has: (k: string) => k === 'batch_input', get: (k: string) => (k === 'batch_input' ? items : undefined) },
      fields: { input: { type: 'string' } },
    }) as unknown as Request;

  const ITEM_MS = 0.1;
  /**
   * Two 400-item batches on a fake clock (each item's synchronous work moves it ITEM_MS),
   * with a message from outside queued during the 50th item: how long it waited, in fake
   * ms. `settle` makes each item answer by promise (managed keys) or not (keys held here).
   */
  async function outsideMessageDelay(settle: 'promise' | 'sync') {
    // Let an earlier test's last slice end first: its deadline is on that test's fake clock.
    await new Promise((r) => setImmediate(r));
    let clock = performance.now() + 1e6; // a fake clock, only ever forward
    vi.spyOn(performance, 'now').mockImplementation(() => clock);
    const items = Array.from({ length: 400 }, (_, i) => ({ input: String(i) }));
    const channel = new MessageChannel();
    let queuedAt: number | undefined;
    let delay: number | undefined;
    channel.port2.once('message', () => {
      delay = clock - queuedAt!;
    });
    let n = 0;
    const work = (d: { get(k: string): unknown }) => {
      clock += ITEM_MS; // each item's synchronous work
      if (++n === 50) {
        queuedAt = clock;
        channel.port1.postMessage('request'); // handled like I/O: a request from Vault
      }
      return { out: d.get('input') };
    };
    const one = settle === 'sync' ? work : async (d: { get(k: string): unknown }) => work(d);
    const [a, b] = await Promise.all([batch(request(items), one), batch(request(items), one)]);
    channel.port1.close();
    return { a, b, delay };
  }

  it('two large batches let a message from outside in within one slice', async () => {
    const { a, b, delay } = await outsideMessageDelay('promise');
    expect((a.data.batch_results as unknown[]).length).toBe(400);
    expect((b.data.batch_results as Array<{ out: string }>)[399].out).toBe('399');
    expect(delay).toBeDefined();
    // Before: each batch yielded after 5 ms of its own, so the message waited ~5 ms.
    expect(delay!).toBeLessThanOrEqual(SLICE_MS + 5 * ITEM_MS);
  });

  it('takes items answered synchronously (keys held here) and by promise (managed keys) alike, in order, with per-item errors', async () => {
    const items = Array.from({ length: 40 }, (_, i) => ({ input: String(i), reference: `r${i}` }));
    const one = (d: { get(k: string): unknown }) => {
      const i = Number(d.get('input'));
      if (i % 10 === 3) throw new UserError(`bad ${i}`);
      if (i % 10 === 7) return Promise.reject(new UserError(`bad later ${i}`));
      return i % 2 ? Promise.resolve({ out: i }) : { out: i };
    };
    const r = (await batch(request(items), one)).data.batch_results as Array<Record<string, unknown>>;
    expect(r).toHaveLength(40);
    expect(r[2]).toEqual({ out: 2, reference: 'r2' });
    expect(r[5]).toEqual({ out: 5, reference: 'r5' });
    expect(r[13]).toEqual({ error: 'bad 13', reference: 'r13' });
    expect(r[17]).toEqual({ error: 'bad later 17', reference: 'r17' });
    // Anything but a caller's error fails the request, synchronous or not.
    await expect(
      batch(request(items), () => {
        throw new Error('broken');
      }),
    ).rejects.toThrow('broken');
    await expect(batch(request(items), () => Promise.reject(new Error('broken later')))).rejects.toThrow('broken later');
  });

  it('keeps other work within one slice when every item is answered synchronously', async () => {
    const { a, delay } = await outsideMessageDelay('sync');
    expect((a.data.batch_results as unknown[]).length).toBe(400);
    expect(delay!).toBeLessThanOrEqual(SLICE_MS + 5 * ITEM_MS);
  });
});

describe('pooledRandomBytes (AEAD nonces)', () => {
  it('never hands out a byte twice, across refills of the pool', async () => {
    const { pooledRandomBytes, POOL_BYTES } = await import('../../src/util/random-pool');
    const n = Math.ceil((4 * POOL_BYTES) / 12); // four refills and more
    const seen = new Set<string>();
    const used = new Map<ArrayBufferLike, number[]>(); // byte offsets handed out, by buffer
    for (let i = 0; i < n; i++) {
      const x = pooledRandomBytes(12);
      expect(x.length).toBe(12);
      seen.add(x.toString('hex'));
      used.set(x.buffer, [...(used.get(x.buffer) ?? []), x.byteOffset]);
    }
    expect(seen.size).toBe(n);
    expect(used.size).toBeGreaterThanOrEqual(4);
    let overlaps = 0;
    for (const offsets of used.values()) {
      const sorted = [...offsets].sort((a, b) => a - b);
      for (let i = 1; i < sorted.length; i++) if (sorted[i] < sorted[i - 1] + 12) overlaps++;
    }
    expect(overlaps).toBe(0);
  });
});

describe('a transit batch answers what the same items answer one by one', () => {
  const { ok } = backendMount('transit');
  const plaintexts = Array.from({ length: 10_000 }, (_, i) => (i % 3 ? randomBytes(1 + (i % 50)).toString('base64') : b64(`item ${i}`)));

  it('encrypt: a batch of 10,000 has 10,000 distinct nonces, each ciphertext decrypts alone to its plaintext', async () => {
    await ok('create', 'keys/k', { type: 'aes256-gcm96' });
    const enc = (await ok('update', 'encrypt/k', { batch_input: plaintexts.map((plaintext, i) => ({ plaintext, reference: String(i) })) }))
      .batch_results as Array<{ ciphertext: string; reference: string; key_version: number }>;
    expect(enc).toHaveLength(plaintexts.length);
    const nonces = new Set(enc.map((r) => Buffer.from(r.ciphertext.split(':')[2], 'base64').subarray(0, 12).toString('hex')));
    expect(nonces.size).toBe(plaintexts.length);
    expect(enc.map((r) => [r.reference, r.key_version])).toEqual(plaintexts.map((_, i) => [String(i), 1]));
    for (const i of [0, 1, 2, 4999, 9999]) {
      expect((await ok('update', 'decrypt/k', { ciphertext: enc[i].ciphertext })).plaintext).toBe(plaintexts[i]);
    }
    const dec = (await ok('update', 'decrypt/k', { batch_input: enc.map((r) => ({ ciphertext: r.ciphertext })) })).batch_results as Array<{
      plaintext: string;
    }>;
    expect(dec.map((r) => r.plaintext)).toEqual(plaintexts);
  });

  it.each([
    ['rsa-2048', { signature_algorithm: 'pkcs1v15' }],
    ['ed25519', {}],
  ])('sign with %s, and hmac: batch results equal the same inputs one by one, in order', async (type, opts) => {
    await ok('create', `keys/${type}`, { type });
    const inputs = plaintexts.slice(0, 40);
    const signed = (await ok('update', `sign/${type}`, { ...opts, batch_input: inputs.map((input) => ({ input })) })).batch_results as Array<{
      signature: string;
    }>;
    const macs = (await ok('update', `hmac/${type}`, { batch_input: inputs.map((input) => ({ input })) })).batch_results as Array<{ hmac: string }>;
    for (const [i, input] of inputs.entries()) {
      expect(signed[i].signature).toBe((await ok('update', `sign/${type}`, { ...opts, input })).signature);
      expect(macs[i].hmac).toBe((await ok('update', `hmac/${type}`, { input })).hmac);
    }
  });
});

describe('an RSA sign batch on the CPU pool', () => {
  it('goes to the worker threads several signatures per message, and verifies', async () => {
    const { ok } = backendMount('transit');
    await ok('create', 'keys/r', { type: 'rsa-2048' });
    const batch_input = Array.from({ length: 100 }, (_, i) => ({ input: b64(`doc ${i}`) }));
    await ok('update', 'sign/r', { batch_input: batch_input.slice(0, 40) }); // the pool's threads are up
    const sent = workerThreads().map((w) => vi.spyOn(w, 'postMessage'));
    const signed = (await ok('update', 'sign/r', { batch_input })).batch_results as Array<{ signature: string }>;
    const messages = sent.reduce((n, s) => n + s.mock.calls.length, 0);
    vi.restoreAllMocks();
    // Before: one libuv thread-pool job per signature (~40 µs of the event loop's time each), no message.
    expect(messages).toBeGreaterThan(0);
    expect(messages).toBeLessThanOrEqual(100 / 5);
    const verified = (await ok('update', 'verify/r', { batch_input: batch_input.map((x, i) => ({ ...x, signature: signed[i].signature })) }))
      .batch_results as Array<{ valid: boolean }>;
    expect(verified.every((r) => r.valid)).toBe(true);
  });
});
