// A unary gRPC client for one target: the plugin's connections back to Vault over the
// go-plugin broker (pb.Storage, pb.SystemView). grpc-js's client cost ~10% of a PKI issue's
// plugin CPU (its generic call stack, an AsyncResource.bind per call) and its
// Client/Channel/subchannel objects stayed with every idle mount; this is the client
// counterpart of grpc-server.ts (bench/RESULTS.md has the measurements). The HTTP/2 under it
// is the server's: our own (h2/connection.ts, client side) by default, node:http2 with
// VAULT_PLUGIN_TS_HTTP2=node (grpc-server.ts http2Layer).
//
// One HTTP/2 connection, opened on the first call and closed after `idleMs` with no call in
// flight (the next call opens another). Every call has a deadline (grpc-timeout, and a
// local timer that resets the stream), may be cancelled by a signal (RST_STREAM CANCEL),
// and ends with a GrpcError carrying the gRPC status when it fails: a connection that
// fails or goes away (socket closed, GOAWAY, TLS refused) ends its calls as UNAVAILABLE.
//
// Transparent retry, as gRPC's own clients do it (gRFC A6): a call the server certainly did
// not process (its stream refused with REFUSED_STREAM before any response headers, or above
// the last stream id of the server's GOAWAY, or still waiting to open on a connection that went
// away) is started once more, within its deadline, on the connection that then takes calls
// (a new one after a GOAWAY). Nothing else is retried: the server may have acted on it.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { RequestSignal } from '../storage/storage';
import { inRootContext } from '../util/async-context';
import type { ConnectionBudget, IdleCloser } from './connection-budget';
import { http2Layer, nodeHttp2 } from './grpc-server';
import { Code, codeOfHttpStatus, frame, MessageReader, percentDecoded, timeoutHeader } from './grpc-wire';
import { H2Connection, type HeaderMap } from './h2/connection';
import { ErrorCode } from './h2/frames';

/** A call's deadline when its caller names none: no call waits without bound. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** Where the server listens: a TCP host and port, or a unix socket path. */
export type ClientTarget = { host: string; port: number } | { path: string };

export interface ClientOptions {
  /** Mutual TLS: our identity and the CA in one context, and the name the server's certificate must carry. Without it, plain HTTP/2. */
  tls?: { secureContext: tls.SecureContext; servername: string };
  /** Close the connection after this many milliseconds without a call in flight. */
  idleMs: number;
  /** Shared by the process's broker clients: may close this one's idle connection sooner (connection-budget.ts). */
  budget?: ConnectionBudget;
}

/** A unary method as a service definition has it (protos.ts serviceDef). */
export interface UnaryMethod<Req, Res> {
  path: string;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(bytes: Buffer): Res;
}

export interface CallOptions {
  /** The deadline, from now (default 30 s). */
  timeoutMs?: number;
  /** Cancels the call when it aborts. */
  signal?: RequestSignal;
  /** Request metadata: header names in lower case, ASCII values. */
  metadata?: Record<string, string>;
}

/** A call that failed, with its gRPC status (the code and details fields as grpc-js's ServiceError has them). */
export class GrpcError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    options?: ErrorOptions,
  ) {
    super(`gRPC status ${code}: ${details}`, options);
  }
}

/** What a call's stream reports, whichever HTTP/2 layer carries it. */
interface CallEvents {
  headers(h: HeaderMap): void;
  trailers(h: HeaderMap): void;
  data(chunk: Buffer): void;
  error(e: Error): void;
  /** The stream was reset (RST_STREAM) with this HTTP/2 error code, by the server or for a stream error it caused; NO_ERROR counts as its end. */
  reset(code: number): void;
  /** The server certainly did not process the call: above the last stream id of its GOAWAY, or never sent before the connection went away. */
  unprocessed(): void;
  /** The stream is over (answered, reset, or its connection gone). Once. */
  close(): void;
}

