// Small random values (AEAD nonces) cut from a buffer filled in bulk. One crypto.randomBytes
// call per 12-byte nonce costs ~5 µs, most of it the call itself: the largest single cost of
// a transit encrypt batch item. Here one call fills POOL_BYTES, and each request takes the
// next unused bytes. Never reused: the offset only moves forward, and a refill is a new
// buffer (a nonce handed out earlier may still be referenced; it is never overwritten).
// Pooled values are as random as randomBytes's (the same CSPRNG) and, like nonces, not
// secret: they sit in memory only until handed out. Each thread has its own pool.
import { randomBytes } from 'node:crypto';

/** Bytes fetched from the CSPRNG at once. */
export const POOL_BYTES = 16 * 1024;
const LARGEST_POOLED = 64; // larger requests get their own randomBytes call

let pool = Buffer.alloc(0);
let offset = 0;

/** `n` fresh random bytes (a view into the pool for small n; do not write to it). */
export function pooledRandomBytes(n: number): Buffer {
  if (n > LARGEST_POOLED) return randomBytes(n);
  if (offset + n > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}
