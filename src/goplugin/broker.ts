// The plugin's half of go-plugin's connection broker (non-multiplexed mode).
// The host opens StartStream; over it each side announces listeners by service id.
//  - dial(id): the host has (or will) announce a listener for id; we connect to it
//    over mTLS. Vault uses this to hand a backend plugin its Storage/SystemView.
//  - accept(id): we listen and announce; the host dials us.
// A dialed client (grpc-client.ts) closes its connection when idle (brokerIdleMs, or sooner
// when many are open: connection-budget.ts) and reconnects on the next call: the host keeps
// serving a broker listener until it is done with the id (go-plugin's GRPCBroker.AcceptAndServe
// runs a grpc.Server on it; Vault stops that server in Cleanup).
import type { SecureContext } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from './log';
import { mtlsClientContext } from './autotls';
import { GrpcClient, type ClientOptions, type ClientTarget } from './grpc-client';
import { listenPlugin, type ListenOptions } from './listener';
import { GrpcServer, type ServiceRegistrar } from './grpc-server';
import { wholeNumberSetting } from './env';
import { ConnectionBudget } from './connection-budget';

/** The operator setting (VAULT_ or BAO_) for how long a dialed broker connection may stay idle before it is closed. */
export const BROKER_IDLE_ENV = 'VAULT_PLUGIN_TS_BROKER_IDLE_MS';
/**
 * 30 s, as the database role closes an idle configuration's pool (database/defaults.ts): a
 * mount called at least that often never reconnects, and one called less often pays one
 * loopback TCP + TLS handshake (about a millisecond) on its next storage call, while every idle
 * mount of a multiplexed process stops holding a socket, a TLS session and an HTTP/2 session
 * (most of what an idle secrets mount costs).
 */
const DEFAULT_BROKER_IDLE_MS = 30_000;
// Below 1 s one request's storage calls would reconnect between each other; setTimeout cannot wait longer than 2^31-1 ms.
const MIN_BROKER_IDLE_MS = 1000;
const MAX_BROKER_IDLE_MS = 2 ** 31 - 1;
/** The operator setting for how many broker connections may stay open idle past MIN_BROKER_IDLE_MS. */
export const BROKER_CONNECTIONS_ENV = 'VAULT_PLUGIN_TS_BROKER_CONNECTIONS';
/**
 * Past this many broker connections open at once, one idle for MIN_BROKER_IDLE_MS closes
 * (connection-budget.ts): a burst of mounts holds about this many, not one per mount. A
 * process whose mounts are each called every few seconds, more of them than this, reconnects
 * on most calls (one loopback TLS handshake each, on Vault's side too): raise it there.
 */
const DEFAULT_BROKER_CONNECTIONS = 32;
const MAX_BROKER_CONNECTIONS = 1_000_000;

/** VAULT_PLUGIN_TS_BROKER_IDLE_MS (1000 to 2^31-1 ms), else 30 s; anything else is an error that names the variable. */
export function brokerIdleMs(env: NodeJS.ProcessEnv = process.env): number {
  return wholeNumberSetting(BROKER_IDLE_ENV, { min: MIN_BROKER_IDLE_MS, max: MAX_BROKER_IDLE_MS, fallback: DEFAULT_BROKER_IDLE_MS, unit: 'milliseconds' }, env);
}

/** VAULT_PLUGIN_TS_BROKER_CONNECTIONS (1 to 1000000), else 32; anything else is an error that names the variable. */
export function brokerConnectionsKept(env: NodeJS.ProcessEnv = process.env): number {
  return wholeNumberSetting(BROKER_CONNECTIONS_ENV, { min: 1, max: MAX_BROKER_CONNECTIONS, fallback: DEFAULT_BROKER_CONNECTIONS }, env);
}

/** go-plugin's broker message: a listener announced for a service id. */
export interface ConnInfo {
  service_id: number;
  network: string;
  address: string;
  knock?: { knock: boolean; ack: boolean; error: string } | null;
}

/** The mTLS material for broker connections. */
export interface BrokerTls {
  /**
   * PEM of the CA the host's broker listeners chain to: the AutoMTLS client certificate,
   * or in the wrapping-token mode the unwrapped certificate (Vault's broker presents it too).
   */
  hostCertPem: string;
  certPem: string;
  keyPem: string;
  /** The name the host's certificate carries: "localhost" (AutoMTLS) or the unwrapped certificate's CN. */
  serverName: string;
}

