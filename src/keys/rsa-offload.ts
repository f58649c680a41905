// Raw RSA private-key operations off the event loop. Node runs crypto.sign and
// generateKeyPair on libuv's thread pool when given a callback, but privateEncrypt and
// privateDecrypt (a digest signed as-is, RSA-OAEP decryption) only run on the calling
// thread: an RSA-4096 operation there stalls every mount of the process for milliseconds,
// a burst of them for seconds. These run in a few worker threads instead. The workers are
// started on first use, do not keep the process alive, and are replaced if one dies.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { KeyObject } from 'node:crypto';

/** 'sign-raw': privateEncrypt of a prepared block; 'decrypt': privateDecrypt. */
export type RsaPrivateOp = 'sign-raw' | 'decrypt';

// Evaluated in the worker (a string, so it needs no file next to the executable).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
parentPort.on('message', ({ id, op, key, padding, oaepHash, data }) => {
  try {
    const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const out = op === 'decrypt' ? crypto.privateDecrypt({ key, padding, oaepHash }, input) : crypto.privateEncrypt({ key, padding }, input);
    parentPort.postMessage({ id, out });
  } catch (e) {
    parentPort.postMessage({ id, error: e && e.message ? String(e.message) : 'RSA operation failed' });
  }
});
`;

interface Pending { resolve: (b: Buffer) => void; reject: (e: Error) => void }
interface Slot { worker: Worker; pending: Map<number, Pending> }

const MAX_WORKERS = Math.max(1, Math.min(4, availableParallelism()));
const slots: Slot[] = [];
let seq = 0;

function startWorker(): Slot {
  const slot: Slot = { worker: new Worker(WORKER_SOURCE, { eval: true }), pending: new Map() };
  const fail = (e: Error) => {
    const i = slots.indexOf(slot);
    if (i >= 0) slots.splice(i, 1);
    for (const p of slot.pending.values()) p.reject(e);
    slot.pending.clear();
  };
  slot.worker.on('message', (m: { id: number; out?: Uint8Array; error?: string }) => {
    const p = slot.pending.get(m.id);
    if (!p) return;
    slot.pending.delete(m.id);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(Buffer.from(m.out!.buffer, m.out!.byteOffset, m.out!.byteLength));
    if (slot.pending.size === 0) slot.worker.unref();
  });
  slot.worker.on('error', fail);
  slot.worker.on('exit', () => fail(new Error('RSA worker thread stopped')));
  slot.worker.unref();
  slots.push(slot);
  return slot;
}

/** The least busy worker; a new one while all are busy and there is room. */
function pickWorker(): Slot {
  let best = slots[0];
  for (const s of slots) if (s.pending.size < best.pending.size) best = s;
  if (!best || (best.pending.size > 0 && slots.length < MAX_WORKERS)) return startWorker();
  return best;
}

/**
 * privateEncrypt ('sign-raw': the block is already padded or a DigestInfo) or
 * privateDecrypt, with the same options and results as Node's synchronous functions.
 */
export function rsaPrivate(op: RsaPrivateOp, key: KeyObject, padding: number, data: Buffer, oaepHash?: string): Promise<Buffer> {
  const slot = pickWorker();
  const id = ++seq;
  return new Promise<Buffer>((resolve, reject) => {
    slot.pending.set(id, { resolve, reject });
    slot.worker.ref(); // an answer is owed: keep the thread alive until it comes
    try {
      slot.worker.postMessage({ id, op, key, padding, oaepHash, data });
    } catch (e) {
      slot.pending.delete(id);
      reject(e instanceof Error ? e : new Error(String(e)));
    }
  });
}
