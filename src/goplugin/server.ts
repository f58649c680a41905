// serve(): turn this process into a go-plugin gRPC server. Order matters: the
// handshake line is printed only once the listener accepts connections, because
// the client dials immediately after reading it.
import * as grpc from '@grpc/grpc-js';
import { serviceDef } from './protos';
import { generateIdentity, mtlsServerCredentials, parseClientCert } from './autotls';
import { Broker, type BrokerTls } from './broker';
import { unwrapLegacyTls } from './unwrap';
import { negotiateVersion, type LaunchEnv } from './env';
import type { Logger } from './log';
import { addPluginVersionService } from './version';

export const CORE_PROTOCOL_VERSION = 1;

export interface RuntimeContext {
  log: Logger;
  broker: Broker;
  version: number;
  env: LaunchEnv;
  /** Register cleanup to run on Shutdown / SIGTERM / parent exit (e.g. close DB pools). */
  onShutdown(fn: () => Promise<void> | void): void;
}

/** One entry per app protocol version: adds that version's services to the server. */
export type VersionedServices = Record<number, (server: grpc.Server, ctx: RuntimeContext) => void>;

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

export interface RunningPlugin {
  port: number;
  version: number;
  handshake: string;
  shutdown(reason: string): Promise<void>;
}

async function bindInRange(server: grpc.Server, creds: grpc.ServerCredentials, min: number, max: number): Promise<number> {
  // Start at a random offset so concurrently launched plugins rarely race for the same port.
  const span = max - min + 1;
  const start = Math.floor(Math.random() * span);
  let lastErr: Error | undefined;
  for (let i = 0; i < Math.min(span, 200); i++) {
    const port = min + ((start + i) % span);
    try {
      return await new Promise<number>((res, rej) =>
        server.bindAsync(`127.0.0.1:${port}`, creds, (e, p) => (e ? rej(e) : res(p))),
      );
    } catch (e) {
      lastErr = e as Error;
    }
  }
  throw new Error(`no free port in ${min}-${max}: ${lastErr?.message ?? 'unknown'}`);
}

type ServerTls = BrokerTls & { mode: 'AutoMTLS' | 'wrapping token'; handshakeCert?: string };

/**
 * The TLS the plugin serves (and dials the broker) with. AutoMTLS when the client sent its
 * certificate (PLUGIN_CLIENT_CERT), as go-plugin does even if a wrapping token is present;
 * else the certificate unwrapped from VAULT_UNWRAP_TOKEN; plaintext only in metadata mode.
 */
async function serverTls(env: LaunchEnv, log: Logger): Promise<ServerTls | undefined> {
  if (env.clientCertPem) {
    const clientCert = parseClientCert(env.clientCertPem);
    const identity = await generateIdentity();
    return { mode: 'AutoMTLS', hostCertPem: clientCert, certPem: identity.certPem, keyPem: identity.keyPem, serverName: 'localhost', handshakeCert: identity.handshakeCert };
  }
  if (env.metadataMode) return undefined;
  if (env.unwrapToken) {
    const t = await unwrapLegacyTls(env.unwrapToken, env.vaultApi);
    log.debug('TLS certificate unwrapped from Vault', { server_name: t.serverName });
    return { mode: 'wrapping token', hostCertPem: t.caPem, certPem: t.certPem, keyPem: t.keyPem, serverName: t.serverName };
  }
  // Refuse to serve plaintext: any local process could otherwise drive the plugin.
  throw new Error('neither PLUGIN_CLIENT_CERT (AutoMTLS) nor VAULT_UNWRAP_TOKEN is set: refusing to serve gRPC without mutual TLS');
}

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
  const broker = new Broker(tls, log.named('broker'));
  const server = new grpc.Server({
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    // No channelz (grpc-js's per-call and per-session statistics): nobody queries it, every call paid for it.
    'grpc.enable_channelz': 0,
  });

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
        const force = setTimeout(() => { server.forceShutdown(); res(); }, 2000);
        force.unref();
        server.tryShutdown(() => { clearTimeout(force); res(); });
      });
    })();
    return stopping;
  };

  const ctx: RuntimeContext = { log, broker, version, env, onShutdown: (fn) => shutdownHooks.push(fn) };

  server.addService(serviceDef('grpc.health.v1.Health'), {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const svc = call.request.service;
      if (svc === '' || svc === 'plugin') cb(null, { status: 'SERVING' });
      else cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${svc}` });
    },
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      const svc = call.request.service;
      call.write({ status: svc === '' || svc === 'plugin' ? 'SERVING' : 'SERVICE_UNKNOWN' });
    },
  });
  server.addService(serviceDef('plugin.GRPCController'), {
    Shutdown: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      cb(null, {});
      // Answer first, then stop: the client waits for the process to exit.
      setImmediate(() => void shutdown('controller Shutdown').then(() => exit(0)));
    },
  });
  server.addService(serviceDef('plugin.GRPCStdio'), {
    // Our output goes straight to the inherited stderr/stdout pipes, which the
    // client already reads; the stream only stays open so newer clients see support.
    StreamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const end = (): void => void call.end();
      shutdownHooks.push(end);
      call.on('cancelled', () => {
        const i = shutdownHooks.indexOf(end);
        if (i >= 0) shutdownHooks.splice(i, 1);
      });
    },
  });
  server.addService(serviceDef('plugin.GRPCBroker'), { StartStream: broker.startStream });
  addPluginVersionService(server);
  opts.versions[version](server, ctx);

  const creds = tls ? mtlsServerCredentials(tls.hostCertPem, tls) : grpc.ServerCredentials.createInsecure();
  const port = await bindInRange(server, creds, env.minPort, env.maxPort);

  const fields = [String(CORE_PROTOCOL_VERSION), String(version), 'tcp', `127.0.0.1:${port}`, 'grpc'];
  // Only AutoMTLS puts our certificate in the handshake; in the wrapping-token mode Vault already has it.
  if (tls?.handshakeCert) fields.push(tls.handshakeCert);
  const handshake = fields.join('|');
  (opts.writeHandshake ?? ((l) => process.stdout.write(l + '\n')))(handshake);
  log.debug('plugin serving', { version, port, tls: tls?.mode ?? 'none (metadata mode)' });

  // The host going away (crash, kill -9) must not leave us running: we get re-parented.
  const poll = setInterval(() => {
    if (process.ppid !== parent) void shutdown('parent process exited').then(() => exit(0));
  }, opts.parentPollMs ?? 1000);
  poll.unref();
  shutdownHooks.unshift(() => clearInterval(poll));

  return { port, version, handshake, shutdown };
}