/** One HTTP/2 connection to the server, as a call needs it. */
interface Session {
  /** Not up yet (TCP/TLS handshake, or the server's SETTINGS still to come). */
  readonly connecting: boolean;
  /** Takes new calls: not closed, no GOAWAY. */
  readonly usable: boolean;
  /** Start a call: its headers (pseudo-headers apart) and its whole request body. Throws if it cannot start. */
  call(path: string, headers: Record<string, string>, body: Buffer, on: CallEvents): { cancel(): void };
  /** Graceful: calls in flight finish. */
  close(): void;
  destroy(): void;
  ref(): void;
  unref(): void;
}

/** A unary gRPC client of one server (see the top of this file). */
export class GrpcClient implements IdleCloser {
  private session?: Session;
  /** Tells the budget, once, that the current session closed. */
  private releaseSession?: (current?: boolean) => void;
  private inFlight = 0;
  private lastCallEnded = 0;
  private idleTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly target: ClientTarget,
    private readonly options: ClientOptions,
  ) {}

  /** Call `method` with `request`; resolves to the reply, or rejects with a GrpcError. */
  unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, options: CallOptions = {}): Promise<Res> {
    const { signal, timeoutMs = DEFAULT_TIMEOUT_MS } = options;
    if (signal?.aborted) return Promise.reject(new GrpcError(Code.CANCELLED, 'the call was cancelled before it started'));
    if (this.closed) return Promise.reject(new GrpcError(Code.UNAVAILABLE, 'the client is closed'));
    let body: Buffer;
    try {
      body = frame(method.requestSerialize(request));
    } catch (e) {
      return Promise.reject(new GrpcError(Code.INTERNAL, `the request could not be encoded: ${(e as Error).message}`, { cause: e }));
    }
    return new Promise<Res>((resolve, reject) => {
      this.callStarted();
      const deadline = Date.now() + timeoutMs;
      let session: Session | undefined;
      let call: { cancel(): void } | undefined;
      let settled = false;
      let attempts = 0;
      const settle = (error: GrpcError | undefined, reply?: Res): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.callEnded();
        if (error) reject(error);
        else resolve(reply as Res);
      };
      // Ended here, not by the server: answer now, and reset the stream so the server stops too.
      const abandon = (code: number, details: string): void => {
        settle(new GrpcError(code, details));
        call?.cancel();
      };
      const onAbort = (): void => abandon(Code.CANCELLED, 'the call was cancelled');
      const timer = setTimeout(() => {
        abandon(Code.DEADLINE_EXCEEDED, `deadline exceeded (${timeoutMs} ms)`);
        // A connection still not made by now (a peer that accepts and never answers) would hold every later call too.
        if (session?.connecting) session.destroy();
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const start = (): void => {
        const attempt = ++attempts;
        const response = new ResponseReader();
        const onClose = (): void => {
          if (settled) return;
          // Transparent retry (see the top of this file): once, and only while there is time left.
          const left = deadline - Date.now();
          if (attempt === 1 && response.retryable && left > 0 && !this.closed) start();
          else settle(...response.outcome(method, this.describe()));
        };
        try {
          session = this.connect();
          const left = Math.max(1, deadline - Date.now());
          const started = session.call(method.path, { ...options.metadata, 'grpc-timeout': timeoutHeader(left) }, body, {
            headers: (h) => response.headers(h),
            trailers: (h) => response.trailers(h),
            data: (chunk) => response.data(chunk),
            error: (e) => response.failed(e),
            reset: (code) => response.reset(code),
            unprocessed: () => response.unprocessed(),
            close: onClose,
          });
          // Not if its stream closed at once and a retry replaced it.
          if (attempt === attempts) call = started;
        } catch (e) {
          settle(new GrpcError(Code.UNAVAILABLE, `cannot start the call: ${(e as Error).message}`, { cause: e }));
        }
      };
      start();
    });
  }

  /** Close the connection (calls in flight finish); later calls fail with UNAVAILABLE. */
  close(): void {
    this.closed = true;
    this.dropSession();
  }

  /** The budget's request: close the connection now if no call is in flight. */
  closeIdle(): void {
    if (this.inFlight === 0) this.dropSession();
  }

  private dropSession(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const session = this.session;
    this.session = undefined;
    session?.close();
    // With calls in flight the socket stays until they finish: its 'close' tells the budget then.
    if (this.inFlight === 0) this.releaseSession?.();
  }

  /** The open session, or a new one (it connects in the background; calls made meanwhile wait for it). */
  private connect(): Session {
    const open = this.session;
    if (open?.usable) return open;
    const { budget } = this.options;
    let released = !budget;
    const release = (current = true) => {
      if (released) return;
      released = true;
      budget!.closed(this, current);
      // This closure shares connect()'s scope, and so the session: an idle client must not keep a closed one.
      if (this.releaseSession === release) this.releaseSession = undefined;
    };
    // After a GOAWAY the session stops taking calls: those in flight finish on it, new ones open another.
    const onClosed = () => {
      const current = this.session === session || this.session === undefined;
      if (this.session === session) this.session = undefined;
      release(current);
    };
    // Opened outside the calling request's async context, which the connection would keep for its life.
    const session: Session = inRootContext(() =>
      http2Layer() === 'node' ? nodeSession(this.target, this.options.tls, onClosed) : ownSession(this.target, this.options.tls, onClosed),
    );
    this.session = session;
    this.releaseSession = release;
    budget?.opened();
    return session;
  }

  private callStarted(): void {
    if (this.inFlight++ === 0) {
      this.session?.ref();
      this.options.budget?.busy(this);
    }
  }

  private callEnded(): void {
    if (--this.inFlight > 0) return;
    this.lastCallEnded = Date.now();
    if (!this.session) return;
    this.session.unref(); // an idle connection keeps no process alive
    this.armIdleTimer(this.options.idleMs);
    this.options.budget?.becameIdle(this);
  }

  /** One timer per idle period, not one per call: when it fires it closes the session or waits the rest of the idle time. */
  private armIdleTimer(delay: number): void {
    if (this.idleTimer || this.closed) return;
    this.idleTimer = inRootContext(
      setTimeout,
      () => {
        this.idleTimer = undefined;
        if (!this.session || this.inFlight > 0) return; // the last call to end arms it again
        const left = this.lastCallEnded + this.options.idleMs - Date.now();
        if (left > 0) return this.armIdleTimer(left);
        this.dropSession();
      },
      delay,
    );
    this.idleTimer.unref();
  }

  private describe(): string {
    return 'path' in this.target ? this.target.path : `${this.target.host}:${this.target.port}`;
  }
}

