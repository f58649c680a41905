// query_canceled (57014) means the call's deadline only when the statement_timeout set from it fired.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/database/errors';
import { sanitizeError } from '../../src/database/sanitizing-database';
import { inTransaction, type Queryable } from '../../src/database/transaction';

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
