// Bounded retry of whole transactions on serialization failures (40001, which
// CockroachDB returns routinely under contention), deadlocks (40P01), and PostgreSQL's
// "tuple concurrently updated" (XX000): two sessions that GRANT or REVOKE on the same
// object update its catalog row (its ACL) at once, and the later one fails. Every call's
// statements run as one transaction that rolls back whole on any error (or are one
// statement on their own), so running them again creates nothing twice.
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

/**
 * XX000 is internal_error, used for many unrelated failures, so this one is known by its
 * message too (the server's own text, from its catalog update code; it has no SQLSTATE
 * of its own and is not translated: lc_messages does not apply to elog messages).
 */
const CONCURRENT_CATALOG_UPDATE = 'tuple concurrently updated';

/** Is this a serialization failure, deadlock (40001, 40P01) or concurrent catalog update (XX000), which a retry of the whole transaction can pass? */
export function isRetryable(e: unknown): boolean {
  const state = sqlState(e);
  if (state === 'XX000') return (e as Error).message === CONCURRENT_CATALOG_UPDATE;
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
