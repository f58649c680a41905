// The process-wide slice budget (util/slices): one slice of synchronous work per turn of the
// event loop for all runs together, shared fairly, with other work let in between slices.
// Time is a fake clock that each unit of work advances, so the assertions count slices, not
// milliseconds of a shared machine.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { SLICE_MS, nextTurn } from '../../src/util/slices';

// Only ever moves forward (the scheduler keeps its open slice between tests).
let clock = 1000;
beforeEach(() => {
  vi.spyOn(performance, 'now').mockImplementation(() => clock);
});
afterEach(() => vi.restoreAllMocks());

const ITEM_MS = 0.1;

/** A run of `n` units of ITEM_MS each, logging its name per unit; calls `at(i)` before unit i. */
async function run(name: string, n: number, log: string[], at?: (i: number) => void): Promise<void> {
  for (let i = 0; i < n; i++) {
    for (let t = nextTurn(); t; t = nextTurn()) await t;
    at?.(i);
    clock += ITEM_MS;
    log.push(name);
    await undefined; // an item's own awaits
  }
}

describe('nextTurn', () => {
  it('lets the runs work at most about one slice per turn of the event loop', async () => {
    let tick = 0;
    let stop = false;
    const count = () => {
      tick++;
      if (!stop) setImmediate(count);
    };
    setImmediate(count);
    const perTick = new Map<number, number>();
    const log: string[] = [];
    const unit = () => perTick.set(tick, (perTick.get(tick) ?? 0) + 1);
    await Promise.all([run('a', 200, log, unit), run('b', 200, log, unit)]); // 40 ms of work
    stop = true;
    // A slice ends with the first unit that reaches SLICE_MS, plus the unit the other run is in.
    expect(Math.max(...perTick.values())).toBeLessThanOrEqual(SLICE_MS / ITEM_MS + 2);
    expect(tick).toBeLessThanOrEqual(3 * (400 / (SLICE_MS / ITEM_MS)) + 3); // and it keeps going
  });

  it('shares the slices fairly between two runs', async () => {
    const log: string[] = [];
    await Promise.all([run('a', 300, log), run('b', 300, log)]);
    // At every point, neither run is more than one unit ahead of the other.
    let a = 0;
    let b = 0;
    for (const x of log) {
      if (x === 'a') a++;
      else b++;
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1);
    }
  });

  it('gives other work its turn within one slice, however many runs are busy', async () => {
    const delays: Record<string, number> = {};
    const channel = new MessageChannel();
    channel.port2.unref();
    const probes = (i: number) => {
      if (i !== 7) return;
      const t0 = clock;
      setImmediate(() => {
        delays.immediate = clock - t0;
      });
      // An incoming message is handled like I/O (the poll phase), as a request from Vault is.
      channel.port2.once('message', () => {
        delays.message = clock - t0;
      });
      channel.port1.postMessage('x');
    };
    const log: string[] = [];
    await Promise.all([run('a', 100, log, probes), run('b', 100, log), run('c', 100, log)]);
    channel.port1.close();
    expect(delays.immediate).toBeDefined();
    expect(delays.message).toBeDefined();
    // The slice open when the probe was queued ends within SLICE_MS, plus the unit that
    // crosses its end and the one each other run is in by then.
    const bound = SLICE_MS + 4 * ITEM_MS;
    expect(delays.immediate).toBeLessThanOrEqual(bound);
    expect(delays.message).toBeLessThanOrEqual(bound);
  });
});
