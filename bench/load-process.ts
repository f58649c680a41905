// The parent's side of bench/multiplex-load.ts: fork the load process and wait for its
// messages by key ('ready', 'mark', 'result'), failing if it exits first.
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

export interface LoadProcess {
  child: ChildProcess;
  /** The value of the next message carrying `key`. */
  next<T>(key: string): Promise<T>;
}

export function forkLoadProcess(): LoadProcess {
  const child = fork(path.join(__dirname, 'multiplex-load.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T>(key: string) =>
    new Promise<T>((resolve, reject) => {
      const onMsg = (m: Record<string, unknown>) => {
        if (!(key in m)) return;
        child.off('message', onMsg);
        resolve(m[key] as T);
      };
      child.on('message', onMsg);
      child.once('exit', (code) => reject(new Error(`load process exited (${code})`)));
    });
  return { child, next };
}
