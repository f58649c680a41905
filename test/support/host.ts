// A minimal TypeScript plugin host for benchmarks and tests that need many calls: it
// launches the executable with Vault's environment, reads the handshake line, and
// opens an mTLS gRPC channel the way go-plugin's client does. The Go host in
// test/conformance is the authority on compatibility; this one is for load.
import { pem } from '../../src/goplugin/der';
import { spawn, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { generateIdentity } from '../../src/goplugin/autotls';
import { DATABASE_COOKIE, BACKEND_COOKIE, type Role } from '../../src/goplugin/env';
import { clientCtor } from './grpc-clients';

export interface LaunchedPlugin {
  /** The host's AutoMTLS identity (broker listeners present it). */
  identity: { certPem: string; keyPem: string };
  proc: ChildProcess;
  handshake: string;
  version: number;
  address: string;
  stderr: () => string;
  client<C extends grpc.Client>(service: string): C;
  kill(): Promise<void>;
}

export async function launchPlugin(exe: string, role: Role, opts: { versions?: string; env?: Record<string, string> } = {}): Promise<LaunchedPlugin> {
  const id = await generateIdentity();
  const cookie = role === 'database' ? DATABASE_COOKIE : BACKEND_COOKIE;
  const proc = spawn(exe, [], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      [cookie.key]: cookie.value,
      PLUGIN_PROTOCOL_VERSIONS: opts.versions ?? (role === 'database' ? '5,6' : '4,5'),
      PLUGIN_MIN_PORT: '10000',
      PLUGIN_MAX_PORT: '25000',
      PLUGIN_CLIENT_CERT: id.certPem,
      VAULT_VERSION: '1.15.0',
      ...opts.env,
    },
  });
  let err = '';
  proc.stderr!.on('data', (d) => {
    err += d;
  });
  const handshake = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        proc.stdout!.off('data', onData);
        resolve(buf.slice(0, nl));
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (c) => reject(new Error(`plugin exited (${c}) before the handshake: ${err}`)));
  });
  const [, version, , address] = handshake.split('|');
  const conn = connectPlugin(handshake, id);
  return {
    identity: id,
    proc,
    handshake,
    version: Number(version),
    address,
    stderr: () => err,
    client: conn.client,
    async kill() {
      conn.close();
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/**
 * gRPC clients of a running plugin from its handshake line and the host identity it trusts
 * (PLUGIN_CLIENT_CERT): what launchPlugin uses, and what a second process (a bench's load
 * generator) uses to reach the same plugin over its own connection.
 */
export function connectPlugin(
  handshake: string,
  id: { certPem: string; keyPem: string },
): { client<C extends grpc.Client>(service: string): C; close(): void } {
  const [, , network, address, , cert] = handshake.split('|');
  const target = grpcTarget(network, address);
  // The handshake carries unpadded base64 (Go's RawStdEncoding); PEM needs the padding back.
  const serverPem = pem(Buffer.from(cert, 'base64'), 'CERTIFICATE');
  const creds = grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(id.keyPem), Buffer.from(id.certPem));
  const channelOpts = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };
  const clients: grpc.Client[] = [];
  return {
    client<C extends grpc.Client>(service: string): C {
      const Ctor = clientCtor(service);
      const c = new Ctor(target, creds, channelOpts) as unknown as C;
      clients.push(c);
      return c;
    },
    // grpc-js aliases an RPC named Close as client.close(): call the channel's own close.
    close: () => {
      for (const c of clients) grpc.Client.prototype.close.call(c);
    },
  };
}

/** grpc-js's target for a go-plugin handshake's network and address ("unix:<path>" for a socket). */
export function grpcTarget(network: string, address: string): string {
  if (network === 'unix') return `unix:${address}`;
  if (network === 'tcp') return address;
  throw new Error(`unknown network in the handshake: ${network}`);
}

