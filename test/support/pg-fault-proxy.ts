// A TCP proxy in front of PostgreSQL that can lose a connection at the worst moment: right
// after the server committed a transaction and before the client hears it (the server's
// CommandComplete "COMMIT" is swallowed and both sockets are cut). Plain protocol only
// (sslmode=disable): it reads the server's typed messages from the first byte.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FaultProxy {
  port: number;
  /** Cut the next connection whose server reports a COMMIT, before that report reaches the client. */
  dropAfterNextCommit(): void;
  /** While true, new connections are closed at once (the database looks down). */
  refuse: boolean;
  /** How many connections were cut so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let armed = false;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const state = { refuse: false };
  const server: Server = createServer((client) => {
    if (state.refuse) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut).on('close', cut);
    upstream.on('error', cut).on('close', cut);
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // Forward whole messages only, so a COMMIT report can be held back on its own.
      let at = 0;
      while (pending.length - at >= 5) {
        const len = pending.readUInt32BE(at + 1);
        if (pending.length - at < 1 + len) break;
        const isCommit = pending[at] === 0x43 /* C */ && pending.toString('latin1', at + 5, at + 1 + len - 1) === 'COMMIT';
        if (isCommit && armed) {
          armed = false;
          cuts++;
          client.write(pending.subarray(0, at));
          cut();
          return;
        }
        at += 1 + len;
      }
      if (at) client.write(pending.subarray(0, at));
      pending = pending.subarray(at);
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as { port: number }).port,
    dropAfterNextCommit: () => {
      armed = true;
    },
    get refuse() {
      return state.refuse;
    },
    set refuse(v: boolean) {
      state.refuse = v;
    },
    get cuts() {
      return cuts;
    },
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}
