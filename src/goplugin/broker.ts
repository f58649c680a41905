// The plugin's half of go-plugin's connection broker (non-multiplexed mode).
// The host opens StartStream; over it each side announces listeners by service id.
//  - dial(id): the host has (or will) announce a listener for id; we connect to it
//    over mTLS. Vault uses this to hand a backend plugin its Storage/SystemView.
//  - accept(id): we listen and announce; the host dials us.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from './log';
import { mtlsChannelCredentials, mtlsServerCredentials } from './autotls';

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

/** The plugin's side of go-plugin's GRPCBroker: dial listeners the host announces, announce our own. */
export class Broker {
  private stream?: grpc.ServerDuplexStream<ConnInfo, ConnInfo>;
  private readonly known = new Map<number, { info: ConnInfo; timer: NodeJS.Timeout }>();
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly streamWaiters: Array<() => void> = [];
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly tls: BrokerTls | undefined,
    private readonly log: Logger,
    private readonly infoTtlMs = 5000,
  ) {}

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

  /** Wait for the host's announcement of `id` (at most timeoutMs), then open an mTLS channel to it. */
  async dialChannel(id: number, timeoutMs = 5000): Promise<grpc.Channel> {
    const info = await this.waitFor(id, timeoutMs);
    if (info.network !== 'tcp' && info.network !== 'unix') throw new Error(`broker: unknown network ${info.network}`);
    const target = info.network === 'unix' ? `unix:${info.address}` : info.address;
    const creds = this.tls ? mtlsChannelCredentials(this.tls.hostCertPem, this.tls) : grpc.credentials.createInsecure();
    const name = this.tls?.serverName ?? 'localhost';
    return new grpc.Channel(target, creds, {
      'grpc.ssl_target_name_override': name,
      'grpc.default_authority': name,
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
      'grpc.enable_channelz': 0, // no per-call statistics nobody reads (storage calls are on the hot path)
    });
  }

  /** A client of one service over a dialed channel (several may share the channel). */
  static client<C extends grpc.Client>(
    channel: grpc.Channel,
    ctor: new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C,
  ): C {
    return new ctor(channel.getTarget(), grpc.credentials.createInsecure(), { channelOverride: channel });
  }

  /** dialChannel + one service client. */
  async dial<C extends grpc.Client>(
    id: number,
    ctor: new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C,
    timeoutMs = 5000,
  ): Promise<C> {
    return Broker.client(await this.dialChannel(id, timeoutMs), ctor);
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
  async accept(id: number, register: (s: grpc.Server) => void, timeoutMs = 5000): Promise<grpc.Server> {
    const server = new grpc.Server();
    register(server);
    const creds = this.tls ? mtlsServerCredentials(this.tls.hostCertPem, this.tls) : grpc.ServerCredentials.createInsecure();
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? rej(e) : res(p))));
    const stream = await this.waitStream(timeoutMs);
    stream.write({ service_id: id, network: 'tcp', address: `127.0.0.1:${port}` });
    this.log.debug('broker: serving', { id, port });
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
