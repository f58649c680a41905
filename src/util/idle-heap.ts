// V8's heap given back after a busy period, once the plugin is idle.
//
// V8's memory reducer did not run in an idle plugin on Node 24: after a burst (a batch, a
// hundred mounts set up, a spell of PKI issues) the old generation's garbage, the free pages
// it left and the buffers its dead objects still held stayed committed for as long as the
// process lived (bench/RESULTS.md, session 9: 15-20 MiB in a loaded secrets process; 137 and
// 113 KiB per idle mount for 200 mounts set up in a cold process, 86 and 100 with this).
// An idle plugin must give that back (#17: one process per mount on Vault before 1.12,
// hundreds of mounts in one process after).
//
// So a check every CHECK_MS samples the event loop's utilisation since the last check; when
// the loop has been idle for IDLE_MS and the heap (V8's, plus the external memory its objects
// hold) has grown by GROWTH_BYTES since the last collection here, it runs one
// memory-reducing collection (V8's "last resort" collection). That collection also drops
// compiled code, so the next burst runs unoptimised for a while: with 2 s of idleness as the
// trigger, bench/vault (whose sides take turns of a few seconds) measured 15-80% more plugin
// CPU per request. Hence a long quiet spell first: a plugin that serves traffic is never
// collected this way; one that has gone quiet for half a minute is, once.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often the loop's utilisation is sampled. */
export const CHECK_MS = 5000;
/** How long the loop must have been idle. */
export const IDLE_MS = 30_000;
/** At or below this share of the last interval busy, the process counts as idle. */
const IDLE_UTILISATION = 0.02;
/** Growth worth a collection. */
export const GROWTH_BYTES = 4 * 1024 * 1024;

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

/** V8's gc function, taken from a throw-away context: the process's own global gets none. */
function privateGc(): GcFunction {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as GcFunction;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** V8's committed heap plus the memory outside it that its objects keep (buffers). */
function heapBytes(): number {
  const h = getHeapStatistics();
  return h.total_heap_size + h.external_memory;
}

export interface IdleHeapTrim {
  /** Collections run so far (for tests and diagnostics). */
  readonly trims: number;
  stop(): void;
}

/** Start the idle check (see the top of this file); it never keeps the process alive. */
export function trimHeapWhenIdle(checkMs = CHECK_MS, idleMs = IDLE_MS): IdleHeapTrim {
  const gc = privateGc();
  let baseline = heapBytes();
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let idleSince = Date.now();
  let trims = 0;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy > IDLE_UTILISATION) {
      idleSince = Date.now();
      return;
    }
    const size = heapBytes();
    if (size < baseline) baseline = size; // V8 gave memory back on its own
    if (Date.now() - idleSince < idleMs || size - baseline < GROWTH_BYTES) return;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    trims++;
    baseline = heapBytes();
    last = performance.eventLoopUtilization(); // the collection itself is not load
  }, checkMs);
  timer.unref();
  return {
    get trims() {
      return trims;
    },
    stop: () => clearInterval(timer),
  };
}