type Waiter = { resolve: (c: ConnInfo) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

/** A listener the host announced, as the client's target: "host:port" (IPv6 in brackets) or a unix socket path. */
export function connTarget(info: Pick<ConnInfo, 'network' | 'address'>): ClientTarget {
  if (info.network === 'unix') return { path: info.address };
  if (info.network !== 'tcp') throw new Error(`broker: unknown network ${String(info.network).slice(0, 20)}`);
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(info.address);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new Error(`broker: not a host:port address: ${JSON.stringify(info.address.slice(0, 60))}`);
  return { host: m[1] ?? m[2], port };
}

/** The plugin's side of go-plugin's GRPCBroker: dial listeners the host announces, announce our own. */
export class Broker {
  private stream?: grpc.ServerDuplexStream<ConnInfo, ConnInfo>;
  private readonly known = new Map<number, { info: ConnInfo; timer: NodeJS.Timeout }>();
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly streamWaiters: Array<() => void> = [];
  private nextId = 0;
  private closed = false;
  private secureContext?: SecureContext;
  /** Every dialed client's connections, one budget (the process has one broker). */
  readonly connections: ConnectionBudget;

  constructor(
    private readonly tls: BrokerTls | undefined,
    private readonly log: Logger,
    private readonly infoTtlMs = 5000,
    private readonly idleMs = brokerIdleMs(),
    connectionsKept = brokerConnectionsKept(),
    /** Where accept() listens: the launch's socket settings; TCP on any free port without them. */
    private readonly listening: ListenOptions = { minPort: 0, maxPort: 0 },
  ) {
    this.connections = new ConnectionBudget(connectionsKept, MIN_BROKER_IDLE_MS);
  }

  /** gRPC handler for plugin.GRPCBroker/StartStream. */
  readonly startStream = (call: grpc.ServerDuplexStream<ConnInfo, ConnInfo>): void => {
    this.stream = call;
    for (const w of this.streamWaiters.splice(0)) w();
    call.on('data', (info: ConnInfo) => this.onInfo(info));
    call.on('error', () => undefined);
    call.on('end', () => {
      if (this.stream === call) this.stream = undefined;
      call.end();
    });
  };

  private onInfo(info: ConnInfo): void {
    if (info.knock && (info.knock.knock || info.knock.ack)) return; // multiplexed-broker messages: never negotiated by us
    const id = info.service_id;
    const ws = this.waiters.get(id);
    if (ws?.length) {
      const w = ws.shift()!;
      clearTimeout(w.timer);
      if (!ws.length) this.waiters.delete(id);
      w.resolve(info);
      return;
    }
    // Keep it for a later dial(); the host forgets unclaimed ids after 5 s as well.
    const old = this.known.get(id);
    if (old) clearTimeout(old.timer);
    const timer = setTimeout(() => this.known.delete(id), this.infoTtlMs);
    timer.unref();
    this.known.set(id, { info, timer });
  }

  /**
   * Wait for the host's announcement of `id` (at most timeoutMs), then make an mTLS client
   * of it. The client connects on its first call, closes its connection after idleMs
   * without calls, and connects again on the next one; close() it when the id is done with.
   */
  async dial(id: number, timeoutMs = 5000): Promise<GrpcClient> {
    const target = connTarget(await this.waitFor(id, timeoutMs));
    return new GrpcClient(target, { tls: this.clientTls(), idleMs: this.idleMs, budget: this.connections });
  }

  /**
   * One TLS context for every dialed client: each is its own OpenSSL context (the CA store,
   * our key and certificate parsed), tens of KiB of native memory that a mount would
   * otherwise hold for its whole life; the TLS material is the same for all.
   */
  private clientTls(): ClientOptions['tls'] {
    if (!this.tls) return undefined;
    this.secureContext ??= mtlsClientContext(this.tls.hostCertPem, this.tls);
    return { secureContext: this.secureContext, servername: this.tls.serverName };
  }

  private waitFor(id: number, timeoutMs: number): Promise<ConnInfo> {
    const k = this.known.get(id);
    if (k) {
      clearTimeout(k.timer);
      this.known.delete(id);
      return Promise.resolve(k.info);
    }
    if (this.closed) return Promise.reject(new Error('broker closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const ws = this.waiters.get(id) ?? [];
        const i = ws.findIndex((w) => w.timer === timer);
        if (i >= 0) ws.splice(i, 1);
        reject(new Error(`broker: timeout waiting for connection info for id ${id}`));
      }, timeoutMs);
      const list = this.waiters.get(id) ?? [];
      list.push({ resolve, reject, timer });
      this.waiters.set(id, list);
    });
  }

  /** A fresh id for a service this side offers. */
  nextServiceId(): number {
    return ++this.nextId;
  }

  /** Serve `register`'s services on a new mTLS listener and announce it to the host under `id`. */
  async accept(id: number, register: (s: ServiceRegistrar) => void, timeoutMs = 5000): Promise<GrpcServer> {
    const server = new GrpcServer();
    register(server);
    const tls = this.tls && { certPem: this.tls.certPem, keyPem: this.tls.keyPem, clientCaPem: this.tls.hostCertPem };
    // As go-plugin's broker: where the plugin itself listens (a unix socket by default).
    const at = await listenPlugin((a) => server.listenAt(a, tls), this.listening);
    const stream = await this.waitStream(timeoutMs);
    stream.write({ service_id: id, network: at.network, address: at.address });
    this.log.debug('broker: serving', { id, network: at.network, address: at.address });
    return server;
  }

  private waitStream(timeoutMs: number): Promise<grpc.ServerDuplexStream<ConnInfo, ConnInfo>> {
    if (this.stream) return Promise.resolve(this.stream);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('broker: host never opened the broker stream')), timeoutMs);
      this.streamWaiters.push(() => {
        clearTimeout(t);
        resolve(this.stream!);
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const [, ws] of this.waiters)
      for (const w of ws) {
        clearTimeout(w.timer);
        w.reject(new Error('broker closed'));
      }
    this.waiters.clear();
    for (const [, k] of this.known) clearTimeout(k.timer);
    this.known.clear();
    this.stream?.end();
  }
}
