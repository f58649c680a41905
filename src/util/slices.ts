// One process-wide time budget for long runs of synchronous work (transit batches: thousands
// of items, each a few microseconds on the event loop). A multiplexed plugin serves every
// mount from one thread, so a run that holds the loop delays every other mount's requests.
//
// Every such run calls `await nextTurn()` between two units of work. The first call opens a
// slice of SLICE_MS shared by *all* runs in the process; while it lasts, calls return at
// once. Once it is spent, every run waits, and the first to wait schedules the slice's end
// with setImmediate: whatever the event loop already has to do (I/O callbacks: other mounts'
// requests and replies; immediates queued before) runs first, then every waiting run is
// resumed, in the order it stopped, and the next call opens a new slice. So however many
// batches are running, one turn of the loop carries at most about one slice of their work
// (before: each batch had its own 5 ms), and a request arriving meanwhile waits for at most
// one slice. Runs resumed together take turns item by item (each `await` goes to the back of
// the microtask queue), which shares a slice fairly between them. A slice left open by runs
// that went off to wait for other things (the thread pool) is simply over when they return.
//
// Time comes from performance.now() at each call, so a test may drive it with a fake clock.

/** The length of one slice of synchronous work, shared by every run in the process. */
export const SLICE_MS = 1;

let deadline = 0; // performance.now() when the open slice ends; 0 while none is open
let waiting: Array<() => void> = [];

function closeSlice(): void {
  deadline = 0;
  const resume = waiting;
  waiting = [];
  for (const r of resume) r();
}

/**
 * Await between two units of synchronous work: undefined (go on) while the process's slice
 * has time left, else a promise that resolves after the event loop has had its turn.
 */
export function nextTurn(): Promise<void> | undefined {
  const now = performance.now();
  if (deadline === 0) {
    deadline = now + SLICE_MS;
    return undefined;
  }
  if (now < deadline) return undefined;
  if (waiting.length === 0) setImmediate(closeSlice);
  return new Promise<void>((r) => waiting.push(r));
}
