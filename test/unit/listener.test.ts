// Where the plugin listens (src/goplugin/listener.ts): go-plugin's unix socket settings, the
// TCP override and fallback, and the socket's group.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcServer } from '../../src/goplugin/grpc-server';
import { groupId, LISTEN_ENV, listenPlugin, socketSettings, type ListenAt, type Listening } from '../../src/goplugin/listener';

const servers: net.Server[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-listen-'));
  dirs.push(d);
  return d;
}

/** A plain net.Server bound where asked: what GrpcServer.listenAt does, without gRPC. */
function bind(at: ListenAt): Promise<Listening> {
  const s = net.createServer();
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    const done = () => {
      servers.push(s);
      if ('path' in at) at.ready?.(at.path);
      if ('path' in at) resolve({ network: 'unix', address: at.path, port: 0 });
      else {
        const { port } = s.address() as net.AddressInfo;
        resolve({ network: 'tcp', address: `127.0.0.1:${port}`, port });
      }
    };
    if ('path' in at) s.listen(at.path, done);
    else s.listen(at.port, '127.0.0.1', done);
  });
}

describe('socketSettings', () => {
  it('is a unix socket in the temp directory by default, as go-plugin', () => {
    expect(socketSettings({})).toEqual({ dir: os.tmpdir(), group: undefined, chosen: false });
  });
  it("takes the host's directory and group", () => {
    expect(socketSettings({ PLUGIN_UNIX_SOCKET_DIR: '/run/p', PLUGIN_UNIX_SOCKET_GROUP: 'vault' })).toEqual({ dir: '/run/p', group: 'vault', chosen: true });
  });
  it(`is TCP when ${LISTEN_ENV}=tcp, and refuses other values by name`, () => {
    expect(socketSettings({ [LISTEN_ENV]: 'tcp', PLUGIN_UNIX_SOCKET_DIR: '/run/p' })).toBeUndefined();
    expect(() => socketSettings({ [LISTEN_ENV]: 'udp' })).toThrow(`${LISTEN_ENV} must be unix or tcp, not "udp"`);
  });
});

describe('listenPlugin', () => {
  it('binds a socket named plugin<random> in the directory', async () => {
    const dir = tempDir();
    const at = await listenPlugin(bind, { socket: { dir, chosen: true }, minPort: 0, maxPort: 0 });
    expect(at.network).toBe('unix');
    expect(path.dirname(at.address)).toBe(dir);
    expect(path.basename(at.address)).toMatch(/^plugin[0-9a-f]{12}$/);
    expect(fs.statSync(at.address).isSocket()).toBe(true);
  });

  it('hands the socket to PLUGIN_UNIX_SOCKET_GROUP with group read/write', async () => {
    const gid = os.userInfo().gid;
    const at = await listenPlugin(bind, { socket: { dir: tempDir(), group: String(gid), chosen: true }, minPort: 0, maxPort: 0 });
    const st = fs.statSync(at.address);
    expect(st.gid).toBe(gid);
    expect(st.mode & 0o777).toBe(0o660);
  });

  it('falls back to TCP in the port range when the temp directory cannot hold a socket, and says why', async () => {
    const reasons: string[] = [];
    const long = path.join(tempDir(), 'x'.repeat(120));
    const at = await listenPlugin(bind, { socket: { dir: long, chosen: false }, minPort: 0, maxPort: 0, onFallback: (r) => reasons.push(r) });
    expect(at.network).toBe('tcp');
    expect(at.address).toBe(`127.0.0.1:${at.port}`);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/longer than 107 bytes/);
  });

  it("fails instead of falling back when the host chose the directory (a containerized plugin's TCP port is out of Vault's reach)", async () => {
    const missing = path.join(tempDir(), 'missing');
    await expect(listenPlugin(bind, { socket: { dir: missing, chosen: true }, minPort: 0, maxPort: 0 })).rejects.toThrow(
      `cannot listen on a unix socket in ${missing}`,
    );
  });

  it('a socket whose group handover fails is closed and removed before the TCP fallback (no second listener left open)', async () => {
    const dir = tempDir();
    const server = new GrpcServer();
    const reasons: string[] = [];
    try {
      // A gid chown refuses (out of range) fails the handover after the bind, even as root.
      const at = await listenPlugin((a) => server.listenAt(a), {
        socket: { dir, group: '99999999999', chosen: false },
        minPort: 0,
        maxPort: 0,
        onFallback: (r) => reasons.push(r),
      });
      expect(at.network).toBe('tcp');
      expect(reasons[0]).toMatch(/cannot listen on a unix socket/);
      await new Promise((r) => setTimeout(r, 50));
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      server.forceShutdown();
    }
  });

  it('never changes the group or mode of what a symlink put in place of the socket points to', async () => {
    const dir = tempDir();
    const victim = path.join(tempDir(), 'victim');
    fs.writeFileSync(victim, 'x', { mode: 0o600 });
    const before = fs.statSync(victim);
    // A "bind" after which the socket's name is a symlink to another file (a swap between bind and handover).
    const swapped = async (at: ListenAt): Promise<Listening> => {
      if (!('path' in at)) throw new Error('expected a unix socket');
      fs.symlinkSync(victim, at.path);
      at.ready?.(at.path);
      return { network: 'unix', address: at.path, port: 0 };
    };
    await expect(
      listenPlugin(swapped, { socket: { dir, group: String(os.userInfo().gid === 0 ? 1 : 0), chosen: true }, minPort: 0, maxPort: 0 }),
    ).rejects.toThrow(/not the socket/);
    const after = fs.statSync(victim);
    expect(after.mode & 0o777).toBe(before.mode & 0o777);
    expect(after.gid).toBe(before.gid);
  });

  it('listens on TCP without socket settings', async () => {
    const at = await listenPlugin(bind, { minPort: 0, maxPort: 0 });
    expect(at.network).toBe('tcp');
    expect(at.port).toBeGreaterThan(0);
  });
});

describe('groupId', () => {
  it('reads numbers as ids and names from the group database', () => {
    const f = path.join(tempDir(), 'group');
    fs.writeFileSync(f, 'root:x:0:\nvault:x:1234:alice,bob\nbroken\n');
    expect(groupId('42', f)).toBe(42);
    expect(groupId('vault', f)).toBe(1234);
    expect(() => groupId('nobody-here', f)).toThrow('PLUGIN_UNIX_SOCKET_GROUP: unknown group "nobody-here"');
  });
});

describe('socket files at exit', () => {
  it('a process that exits without closing its server leaves no socket file, and never removes a file it did not bind', async () => {
    const dir = tempDir();
    const taken = path.join(dir, 'taken');
    fs.writeFileSync(taken, 'not ours');
    const code = `
      const { GrpcServer } = require('./src/goplugin/grpc-server.ts');
      (async () => {
        const s = new GrpcServer();
        const at = await s.listenAt({ path: ${JSON.stringify(path.join(dir, 'live'))} });
        await s.listenAt({ path: ${JSON.stringify(taken)} }).then(() => console.log('bound a taken name?'), (e) => console.log('refused', e.code));
        console.log('listening', require('node:fs').statSync(at.address).isSocket());
        process.exit(0);
      })();`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    expect(out).toContain('refused EADDRINUSE');
    expect(out).toContain('listening true');
    expect(fs.readdirSync(dir).sort()).toEqual(['taken']);
    expect(fs.readFileSync(taken, 'utf8')).toBe('not ours');
  });
});
