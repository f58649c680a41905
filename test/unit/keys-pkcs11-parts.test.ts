// The pieces of the PKCS#11 backend that need no token: the session pool and mechanism
// names. (test/integration/keys-pkcs11*.test.ts runs the whole backend against SoftHSM2.)
import { describe, expect, it } from 'vitest';
import { SessionPool } from '../../src/keys/pkcs11/session-pool';
import { MECHANISMS, parseMechanism } from '../../src/keys/pkcs11/mechanisms';
import type { Pkcs11Types } from '../../src/keys/pkcs11/library';

/** Just the two session calls the pool makes, counting what is open. */
function fakeModule() {
  let next = 0;
  const live = new Set<number>();
  const p = {
    C_OpenSession: () => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(++next);
      live.add(next);
      return h;
    },
    C_CloseSession: (h: Buffer) => {
      live.delete(h.readUInt32LE(0));
    },
  };
  return { p: p as unknown as Pkcs11Types.PKCS11, live, opened: () => next };
}
const tick = () => new Promise((r) => setTimeout(r, 1));
const ckrError = (code: number) => Object.assign(new Error(`CKR ${code}`), { code });

describe('PKCS#11 session pool', () => {
  it('opens at most max sessions, makes the rest wait, and reuses idle ones', async () => {
    const m = fakeModule();
    const logins: Buffer[] = [];
    const pool = new SessionPool(m.p, 3, 0, (s) => logins.push(s));
    let busy = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        pool.use(Buffer.alloc(8), async () => {
          peak = Math.max(peak, ++busy);
          await tick();
          busy--;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(m.opened()).toBe(3);
    expect(logins).toHaveLength(3);
    await pool.use(Buffer.alloc(8), () => undefined);
    expect(m.opened()).toBe(3);
  });

  it('drops a session that failed with a recoverable error, keeps it after any other', async () => {
    const m = fakeModule();
    const pool = new SessionPool(m.p, 1, 0, () => undefined);
    await expect(
      pool.use(Buffer.alloc(8), () => {
        throw ckrError(0x40);
      }),
    ).rejects.toThrow('CKR 64');
    await pool.use(Buffer.alloc(8), () => undefined);
    expect(m.opened()).toBe(1);
    await expect(
      pool.use(Buffer.alloc(8), () => {
        throw ckrError(0xb3);
      }),
    ).rejects.toThrow(); // CKR_SESSION_HANDLE_INVALID
    await pool.use(Buffer.alloc(8), () => undefined);
    expect(m.opened()).toBe(2);
  });

  it('a failed login closes its session and frees the place for the next caller', async () => {
    const m = fakeModule();
    let fail = true;
    const pool = new SessionPool(m.p, 1, 0, () => {
      if (fail) {
        fail = false;
        throw ckrError(0xa0);
      }
    });
    const first = pool.use(Buffer.alloc(8), () => 'first');
    const second = pool.use(Buffer.alloc(8), () => 'second');
    await expect(first).rejects.toThrow('CKR 160');
    await expect(second).resolves.toBe('second');
    expect(m.live.size).toBe(1);
    pool.clear(true);
    expect(m.live.size).toBe(0);
  });
});

describe('PKCS#11 mechanism names', () => {
  it('takes CKM_ names, decimal and 0x hex, and refuses anything else clearly', () => {
    expect(parseMechanism('CKM_ECDSA')).toBe(MECHANISMS.CKM_ECDSA);
    expect(parseMechanism('4161')).toBe(0x1041);
    expect(parseMechanism('0x1087')).toBe(MECHANISMS.CKM_AES_GCM);
    expect(parseMechanism(undefined)).toBeUndefined();
    expect(() => parseMechanism('CKM_BOGUS')).toThrow(/not a number, 0x hex, or a known CKM_ name/);
  });
});
