// src/util/idle-heap.ts: after a burst, an idle process gives V8's heap back; a busy one is
// left alone, and a quiet one that did not grow is not collected at all.
import { afterEach, describe, expect, it } from 'vitest';
import { getHeapStatistics } from 'node:v8';
import { trimHeapWhenIdle, type IdleHeapTrim } from '../../src/util/idle-heap';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const heap = () => getHeapStatistics().total_heap_size + getHeapStatistics().external_memory;

/** Garbage that outlives a few scavenges (so it reaches the old generation), then is dropped. */
function burst(): void {
  let keep: unknown[] = [];
  for (let round = 0; round < 40; round++) {
    keep.push(Array.from({ length: 20_000 }, (_, i) => ({ i, s: `x${i}`, b: Buffer.alloc(16) })));
    if (keep.length > 10) keep = keep.slice(1);
  }
  keep = [];
}

let trim: IdleHeapTrim | undefined;
afterEach(() => trim?.stop());

describe('the idle heap trim', () => {
  it('collects once after a burst, when the loop goes idle, and gives the heap back', async () => {
    trim = trimHeapWhenIdle(150, 400);
    burst();
    const after = heap();
    // Not before the loop has been idle for the idle time.
    await sleep(150);
    expect(trim.trims).toBe(0);
    for (let i = 0; i < 40 && trim.trims === 0; i++) await sleep(100);
    expect(trim.trims).toBe(1);
    expect(heap()).toBeLessThan(after - 8 * 1024 * 1024);
    // Idle and not grown again: no second collection.
    await sleep(600);
    expect(trim.trims).toBe(1);
  });

  it('leaves a busy loop alone', async () => {
    trim = trimHeapWhenIdle(100, 300);
    burst();
    // Busy for 1 s in 40 ms slices (the checks in between see a loop nearly always busy).
    const end = Date.now() + 1000;
    while (Date.now() < end) {
      const slice = Date.now() + 40;
      while (Date.now() < slice) Math.sqrt(Math.random());
      await new Promise((r) => setImmediate(r));
    }
    expect(trim.trims).toBe(0);
  });
});
