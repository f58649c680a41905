// The CPU pool: its size from the environment, libuv's thread pool sizing, and the worker
// threads running tasks in parallel, reporting errors and surviving a dead worker.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { availableParallelism } from 'node:os';
import { constants, generateKeyPairSync, privateEncrypt } from 'node:crypto';

// Two workers whatever the machine, set before the pool first reads it.
process.env.VAULT_PLUGIN_TS_WORKERS = '2';
const { compactViews, cpuPoolSize, sizeThreadPool, workerTask, workerBatchTask, workerThreads, POOL_SIZE_ENV } = await import('../../src/util/workers');
const { rsaPrivate } = await import('../../src/keys/rsa-offload');

describe('cpuPoolSize', () => {
  it('is the number of cores unless VAULT_PLUGIN_TS_WORKERS says otherwise', () => {
    expect(cpuPoolSize({})).toBe(Math.max(1, availableParallelism()));
    expect(cpuPoolSize({ [POOL_SIZE_ENV]: '3' })).toBe(3);
    expect(cpuPoolSize({ [POOL_SIZE_ENV]: '1' })).toBe(1);
  });

  it('rejects a value that is not a whole number from 1 to 256, naming the variable', () => {
    for (const bad of ['0', '-1', '1.5', 'two', '257', '1e2', ' ']) {
      expect(() => cpuPoolSize({ [POOL_SIZE_ENV]: bad }), bad).toThrow(/VAULT_PLUGIN_TS_WORKERS must be a whole number from 1 to 256/);
    }
  });
});

describe('sizeThreadPool', () => {
  it("keeps an operator's UV_THREADPOOL_SIZE", () => {
    const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '7', [POOL_SIZE_ENV]: '2' };
    expect(sizeThreadPool(env)).toBe(7);
    expect(env.UV_THREADPOOL_SIZE).toBe('7');
  });

  it('is exactly VAULT_PLUGIN_TS_WORKERS when set, else one per core and at least 4', () => {
    const one: NodeJS.ProcessEnv = { [POOL_SIZE_ENV]: '1' };
    expect(sizeThreadPool(one)).toBe(1);
    expect(one.UV_THREADPOOL_SIZE).toBe('1');
    const dflt: NodeJS.ProcessEnv = {};
    expect(sizeThreadPool(dflt)).toBe(Math.max(4, availableParallelism()));
    expect(dflt.UV_THREADPOOL_SIZE).toBe(String(Math.max(4, availableParallelism())));
  });
});

describe('workerTask', () => {
  const spin = workerTask<number, number>(
    'test-spin',
    `(ms) => {
    const { threadId } = require('node:worker_threads');
    const end = Date.now() + ms;
    while (Date.now() < end) { /* busy */ }
    return threadId;
  }`,
  );
  const fail = workerTask<string, never>('test-fail', '(m) => { throw new Error(m); }');
  const die = workerTask<null, never>('test-die', '() => process.exit(3)');

  // Each call announces itself in shared memory and waits (up to 5 s) for the other: they
  // can only both see each other if they run at the same time on two threads.
  const meet = workerTask<SharedArrayBuffer, { threadId: number; met: boolean }>(
    'test-meet',
    `(sab) => {
    const { threadId } = require('node:worker_threads');
    const a = new Int32Array(sab);
    Atomics.add(a, 0, 1);
    Atomics.notify(a, 0);
    const end = Date.now() + 5000;
    while (Atomics.load(a, 0) < 2 && Date.now() < end) Atomics.wait(a, 0, Atomics.load(a, 0), 50);
    return { threadId, met: Atomics.load(a, 0) >= 2 };
  }`,
  );

  it('runs tasks on as many threads as the pool has, at the same time', async () => {
    const sab = new SharedArrayBuffer(4);
    const both = await Promise.all([meet.run(sab), meet.run(sab)]);
    expect(both.map((r) => r.met)).toEqual([true, true]);
    const ids = both.map((r) => r.threadId);
    expect(new Set(ids).size).toBe(2);
    expect(ids).not.toContain(0); // not the main thread
    expect(workerThreads().length).toBe(2);
    // A third task waits for a free thread instead of starting a third worker.
    await Promise.all([spin.run(10), spin.run(10), spin.run(10)]);
    expect(workerThreads().length).toBe(2);
  });

  it("rejects with the task's own error message and keeps serving", async () => {
    await expect(fail.run('bad input here')).rejects.toThrow('bad input here');
    expect(await spin.run(1)).toBeGreaterThan(0);
  });

  it('rejects what a dying worker owed and replaces it', async () => {
    await expect(die.run(null)).rejects.toThrow('worker thread stopped');
    expect(await spin.run(1)).toBeGreaterThan(0);
  });

  it('refuses a second task of the same name', () => {
    expect(() => workerTask('test-spin', '() => 1')).toThrow(/already defined/);
  });

  it('gives raw RSA the same bytes as the synchronous call (keys/rsa-offload on the pool)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const block = Buffer.from('3031300d060960864801650304020105000420' + 'ab'.repeat(32), 'hex');
    const sync = privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, block);
    const pooled = await Promise.all(Array.from({ length: 4 }, () => rsaPrivate('sign-raw', privateKey, constants.RSA_PKCS1_PADDING, block)));
    for (const p of pooled) expect(p.equals(sync)).toBe(true);
  });
});