/** Promisified unary call with optional metadata. */
export function call<Res>(client: grpc.Client, method: string, req: unknown, md?: Record<string, string>): Promise<Res> {
  const meta = new grpc.Metadata();
  for (const [k, v] of Object.entries(md ?? {})) meta.set(k, v);
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method](req, meta, (e: grpc.ServiceError | null, r: Res) =>
      e ? reject(e) : resolve(r),
    );
  });
}

/**
 * One Backend HandleRequest on a mount (mountBackend's backend and metadata): the response's
 * data parsed; a gRPC-level error or an error in the data is thrown, naming the path.
 */
export async function handleRequest(m: { backend: grpc.Client; md: Record<string, string> }, op: string, p: string, data: object = {}): Promise<any> {
  const r = await call<{ response?: { data?: string }; err?: { err_msg: string } }>(
    m.backend,
    'HandleRequest',
    { request: { operation: op, path: p, data: JSON.stringify(data) } },
    m.md,
  );
  if (r.err?.err_msg) throw new Error(`${p}: ${r.err.err_msg}`);
  const d = JSON.parse(r.response?.data || '{}');
  if (d.error || d.errors) throw new Error(`${p}: ${JSON.stringify(d.error ?? d.errors).slice(0, 300)}`);
  return d;
}

let nextBrokerId = 1000;
/** One broker stream and one Backend client per plugin, shared by its mounts (as Vault multiplexes them). */
const shared = new WeakMap<LaunchedPlugin, { stream: grpc.ClientDuplexStream<unknown, unknown>; backend: grpc.Client }>();

/**
 * Mount a secrets engine the way Vault does: serve a Storage service on a new listener
 * with the host certificate, announce it on the plugin's broker stream under a fresh id,
 * then call Setup with that id (config: the mount's options, e.g. { engine: 'pki' }).
 * Mounts of one plugin share its connection and broker stream. Returns the Backend client
 * and a closer for this mount's storage listener.
 */
export async function mountBackend(
  p: LaunchedPlugin,
  storage: import('../../src/storage/storage').Storage,
  multiplexId = 'bench',
  config: Record<string, string> = {},
): Promise<{ backend: grpc.Client; md: Record<string, string>; close(): void }> {
  const { serviceDef } = await import('../../src/goplugin/protos');
  const id = p.identity;
  const server = new grpc.Server();
  server.addService(serviceDef('pb.Storage'), {
    Get: (c: any, cb: any) =>
      storage.get(c.request.key).then(
        (v) => cb(null, v ? { entry: { key: c.request.key, value: v } } : {}),
        (e) => cb(null, { err: String(e) }),
      ),
    Put: (c: any, cb: any) =>
      storage.put(c.request.entry.key, c.request.entry.value).then(
        () => cb(null, {}),
        (e) => cb(null, { err: String(e) }),
      ),
    Delete: (c: any, cb: any) =>
      storage.delete(c.request.key).then(
        () => cb(null, {}),
        (e) => cb(null, { err: String(e) }),
      ),
    List: (c: any, cb: any) =>
      storage.list(c.request.prefix).then(
        (keys) => cb(null, { keys }),
        (e) => cb(null, { err: String(e) }),
      ),
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(id.keyPem), cert_chain: Buffer.from(id.certPem) }], false),
      (e, n) => (e ? rej(e) : res(n)),
    ),
  );
  let conn = shared.get(p);
  if (!conn) {
    const broker = p.client<grpc.Client>('plugin.GRPCBroker');
    const stream = (broker as unknown as { StartStream(): grpc.ClientDuplexStream<unknown, unknown> }).StartStream();
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    conn = { stream, backend: p.client<grpc.Client>('pb.Backend') };
    shared.set(p, conn);
  }
  const { stream, backend } = conn;
  const brokerId = nextBrokerId++;
  stream.write({ service_id: brokerId, network: 'tcp', address: `127.0.0.1:${port}` });
  const md = { multiplex_id: multiplexId };
  const r = await call<{ err: string }>(backend, 'Setup', { broker_id: brokerId, Config: config, backendUUID: multiplexId }, md);
  if (r.err) throw new Error(`Setup: ${r.err}`);
  return {
    backend,
    md,
    close: () => {
      server.forceShutdown();
    },
  };
}
