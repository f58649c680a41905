// Where the plugin listens, as go-plugin's own servers do on Unix: a socket file, named
// "plugin" plus random characters, in PLUGIN_UNIX_SOCKET_DIR (else the temp directory),
// handed to the group PLUGIN_UNIX_SOCKET_GROUP names with group read/write when it is set.
// Vault's containerized plugins depend on both (the directory is the one the container
// shares with Vault; TCP on the container's loopback is out of Vault's reach). Speed is the
// same either way (bench/RESULTS.md, session 12). TCP on 127.0.0.1 within
// PLUGIN_MIN_PORT..PLUGIN_MAX_PORT, which every go-plugin client accepts too, is what
// VAULT_PLUGIN_TS_LISTEN=tcp asks for, and the fallback when no socket can be made in the
// temp directory (a path too long for a socket address, a directory that cannot be written).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bindInRange } from './handshake';

/**
 * Where to listen: a loopback TCP port (0: any) or a unix socket path. `ready` runs on the
 * socket file once bound, before the listener is handed out: if it throws, the listener is
 * closed (its file removed) and the bind fails with that error.
 */
export type ListenAt = { port: number } | { path: string; ready?: (file: string) => void };

/** A listener's address as go-plugin's handshake and broker messages name it. */
export interface Listening {
  network: 'tcp' | 'unix';
  /** "127.0.0.1:<port>" or the socket's path. */
  address: string;
  /** The TCP port; 0 for a unix socket. */
  port: number;
}

/** The unix socket settings the host gave; absent: listen on TCP. */
export interface SocketSettings {
  dir: string;
  /** A group name or numeric id to own the socket (group read/write); none: the process's own. */
  group?: string;
  /** Whether the directory was the host's choice (PLUGIN_UNIX_SOCKET_DIR): then no TCP fallback. */
  chosen: boolean;
}

/** Operators' override of the listener kind (unix by default, as go-plugin). */
export const LISTEN_ENV = 'VAULT_PLUGIN_TS_LISTEN';

/** The socket settings from go-plugin's variables; undefined when TCP is asked for. */
export function socketSettings(env: NodeJS.ProcessEnv): SocketSettings | undefined {
  const kind = env[LISTEN_ENV] || 'unix';
  if (kind === 'tcp') return undefined;
  if (kind !== 'unix') throw new Error(`${LISTEN_ENV} must be unix or tcp, not ${JSON.stringify(kind.slice(0, 20))}`);
  const dir = env.PLUGIN_UNIX_SOCKET_DIR;
  return { dir: dir || os.tmpdir(), group: env.PLUGIN_UNIX_SOCKET_GROUP || undefined, chosen: !!dir };
}

/** sun_path is 108 bytes on Linux, one of them the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Something that listens at a ListenAt (the gRPC server). */
export type Bind = (at: ListenAt) => Promise<Listening>;

export interface ListenOptions {
  socket?: SocketSettings;
  minPort: number;
  maxPort: number;
  /** Told why a unix socket could not be used before falling back to TCP. */
  onFallback?: (reason: string) => void;
}

/**
 * Listen as the settings say. A unix socket's file is removed when the server closes
 * (libuv unlinks it) or, as a last resort, when the process exits (trackSocket).
 */
export async function listenPlugin(bind: Bind, o: ListenOptions): Promise<Listening> {
  const tcp = () => bindInRange((port) => bind({ port }), o.minPort, o.maxPort);
  if (!o.socket) return tcp();
  try {
    return await listenUnix(bind, o.socket);
  } catch (e) {
    if (o.socket.chosen) throw e;
    o.onFallback?.((e as Error).message);
    return tcp();
  }
}

async function listenUnix(bind: Bind, s: SocketSettings): Promise<Listening> {
  const gid = s.group === undefined ? undefined : groupId(s.group);
  let last: Error | undefined;
  for (let i = 0; i < 5; i++) {
    const file = path.join(s.dir, `plugin${randomBytes(6).toString('hex')}`);
    if (Buffer.byteLength(file) > MAX_SOCKET_PATH)
      throw new Error(`unix socket path ${JSON.stringify(file.slice(0, 60))}… is longer than ${MAX_SOCKET_PATH} bytes`);
    try {
      // The group handover inside the bind: a failed one closes the listener, and no socket
      // is left open behind a TCP fallback.
      const ready =
        gid === undefined
          ? undefined
          : (f: string) => {
              // Never follow a symlink put in the socket's place: the change is for our socket only.
              if (!fs.lstatSync(f).isSocket()) throw new Error(`${f} is not the socket this process bound`);
              fs.lchownSync(f, -1, gid);
              fs.chmodSync(f, 0o660);
            };
      return await bind({ path: file, ready });
    } catch (e) {
      last = e as Error;
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  throw new Error(`cannot listen on a unix socket in ${s.dir}: ${last?.message ?? 'unknown'}`, { cause: last });
}

/**
 * Socket files this process listens on: libuv unlinks one when its server closes; what is
 * still open when the process exits is removed then (a SIGKILL still leaves it, as go-plugin's).
 */
const openSockets = new Set<string>();
let exitHook = false;

/** Called by the server that bound `file`: removed at exit unless `released` first (its server closed). */
export function trackSocket(file: string): { released(): void } {
  openSockets.add(file);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const f of openSockets) fs.rmSync(f, { force: true });
    });
  }
  return { released: () => openSockets.delete(file) };
}

/** A numeric group id, or a group name looked up in /etc/group (as Go's os/user without cgo). */
export function groupId(group: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = fs.readFileSync(groupFile, 'utf8');
  } catch {
    /* no group database: unknown below */
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name === group && /^\d+$/.test(id ?? '')) return Number(id);
  }
  throw new Error(`PLUGIN_UNIX_SOCKET_GROUP: unknown group ${JSON.stringify(group.slice(0, 40))}`);
}
