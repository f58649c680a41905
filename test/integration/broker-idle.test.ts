// The broker's dialed clients: connection closed when idle, reconnected on the next call, one
// TLS context for all of them; the host's announced addresses; and the idle time's operator setting.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { generateIdentity, type PluginIdentity } from '../../src/goplugin/autotls';
import { BROKER_CONNECTIONS_ENV, BROKER_IDLE_ENV, Broker, brokerConnectionsKept, brokerIdleMs, connTarget, type ConnInfo } from '../../src/goplugin/broker';
import type { GrpcClient } from '../../src/goplugin/grpc-client';
import { createLogger } from '../../src/goplugin/log';
import { methodDef, serviceDef } from '../../src/goplugin/protos';
import { waitFor } from '../support/vault';

const log = createLogger({ level: 'error', sink: () => undefined });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A host broker listener (Health, presenting the host certificate) behind a TCP proxy that counts connections. */
async function hostListener(host: PluginIdentity): Promise<{ port: number; opened: () => number; open: () => number }> {
  const server = new grpc.Server();
  server.addService(serviceDef('grpc.health.v1.Health'), {
    Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }),
    Watch: () => undefined,
  });
  const target = await new Promise<number>((res, rej) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(host.keyPem), cert_chain: Buffer.from(host.certPem) }], false),
      (e, p) => (e ? rej(e) : res(p)),
    ),
  );
  cleanups.push(() => server.forceShutdown());
  let opened = 0;
  const live = new Set<net.Socket>();
  const proxy = net.createServer((inbound) => {
    opened++;
    live.add(inbound);
    const outbound = net.connect(target, '127.0.0.1');
    inbound.pipe(outbound).pipe(inbound);
    const end = () => {
      live.delete(inbound);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('close', end).on('error', end);
    outbound.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    for (const s of live) s.destroy();
    proxy.close();
  });
  return { port: (proxy.address() as net.AddressInfo).port, opened: () => opened, open: () => live.size };
}

/** A Broker as the runtime makes it, with the host's announcements fed to it directly. */
async function brokerFor(host: PluginIdentity, idleMs: number): Promise<{ broker: Broker; announce: (info: ConnInfo) => void }> {
  const plugin = await generateIdentity();
  const broker = new Broker({ hostCertPem: host.certPem, certPem: plugin.certPem, keyPem: plugin.keyPem, serverName: 'localhost' }, log, 5000, idleMs);
  cleanups.push(() => broker.close());
  const stream = Object.assign(new EventEmitter(), { end: () => undefined });
  broker.startStream(stream as unknown as grpc.ServerDuplexStream<ConnInfo, ConnInfo>);
  return { broker, announce: (info) => stream.emit('data', info) };
}

const check = (c: GrpcClient) => c.unary(methodDef('grpc.health.v1.Health', 'Check'), { service: '' });

describe('broker connections', () => {
  it('an idle dialed connection is closed, and the next call connects again', { timeout: 20_000 }, async () => {
    const host = await generateIdentity();
    const listener = await hostListener(host);
    const { broker, announce } = await brokerFor(host, 1000);
    announce({ service_id: 3, network: 'tcp', address: `127.0.0.1:${listener.port}` });
    const health = await broker.dial(3);
    cleanups.push(() => health.close());
    expect(listener.opened()).toBe(0); // no connection before the first call
    expect(await check(health)).toEqual({ status: 'SERVING' });
    expect(await check(health)).toEqual({ status: 'SERVING' });
    expect(listener.opened()).toBe(1);
    expect(listener.open()).toBe(1);
    // Closed 1 s after the last call.
    await waitFor('the idle broker connection to close', () => listener.open() === 0, 5_000, 100);
    expect(await check(health)).toEqual({ status: 'SERVING' });
    expect(listener.opened()).toBe(2);
    expect(listener.open()).toBe(1);
  });

  it('every dialed client shares one TLS context (one OpenSSL context)', async () => {
    const host = await generateIdentity();
    const listener = await hostListener(host);
    const { broker, announce } = await brokerFor(host, 60_000);
    const contexts = vi.spyOn(tls, 'createSecureContext');
    for (const id of [4, 5, 6]) {
      announce({ service_id: id, network: 'tcp', address: `127.0.0.1:${listener.port}` });
      const client = await broker.dial(id);
      cleanups.push(() => client.close());
      expect(await check(client)).toEqual({ status: 'SERVING' });
    }
    expect(contexts).toHaveBeenCalledTimes(1);
  });
});

