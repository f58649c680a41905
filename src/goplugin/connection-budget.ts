// How many idle connections the process keeps open to Vault. Each mount of a multiplexed
// plugin dials its own broker connection (TLS + HTTP/2, ~100 KiB of native memory while
// open), which closes after the broker's idle time (30 s). Mounting 200 engines in a burst
// thus held 200 connections at once, and glibc kept most of the freed memory afterwards:
// ~200 KiB per idle mount, where a 1 s idle time gave ~85 (bench/RESULTS.md, #17 goal 2).
// A budget keeps the long idle time for the connections a busy process reuses and bounds
// the burst: while more than `maxOpen` are open, a connection idle for `shortIdleMs` is
// closed, least recently used first. A mount called at least every `shortIdleMs` (1000+
// mounts called every second) keeps its connection whatever their number.

import { inRootContext } from '../util/async-context';

/** A client whose idle connection the budget may close. */
export interface IdleCloser {
  /** Close the connection if no call is in flight (the client reports `closed` for it). */
  closeIdle(): void;
}

export class ConnectionBudget {
  private open = 0;
  /** Clients with an open, idle connection, by when they became idle (oldest first: Map order). */
  private readonly idle = new Map<IdleCloser, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    readonly maxOpen: number,
    readonly shortIdleMs: number,
    // Monotonic: a wall clock stepped back would make every idle time look like the future.
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Connections open now (for tests and benches). */
  get openConnections(): number {
    return this.open;
  }

  /** Clients whose open connection the budget may close (for tests). */
  get idleConnections(): number {
    return this.idle.size;
  }

  /** A client opened a connection (a call is about to use it). */
  opened(): void {
    this.open++;
    this.trim();
  }

  /**
   * A connection closed, for whatever reason. `current`: it was the client's connection in
   * use; false for an older one that drained after a GOAWAY while a newer one took over (which
   * stays in the idle list if it is idle).
   */
  closed(c: IdleCloser, current = true): void {
    this.open--;
    if (current) this.idle.delete(c);
  }

  /** The client's last call in flight ended; its connection stays open. */
  becameIdle(c: IdleCloser): void {
    this.idle.delete(c);
    this.idle.set(c, this.now());
    this.trim();
  }

  /** The client started a call. */
  busy(c: IdleCloser): void {
    this.idle.delete(c);
  }

  private trim(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    for (const [c, since] of this.idle) {
      if (this.open <= this.maxOpen) return;
      const left = since + this.shortIdleMs - now;
      if (left > 0) {
        // The oldest idle one is not idle long enough yet: look again when it is.
        this.timer = inRootContext(setTimeout, () => this.trim(), left);
        this.timer.unref();
        return;
      }
      this.idle.delete(c);
      c.closeIdle();
    }
  }
}
