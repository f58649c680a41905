import { Client } from 'pg';
import { inject } from 'vitest';
import { createLogger } from '../../src/goplugin/log';

export type PgInfo = { host: string; port: number; user: string; password: string; database: string };

export const pgInfo = (): PgInfo => inject('pg');

export const quietLog = (lines: string[] = []) => createLogger({ level: 'debug', sink: (l) => lines.push(l) });

export async function admin<T>(fn: (c: Client) => Promise<T>, info: PgInfo = pgInfo(), database?: string): Promise<T> {
  const c = new Client({ host: info.host, port: info.port, user: info.user, password: info.password, database: database ?? info.database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Does logging in with these credentials work? (error text when not) */
export async function login(user: string, password: string, info: PgInfo = pgInfo(), database?: string): Promise<true | string> {
  const c = new Client({ host: info.host, port: info.port, user, password, database: database ?? info.database });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function roleExists(name: string, info: PgInfo = pgInfo()): Promise<boolean> {
  return admin(async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1, info);
}

export const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`];

export function urlConfig(info: PgInfo, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    connection_url: `postgres://{{username}}:{{password}}@${info.host}:${info.port}/${info.database}?sslmode=disable`,
    username: info.user,
    password: info.password,
    ...extra,
  };
}
