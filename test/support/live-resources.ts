// Counts of the process's live async resources by type (TCPWRAP sockets, Timeout timers
// including unref'd ones, ...), from async_hooks: what a leak per configuration would grow.
import { createHook } from 'node:async_hooks';

export function trackLiveResources(): { counts(): Record<string, number>; stop(): void } {
  const live = new Map<number, string>();
  const hook = createHook({
    init(id, type) {
      live.set(id, type);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return {
    counts() {
      const out: Record<string, number> = {};
      for (const t of live.values()) out[t] = (out[t] ?? 0) + 1;
      return out;
    },
    stop() {
      hook.disable();
    },
  };
}

/** global.gc, exposed at run time if node was not started with --expose-gc. */
export function gc(): () => void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('node:v8').setFlagsFromString('--expose-gc');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:vm').runInNewContext('gc') as () => void;
}

/** Heap used after full collections. */
export async function settledHeap(collect: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}
