// A gRPC server for the one client a plugin has (Vault's go-plugin, or its stand-ins), over
// our own HTTP/2 framing on each TLS socket (h2/: no per-call stream objects; 30-50% less
// plugin CPU per request through Vault than node:http2, bench/RESULTS.md session 10), or
// over node:http2 with VAULT_PLUGIN_TS_HTTP2=node (the fallback): identity encoding, no
// compression, no server reflection. It serves the same service definitions and handlers
// as @grpc/grpc-js's Server, whose generic machinery costs ~20 µs of CPU per call; the calls
// themselves (grpc-call.ts) are the same on both layers. The broker's storage connections
// have a client of the same kind (grpc-client.ts); grpc-wire.ts is what they share.
//
// Wire format (gRPC over HTTP/2): a POST to /<package.Service>/<Method> with
// content-type application/grpc; each message is framed as 1 byte "compressed" (0 here),
// 4 bytes big-endian length, the protobuf bytes; the status goes in trailers (grpc-status,
// grpc-message percent-encoded), or alone in the headers when there is no message.
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tlsModule from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { type CallStream, type Method, type Route, serveStream } from './grpc-call';
import { Code, percentEncoded } from './grpc-wire';
import { h2CallStream } from './h2/call-stream';
import { H2Connection } from './h2/connection';
import { ErrorCode } from './h2/frames';
import { trackSocket, type ListenAt, type Listening } from './listener';

export type { CallMetadata } from './grpc-wire';

/**
 * node:http2, loaded only by the VAULT_PLUGIN_TS_HTTP2=node fallback: the default layer (h2/)
 * does not need it, and every plugin process would otherwise load and keep Node's HTTP/2 module.
 */
export const nodeHttp2 = (): typeof http2 => require('node:http2') as typeof http2;

/** What a role registers its services on: this server or grpc-js's. */
export interface ServiceRegistrar {
  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void;
}

/** The TLS a server requires: its identity, and the CA its client's certificate must chain to. */
export interface ServerTlsOptions {
  certPem: string;
  keyPem: string;
  clientCaPem: string;
}

/** gRPC's status as trailers-only headers or trailers. */
function statusHeaders(code: number, details: string): Record<string, string> {
  const h: Record<string, string> = { 'grpc-status': String(code) };
  if (details) h['grpc-message'] = percentEncoded(details);
  return h;
}

/** Run `fn`; a stream reset by the client between our check and the call throws, and is only a closed call. */
function guarded<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** A node:http2 request stream as a gRPC call's stream; a stream reset under us is only a closed call. */
function nodeCallStream(stream: http2.ServerHttp2Stream): CallStream {
  stream.on('error', () => undefined); // a reset stream closes; onClose reports it
  let trailers = statusHeaders(Code.OK, '');
  const ok = { ':status': 200, 'content-type': 'application/grpc' };
  return {
    get done() {
      return stream.destroyed;
    },
    sendHeaders() {
      guarded(() => {
        stream.respond(ok, { waitForTrailers: true });
        stream.once('wantTrailers', () => guarded(() => stream.sendTrailers(trailers)));
      });
    },
    trailersOnly(code, details) {
      if (!stream.destroyed) guarded(() => stream.respond({ ...ok, ...statusHeaders(code, details) }, { endStream: true }));
    },
    notGrpc() {
      if (!stream.destroyed) guarded(() => stream.respond({ ':status': 415 }, { endStream: true }));
    },
    write: (framed) => guarded(() => stream.write(framed)) ?? false,
    // Written and not yet taken by nghttp2 (each write completes once its data is sent).
    get buffered() {
      return stream.writableLength;
    },
    onDrain(fn) {
      stream.on('drain', fn);
    },
    overflow() {
      if (!stream.destroyed) guarded(() => stream.close(ErrorCode.ENHANCE_YOUR_CALM));
    },
    finish(code, details) {
      trailers = statusHeaders(code, details);
      guarded(() => stream.end());
    },
    onData(fn) {
      stream.on('data', fn);
    },
    onEnd(fn) {
      stream.once('end', fn);
    },
    onClose(fn) {
      stream.once('close', fn);
    },
  };
}

/** The server side of mutual TLS, for either HTTP/2 layer: the client's certificate must chain to `clientCaPem`. */
function mutualTls(tls: ServerTlsOptions): tlsModule.TlsOptions {
  return {
    cert: tls.certPem,
    key: tls.keyPem,
    ca: tls.clientCaPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['h2'],
  };
}

/** The environment variable that picks the HTTP/2 server: js (default, h2/) or node (node:http2). */
export const HTTP2_LAYER_ENV = 'VAULT_PLUGIN_TS_HTTP2';