/**
 * The TCP or TLS socket to the server. Without Nagle's algorithm: a call is one write, and
 * held back behind an unacknowledged one it would wait for the peer's delayed ACK (node:http2
 * turns it off too; set-up of 200 mounts took twice as long with it).
 */
function dial(target: ClientTarget, secure: ClientOptions['tls']): net.Socket {
  const socket = secure
    ? tls.connect({ ...target, secureContext: secure.secureContext, servername: secure.servername, ALPNProtocols: ['h2'] })
    : net.connect(target);
  return socket.setNoDelay(true);
}

/** A session on our own HTTP/2 layer (h2/connection.ts, client side). */
function ownSession(target: ClientTarget, secure: ClientOptions['tls'], onClosed: () => void): Session {
  const conn = new H2Connection(dial(target, secure), () => undefined, { role: 'client' });
  conn.onClose = onClosed;
  const scheme = secure ? 'https' : 'http';
  const authority = secure ? secure.servername : 'localhost';
  return {
    get connecting() {
      return !conn.established && !conn.closed;
    },
    get usable() {
      return conn.accepting;
    },
    call(path, headers, body, on) {
      // Pseudo-headers first, then ours; metadata can neither repeat nor replace them. The
      // connection's encoder indexes the fixed ones, :authority and :path in the server's table.
      const fields: Array<[string, string]> = [
        [':method', 'POST'],
        [':scheme', scheme],
        [':authority', authority],
        [':path', path],
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
      ];
      for (const [k, v] of Object.entries(headers)) if (k[0] !== ':' && k !== 'content-type' && k !== 'te') fields.push([k, v]);
      const stream = conn.request(fields);
      stream.onHeaders = (h, trailers) => (trailers ? on.trailers(h) : on.headers(h));
      stream.onData = (chunk) => on.data(chunk);
      stream.onClose = () => {
        if (stream.unprocessed) on.unprocessed();
        else if (stream.resetCode !== undefined) on.reset(stream.resetCode);
        else if (conn.closed && conn.socketError) on.error(conn.socketError);
        on.close();
      };
      stream.finishBody(body);
      return { cancel: () => stream.reset(ErrorCode.CANCEL) };
    },
    close: () => conn.close(),
    destroy: () => conn.destroy(),
    ref: () => conn.ref(),
    unref: () => conn.unref(),
  };
}

