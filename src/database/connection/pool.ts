// The pool of one configuration: max_open / max_idle / max_connection_lifetime applied
// to node-postgres's pool (or the smart driver's), every connection pinned (session.ts).
import type { ClientConfig, Pool as PgPool, PoolClient, Client as PgClient } from 'pg';
import type { ConnectionConfig } from '../config';
import { DEFAULTS } from '../defaults';
import { sqlState } from '../errors';
import { connectionFailed } from '../sqlstate';

import { driverFor, smartDriverOptions } from './smart-driver';

/** A pool that keeps at most maxIdle idle connections (node-postgres has no such knob). */
export class ConnectionPool {
  readonly pool: PgPool;
  private closed = false;

  constructor(
    private readonly base: ClientConfig,
    private readonly c: ConnectionConfig,
    /** What each new connection runs first (session.ts connectionSetup). */
    setup: string,
  ) {
    const { Pool } = driverFor(c);
    this.pool = new Pool({
      ...base,
      ...smartDriverOptions(c),
      max: c.maxOpen,
      idleTimeoutMillis: DEFAULTS.connectionIdleMs,
      maxLifetimeSeconds: c.maxLifetimeSec > 0 ? Math.max(1, Math.round(c.maxLifetimeSec)) : 0,
    });
    // An idle client whose server went away must not crash the process.
    this.pool.on('error', () => undefined);
    // Every connection lexes with standard_conforming_strings on, whatever the role or
    // database says, and runs in UTC (session.ts). Queued before any other query; a
    // connection that cannot be set up is closed, failing the query queued behind it.
    this.pool.on('connect', (client) => {
      client.query(setup).catch(() => {
        void client.end().catch(() => undefined);
      });
    });
  }

  get totalCount(): number {
    return this.pool.totalCount;
  }
  get idleCount(): number {
    return this.pool.idleCount;
  }

  async connect(): Promise<PoolClient> {
    if (this.closed) throw new Error('connection pool is closed');
    try {
      return await this.pool.connect();
    } catch (e) {
      throw connectionFailed(e);
    }
  }

  release(client: PoolClient, err?: Error): void {
    const discard = !!err || this.pool.idleCount >= this.c.maxIdle;
    client.release(discard ? (err ?? true) : undefined);
  }

  /** Run fn on a pooled connection. A connection that errored is discarded, not reused. */
  async with<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    // pg-pool listens for errors only on idle clients: a server ending the connection of a
    // checked-out one (a shutdown, transaction_timeout) would otherwise be an uncaught
    // 'error' event. The failing query reports it to fn.
    // Whether the connection was lost during fn also tells what its error means.
    let lost = false;
    const onLost = () => {
      lost = true;
    };
    client.on('error', onLost);
    client.on('end', onLost);
    const stopWatching = () => {
      client.removeListener('error', onLost);
      client.removeListener('end', onLost);
    };
    try {
      const r = await fn(client);
      stopWatching();
      this.release(client);
      return r;
    } catch (e) {
      stopWatching();
      const state = sqlState(e);
      // discardConnection: a statement may still be running on it (a call that ended early).
      // Without a SQLSTATE the failure was not the server's answer to a statement.
      const serverEnded = !!state && (state.startsWith('08') || state.startsWith('57P'));
      const broken = (e as { discardConnection?: boolean }).discardConnection || lost || !state || serverEnded;
      this.release(client, broken ? (e as Error) : undefined);
      if (lost && !state) throw connectionFailed(e);
      throw e;
    }
  }

  /** A connection outside the pool, e.g. to another database for per-database cleanup. */
  async single(database?: string): Promise<PgClient> {
    const { Client } = driverFor(this.c);
    const cl = new Client({ ...this.base, database: database ?? this.base.database });
    cl.on('error', () => undefined);
    try {
      await cl.connect();
    } catch (e) {
      throw connectionFailed(e);
    }
    return cl;
  }

  async end(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