describe('workerBatchTask', () => {
  const square = workerBatchTask<number, number>('test-square', '(n) => { if (n < 0) throw new Error("negative " + n); return n * n; }', 8);
  afterEach(() => vi.restoreAllMocks());

  it('sends the calls of one turn in a few chunks, each call with its own result or error', async () => {
    await square.run(1); // the pool's threads are up
    const sent = workerThreads().map((w) => vi.spyOn(w, 'postMessage'));
    const inputs = Array.from({ length: 40 }, (_, i) => (i === 13 ? -13 : i));
    const settled = await Promise.allSettled(inputs.map((n) => square.run(n)));
    const messages = sent.reduce((n, s) => n + s.mock.calls.length, 0);
    // 40 calls, at most 8 per message: four full chunks (two per thread), then what is left.
    expect(messages).toBeGreaterThanOrEqual(5);
    expect(messages).toBeLessThanOrEqual(6);
    settled.forEach((r, i) => {
      if (i === 13) expect(r).toMatchObject({ status: 'rejected', reason: { message: 'negative -13' } });
      else expect(r).toEqual({ status: 'fulfilled', value: i * i });
    });
  });

  it('splits a small turn evenly over the pool', async () => {
    const sent = workerThreads().map((w) => vi.spyOn(w, 'postMessage'));
    expect(await Promise.all([2, 3, 4].map((n) => square.run(n)))).toEqual([4, 9, 16]);
    expect(sent.map((s) => s.mock.calls.length).sort()).toEqual([1, 1]); // one chunk per thread
  });
});

describe('views of pooled Buffers', () => {
  // What a worker receives and sends back: the size of each view's whole ArrayBuffer.
  const sizes = workerBatchTask<{ data: Uint8Array }, { got: number; sent: Uint8Array }>(
    'test-buffer-sizes',
    `({ data }) => {
    const pooled = Buffer.from('aGVsbG8=', 'base64'); // a 5-byte view into the worker's own pool
    return { got: data.buffer.byteLength, sent: pooled };
  }`,
    8,
  );

  it('a small Buffer.from(base64) is a view into a larger pool (what made each message carry 64 KiB)', () => {
    const b = Buffer.from('aGVsbG8=', 'base64');
    expect(b.buffer.byteLength).toBeGreaterThan(1024);
  });

  it('crosses to the workers and back with only its own bytes, in batches and single tasks', async () => {
    const data = Buffer.from('aGVsbG8=', 'base64');
    const outs = await Promise.all(Array.from({ length: 10 }, () => sizes.run({ data })));
    for (const o of outs) {
      expect(o.got).toBe(5);
      expect(o.sent.buffer.byteLength).toBe(5);
      expect(Buffer.from(o.sent).toString()).toBe('hello');
    }
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const block = Buffer.from(Buffer.alloc(20, 7).toString('base64'), 'base64');
    expect(block.buffer.byteLength).toBeGreaterThan(20);
    const sig = await rsaPrivate('sign-raw', privateKey, constants.RSA_PKCS1_PADDING, block);
    expect(sig.equals(privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, block))).toBe(true);
  });

  it('keeps the type and bytes of other views, leaves shared memory and exact buffers as they are', () => {
    const big = new ArrayBuffer(64);
    const ints = new Int32Array(big, 8, 2);
    ints.set([1, -2]);
    const c = compactViews({ list: [{ ints }] }) as { list: Array<{ ints: Int32Array }> };
    expect(c.list[0].ints).toBeInstanceOf(Int32Array);
    expect([...c.list[0].ints]).toEqual([1, -2]);
    expect(c.list[0].ints.buffer.byteLength).toBe(8);
    const shared = new Uint8Array(new SharedArrayBuffer(16), 4, 4);
    expect(compactViews(shared)).toBe(shared);
    const exact = new Uint8Array(4);
    const args = { exact };
    expect(compactViews(args)).toBe(args);
  });
});
