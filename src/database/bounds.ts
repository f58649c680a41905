// When a call may end early: the caller's gRPC deadline, or the caller cancelling the call.
// Vault 1.8 sets no gRPC deadline on database calls; it cancels the call when its client
// goes away or max_request_duration passes, so both count.
import { type PluginError, cancelled, deadlineExceeded } from './errors';

/** How long a call may run and whether its caller went away: its deadline and cancellation. */
export interface CallBounds {
  /** Epoch ms after which the caller no longer waits (its gRPC deadline). */
  deadline?: number;
  /** Aborted when the caller cancels the call. */
  signal?: AbortSignal;
}

/** The error for a call that ended early, or undefined while it may go on. */
export function endedEarly(b: CallBounds): PluginError | undefined {
  if (b.signal?.aborted) return cancelled('the call was cancelled by the caller; nothing was committed');
  if (b.deadline !== undefined && Date.now() >= b.deadline) return deadlineExceeded("the call's deadline passed; nothing was committed");
  return undefined;
}

/** Run fn once when the call ends early (deadline or cancel); returns a disposer. */
export function onEndedEarly(b: CallBounds, fn: () => void): () => void {
  let done = false;
  const fire = () => {
    if (!done) {
      done = true;
      fn();
    }
  };
  const timer = b.deadline !== undefined ? setTimeout(fire, Math.max(0, b.deadline - Date.now())) : undefined;
  b.signal?.addEventListener('abort', fire, { once: true });
  if (b.signal?.aborted) fire();
  return () => {
    done = true;
    if (timer) clearTimeout(timer);
    b.signal?.removeEventListener('abort', fire);
  };
}

/** `p`, or the call's end (deadline or cancel) if that comes first: a caller waiting in a queue waits no longer than its call. */
export function untilEnded<T>(p: Promise<T>, b: CallBounds): Promise<T> {
  if (b.deadline === undefined && !b.signal) return p;
  return new Promise<T>((resolve, reject) => {
    const stop = onEndedEarly(b, () => reject(endedEarly(b) ?? deadlineExceeded("the call's deadline passed")));
    p.then(
      (v) => {
        stop();
        resolve(v);
      },
      (e: unknown) => {
        stop();
        reject(e);
      },
    );
  });
}
