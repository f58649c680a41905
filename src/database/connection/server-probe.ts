// The first connection of a configuration: which of sslmode's attempts (TLS or plaintext)
// the server accepts, and what the server is (PostgreSQL, CockroachDB, YugabyteDB).
import type { ClientConfig } from 'pg';
import type { ConnectionConfig } from '../config';
import { detectDialect, type Dialect } from '../dialects';
import { connectionFailed } from '../sqlstate';
import { clientConfig } from './client-config';
import type { Target } from './target';
import { tlsAttempts } from './tls';

/** What the server is, found by probing it when connecting: its dialect and what it supports. */
export interface ServerInfo {
  dialect: Dialect;
  /** PostgreSQL major version from version() (0 when not PostgreSQL). */
  serverMajor: number;
  /** Whether connections use TLS: decided once per sslmode by this first connection. */
  useTls: boolean;
  /** The settings that connected. */
  clientConfig: ClientConfig;
}

/** Connect once per sslmode's attempts, ask version(), disconnect. */
export async function probeServer(target: Target, config: ConnectionConfig): Promise<ServerInfo> {
  const { Client } = await import('pg');
  let lastErr: unknown;
  for (const useTls of tlsAttempts(target.sslmode)) {
    const cfg = clientConfig(target, config, useTls);
    const probe = new Client(cfg);
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      const { rows } = await probe.query<{ version: string }>('SELECT version() AS version');
      const version = rows[0]?.version ?? '';
      await probe.end().catch(() => undefined);
      return { dialect: detectDialect(version), serverMajor: Number(/^PostgreSQL (\d+)/.exec(version)?.[1] ?? 0), useTls, clientConfig: cfg };
    } catch (e) {
      lastErr = e;
      await probe.end().catch(() => undefined);
    }
  }
  // Unavailable, unless the server said why (28P01 bad password: Unauthenticated; 3D000 no such database; 53300 too many connections).
  throw connectionFailed(lastErr, `cannot connect to ${target.host}:${target.port}/${target.database} as ${target.user}`);
}
