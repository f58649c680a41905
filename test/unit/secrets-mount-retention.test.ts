// What a secrets mount keeps alive: its backend and broker client, not the Setup call that
// made it (grpc-js's reply callback holds the whole call: stream, metadata, request).
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { GrpcClient } from '../../src/goplugin/grpc-client';
import { createLogger } from '../../src/goplugin/log';
import type { LaunchEnv } from '../../src/goplugin/env';
import type { RuntimeContext } from '../../src/goplugin/server';
import { backendVersions } from '../../src/secrets/plugin';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

type Handler = (call: unknown, cb: (e: Error | null, r?: { err?: string }) => void) => void;

/** The multiplexed secrets role's handlers, with a broker that hands out one client that never connects. */
function secretsRole(): { handlers: Record<string, Handler>; client: GrpcClient } {
  const handlers: Record<string, Handler> = {};
  const server = { addService: (_def: unknown, impl: Record<string, Handler>) => Object.assign(handlers, impl) } as unknown as grpc.Server;
  const client = new GrpcClient({ host: '127.0.0.1', port: 9 }, { idleMs: 1000 });
  const ctx = {
    log: createLogger({ level: 'error', sink: () => undefined }),
    broker: { dial: async () => client },
    version: 5,
    env: { role: 'backend', clientVersions: [5], minPort: 10000, maxPort: 25000, metadataMode: false } satisfies LaunchEnv,
    onShutdown: () => undefined,
  } as unknown as RuntimeContext;
  backendVersions()[5](server, ctx);
  return { handlers, client };
}

const md = (id: string) => {
  const m = new grpc.Metadata();
  m.set('multiplex_id', id);
  return m;
};

describe('secrets mount retention', () => {
  it("a mount does not keep its Setup call's reply callback (and so the call) alive", async () => {
    const { handlers, client } = secretsRole();
    const refs: WeakRef<object>[] = [];
    for (const engine of ['transit', 'pki']) {
      await new Promise<void>((resolve, reject) => {
        const call = { metadata: md(engine), request: { broker_id: 1, Config: { engine } } };
        const cb = (e: Error | null, r?: { err?: string }) => (e || r?.err ? reject(e ?? new Error(r?.err)) : resolve());
        refs.push(new WeakRef(cb), new WeakRef(call));
        handlers.Setup(call, cb);
      });
    }
    // The mounts exist (their engine's special paths answer: PKI's, not transit's)...
    const paths = await new Promise<{ paths?: unknown }>((resolve) =>
      handlers.SpecialPaths({ metadata: md('pki'), request: {} }, (_e, r) => resolve(r as never)),
    );
    expect(paths.paths).toMatchObject({ unauthenticated: expect.arrayContaining(['ca/pem', 'crl']) });
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    // ...and what Setup was called with is garbage.
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true, true, true]);
    client.close();
  });
});
