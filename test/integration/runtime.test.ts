// The go-plugin runtime in-process, with real mTLS on every connection: this test plays
// go-plugin's host (client certificate, broker stream, its own broker listeners).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pem } from '../../src/goplugin/der';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { generateIdentity, type PluginIdentity } from '../../src/goplugin/autotls';
import { serve, type RunningPlugin, type RuntimeContext } from '../../src/goplugin/server';
import { methodDef, serviceDef } from '../../src/goplugin/protos';
import { clientCtor } from '../support/grpc-clients';
import { createLogger } from '../../src/goplugin/log';
import type { LaunchEnv } from '../../src/goplugin/env';

const log = createLogger({ level: 'error', sink: () => undefined });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function pemFromHandshake(b64: string): string {
  return pem(Buffer.from(b64, 'base64'), 'CERTIFICATE');
}

async function start(
  socket?: LaunchEnv['socket'],
): Promise<{ plugin: RunningPlugin; host: PluginIdentity; pluginPem: string; ctx: RuntimeContext; exits: number[]; line: string }> {
  const host = await generateIdentity();
  const env: LaunchEnv = {
    role: 'database',
    clientVersions: [5],
    minPort: 20000,
    maxPort: 30000,
    socket,
    clientCertPem: host.certPem,
    metadataMode: false,
  };
  let ctx!: RuntimeContext;
  const exits: number[] = [];
  let line = '';
  const plugin = await serve({
    env,
    log,
    versions: {
      5: (_s, c) => {
        ctx = c;
      },
    },
    writeHandshake: (l) => {
      line = l;
    },
    exit: (c) => exits.push(c),
    parentPollMs: 60_000,
  });
  cleanups.push(() => plugin.shutdown('test end'));
  const parts = line.split('|');
  expect(parts.slice(0, 5)).toEqual(['1', '5', plugin.network, plugin.address, 'grpc']);
  if (!socket) expect(plugin.address).toBe(`127.0.0.1:${plugin.port}`);
  return { plugin, host, pluginPem: pemFromHandshake(parts[5]), ctx, exits, line };
}

const chanOpts = { 'grpc.ssl_target_name_override': 'localhost' };
function hostClient(svc: string, addr: string, serverPem: string, id: PluginIdentity): grpc.Client {
  const C = clientCtor(svc);
  const c = new C(addr, grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(id.keyPem), Buffer.from(id.certPem)), chanOpts);
  cleanups.push(() => grpc.Client.prototype.close.call(c));
  return c;
}
const unary = <T>(c: grpc.Client, m: string, req: unknown) =>
  new Promise<T>((res, rej) => (c as unknown as Record<string, (...args: unknown[]) => unknown>)[m](req, (e: Error | null, r: T) => (e ? rej(e) : res(r))));

