// From a ConnectionConfig to live connections: target.ts (where and as whom), tls.ts
// (sslmode), client-config.ts, pool.ts, smart-driver.ts (YugabyteDB), server-probe.ts
// (first connect: TLS choice and dialect), session.ts (what every session is pinned to).
export { resolveTarget, type Target } from './target';
export { loadTlsFiles, tlsAttempts, tlsOptions } from './tls';
export { clientConfig } from './client-config';
export { ConnectionPool } from './pool';
export { claimSmartDriver, driverFor } from './smart-driver';
export { probeServer, type ServerInfo } from './server-probe';
export { PIN_SESSION, connectionSetup } from './session';
