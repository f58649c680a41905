// A gRPC server for the one client a plugin has (Vault's go-plugin, or its stand-ins), over
// our own HTTP/2 framing on each TLS socket (h2/: no per-call stream objects; 30-50% less
// plugin CPU per request through Vault than node:http2, bench/RESULTS.md session 10), or
// over node:http2 with VAULT_PLUGIN_TS_HTTP2=node (the fallback): identity encoding, no
// compression, no server reflection. It serves the
// same service definitions and handlers as @grpc/grpc-js's Server (the calls given to the
// handlers have the members this code base uses: request, metadata, cancelled and the
// 'cancelled' event, getDeadline, write/end and 'data'/'end' for streams). grpc-js's
// server spends ~20 µs of CPU per call on its generic machinery (interceptors, per-call
// metadata objects, stream wrappers); every transit request is two calls (existence check,
// then the request). bench/RESULTS.md has the measurement. The broker's storage
// connections have a client of the same kind (grpc-client.ts); grpc-wire.ts is what both share.
//
// Wire format (gRPC over HTTP/2): a POST to /<package.Service>/<Method> with
// content-type application/grpc; each message is framed as 1 byte "compressed" (0 here),
// 4 bytes big-endian length, the protobuf bytes; the status goes in trailers (grpc-status,
// grpc-message percent-encoded), or alone in the headers when there is no message.
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tlsModule from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { type CallMetadata, Code, deadlineOf, frame, HeaderMetadata, MessageReader, percentEncoded } from './grpc-wire';

export type { CallMetadata } from './grpc-wire';
import { H2Connection } from './h2/connection';
import { serveH2Stream } from './h2/grpc-call';

const { HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE } = http2.constants;

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

type Method = grpc.MethodDefinition<unknown, unknown>;
export interface Route {
  method: Method;
  handler: (...args: never[]) => void;
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

/**
 * One call as its handler sees it. 'cancelled' is emitted once if the stream closes before
 * the server finished it (the client went away or reset it), after `cancelled` is set.
 */
class Call extends EventEmitter {
  cancelled = false;
  request: unknown;
  private finished = false;
  private responded = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly metadata: CallMetadata,
    private readonly method: Method,
    private readonly deadline: number,
  ) {
    super();
    stream.once('close', () => {
      if (this.finished) return;
      this.finished = true;
      this.cancelled = true;
      this.emit('cancelled', 'cancelled');
    });
  }

  getDeadline(): number {
    return this.deadline;
  }

