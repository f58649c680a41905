// Bounded retry of whole transactions on serialization failures (40001, which
// CockroachDB returns routinely under contention) and deadlocks (40P01).
import { DEFAULTS } from './defaults';
import { sqlState } from './errors';

const RETRYABLE = new Set(['40001', '40P01']);

/** How withRetry retries (defaults in DEFAULTS.retry). */
export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onRetry?: (attempt: number, code: string) => void;
}

/** Is this a serialization failure or deadlock (40001, 40P01), which a retry of the whole transaction can pass? */
export function isRetryable(e: unknown): boolean {
  const state = sqlState(e);
  return state !== undefined && RETRYABLE.has(state);
}

/** Run `fn`, again after a jittered backoff when it fails retryably, at most `attempts` times. */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? DEFAULTS.retry.attempts;
  const base = opts.baseDelayMs ?? DEFAULTS.retry.baseDelayMs;
  const max = opts.maxDelayMs ?? DEFAULTS.retry.maxDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isRetryable(e) || attempt >= attempts) throw e;
      opts.onRetry?.(attempt, sqlState(e)!);
      // Full jitter keeps competing transactions from retrying in lockstep.
      const delay = Math.random() * Math.min(max, base * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
