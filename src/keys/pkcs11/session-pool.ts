// Per key, a pool of at most max_parallel sessions: a call takes an idle session or opens
// one (waiting while max_parallel are busy) and gives it back; a session that failed with
// a recoverable error is dropped rather than reused.
import { RECOVERABLE, ckr, type Handle, type Pkcs11Types } from './library';

/** The sessions of one key: at most `max` open, idle ones reused. */
export class SessionPool {
  private idle: Handle[] = [];
  private open = 0;
  private waiters: Array<() => void> = [];
  /** Calls inside use(), waiting for a session or running on one; drain() waits for none. */
  private active = 0;
  private drained: Array<() => void> = [];

  /** `onOpen` runs on each new session before its first use (the login); `flags` are C_OpenSession's. */
  constructor(
    private readonly p: Pkcs11Types.PKCS11,
    private readonly max: number,
    private readonly flags: number,
    private readonly onOpen: (s: Handle) => void,
  ) {}

  /** Take a session on `slot` from the pool (opening one if under max_parallel), run fn, give it back. */
  async use<T>(slot: Handle, fn: (s: Handle) => Promise<T> | T): Promise<T> {
    this.active++;
    try {
      return await this.run(slot, fn);
    } finally {
      if (--this.active === 0) for (const r of this.drained.splice(0)) r();
    }
  }

  /** Resolves once no call is using (or waiting for) a session: then every open session is idle. */
  async drain(): Promise<void> {
    if (this.active) await new Promise<void>((r) => this.drained.push(r));
  }

  private async run<T>(slot: Handle, fn: (s: Handle) => Promise<T> | T): Promise<T> {
    while (!this.idle.length && this.open >= this.max) await new Promise<void>((r) => this.waiters.push(r));
    let s = this.idle.pop();
    if (!s) {
      this.open++;
      try {
        s = this.p.C_OpenSession(slot, this.flags);
        this.onOpen(s);
      } catch (e) {
        if (s) {
          try {
            this.p.C_CloseSession(s);
          } catch {
            /* gone */
          }
        }
        this.open--;
        this.waiters.shift()?.();
        throw e;
      }
    }
    try {
      const r = await fn(s);
      this.idle.push(s);
      return r;
    } catch (e) {
      if (RECOVERABLE.has(ckr(e) ?? -1))
        this.open--; // the session is dead: drop it
      else this.idle.push(s);
      throw e;
    } finally {
      this.waiters.shift()?.();
    }
  }

  /** Forget every session; `closeIdle`: close the idle ones first (not after a re-initialisation, which closed them). */
  clear(closeIdle: boolean): void {
    if (closeIdle)
      for (const s of this.idle) {
        try {
          this.p.C_CloseSession(s);
        } catch {
          /* gone */
        }
      }
    this.idle = [];
    this.open = 0;
  }
}
