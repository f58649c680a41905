// One shared PostgreSQL for the integration tests; files that stop or break a server
// start their own.
import type { TestProject } from 'vitest/node';
import { startPostgres, type PgServer } from './postgres';

let server: PgServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startPostgres();
  project.provide('pg', { host: server.host, port: server.port, user: server.user, password: server.password, database: server.database });
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { host: string; port: number; user: string; password: string; database: string };
  }
}
