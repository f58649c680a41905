// The process's CPU pool: how many threads CPU-bound work may use, and a pool of worker
// threads for work that Node can only do on the calling thread.
//
// Two kinds of threads do CPU-heavy work here:
//   - libuv's thread pool runs crypto.sign / verify / generateKeyPair / pbkdf2 when they are
//     given a callback (transit signatures, PKI key generation, SCRAM). Its size is read once,
//     from UV_THREADPOOL_SIZE, when the pool is first used: sizeThreadPool() sets it at start.
//   - the worker threads below run what has no asynchronous form in Node (raw RSA private
//     operations, see keys/rsa-offload.ts). They start on first use, do not keep the process
//     alive while idle, and are replaced if one dies.
// Both are sized by cpuPoolSize(): VAULT_PLUGIN_TS_WORKERS, else the machine's cores, so one
// process (a multiplexed plugin serving every mount) uses every core, and a benchmark can
// compare 1 thread against N in the same build.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

/** The environment variable that sets the worker pool's size. */
export const POOL_SIZE_ENV = 'VAULT_PLUGIN_TS_WORKERS';
const MAX_POOL_SIZE = 256;

/** Threads for CPU-bound work: VAULT_PLUGIN_TS_WORKERS (1–256), else the number of cores. */
export function cpuPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[POOL_SIZE_ENV];
  if (raw === undefined || raw === '') return Math.max(1, availableParallelism());
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 1 || n > MAX_POOL_SIZE) {
    throw new Error(`${POOL_SIZE_ENV} must be a whole number from 1 to ${MAX_POOL_SIZE}, got ${JSON.stringify(raw.slice(0, 20))}`);
  }
  return n;
}

/**
 * Size libuv's thread pool before anything uses it (call first thing at start). An operator's
 * UV_THREADPOOL_SIZE wins. With VAULT_PLUGIN_TS_WORKERS it is exactly that many threads;
 * otherwise one per core but never fewer than libuv's own default of 4, which also serves
 * file system calls and DNS lookups.
 */
export function sizeThreadPool(env: NodeJS.ProcessEnv = process.env): number {
  if (env.UV_THREADPOOL_SIZE) return Number(env.UV_THREADPOOL_SIZE);
  const n = env[POOL_SIZE_ENV] ? cpuPoolSize(env) : Math.max(4, cpuPoolSize(env));
  env.UV_THREADPOOL_SIZE = String(n);
  return n;
}

/**
 * `v` with every byte view that shows part of a larger ArrayBuffer replaced by a copy of just
 * its bytes, in plain objects and arrays (three levels: a chunk's list of argument objects).
 * A message clones a view's whole ArrayBuffer, and Node's small Buffers (Buffer.from of a
 * base64 input, slices of a request) are views into one 64 KiB pool: an RSA batch of 100
 * sent 6.4 MiB to the workers, and the copies' garbage was 40% of the loop's time.
 * Views of shared memory stay views. Self-contained: the workers run its source text too.
 */
export function compactViews(v: unknown, depth = 3): unknown {
  if (ArrayBuffer.isView(v)) {
    const buf = v.buffer;
    if (buf.byteLength === v.byteLength || !(buf instanceof ArrayBuffer)) return v;
    const bytes = buf.slice(v.byteOffset, v.byteOffset + v.byteLength);
    if (v instanceof Uint8Array) return new Uint8Array(bytes); // a Buffer arrives as a Uint8Array in any case
    const View = v.constructor as new (b: ArrayBuffer) => ArrayBufferView;
    return new View(bytes);
  }
  if (depth === 0 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const c = compactViews(v[i], depth - 1);
      if (c === v[i]) continue;
      out ??= v.slice();
      out[i] = c;
    }
    return out ?? v;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype) return v;
  let out: Record<string, unknown> | undefined;
  for (const [k, x] of Object.entries(v)) {
    const c = compactViews(x, depth - 1);
    if (c === x) continue;
    out ??= { ...(v as Record<string, unknown>) };
    out[k] = c;
  }
  return out ?? v;
}