describe('go-plugin runtime', () => {
  it('health: SERVING for "plugin" and "", NOT_FOUND otherwise', async () => {
    const { plugin, host, pluginPem } = await start();
    const h = hostClient('grpc.health.v1.Health', `127.0.0.1:${plugin.port}`, pluginPem, host);
    expect(await unary(h, 'Check', { service: 'plugin' })).toEqual({ status: 'SERVING' });
    expect(await unary(h, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
    await expect(unary(h, 'Check', { service: 'other' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('stdio stream stays open until shutdown; controller Shutdown ends it and exits 0', async () => {
    const { plugin, host, pluginPem, exits } = await start();
    const stdio = hostClient('plugin.GRPCStdio', `127.0.0.1:${plugin.port}`, pluginPem, host);
    const stream = (stdio as unknown as { StreamStdio: (r: unknown) => grpc.ClientReadableStream<unknown> }).StreamStdio({});
    let ended = false;
    stream.on('data', () => undefined);
    stream.on('end', () => {
      ended = true;
    });
    stream.on('error', () => {
      ended = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(ended).toBe(false);
    const ctl = hostClient('plugin.GRPCController', `127.0.0.1:${plugin.port}`, pluginPem, host);
    await unary(ctl, 'Shutdown', {});
    for (let i = 0; i < 50 && !(ended && exits.length); i++) await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(true);
    expect(exits).toEqual([0]);
  });

  it('broker dial: the plugin reaches a service the host announces by id, over mTLS', async () => {
    const { plugin, host, pluginPem, ctx } = await start();
    // The host's broker listener: presents the host certificate (as go-plugin does).
    const hostServer = new grpc.Server();
    hostServer.addService(serviceDef('grpc.health.v1.Health'), {
      Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }),
      Watch: () => undefined,
    });
    const port = await new Promise<number>((res, rej) =>
      hostServer.bindAsync(
        '127.0.0.1:0',
        grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(host.keyPem), cert_chain: Buffer.from(host.certPem) }], false),
        (e, p) => (e ? rej(e) : res(p)),
      ),
    );
    cleanups.push(() => hostServer.forceShutdown());
    const broker = hostClient('plugin.GRPCBroker', `127.0.0.1:${plugin.port}`, pluginPem, host);
    const stream = (broker as unknown as { StartStream: () => grpc.ClientDuplexStream<unknown, { service_id: number; address: string }> }).StartStream();
    const announced: Array<{ service_id: number; address: string }> = [];
    stream.on('data', (d) => announced.push(d));
    stream.on('error', () => undefined);
    cleanups.push(() => {
      stream.end();
    });
    // dial() waits for the announcement even if it arrives later.
    const dialed = ctx.broker.dial(7);
    stream.write({ service_id: 7, network: 'tcp', address: `127.0.0.1:${port}` });
    const hc = await dialed;
    cleanups.push(() => hc.close());
    expect(await hc.unary(methodDef('grpc.health.v1.Health', 'Check'), { service: 'x' })).toEqual({ status: 'SERVING' });

    // accept(): the plugin serves, announces on the stream, and the host dials it with its certificate.
    const id = ctx.broker.nextServiceId();
    const served = await ctx.broker.accept(id, (s) =>
      s.addService(serviceDef('grpc.health.v1.Health'), {
        Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'NOT_SERVING' }),
        Watch: () => undefined,
      }),
    );
    cleanups.push(() => served.forceShutdown());
    for (let i = 0; i < 50 && !announced.length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(announced[0].service_id).toBe(id);
    const back = hostClient('grpc.health.v1.Health', announced[0].address, pluginPem, host);
    expect(await unary(back, 'Check', { service: '' })).toEqual({ status: 'NOT_SERVING' });
    // ...and refuses a client without the host's certificate.
    const stranger = await generateIdentity();
    const bad = hostClient('grpc.health.v1.Health', announced[0].address, pluginPem, stranger);
    await expect(unary(bad, 'Check', { service: '' })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('broker dial times out clearly when the host never announces the id', async () => {
    const { ctx } = await start();
    await expect(ctx.broker.dial(99, 200)).rejects.toThrow(/timeout waiting for connection info for id 99/);
  });

  it('refuses to serve without PLUGIN_CLIENT_CERT (no plaintext gRPC)', async () => {
    const env: LaunchEnv = { role: 'database', clientVersions: [5], minPort: 20000, maxPort: 30000, metadataMode: false };
    await expect(serve({ env, log, versions: { 5: () => undefined }, writeHandshake: () => undefined })).rejects.toThrow(
      /refusing to serve gRPC without mutual TLS/,
    );
  });

  it('listens on a unix socket in PLUGIN_UNIX_SOCKET_DIR as go-plugin does: handshake, calls, broker accept, file removed at shutdown', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-sock-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { plugin, host, pluginPem, ctx, line } = await start({ dir, chosen: true });
    expect(plugin.network).toBe('unix');
    expect(path.dirname(plugin.address)).toBe(dir);
    expect(path.basename(plugin.address)).toMatch(/^plugin[0-9a-f]{12}$/);
    expect(line.split('|').slice(2, 4)).toEqual(['unix', plugin.address]);
    expect(fs.statSync(plugin.address).isSocket()).toBe(true);
    const h = hostClient('grpc.health.v1.Health', `unix:${plugin.address}`, pluginPem, host);
    expect(await unary(h, 'Check', { service: 'plugin' })).toEqual({ status: 'SERVING' });

    // The broker's own listeners are sockets in the same directory.
    const broker = hostClient('plugin.GRPCBroker', `unix:${plugin.address}`, pluginPem, host);
    const stream = (
      broker as unknown as { StartStream: () => grpc.ClientDuplexStream<unknown, { service_id: number; network: string; address: string }> }
    ).StartStream();
    const announced: Array<{ service_id: number; network: string; address: string }> = [];
    stream.on('data', (d) => announced.push(d));
    stream.on('error', () => undefined);
    cleanups.push(() => {
      stream.end();
    });
    const served = await ctx.broker.accept(ctx.broker.nextServiceId(), (s) =>
      s.addService(serviceDef('grpc.health.v1.Health'), {
        Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'NOT_SERVING' }),
        Watch: () => undefined,
      }),
    );
    for (let i = 0; i < 50 && !announced.length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(announced[0].network).toBe('unix');
    expect(path.dirname(announced[0].address)).toBe(dir);
    const back = hostClient('grpc.health.v1.Health', `unix:${announced[0].address}`, pluginPem, host);
    expect(await unary(back, 'Check', { service: '' })).toEqual({ status: 'NOT_SERVING' });
    await new Promise<void>((r) => served.tryShutdown(r));
    expect(fs.existsSync(announced[0].address)).toBe(false);

    await plugin.shutdown('test');
    expect(fs.existsSync(plugin.address)).toBe(false);
  });
});
