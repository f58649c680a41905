// One process-wide time budget for long runs of synchronous work (transit batches: thousands
// of items, each a few microseconds on the event loop). A multiplexed plugin serves every
// mount from one thread, so a run that holds the loop delays every other mount's requests.
//
// Every such run asks `nextTurn()` before a unit of work. The first call opens a slice of
// SLICE_MS shared by *all* runs in the process; while it lasts, calls return at once. Once
// it is spent, every run waits. The slice ends at the check phase of the event loop's turn
// (a setImmediate queued when it opened): if runs are waiting, they are resumed one turn
// later still (another setImmediate), so a whole turn of the loop — timers, I/O callbacks:
// other mounts' requests and replies, immediates queued meanwhile — runs between two slices.
// However many batches are running, one turn of the loop carries at most about one slice
// of their work (before: each batch had its own 5 ms), and a request arriving meanwhile
// waits for at most one slice. Runs resumed together take turns item by item (each `await`
// goes to the back of the microtask queue), which shares a slice fairly between them. A
// slice whose runs went off to wait for something else (the thread pool) simply ends with
// its turn, and the next call opens a fresh one.
//
// Time comes from performance.now() at each call, so a test may drive it with a fake clock.

/** The length of one slice of synchronous work, shared by every run in the process. */
export const SLICE_MS = 1;

let deadline = 0; // performance.now() when the open slice ends; 0 while none is open
let waiting: Array<() => void> = [];

function resume(): void {
  deadline = 0;
  const runs = waiting;
  waiting = [];
  for (const r of runs) r();
}

function endOfSlice(): void {
  if (waiting.length === 0) deadline = 0;
  else setImmediate(resume); // the slice stays spent until then: later callers wait too
}

/**
 * Ask before a unit of synchronous work: undefined (go on) while the process's slice has
 * time left, else a promise that resolves after the event loop has had its turn. Ask again
 * after it resolves (`for (let t = nextTurn(); t; t = nextTurn()) await t;`): every waiting
 * run is resumed at once, and the new slice may be spent before this one's turn comes.
 */
export function nextTurn(): Promise<void> | undefined {
  const now = performance.now();
  if (deadline === 0) {
    deadline = now + SLICE_MS;
    setImmediate(endOfSlice);
    return undefined;
  }
  if (now < deadline) return undefined;
  return new Promise<void>((r) => waiting.push(r));
}
