// serve(): turn this process into a go-plugin gRPC server. Order matters: the
// handshake line is printed only once the listener accepts connections, because
// the client dials immediately after reading it. Each protocol concern has its own
// file, as in hashicorp/go-plugin: tls.ts, health.ts, controller.ts, stdio.ts,
// broker.ts, version.ts, handshake.ts, grpc-server.ts (the gRPC server itself); this one
// puts them together and owns shutdown.
import { serviceDef } from './protos';
import { GrpcServer, http2Layer, type ServiceRegistrar } from './grpc-server';
import { Broker } from './broker';
import { negotiateVersion, type LaunchEnv } from './env';
import type { Logger } from './log';
import { addPluginVersionService } from './version';
import { serverTls } from './tls';
import { addHealthService } from './health';
import { addControllerService } from './controller';
import { addStdioService } from './stdio';
import { handshakeLine } from './handshake';
import { listenPlugin, type Listening } from './listener';

export { CORE_PROTOCOL_VERSION } from './handshake';

/** What a role's services get from the runtime. */
export interface RuntimeContext {
  log: Logger;
  broker: Broker;
  version: number;
  env: LaunchEnv;
  /** Register cleanup to run on Shutdown / SIGTERM / parent exit (e.g. close DB pools). */
  onShutdown(fn: () => Promise<void> | void): void;
}

/** One entry per app protocol version: adds that version's services to the server. */
export type VersionedServices = Record<number, (server: ServiceRegistrar, ctx: RuntimeContext) => void>;

/** How to serve: the launch environment, the log, and each protocol version's services. */
export interface ServeOptions {
  env: LaunchEnv;
  log: Logger;
  versions: VersionedServices;
  /** Where the handshake line goes (stdout in production). */
  writeHandshake?: (line: string) => void;
  exit?: (code: number) => void;
  /** How often to check that the host process is still our parent. */
  parentPollMs?: number;
  /** The host's pid, read at process start (default: process.ppid now). */
  parentPid?: number;
}

/** A serving plugin: where it listens, the version it negotiated, the line it printed, and how to stop it. */
export interface RunningPlugin extends Listening {
  version: number;
  handshake: string;
  shutdown(reason: string): Promise<void>;
}

/** Listen with the negotiated version's services and the runtime's, print the handshake, and watch the parent. */
export async function serve(opts: ServeOptions): Promise<RunningPlugin> {
  // Read before anything can wait: if the host died while we started, a later read would
  // already see our new parent and never notice the loss.
  const parent = opts.parentPid ?? process.ppid;
  const { env, log } = opts;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const served = Object.keys(opts.versions).map(Number);
  const { version, matched } = negotiateVersion(served, env.clientVersions);
  if (!matched) log.warn('no common plugin protocol version', { client: env.clientVersions.join(','), served: served.join(',') });

  const tls = await serverTls(env, log);
  const shutdownHooks: Array<() => Promise<void> | void> = [];
  // go-plugin dials the host's broker listeners with the same TLS identity it serves with.
  const onFallback = (reason: string) => log.warn('listening on TCP instead of a unix socket', { reason });
  const broker = new Broker(tls, log.named('broker'), undefined, undefined, undefined, { socket: env.socket, minPort: 0, maxPort: 0, onFallback });
  const server = new GrpcServer();

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      log.debug('plugin shutting down', { reason });
      for (const fn of shutdownHooks.reverse()) {
        try {
          await fn();
        } catch (e) {
          log.warn('shutdown hook failed', { error: (e as Error).message });
        }
      }
      broker.close();
      await new Promise<void>((res) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          res();
        }, 2000);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          res();
        });
      });
    })();
    return stopping;
  };

  const ctx: RuntimeContext = { log, broker, version, env, onShutdown: (fn) => shutdownHooks.push(fn) };

  addHealthService(server);
  addControllerService(server, shutdown, exit);
  addStdioService(server, (fn) => {
    shutdownHooks.push(fn);
    return () => {
      const i = shutdownHooks.indexOf(fn);
      if (i >= 0) shutdownHooks.splice(i, 1);
    };
  });
  server.addService(serviceDef('plugin.GRPCBroker'), { StartStream: broker.startStream });
  addPluginVersionService(server);
  opts.versions[version](server, ctx);

  const serverTlsOptions = tls ? { certPem: tls.certPem, keyPem: tls.keyPem, clientCaPem: tls.hostCertPem } : undefined;
  http2Layer(); // a bad VAULT_PLUGIN_TS_HTTP2 stops the start with its own message, not as a port error
  const listening = await listenPlugin((at) => server.listenAt(at, serverTlsOptions), { ...env, onFallback });

  const handshake = handshakeLine(version, listening, tls?.handshakeCert);
  (opts.writeHandshake ?? ((l) => process.stdout.write(l + '\n')))(handshake);
  log.debug('plugin serving', { version, network: listening.network, address: listening.address, tls: tls?.mode ?? 'none (metadata mode)' });

  // The host going away (crash, kill -9) must not leave us running: we get re-parented.
  const poll = setInterval(() => {
    if (process.ppid !== parent) void shutdown('parent process exited').then(() => exit(0));
  }, opts.parentPollMs ?? 1000);
  poll.unref();
  shutdownHooks.unshift(() => clearInterval(poll));

  return { ...listening, version, handshake, shutdown };
}