describe('connTarget', () => {
  it("reads go-plugin's tcp host:port (IPv6 in brackets) and unix socket paths", () => {
    expect(connTarget({ network: 'tcp', address: '127.0.0.1:41000' })).toEqual({ host: '127.0.0.1', port: 41000 });
    expect(connTarget({ network: 'tcp', address: '[::1]:41000' })).toEqual({ host: '::1', port: 41000 });
    expect(connTarget({ network: 'tcp', address: 'localhost:41000' })).toEqual({ host: 'localhost', port: 41000 });
    expect(connTarget({ network: 'unix', address: '/tmp/plugin123' })).toEqual({ path: '/tmp/plugin123' });
  });

  it('refuses anything else with a clear error', () => {
    for (const address of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '::1:41000', '']) {
      expect(() => connTarget({ network: 'tcp', address }), address).toThrow(/broker: not a host:port address/);
    }
    expect(() => connTarget({ network: 'udp', address: '127.0.0.1:1' })).toThrow(/broker: unknown network udp/);
  });
});

describe(BROKER_IDLE_ENV, () => {
  it('defaults to 30 s; takes 1000 ms to 2^31-1 ms, under its VAULT_ or BAO_ name', () => {
    expect(brokerIdleMs({})).toBe(30_000);
    expect(brokerIdleMs({ [BROKER_IDLE_ENV]: '1000' })).toBe(1000);
    expect(brokerIdleMs({ BAO_PLUGIN_TS_BROKER_IDLE_MS: '2500' })).toBe(2500);
    expect(brokerIdleMs({ [BROKER_IDLE_ENV]: '4000', BAO_PLUGIN_TS_BROKER_IDLE_MS: '2500' })).toBe(4000);
    expect(brokerIdleMs({ [BROKER_IDLE_ENV]: String(2 ** 31 - 1) })).toBe(2 ** 31 - 1);
  });

  it('refuses anything else with an error that names the variable', () => {
    for (const bad of ['999', '0', '-5', '1.5e3', 'soon', '30s', String(2 ** 31)]) {
      expect(() => brokerIdleMs({ [BROKER_IDLE_ENV]: bad })).toThrow(new RegExp(`^${BROKER_IDLE_ENV} must be a whole number of milliseconds from 1000`));
    }
  });
});

describe(BROKER_CONNECTIONS_ENV, () => {
  it('defaults to 32; takes 1 to 1000000, under its VAULT_ or BAO_ name', () => {
    expect(brokerConnectionsKept({})).toBe(32);
    expect(brokerConnectionsKept({ [BROKER_CONNECTIONS_ENV]: '1' })).toBe(1);
    expect(brokerConnectionsKept({ BAO_PLUGIN_TS_BROKER_CONNECTIONS: '500' })).toBe(500);
    expect(brokerConnectionsKept({ [BROKER_CONNECTIONS_ENV]: '1000000' })).toBe(1_000_000);
  });

  it('refuses anything else with an error that names the variable', () => {
    for (const bad of ['0', '-1', '2.5', 'many', '1e3', '1000001']) {
      expect(() => brokerConnectionsKept({ [BROKER_CONNECTIONS_ENV]: bad })).toThrow(
        new RegExp(`^${BROKER_CONNECTIONS_ENV} must be a whole number from 1 to 1000000`),
      );
    }
  });

  it("sizes the broker's connection budget", () => {
    expect(new Broker(undefined, log, 5000, 30_000, 7).connections.maxOpen).toBe(7);
  });
});