// Evaluated in each worker (a string, so the executable needs no file beside it). Tasks are
// defined by source text: a function of one structured-clonable argument, given `require`.
// Results go back through compactViews as arguments come in.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const compactViews = ${compactViews.toString()};
const tasks = new Map();
parentPort.on('message', (m) => {
  if (m.define) { tasks.set(m.define, new Function('require', 'return (' + m.source + ');')(require)); return; }
  const { id, task, args } = m;
  let out;
  try {
    out = tasks.get(task)(args);
  } catch (e) {
    parentPort.postMessage({ id, error: e && e.message ? String(e.message) : task + ' failed' });
    return;
  }
  parentPort.postMessage({ id, out: compactViews(out) });
});
`;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

const definitions = new Map<string, string>();
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
  slot.worker.on('message', (m: { id: number; out?: unknown; error?: string }) => {
    const p = slot.pending.get(m.id);
    if (!p) return;
    slot.pending.delete(m.id);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.out);
    if (slot.pending.size === 0) slot.worker.unref();
  });
  slot.worker.on('error', fail);
  slot.worker.on('exit', () => fail(new Error('worker thread stopped')));
  slot.worker.unref();
  for (const [define, source] of definitions) slot.worker.postMessage({ define, source });
  slots.push(slot);
  return slot;
}

let poolSize: number | undefined;

/** The least busy worker; a new one while all are busy and there is room. */
function pickWorker(): Slot {
  poolSize ??= cpuPoolSize();
  let best = slots[0];
  for (const s of slots) if (s.pending.size < best.pending.size) best = s;
  if (!best || (best.pending.size > 0 && slots.length < poolSize)) return startWorker();
  return best;
}

/** A task that runs on the worker pool. */
export interface WorkerTask<A, R> {
  /** Run the task on the least busy worker thread; rejects with the task's error message. */
  run(args: A): Promise<R>;
}

/**
 * A task for the worker threads. `source` is the text of a self-contained function
 * `(args) => result` (it may call `require` for Node's built-in modules); arguments and
 * result are structured-cloned (KeyObjects and Buffers included, as Uint8Array views).
 */
export function workerTask<A, R>(name: string, source: string): WorkerTask<A, R> {
  if (definitions.has(name)) throw new Error(`worker task ${name} is already defined`);
  definitions.set(name, source);
  for (const s of slots) s.worker.postMessage({ define: name, source });
  return {
    run(args: A): Promise<R> {
      const slot = pickWorker();
      const id = ++seq;
      return new Promise<R>((resolve, reject) => {
        slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        slot.worker.ref(); // an answer is owed: keep the thread alive until it comes
        try {
          slot.worker.postMessage({ id, task: name, args: compactViews(args) });
        } catch (e) {
          slot.pending.delete(id);
          reject(e as Error);
        }
      });
    },
  };
}

/** Worker threads running now (for tests and diagnostics). */
export function workerThreads(): Worker[] {
  return slots.map((s) => s.worker);
}

/**
 * A task for many small calls: calls made in one turn of the event loop are queued and sent
 * to the workers together, in chunks of at most `maxChunk` calls (one message each, split
 * evenly over the pool), instead of one message per call. For work whose cost per call is
 * small next to what the event loop would spend per message or per thread-pool job (an
 * RSA-2048 signature: ~250 µs, of which ~40 µs fall on the calling thread when Node's
 * crypto.sign runs it on libuv's pool). `source` is the text of `(args) => result` for ONE
 * call; each call gets its own result or its own error, in the order of the chunk.
 */
export function workerBatchTask<A, R>(name: string, source: string, maxChunk: number): WorkerTask<A, R> {
  const chunkTask = workerTask<A[], Array<{ out?: R; error?: string }>>(
    name,
    `(list) => {
  const one = (${source});
  return list.map((args) => {
    try {
      return { out: one(args) };
    } catch (e) {
      return { error: e && e.message ? String(e.message) : '${name} failed' };
    }
  });
}`,
  );
  const queue: Array<{ args: A; resolve: (r: R) => void; reject: (e: Error) => void }> = [];
  let chunksOut = 0; // chunks sent and not yet answered
  let flushing = false;
  // Sends what is queued: split evenly over the idle threads, while some are idle; else as
  // full chunks, up to two per thread (the next is queued at the thread as it works on one).
  // The rest waits for an answer, gathering into fuller chunks meanwhile.
  const flush = () => {
    flushing = false;
    poolSize ??= cpuPoolSize();
    while (queue.length > 0 && chunksOut < 2 * poolSize) {
      const idle = poolSize - chunksOut;
      const size = Math.min(maxChunk, idle > 0 ? Math.ceil(queue.length / idle) : maxChunk);
      const chunk = queue.splice(0, size);
      chunksOut++;
      chunkTask.run(chunk.map((c) => c.args)).then(
        (outs) => {
          settle();
          chunk.forEach((c, i) => {
            const o = outs[i];
            if (o.error !== undefined) c.reject(new Error(o.error));
            else c.resolve(o.out as R);
          });
        },
        (e: Error) => {
          settle();
          for (const c of chunk) c.reject(e);
        },
      );
    }
  };
  const schedule = () => {
    if (flushing) return;
    flushing = true;
    setImmediate(flush);
  };
  const settle = () => {
    chunksOut--;
    if (queue.length > 0) schedule();
  };
  return {
    run(args: A): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queue.push({ args, resolve, reject });
        schedule();
      });
    },
  };
}
