// The broker's dialed connections: closed when idle, reconnected on the next call, one TLS
// context for all of them; and the idle time's operator setting.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { generateIdentity, type PluginIdentity } from '../../src/goplugin/autotls';
import { BROKER_IDLE_ENV, Broker, brokerIdleMs, ipTarget, type ConnInfo } from '../../src/goplugin/broker';
import { createLogger } from '../../src/goplugin/log';
import { clientCtor, serviceDef } from '../../src/goplugin/protos';
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

const check = (c: grpc.Client) =>
  new Promise<unknown>((res, rej) =>
    (c as unknown as { Check: (r: unknown, cb: (e: Error | null, r: unknown) => void) => void }).Check({ service: '' }, (e, r) => (e ? rej(e) : res(r))),
  );

describe('broker connections', () => {
  it('an idle dialed connection is closed, and the next call connects again', { timeout: 40_000 }, async () => {
    const host = await generateIdentity();
    const listener = await hostListener(host);
    const { broker, announce } = await brokerFor(host, 1000);
    announce({ service_id: 3, network: 'tcp', address: `127.0.0.1:${listener.port}` });
    const channel = await broker.dialChannel(3);
    cleanups.push(() => channel.close());
    // An IP literal needs no resolver (grpc-js's DNS resolver is a c-ares channel per channel).
    expect(channel.getTarget()).toBe(`ipv4:127.0.0.1:${listener.port}`);
    const health = Broker.client(channel, clientCtor('grpc.health.v1.Health'));
    expect(await check(health)).toEqual({ status: 'SERVING' });
    expect(listener.open()).toBe(1);
    // grpc-js idles the channel after 1 s without calls; its subchannel pool shuts the connection at its next sweep (≤ 10 s).
    await waitFor('the idle broker connection to close', () => listener.open() === 0, 15_000, 100);
    expect(await check(health)).toEqual({ status: 'SERVING' });
    expect(listener.opened()).toBe(2);
    expect(listener.open()).toBe(1);
  });

  it('every dialed channel shares one set of TLS credentials (one OpenSSL context)', async () => {
    const host = await generateIdentity();
    const listener = await hostListener(host);
    const { broker, announce } = await brokerFor(host, 60_000);
    const contexts = vi.spyOn(grpc.credentials, 'createSsl');
    for (const id of [4, 5, 6]) {
      announce({ service_id: id, network: 'tcp', address: `127.0.0.1:${listener.port}` });
      const channel = await broker.dialChannel(id);
      cleanups.push(() => channel.close());
      expect(await check(Broker.client(channel, clientCtor('grpc.health.v1.Health')))).toEqual({ status: 'SERVING' });
    }
    expect(contexts).toHaveBeenCalledTimes(1);
  });
});

describe('ipTarget', () => {
  it('puts IP literals under the ipv4:/ipv6: scheme and leaves names and anything else to grpc-js', () => {
    expect(ipTarget('127.0.0.1:41000')).toBe('ipv4:127.0.0.1:41000');
    expect(ipTarget('[::1]:41000')).toBe('ipv6:[::1]:41000');
    expect(ipTarget('localhost:41000')).toBe('localhost:41000');
    expect(ipTarget('[not-an-ip]:41000')).toBe('[not-an-ip]:41000');
    expect(ipTarget('127.0.0.1')).toBe('127.0.0.1');
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
