// The behaviour every managed-key backend must show, checked against Node's own
// crypto wherever Node can check it independently.
import { expect, it } from 'vitest';
import { constants, createHash, publicEncrypt, verify as nodeVerify } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Hash, ManagedKey } from '../../src/keys/types';

const msg = Buffer.from('the quick brown fox jumps over the lazy dog');
const HASHES: Hash[] = ['sha256', 'sha384', 'sha512'];

export function ecdsaContract(get: () => ManagedKey) {
  it('ECDSA: DER signatures Node verifies, for each hash, message and prehashed', async () => {
    const k = get();
    const pub = await k.publicKey();
    for (const hash of HASHES) {
      const sig = await k.sign(msg, { hash });
      expect(sig[0]).toBe(0x30); // ASN.1 DER
      expect(nodeVerify(hash, msg, { key: pub, dsaEncoding: 'der' }, sig)).toBe(true);
      const d = createHash(hash).update(msg).digest();
      const pre = await k.sign(d, { hash, prehashed: true });
      expect(nodeVerify(hash, msg, { key: pub, dsaEncoding: 'der' }, pre)).toBe(true);
      expect(await k.verify(msg, sig, { hash })).toBe(true);
      expect(await k.verify(d, pre, { hash, prehashed: true })).toBe(true);
      expect(await k.verify(Buffer.from('other'), sig, { hash })).toBe(false);
    }
    await expect(k.sign(Buffer.alloc(5), { hash: 'sha256', prehashed: true })).rejects.toThrow(/prehashed input must be 32 bytes/);
  });
}

/** `oaepKey`: where a backend gives RSA keys one usage (KMS), the encryption key to test OAEP with. */
export function rsaContract(get: () => ManagedKey, opts: { oaepHash?: 'sha1' | Hash; oaepKey?: () => ManagedKey } = {}) {
  it('RSA: PSS and PKCS#1 v1.5 signatures Node verifies, message and prehashed', async () => {
    const k = get();
    const pub = await k.publicKey();
    for (const hash of ['sha256', 'sha512'] as Hash[]) {
      for (const padding of ['pss', 'pkcs1v15'] as const) {
        const nodePad = padding === 'pss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
        const sig = await k.sign(msg, { hash, padding });
        expect(nodeVerify(hash, msg, { key: pub, padding: nodePad, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig)).toBe(true);
        const d = createHash(hash).update(msg).digest();
        const pre = await k.sign(d, { hash, padding, prehashed: true });
        expect(nodeVerify(hash, msg, { key: pub, padding: nodePad, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, pre)).toBe(true);
        expect(await k.verify(msg, sig, { hash, padding })).toBe(true);
        expect(await k.verify(d, pre, { hash, padding, prehashed: true })).toBe(true);
        expect(await k.verify(msg, Buffer.from(sig).fill(1, 10, 12), { hash, padding })).toBe(false);
      }
    }
  });
  {
    const oaepHash = opts.oaepHash ?? 'sha256';
    it('RSA-OAEP: what Node encrypts to the public key decrypts; garbage is a clear error', async () => {
      const k = (opts.oaepKey ?? get)();
      const ct = publicEncrypt({ key: await k.publicKey(), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, Buffer.from('secret data'));
      expect((await k.decrypt(ct, { oaepHash })).toString()).toBe('secret data');
      expect((await k.decrypt(await k.encrypt(Buffer.from('round trip'), { oaepHash }), { oaepHash })).toString()).toBe('round trip');
      await expect(k.decrypt(Buffer.alloc(ct.length, 7), { oaepHash })).rejects.toThrow(/decrypt/i);
    });
  }
}

export function aesContract(get: () => ManagedKey) {
  it('AES-GCM: round trip with associated data; tampering and wrong AAD are clear errors', async () => {
    const k = get();
    const aad = Buffer.from('context');
    const ct = await k.encrypt(Buffer.from('plaintext'), { aad });
    expect(ct.length).toBeGreaterThanOrEqual(9 + 16); // nonce/tag or the backend's own envelope
    expect((await k.decrypt(ct, { aad })).toString()).toBe('plaintext');
    const a = await k.encrypt(Buffer.from('plaintext'), { aad });
    expect(a.equals(ct)).toBe(false); // fresh nonce each time
    const bad = Buffer.from(ct);
    bad[15] ^= 1;
    await expect(k.decrypt(bad, { aad })).rejects.toThrow(/decrypt|authenticat|tag/i);
    await expect(k.decrypt(ct, { aad: Buffer.from('other') })).rejects.toThrow(/decrypt|authenticat|tag/i);
    await expect(k.publicKey()).rejects.toThrow(/symmetric|no public key/);
  });
}

/**
 * Run `work` while watching the event loop: the longest the loop was stalled (Node's own
 * event-loop-delay histogram), how long the work took, and how often a 5 ms timer fired.
 * Work that runs on the thread pool leaves the loop free; work that runs on it stalls it
 * for about as long as the work takes.
 */
export async function eventLoopDuring<T>(work: () => Promise<T>): Promise<{ result: T; maxStallMs: number; elapsedMs: number; ticks: number }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  let ticks = 0;
  const timer = setInterval(() => {
    ticks++;
  }, 5);
  h.enable();
  await new Promise((r) => setTimeout(r, 20)); // the histogram's first timer run only starts its clock
  const start = performance.now();
  try {
    const result = await work();
    const elapsedMs = performance.now() - start;
    // A stall is recorded when the histogram's timer finally runs: let it run once more.
    await new Promise((r) => setTimeout(r, 20));
    return { result, maxStallMs: h.max / 1e6, elapsedMs, ticks };
  } finally {
    h.disable();
    clearInterval(timer);
  }
}
