// One shared PostgreSQL for the integration tests, in a child process (see pg-server.ts
// for why not here); files that stop or break a server start their own.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';

let child: ChildProcess | undefined;

export async function setup(project: TestProject): Promise<void> {
  const tsx = path.resolve(__dirname, '../../node_modules/tsx/dist/cli.mjs');
  child = spawn(process.execPath, [tsx, path.join(__dirname, 'pg-server.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child!.stdout!.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child!.once('exit', (code) => reject(new Error(`shared PostgreSQL exited (${code}) before it was ready`)));
  });
  project.provide('pg', JSON.parse(info));
}

export async function teardown(): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child!.once('exit', r));
  child.stdin!.end();
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { host: string; port: number; user: string; password: string; database: string };
  }
}
