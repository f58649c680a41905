// query_canceled (57014) means the call's deadline only when the statement_timeout set from it fired.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/database/errors';
import { sanitizeError } from '../../src/database/sanitizing-database';
import { boundedQuery, inTransaction, type Queryable } from '../../src/database/transaction';
import { DEFAULTS } from '../../src/database/defaults';

const canceled = () => Object.assign(new Error('canceling statement'), { code: '57014' });

/** A connection whose transaction fails with 57014 after ms (ROLLBACK succeeds). */
function cancelledAfter(ms: number): Queryable {
  return {
    query: ((text: string) => (text.startsWith('ROLLBACK') ? Promise.resolve({}) : new Promise((_, rej) => setTimeout(() => rej(canceled()), ms)))) as never,
  };
}

describe('inTransaction and query_canceled', () => {
  it('after the time the call had left: DeadlineExceeded, with the server error as cause', async () => {
    const e = await inTransaction(cancelledAfter(400), ['SELECT 1'], { deadline: Date.now() + 450 }, { transactionTimeout: false }).catch((x) => x);
    // deadline 450 ms away, 50 ms kept back: statement_timeout 400 ms, and the error came after 400 ms
    expect(sanitizeError(e, [], 'NewUser').code).toBe(ErrorCode.DeadlineExceeded);
    expect(e.cause?.code).toBe('57014');
  });

  it('before it, or without a deadline: Cancelled (someone else cancelled the statement)', async () => {
    const early = await inTransaction(cancelledAfter(20), ['SELECT 1'], { deadline: Date.now() + 5000 }, { transactionTimeout: false }).catch((x) => x);
    expect(sanitizeError(early, [], 'NewUser').code).toBe(ErrorCode.Cancelled);
    const none = await inTransaction(cancelledAfter(20), ['SELECT 1'], {}, { transactionTimeout: false }).catch((x) => x);
    expect(sanitizeError(none, [], 'NewUser').code).toBe(ErrorCode.Cancelled);
  });
});

describe("a statement that does not come back after the call's end", () => {
  /** A connection whose statements never answer, and a record of the backends cancelled. */
  const hung = () => {
    const cancelled: number[] = [];
    const client: Queryable = { processID: 4242, query: (() => new Promise(() => undefined)) as never };
    return { client, cancelled, o: { transactionTimeout: false, cancelBackend: async (pid: number) => void cancelled.push(pid) } };
  };

  it.each([
    ['inTransaction', (c: Queryable, b: { deadline?: number; signal?: AbortSignal }, o: never) => inTransaction(c, ['SELECT 1'], b, o)],
    ['boundedQuery', (c: Queryable, b: { deadline?: number; signal?: AbortSignal }, o: never) => boundedQuery(c, 'SELECT 1', b, o)],
  ])(
    '%s: the backend is cancelled at the deadline; after the grace period the call ends DeadlineExceeded and asks for the connection to be discarded',
    async (_, run) => {
      const { client, cancelled, o } = hung();
      const t0 = Date.now();
      const e = await run(client, { deadline: Date.now() + 150 }, o as never).catch((x: unknown) => x);
      expect(cancelled).toEqual([4242]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(DEFAULTS.cancelGraceMs);
      expect(sanitizeError(e, [], 'NewUser').code).toBe(ErrorCode.DeadlineExceeded);
      expect((e as { discardConnection?: boolean }).discardConnection).toBe(true);
    },
  );

  it("boundedQuery: a caller's cancel ends it as Cancelled, also discarding the connection", async () => {
    const { client, cancelled, o } = hung();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const e = await boundedQuery(client, 'SELECT 1', { signal: ac.signal }, o as never).catch((x: unknown) => x);
    expect(cancelled).toEqual([4242]);
    expect(sanitizeError(e, [], 'NewUser').code).toBe(ErrorCode.Cancelled);
    expect((e as { discardConnection?: boolean }).discardConnection).toBe(true);
  });
});