/** Which HTTP/2 server carries the calls; any other value than js or node is refused. */
export function http2Layer(env: NodeJS.ProcessEnv = process.env): 'js' | 'node' {
  const v = env[HTTP2_LAYER_ENV];
  if (v === undefined || v === '' || v === 'js') return 'js';
  if (v === 'node') return 'node';
  throw new Error(`${HTTP2_LAYER_ENV} must be js (the default) or node, got ${JSON.stringify(v.slice(0, 20))}`);
}

/** The gRPC server of a plugin process (see the top of this file). */
export class GrpcServer implements ServiceRegistrar {
  private readonly routes = new Map<string, Route>();
  private server?: net.Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Connections of our own HTTP/2 layer (the default; h2/). */
  private readonly connections = new Set<H2Connection>();

  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    for (const [name, method] of Object.entries(service)) {
      const m = method as Method & { originalName?: string };
      const handler = (implementation[name] ?? (m.originalName ? implementation[m.originalName] : undefined)) as Route['handler'] | undefined;
      if (!handler) continue; // unimplemented methods answer UNIMPLEMENTED
      if (this.routes.has(m.path)) throw new Error(`method ${m.path} is already served`);
      this.routes.set(m.path, { method: m, handler });
    }
  }

  /** Listen on 127.0.0.1:`port` (0: any free port), with mutual TLS when `tls` is given; resolves to the port. */
  async listen(port: number, tls?: ServerTlsOptions): Promise<number> {
    return (await this.listenAt({ port }, tls)).port;
  }

  /** Listen on a loopback TCP port or a unix socket (listener.ts), with mutual TLS when `tls` is given. */
  listenAt(at: ListenAt, tls?: ServerTlsOptions): Promise<Listening> {
    if (http2Layer() === 'js') return this.listenJs(at, tls);
    const settings = { maxConcurrentStreams: 1000 };
    const server = tls
      ? nodeHttp2().createSecureServer({
          ...mutualTls(tls),
          settings,
          // A big batch or CSR list is one message: no cap beyond the default session memory.
          maxSessionMemory: 64,
        })
      : nodeHttp2().createServer({ settings, maxSessionMemory: 64 });
    server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => undefined);
    });
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    // A client whose TLS handshake fails must not stop the server.
    server.on('tlsClientError', () => undefined);
    server.on('sessionError', () => undefined);
    return this.bind(server, at);
  }

  /**
   * The default: the same calls over our own HTTP/2 layer (h2/) on each TLS socket,
   * without node:http2's stream objects. Same mutual TLS.
   */
  private listenJs(at: ListenAt, tls?: ServerTlsOptions): Promise<Listening> {
    const onSocket = (socket: net.Socket) => {
      const alpn = (socket as tlsModule.TLSSocket).alpnProtocol;
      if (tls && alpn && alpn !== 'h2') return socket.destroy();
      socket.setNoDelay(true); // a no-op on a unix socket
      const conn = new H2Connection(socket, (stream, headers) => serveStream(this.routes, h2CallStream(stream), headers), { maxConcurrentStreams: 1000 });
      this.connections.add(conn);
      conn.onClose = () => this.connections.delete(conn);
    };
    const server = tls ? tlsModule.createServer(mutualTls(tls), onSocket) : net.createServer(onSocket);
    server.on('tlsClientError', () => undefined);
    return this.bind(server, at);
  }

  private bind(server: net.Server, at: ListenAt): Promise<Listening> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      const listening = () => {
        server.off('error', onError);
        server.on('error', () => undefined);
        if ('path' in at) {
          // Ours only once bound: a name that was taken is another process's file.
          const tracked = trackSocket(at.path);
          server.once('close', () => tracked.released());
          try {
            at.ready?.(at.path);
          } catch (e) {
            server.close(); // libuv unlinks the file
            return reject(e);
          }
          this.server = server;
          return resolve({ network: 'unix', address: at.path, port: 0 });
        }
        this.server = server;
        const { port } = server.address() as net.AddressInfo;
        resolve({ network: 'tcp', address: `127.0.0.1:${port}`, port });
      };
      if ('path' in at) server.listen(at.path, listening);
      else server.listen(at.port, '127.0.0.1', listening);
    });
  }

  /** A node:http2 request stream, served as a gRPC call (grpc-call.ts). */
  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    serveStream(this.routes, nodeCallStream(stream), headers);
  }

  /** Stop accepting; wait for open calls to end, then close the connections. */
  tryShutdown(done: () => void): void {
    if (!this.server) {
      done();
      return;
    }
    for (const s of this.sessions) if (!s.closed) s.close();
    for (const c of this.connections) c.close();
    this.server.close(() => done());
  }

  /** Stop at once: every connection is destroyed. */
  forceShutdown(): void {
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    this.server?.close();
  }
}
