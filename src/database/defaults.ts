// Every default of the database role's connections and calls, in one place (as node-postgres
// keeps its own in lib/defaults.js). Defaults of the configuration fields themselves
// (connect_timeout, max_open_connections, ...) are declared with the fields in config.ts.
/** Every default of the database role that is not a configuration field's. */
export const DEFAULTS = {
  /** libpq's defaults when the configuration names no port, sslmode or application_name. */
  port: 5432,
  sslmode: 'prefer',
  applicationName: 'vault-plugin-ts',
  /** A pooled connection idle this long is closed (pg-pool's idleTimeoutMillis). */
  connectionIdleMs: 30_000,
  /** A configuration's whole pool is closed this long after its last call ended; the next call opens it again. */
  poolIdleCloseMs: 30_000,
  /** YugabyteDB smart driver: seconds between yb_servers() refreshes. */
  ybServersRefreshIntervalSec: 300,
  /** How long a statement cancelled at the deadline may take to come back before its connection is dropped. */
  cancelGraceMs: 1000,
  /** Time kept back from the caller's deadline for the reply to reach it. */
  deadlineMarginMs: 50,
  /** How long the plugin's own removal of a user (created by a failed call, or half-created) may wait on the database. */
  cleanupTimeoutMs: 30_000,
  /** While a user created by a failed call (connection lost around COMMIT) could not be removed, retry this often. */
  unreportedRetryMs: 10_000,
  /**
   * Whole-transaction retries on 40001/40P01/"tuple concurrently updated": attempts, then
   * full-jitter backoff bounds. 10 attempts (at most ~4 s of waiting in all) let 20
   * concurrent calls that GRANT or REVOKE on the same tables all pass.
   */
  retry: { attempts: 10, baseDelayMs: 20, maxDelayMs: 1000 },
} as const;
