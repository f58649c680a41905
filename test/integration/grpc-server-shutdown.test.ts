// GrpcServer's graceful shutdown over our own HTTP/2 layer (src/goplugin/grpc-server.ts
// listenJs, h2/connection.ts close()), from a client of raw HTTP/2 frames: tryShutdown says
// GOAWAY on every connection, lets the call in flight finish, and is done once the
// connections are; a connection that closes is forgotten.
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcServer } from '../../src/goplugin/grpc-server';
import { frame as grpcFrame } from '../../src/goplugin/grpc-wire';
import { ErrorCode, Flag, FrameType, frame, PREFACE, settingsFrame } from '../../src/goplugin/h2/frames';
import { encodeHeaders, HpackDecoder } from '../../src/goplugin/h2/hpack';
import { methodDef, serviceDef } from '../../src/goplugin/protos';
import { waitFor } from '../support/vault';

type Frame = { type: number; flags: number; id: number; payload: Buffer };

const Check = methodDef<{ service: string }, { status: string }>('grpc.health.v1.Health', 'Check');
const servers: GrpcServer[] = [];
const sockets: net.Socket[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
  for (const s of sockets.splice(0)) s.destroy();
});

/** A server whose Check call for "hang" answers only when `release` is called. */
async function healthServer() {
  const server = new GrpcServer();
  servers.push(server);
  const held: Array<() => void> = [];
  server.addService(serviceDef('grpc.health.v1.Health'), {
    Check: (call: { request: { service: string } }, cb: (e: null, r: { status: string }) => void) => {
      if (call.request.service === 'hang') held.push(() => cb(null, { status: 'SERVING' }));
      else cb(null, { status: 'NOT_SERVING' });
    },
  });
  const port = await server.listen(0);
  return { server, port, held };
}

/** A raw HTTP/2 client: the preface sent, the server's SETTINGS acknowledged, frames collected. */
async function rawClient(port: number) {
  const sock = net.connect(port, '127.0.0.1');
  sockets.push(sock);
  sock.on('error', () => undefined);
  const frames: Frame[] = [];
  const state = { ended: false, closed: false };
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      const f = { type: buf[3], flags: buf[4], id: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
      buf = buf.subarray(9 + len);
      frames.push(f);
      if (f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK)) sock.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
    }
  });
  sock.on('end', () => {
    state.ended = true;
  });
  sock.on('close', () => {
    state.closed = true;
  });
  await new Promise((r) => sock.once('connect', r));
  sock.write(Buffer.concat([PREFACE, settingsFrame([])]));
  await waitFor('the SETTINGS ACK', () => frames.some((f) => f.type === FrameType.SETTINGS && f.flags & Flag.ACK), 5000, 5);
  const call = (id: number, service: string) =>
    sock.write(
      Buffer.concat([
        frame(
          FrameType.HEADERS,
          Flag.END_HEADERS,
          id,
          encodeHeaders([
            [':method', 'POST'],
            [':scheme', 'http'],
            [':path', Check.path],
            ['content-type', 'application/grpc'],
            ['te', 'trailers'],
          ]),
        ),
        frame(FrameType.DATA, Flag.END_STREAM, id, grpcFrame(Check.requestSerialize({ service }))),
      ]),
    );
  const goaway = () => frames.find((f) => f.type === FrameType.GOAWAY);
  return { sock, frames, state, call, goaway };
}

describe('GrpcServer.tryShutdown over our own HTTP/2 layer', () => {
  it('an idle connection gets GOAWAY (NO_ERROR) and is ended; shutdown is done once it closes', async () => {
    const { server, port } = await healthServer();
    const c = await rawClient(port);
    let done = false;
    server.tryShutdown(() => {
      done = true;
    });
    await waitFor('the GOAWAY', () => c.goaway(), 5000, 5);
    expect([c.goaway()!.payload.readUInt32BE(0), c.goaway()!.payload.readUInt32BE(4)]).toEqual([0, ErrorCode.NO_ERROR]);
    await waitFor('the server to end the connection', () => c.state.ended, 5000, 5);
    c.sock.end();
    await waitFor('tryShutdown to be done', () => done, 5000, 5);
  });

  it('a call in flight finishes after the GOAWAY, which names its stream; a new one is refused; then the connection ends', async () => {
    const { server, port, held } = await healthServer();
    const c = await rawClient(port);
    c.call(1, 'hang');
    await waitFor('the call to reach its handler', () => held.length === 1, 5000, 5);
    let done = false;
    server.tryShutdown(() => {
      done = true;
    });
    await waitFor('the GOAWAY', () => c.goaway(), 5000, 5);
    expect(c.goaway()!.payload.readUInt32BE(0)).toBe(1);
    c.call(3, 'x');
    await waitFor('stream 3 refused', () => c.frames.find((f) => f.type === FrameType.RST_STREAM && f.id === 3), 5000, 5);
    expect(c.frames.find((f) => f.type === FrameType.RST_STREAM && f.id === 3)!.payload.readUInt32BE(0)).toBe(ErrorCode.REFUSED_STREAM);
    expect(c.state.ended).toBe(false);
    held[0]();
    await waitFor('the server to end the connection', () => c.state.ended, 5000, 5);
    const decoder = new HpackDecoder();
    const blocks = c.frames.filter((f) => f.type === FrameType.HEADERS && f.id === 1).map((f) => decoder.decode(f.payload, 65_536));
    expect(blocks.at(-1)).toEqual([['grpc-status', '0']]);
    c.sock.end();
    await waitFor('tryShutdown to be done', () => done, 5000, 5);
  });

  it('forgets a connection once it closes', async () => {
    const { server, port } = await healthServer();
    const connections = Reflect.get(server, 'connections') as Set<unknown>;
    const c = await rawClient(port);
    expect(connections.size).toBe(1);
    c.sock.destroy();
    await waitFor('the connection to be forgotten', () => connections.size === 0, 5000, 5);
  });
});