/** A session on node:http2 (VAULT_PLUGIN_TS_HTTP2=node). */
function nodeSession(target: ClientTarget, secure: ClientOptions['tls'], onClosed: () => void): Session {
  const session = nodeHttp2().connect(secure ? `https://${secure.servername}` : 'http://localhost', {
    createConnection: () => dial(target, secure),
    settings: { enablePush: false },
  });
  session.on('error', () => undefined); // its streams fail with the error, and report it
  session.once('close', onClosed);
  // The lowest last stream id of the server's GOAWAYs: streams above it were not processed.
  let goawayLast = Number.POSITIVE_INFINITY;
  session.on('goaway', (_code: number, lastStreamId: number) => {
    goawayLast = Math.min(goawayLast, lastStreamId);
  });
  // Up once the server's SETTINGS have come, as ownSession: session.connecting turns false
  // with the socket, so a server that took the TLS handshake and then said nothing was kept.
  let settingsSeen = false;
  session.once('remoteSettings', () => {
    settingsSeen = true;
  });
  return {
    get connecting() {
      return !settingsSeen && !session.destroyed;
    },
    get usable() {
      return !session.closed && !session.destroyed;
    },
    call(path, headers, body, on) {
      const stream = session.request({
        ...headers, // first: no metadata key can replace the call's own headers
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.on('response', (h) => on.headers(h as HeaderMap));
      stream.on('trailers', (h) => on.trailers(h as HeaderMap));
      stream.on('data', (chunk: Buffer) => on.data(chunk));
      stream.on('error', (e) => on.error(e));
      stream.once('close', () => {
        // After a GOAWAY: above its last id, or never sent (no id yet: waiting for the connection or its stream limit).
        if (goawayLast !== Number.POSITIVE_INFINITY && (stream.id === undefined || stream.id > goawayLast)) on.unprocessed();
        // NO_ERROR when it ended (or was reset with NO_ERROR); the connection's loss closes streams with CANCEL.
        else if (!session.destroyed && stream.rstCode !== undefined) on.reset(stream.rstCode);
        on.close();
      });
      stream.end(body);
      return {
        cancel: () => {
          if (!stream.destroyed) stream.close(ErrorCode.CANCEL);
        },
      };
    },
    close: () => session.close(),
    destroy: () => session.destroy(),
    ref: () => session.ref(),
    unref: () => session.unref(),
  };
}

/** What one call's stream brought back, and the call's outcome from it. */
class ResponseReader {
  private httpStatus = 0;
  private headersSeen = false;
  private notProcessed = false;
  private status?: number;
  private message = '';
  private readonly reader = new MessageReader();
  private readonly messages: Buffer[] = [];
  private framingError?: string;
  private error?: Error;
  private resetCode?: number;

  headers(h: HeaderMap): void {
    this.headersSeen = true;
    this.httpStatus = Number(h[':status']);
    this.trailers(h); // a trailers-only response has its status here
  }

  trailers(h: HeaderMap): void {
    const status = h['grpc-status'];
    if (status === undefined) return;
    this.status = /^\d+$/.test(String(status)) ? Number(status) : Code.UNKNOWN;
    const message = h['grpc-message'];
    this.message = typeof message === 'string' ? percentDecoded(message) : '';
  }

  data(chunk: Buffer): void {
    const out = this.reader.push(chunk);
    if (typeof out === 'string') this.framingError ??= out;
    else this.messages.push(...out);
  }

  failed(e: Error): void {
    this.error ??= e;
  }

  reset(code: number): void {
    // NO_ERROR: as a stream that just ended (node:http2 does not tell them apart).
    if (code !== ErrorCode.NO_ERROR) this.resetCode ??= code;
  }

  unprocessed(): void {
    this.notProcessed = true;
  }

  /**
   * The server certainly did not process the call, so it may be sent again: refused
   * (REFUSED_STREAM, gRPC's PROTOCOL-HTTP2.md) before any response, or unprocessed.
   */
  get retryable(): boolean {
    if (this.status !== undefined) return false;
    return this.notProcessed || (this.resetCode === ErrorCode.REFUSED_STREAM && !this.headersSeen);
  }

  outcome<Res>(method: UnaryMethod<unknown, Res>, peer: string): [GrpcError | undefined, Res?] {
    if (this.status === undefined) {
      if (this.httpStatus && this.httpStatus !== 200)
        return [new GrpcError(codeOfHttpStatus(this.httpStatus), `the server answered HTTP ${this.httpStatus} without a gRPC status`)];
      if (this.resetCode !== undefined) return [resetError(this.resetCode, this.headersSeen)];
      const why = this.error ? `: ${this.error.message}` : '';
      return [new GrpcError(Code.UNAVAILABLE, `the connection to ${peer} ended before the call's status${why}`, { cause: this.error })];
    }
    if (this.status !== Code.OK) return [new GrpcError(this.status, this.message)];
    if (this.framingError) return [new GrpcError(Code.INTERNAL, this.framingError)];
    if (this.messages.length !== 1 || this.reader.pending)
      return [new GrpcError(Code.INTERNAL, `a unary reply carries one message; got ${this.messages.length}${this.reader.pending ? ' and a partial one' : ''}`)];
    try {
      return [undefined, method.responseDeserialize(this.messages[0])];
    } catch (e) {
      return [new GrpcError(Code.INTERNAL, `the reply could not be decoded: ${(e as Error).message}`, { cause: e })];
    }
  }
}

const errorCodeNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/**
 * A stream reset before its gRPC status, by gRPC's mapping (PROTOCOL-HTTP2.md, "Errors"): a
 * refused stream was not processed and may be retried elsewhere (UNAVAILABLE; it was, once,
 * if refused before any response headers); a cancelled one is CANCELLED; the rest are the
 * server's (or the exchange's) failure.
 */
function resetError(code: number, headersSeen: boolean): GrpcError {
  const name = errorCodeNames.get(code) ?? `error code ${code}`;
  if (code === ErrorCode.REFUSED_STREAM && !headersSeen)
    return new GrpcError(Code.UNAVAILABLE, 'the server refused the stream (REFUSED_STREAM) without processing the call');
  return new GrpcError(RESET_STATUS.get(code) ?? Code.INTERNAL, `the stream was reset (${name}) before the call's status`);
}

/** The gRPC status of a reset by its HTTP/2 error code, where it is not INTERNAL. */
const RESET_STATUS = new Map<number, number>([
  [ErrorCode.REFUSED_STREAM, Code.UNAVAILABLE],
  [ErrorCode.CANCEL, Code.CANCELLED],
  [ErrorCode.ENHANCE_YOUR_CALM, Code.RESOURCE_EXHAUSTED],
  [ErrorCode.INADEQUATE_SECURITY, Code.PERMISSION_DENIED],
]);
