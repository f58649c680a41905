// A minimal TypeScript plugin host for benchmarks and tests that need many calls: it
// launches the executable with Vault's environment, reads the handshake line, and
// opens an mTLS gRPC channel the way go-plugin's client does. The Go host in
// test/conformance is the authority on compatibility; this one is for load.
import { spawn, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { generateIdentity } from '../../src/goplugin/autotls';
import { DATABASE_COOKIE, BACKEND_COOKIE, type Role } from '../../src/goplugin/env';
import { clientCtor } from '../../src/goplugin/protos';

export interface LaunchedPlugin {
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
  proc.stderr!.on('data', (d) => { err += d; });
  const handshake = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) { proc.stdout!.off('data', onData); resolve(buf.slice(0, nl)); }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (c) => reject(new Error(`plugin exited (${c}) before the handshake: ${err}`)));
  });
  const [, version, , address, , cert] = handshake.split('|');
  // The handshake carries unpadded base64 (Go's RawStdEncoding); PEM needs the padding back.
  const der = Buffer.from(cert, 'base64');
  const serverPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  const creds = grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(id.keyPem), Buffer.from(id.certPem));
  const channelOpts = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };
  const clients: grpc.Client[] = [];
  return {
    proc,
    handshake,
    version: Number(version),
    address,
    stderr: () => err,
    client<C extends grpc.Client>(service: string): C {
      const Ctor = clientCtor(service);
      const c = new Ctor(address, creds, channelOpts) as unknown as C;
      clients.push(c);
      return c;
    },
    async kill() {
      // grpc-js aliases an RPC named Close as client.close(): call the channel's own close.
      for (const c of clients) grpc.Client.prototype.close.call(c);
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Promisified unary call with optional metadata. */
export function call<Res>(client: grpc.Client, method: string, req: unknown, md?: Record<string, string>): Promise<Res> {
  const meta = new grpc.Metadata();
  for (const [k, v] of Object.entries(md ?? {})) meta.set(k, v);
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>)[method](req, meta, (e: grpc.ServiceError | null, r: Res) => (e ? reject(e) : resolve(r)));
  });
}