  /** Send the response headers once, before the first message. */
  private respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc' }, { waitForTrailers: true });
    this.stream.once('wantTrailers', () => guarded(() => this.stream.sendTrailers(this.trailers)));
  }

  /** The status the trailers will carry (set by end()). */
  private trailers = statusHeaders(Code.OK, '');

  /** Stream one message (server- and bidi-streaming calls). */
  write(message: unknown): boolean {
    if (this.finished || this.stream.destroyed) return false;
    return (
      guarded(() => {
        this.respond();
        return this.stream.write(frame(this.method.responseSerialize(message)));
      }) ?? false
    );
  }

  /** End the call: OK, or the error's status. */
  end(error?: { code?: number; details?: string; message?: string } | null): void {
    if (this.finished || this.stream.destroyed) {
      this.finished = true;
      return;
    }
    this.finished = true;
    const status = error ? statusHeaders(error.code ?? Code.UNKNOWN, error.details ?? error.message ?? '') : statusHeaders(Code.OK, '');
    if (!this.responded) {
      // Trailers-only: the status in the one HEADERS frame.
      this.responded = true;
      guarded(() => this.stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc', ...status }, { endStream: true }));
      return;
    }
    this.trailers = status;
    guarded(() => this.stream.end());
  }

  /** A unary call's answer: one message then OK, or the error's status. */
  reply(error: { code?: number; details?: string; message?: string } | null, message?: unknown): void {
    if (this.finished || this.stream.destroyed) return;
    if (error) {
      this.end(error);
      return;
    }
    let body: Buffer;
    try {
      body = this.method.responseSerialize(message);
    } catch (e) {
      this.end({ code: Code.INTERNAL, details: `the response could not be encoded: ${(e as Error).message}` });
      return;
    }
    this.finished = true;
    guarded(() => {
      this.respond();
      this.stream.end(frame(body));
    });
  }
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
  listen(port: number, tls?: ServerTlsOptions): Promise<number> {
    if (http2Layer() === 'js') return this.listenJs(port, tls);
    const settings = { maxConcurrentStreams: 1000 };
    const server = tls
      ? http2.createSecureServer({
          ...mutualTls(tls),
          settings,
          // A big batch or CSR list is one message: no cap beyond the default session memory.
          maxSessionMemory: 64,
        })
      : http2.createServer({ settings, maxSessionMemory: 64 });
    server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => undefined);
    });
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    // A client whose TLS handshake fails must not stop the server.
    server.on('tlsClientError', () => undefined);
    server.on('sessionError', () => undefined);
    return this.bind(server, port);
  }

  /**
   * The default: the same calls over our own HTTP/2 layer (h2/) on each TLS socket,
   * without node:http2's stream objects. Same mutual TLS.
   */
  private listenJs(port: number, tls?: ServerTlsOptions): Promise<number> {
    const onSocket = (socket: net.Socket) => {
      const alpn = (socket as tlsModule.TLSSocket).alpnProtocol;
      if (tls && alpn && alpn !== 'h2') return socket.destroy();
      socket.setNoDelay(true);
      const conn = new H2Connection(socket, (stream, headers) => serveH2Stream(this.routes, stream, headers), { maxConcurrentStreams: 1000 });
      this.connections.add(conn);
      conn.onClose = () => this.connections.delete(conn);
    };
    const server = tls ? tlsModule.createServer(mutualTls(tls), onSocket) : net.createServer(onSocket);
    server.on('tlsClientError', () => undefined);
    return this.bind(server, port);
  }

  private bind(server: net.Server, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        server.on('error', () => undefined);
        this.server = server;
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const path = headers[HTTP2_HEADER_PATH] as string | undefined;
    const trailersOnly = (code: number, details: string) => {
      if (stream.destroyed) return;
      guarded(() =>
        stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc', ...statusHeaders(code, details) }, { endStream: true }),
      );
    };
    stream.on('error', () => undefined); // a reset stream closes; the call's 'close' listener reports it
    const ct = headers[HTTP2_HEADER_CONTENT_TYPE];
    if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) {
      if (!stream.destroyed) guarded(() => stream.respond({ [HTTP2_HEADER_STATUS]: 415 }, { endStream: true }));
      return;
    }
    const route = path ? this.routes.get(path) : undefined;
    if (!route) {
      trailersOnly(Code.UNIMPLEMENTED, `unknown method ${String(path).slice(0, 200)}`);
      return;
    }
    const enc = headers['grpc-encoding'];
    if (enc !== undefined && enc !== 'identity') {
      trailersOnly(Code.UNIMPLEMENTED, `grpc-encoding ${String(enc).slice(0, 40)} is not supported`);
      return;
    }

    const { method, handler } = route;
    const deadline = deadlineOf(headers['grpc-timeout']);
    const call = new Call(stream, new HeaderMetadata(headers), method, deadline);
    if (Number.isFinite(deadline)) {
      const t = setTimeout(() => call.end({ code: Code.DEADLINE_EXCEEDED, details: 'deadline exceeded' }), Math.max(0, deadline - Date.now()));
      t.unref();
      stream.once('close', () => clearTimeout(t));
    }
    const reader = new MessageReader();
    const decode = (bytes: Buffer): unknown => method.requestDeserialize(bytes);

    if (method.requestStream) {
      // Client- or bidi-streaming: each message as 'data', the client's half-close as 'end'.
      stream.on('data', (chunk: Buffer) => {
        const msgs = reader.push(chunk);
        if (typeof msgs === 'string') return call.end({ code: Code.UNIMPLEMENTED, details: msgs });
        for (const b of msgs) {
          let msg: unknown;
          try {
            msg = decode(b);
          } catch (e) {
            return call.end({ code: Code.INTERNAL, details: `the request could not be decoded: ${(e as Error).message}` });
          }
          call.emit('data', msg);
        }
      });
      stream.once('end', () => call.emit('end'));
      if (method.responseStream) (handler as (c: Call) => void)(call);
      else (handler as (c: Call, cb: Call['reply']) => void)(call, (e, m) => call.reply(e, m));
      return;
    }

    // Unary and server-streaming: exactly one request message, then the handler.
    let request: Buffer | undefined;
    let failed = false;
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      const msgs = reader.push(chunk);
      if (typeof msgs === 'string' || msgs.length > 1 || (msgs.length === 1 && request)) {
        failed = true;
        return call.end({ code: Code.UNIMPLEMENTED, details: typeof msgs === 'string' ? msgs : 'a unary call carries one request message' });
      }
      if (msgs.length) request = msgs[0];
    });
    stream.once('end', () => {
      if (failed) return;
      if (!request || reader.pending) return call.end({ code: Code.INTERNAL, details: 'the call ended without a complete request message' });
      try {
        call.request = decode(request);
      } catch (e) {
        return call.end({ code: Code.INTERNAL, details: `the request could not be decoded: ${(e as Error).message}` });
      }
      try {
        if (method.responseStream) (handler as (c: Call) => void)(call);
        else (handler as (c: Call, cb: Call['reply']) => void)(call, (e, m) => call.reply(e, m));
      } catch (e) {
        call.end({ code: Code.UNKNOWN, details: (e as Error).message });
      }
    });
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
