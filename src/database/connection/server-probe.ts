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
      const { rows } = await answerWithin(probe.query<{ version: string }>('SELECT version() AS version'), cfg.connectionTimeoutMillis);
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

/**
 * The server's answer, or an error once connect_timeout has passed without one (0: no
 * bound, as for the connect): a server that accepts connections but never answers (an
 * overloaded one, a pooler waiting for a backend) would otherwise hold the probe, and every
 * call waiting for it, for ever. Ending the probe then drops its socket (a query is active).
 */
function answerWithin<T>(answer: Promise<T>, ms: number | undefined): Promise<T> {
  if (!ms) return answer;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not answer within connect_timeout (${ms} ms)`)), ms);
  });
  answer.catch(() => undefined);
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}
