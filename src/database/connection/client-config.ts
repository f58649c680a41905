// The node-postgres settings of one connection to a target.
import type { ClientConfig } from 'pg';
import type { ConnectionConfig } from '../config';
import type { Target } from './target';
import { tlsOptions } from './tls';

/** node-postgres's settings for one connection to `t` (TLS or not, and optionally another database). */
export function clientConfig(t: Target, c: ConnectionConfig, useTls: boolean, database?: string): ClientConfig {
  return {
    host: t.host,
    port: t.port,
    database: database ?? t.database,
    user: t.user,
    password: t.password,
    ssl: tlsOptions(t, useTls),
    application_name: t.applicationName,
    connectionTimeoutMillis: t.connectTimeoutMs ?? c.connectTimeoutMs,
    options: t.options,
    keepAlive: true,
  };
}
