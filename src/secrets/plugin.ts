// gRPC binding of the secrets-engine role: Vault's pb.Backend service. Version 4 serves
// one mount per process; version 5 many, each call naming its mount in the
// `multiplex_id` metadata. Setup dials the broker id Vault gives to reach its Storage:
// every piece of state goes there, none stays in the process.
//
// Vault 1.8 starts the plugin once in metadata mode (plain gRPC, no client certificate)
// to learn its type and special paths; that process serves nothing else (see
// registerMetadataOnly). Vault 1.8 sets no deadline on its calls and only cancels them:
// a cancelled request stops its storage calls (withRequestSignal).
import type * as grpc from '@grpc/grpc-js';
import { Code } from '../goplugin/grpc-wire';
import { methodDef, serviceDef } from '../goplugin/protos';
import type { ServiceRegistrar } from '../goplugin/grpc-server';
import type { GrpcClient } from '../goplugin/grpc-client';
import { redact, type Logger } from '../goplugin/log';
import type { RuntimeContext, VersionedServices } from '../goplugin/server';
import { addMultiplexingSupport, multiplexIdOf } from '../goplugin/multiplex';
import { GrpcStorage, withRequestSignal, type RequestSignal, type Storage } from '../storage/storage';
import { UnsupportedOperationError, UnsupportedPathError, UserError, type Response } from './framework';
import { SecretsBackend, type BackendOperation } from './backend';
import type { Engine } from './engine';
import { DEFAULT_ENGINE, engineNamed, engineNames, mountSpecialPaths } from './engines';
import type { LeasedSecret } from './lease';

const OPERATIONS = new Set<string>(['read', 'create', 'update', 'delete', 'list', 'help', 'rollback', 'renew', 'revoke'] satisfies BackendOperation[]);
/** Request data nested deeper than this is refused (a 400) before it is parsed. */
export const MAX_DATA_DEPTH = 64;
// What Vault learns of the plugin, the same in metadata mode and in service: a logical
// (secrets) backend, and the special paths of the engine the mount chose in Setup.
const typeHandler = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { type: 1 });
/** SpecialPaths for the engine Setup recorded under the call's mount; before Setup, the default engine's (no unauthenticated path). */
const specialPathsHandler = (multiplexed: boolean, engineOf: (mountId: string) => Engine | undefined) =>
  perMount(multiplexed, (id, _call, cb) => cb(null, { paths: mountSpecialPaths(engineOf(id) ?? engineNamed(DEFAULT_ENGINE)!) }));
const ERR_INTERNAL = 2,
  ERR_CODED = 3,
  ERR_UNSUPPORTED_OPERATION = 5,
  ERR_UNSUPPORTED_PATH = 6;

/** Vault's pb.LeaseOptions: durations are Go's time.Duration (nanoseconds), int64 decoded as decimal strings. */
interface PbLeaseOptions {
  TTL?: string | number;
  MaxTTL?: string | number;
  renewable?: boolean;
  increment?: string | number;
  issue_time?: { seconds?: string | number; nanos?: number } | null;
}
/** Vault's pb.Secret: internal data as a JSON object. */
interface PbSecret {
  lease_options?: PbLeaseOptions | null;
  internal_data?: string;
  lease_id?: string;
}
interface PbRequest {
  operation?: string;
  path?: string;
  data?: string;
  display_name?: string;
  mount_point?: string;
  secret?: PbSecret | null;
}
interface Mount {
  backend: SecretsBackend;
  storage: Storage;
  /** The broker client of Vault's Storage and SystemView for this mount. */
  client: GrpcClient;
}

/**
 * A handler of one mount's call, given the mount's id by the runtime's one multiplexing
 * rule (goplugin/multiplex.ts); a multiplexed call that names no mount is refused with
 * InvalidArgument, as Vault's own backend server refuses it.
 */
function perMount<Req>(
  multiplexed: boolean,
  fn: (mountId: string, call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => void,
): grpc.handleUnaryCall<Req, unknown> {
  return (call, cb) => {
    const m = multiplexIdOf(call.metadata, multiplexed);
    if ('error' in m) cb({ code: Code.INVALID_ARGUMENT, details: m.error });
    else fn(m.id, call, cb);
  };
}

/** A framework response, or an error, as Vault's pb.Response / pb.ProtoError. */
export function toReply(res: Response | undefined, e?: unknown): { response?: object; err?: object } {
  // Vault's own error types for a path or operation the mount does not have, by the error's class (never its text).
  if (e instanceof UnsupportedPathError) return { err: { err_type: ERR_UNSUPPORTED_PATH, err_msg: e.message, err_code: 0 } };
  if (e instanceof UnsupportedOperationError) return { err: { err_type: ERR_UNSUPPORTED_OPERATION, err_msg: e.message, err_code: 0 } };
  if (e instanceof UserError) {
    if (e.status === 400) {
      // Vault's convention: a response with data.error is sent as HTTP 400 with that message.
      return { response: { data: JSON.stringify({ error: redact(e.message) }), warnings: [] } };
    }
    return { err: { err_type: ERR_CODED, err_msg: redact(e.message), err_code: e.status } };
  }
  if (e) return { err: { err_type: ERR_INTERNAL, err_msg: redact(`internal error: ${(e as Error).message ?? e}`), err_code: 500 } };
  if (!res) return {};
  // A response without data (warnings only) is JSON null: Vault's SDK refuses an empty string (a 500).
  const response = { data: res.data ? JSON.stringify(res.data) : 'null', warnings: res.warnings ?? [] };
  return { response: res.secret ? { ...response, secret: toPbSecret(res.secret) } : response };
}

const NS_PER_SECOND = 1_000_000_000n;
const nanoseconds = (seconds: number | undefined): string => String(BigInt(Math.max(0, Math.floor(seconds ?? 0))) * NS_PER_SECOND);

/** A leased secret as Vault's pb.Secret (Vault starts the lease; the lease id is its own). */
export function toPbSecret(s: LeasedSecret): PbSecret {
  return {
    lease_options: { TTL: nanoseconds(s.ttl), MaxTTL: nanoseconds(s.maxTtl), renewable: s.renewable, increment: nanoseconds(s.increment) },
    internal_data: JSON.stringify(s.internal),
    lease_id: s.leaseId ?? '',
  };
}

/** The secret Vault sends with renew and revoke; undefined if it sent none. Unreadable internal data is a 400. */
export function fromPbSecret(s: PbSecret | null | undefined): LeasedSecret | undefined {
  if (!s) return undefined;
  let internal: unknown = {};
  if (s.internal_data) {
    if (jsonNestedDeeperThan(s.internal_data, MAX_DATA_DEPTH)) throw new UserError(`secret internal data is nested deeper than ${MAX_DATA_DEPTH} levels`);
    try {
      internal = JSON.parse(s.internal_data);
    } catch (e) {
      throw new UserError('secret internal data is not JSON', 400, { cause: e });
    }
  }
  if (!internal || typeof internal !== 'object' || Array.isArray(internal)) internal = {};
  const o = s.lease_options ?? {};
  const issued = o.issue_time?.seconds !== undefined ? Number(o.issue_time.seconds) * 1000 : undefined;
  return {
    internal: internal as Record<string, unknown>,
    ttl: ttlSeconds(o.TTL),
    maxTtl: ttlSeconds(o.MaxTTL),
    increment: ttlSeconds(o.increment),
    renewable: Boolean(o.renewable),
    leaseId: s.lease_id ?? '',
    issueTime: issued && Number.isFinite(issued) ? issued : undefined,
  };
}

/** toReply, where building the reply itself may fail (e.g. JSON.stringify of a cyclic or too deep value): then an error reply. */
function safeReply(build: () => { response?: object; err?: object }): { response?: object; err?: object } {
  try {
    return build();
  } catch (e) {
    return toReply(undefined, new Error(`the response could not be encoded: ${(e as Error).message}`, { cause: e }));
  }
}

/** Does JSON text nest arrays/objects deeper than `max`? One pass, no recursion (so no stack to exhaust). */
export function jsonNestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * A SystemView TTL in whole seconds. Vault sends Go's time.Duration, i.e. nanoseconds, as
 * an int64 (decoded as a decimal string to keep every digit); anything unreadable is 0 (unknown).
 */
export function ttlSeconds(ns: string | number | null | undefined): number {
  try {
    const v = BigInt(ns ?? 0);
    return v > 0n ? Number(v / 1_000_000_000n) : 0;
  } catch {
    return 0;
  }
}

function validEngine(config: Record<string, string> | undefined): { engine: Engine } | { err: string } {
  const name = config?.engine ?? DEFAULT_ENGINE;
  const engine = engineNamed(name);
  return engine ? { engine } : { err: `unknown engine "${String(name).slice(0, 40)}": mount with -options=engine=${engineNames().join(', engine=')}` };
}

/**
 * Metadata mode: Vault 1.8 mounts a plugin by starting it with VAULT_PLUGIN_METADATA_MODE=true
 * over plain gRPC and calling Setup, SpecialPaths, Type and Cleanup, then stops it. That
 * process needs nothing more, and, with no client certificate, anyone local could reach it:
 * so Setup only checks the configuration (no broker dial, no storage: Vault's own plugins
 * would dial the no-op storage it serves then) and every other call is refused.
 */
function registerMetadataOnly(server: ServiceRegistrar, ctx: RuntimeContext, multiplexed: boolean): void {
  const log = ctx.log;
  const refuse = (rpc: string) => (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
    log.warn('refused in metadata mode', { rpc });
    cb({ code: Code.FAILED_PRECONDITION, details: `${rpc} is not served in metadata mode (this process only tells Vault the plugin's type and paths)` });
  };
  // Logged so an operator can see what Vault asks of this process.
  const served =
    <Req>(rpc: string, fn: grpc.handleUnaryCall<Req, unknown>): grpc.handleUnaryCall<Req, unknown> =>
    (call, cb) => {
      log.debug('metadata mode call', { rpc });
      fn(call, cb);
    };
  // The engine each Setup chose, by mount (multiplex id; '' when not multiplexed).
  const engines = new Map<string, Engine>();
  server.addService(serviceDef('pb.Backend'), {
    Setup: served(
      'Setup',
      perMount<{ Config?: Record<string, string> }>(multiplexed, (id, call, cb) => {
        const v = validEngine(call.request.Config);
        if ('engine' in v) engines.set(id, v.engine);
        cb(null, { err: 'err' in v ? v.err : '' });
      }),
    ),
    Type: served('Type', typeHandler),
    SpecialPaths: served(
      'SpecialPaths',
      specialPathsHandler(multiplexed, (id) => engines.get(id)),
    ),
    Cleanup: served('Cleanup', (_call, cb) => cb(null, {})),
    Initialize: refuse('Initialize'),
    InvalidateKey: refuse('InvalidateKey'),
    HandleRequest: refuse('HandleRequest'),
    HandleExistenceCheck: refuse('HandleExistenceCheck'),
  });
}

/**
 * A mount's backend over its broker client of Vault's Storage and SystemView. Made outside
 * the Setup handler: closures made there would keep Setup's call (its stream, metadata and
 * callback) alive for as long as the mount lives.
 */
function openMount(client: GrpcClient, engine: Engine, log: Logger): Mount {
  const storage = new GrpcStorage(client);
  // A mount's TTLs can be tuned at any time: asked when needed, not cached. Unknown (the call failed) is 0.
  const ttlOf = (method: string) => {
    const def = methodDef<object, { TTL?: string | number }>('pb.SystemView', method);
    return () =>
      client.unary(def, {}, { timeoutMs: 5000 }).then(
        (r) => ttlSeconds(r.TTL),
        () => 0,
      );
  };
  const system = { maxLeaseTtl: ttlOf('MaxLeaseTTL'), defaultLeaseTtl: ttlOf('DefaultLeaseTTL') };
  return { backend: new SecretsBackend(storage, log, engine, system), storage, client };
}

function register(multiplexed: boolean) {
  return (server: ServiceRegistrar, ctx: RuntimeContext) => {
    const log: Logger = ctx.log;
    const mounts = new Map<string, Mount>();
    const mountOf = (id: string): Mount => {
      const m = mounts.get(id);
      if (!m) throw new UserError('backend is not set up (Vault calls Setup when it mounts the engine)', 500);
      return m;
    };
    ctx.onShutdown(async () => {
      for (const m of mounts.values()) {
        await m.backend.cleanup();
        m.client.close();
      }
    });

    const requestArgs = (req: PbRequest) => {
      let data: Record<string, unknown> = {};
      if (req.data) {
        if (jsonNestedDeeperThan(req.data, MAX_DATA_DEPTH)) throw new UserError(`request data is nested deeper than ${MAX_DATA_DEPTH} levels`);
        const parsed = JSON.parse(req.data);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) data = parsed;
      }
      return { op: String(req.operation ?? ''), path: String(req.path ?? ''), data, secret: fromPbSecret(req.secret) };
    };

    server.addService(serviceDef('pb.Backend'), {
      Setup: perMount<{ broker_id: number; Config?: Record<string, string>; backendUUID?: string }>(multiplexed, (id, call, cb) => {
        const v = validEngine(call.request.Config);
        if ('err' in v) {
          cb(null, { err: v.err });
          return;
        }
        const { engine } = v;
        ctx.broker.dial(call.request.broker_id).then(
          (client) => {
            const old = mounts.get(id);
            if (old) {
              void old.backend.cleanup();
              old.client.close();
            }
            mounts.set(id, openMount(client, engine, log.named(id ? `mount.${id.slice(0, 8)}` : 'mount')));
            cb(null, { err: '' });
          },
          (e: Error) => cb(null, { err: `cannot reach Vault's storage over the broker: ${e.message}` }),
        );
      }),
      Initialize: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
      Type: typeHandler,
      SpecialPaths: specialPathsHandler(multiplexed, (id) => mounts.get(id)?.backend.engine),
      Cleanup: perMount(multiplexed, (id, _call, cb) => {
        const m = mounts.get(id);
        mounts.delete(id);
        void Promise.resolve(m?.backend.cleanup()).finally(() => {
          m?.client.close();
          cb(null, {});
        });
      }),
      InvalidateKey: perMount<{ key: string }>(multiplexed, (id, call, cb) => {
        mounts.get(id)?.backend.invalidate(call.request.key);
        cb(null, {});
      }),
      HandleRequest: perMount<{ request?: PbRequest }>(multiplexed, (id, call, cb) => {
        let args: ReturnType<typeof requestArgs>;
        try {
          args = requestArgs(call.request.request ?? {});
        } catch (e) {
          cb(null, toReply(undefined, e instanceof UserError ? e : new UserError('request data is not a JSON object', 400, { cause: e })));
          return;
        }
        const { signal: cancelled, release } = cancellation(call);
        const run = async () => {
          if (!OPERATIONS.has(args.op)) throw new UnsupportedOperationError();
          const m = mountOf(id);
          return withRequestSignal(cancelled, () =>
            m.backend.handle(args.op as BackendOperation, args.path, args.data, {
              displayName: call.request.request?.display_name ?? '',
              mountPoint: call.request.request?.mount_point ?? '',
              secret: args.secret,
            }),
          );
        };
        run().then(
          (res) => {
            release();
            cb(
              null,
              safeReply(() => toReply(res)),
            );
          },
          (e) => {
            release();
            if (cancelled.aborted) log.debug('request cancelled by Vault', { path: args.path, operation: args.op });
            else if (!(e instanceof UserError)) log.error('request failed', { path: args.path, operation: args.op, error: (e as Error).message });
            cb(
              null,
              safeReply(() => toReply(undefined, e)),
            );
          },
        );
      }),
      HandleExistenceCheck: perMount<{ request?: PbRequest }>(multiplexed, (id, call, cb) => {
        const req = call.request.request ?? {};
        const { signal: cancelled, release } = cancellation(call);
        Promise.resolve()
          .then(() => {
            // The body as Vault's SDK gives it to an existence check, parsed only if the check reads
            // a field of it; one that does not parse is no answer ("not found"): Vault sends the
            // request on, and it answers the 400.
            const who = { displayName: req.display_name ?? '', mountPoint: req.mount_point ?? '' };
            return withRequestSignal(cancelled, () => mountOf(id).backend.exists(String(req.path ?? ''), () => requestArgs(req).data, who));
          })
          .finally(release)
          .then(
            (r) => cb(null, { check_found: r.found, exists: r.exists }),
            (e) => cb(null, { check_found: false, exists: false, err: safeReply(() => toReply(undefined, e)).err }),
          );
      }),
    });
  };
}

/**
 * A call's cancellation as its storage calls see it (Vault 1.8's only signal: it sets no
 * deadlines). grpc-js sets `call.cancelled` before it emits 'cancelled', and does both after
 * every call, answered ones too: so the flag is read while the call runs, and the call is
 * listened to only while a storage call waits on it. An AbortController and a listener per
 * call cost ~5% of a transit encrypt's CPU; most calls make no storage call at all.
 */
class CallSignal implements RequestSignal {
  private cancelled = false;
  private released = false;
  private waiting?: Set<() => void>;
  private readonly onCancel = (): void => {
    this.cancelled = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    for (const fn of waiting ?? []) fn();
  };

  constructor(private readonly call: grpc.ServerUnaryCall<unknown, unknown>) {}

  get aborted(): boolean {
    if (!this.cancelled && !this.released && this.call.cancelled) this.cancelled = true;
    return this.cancelled;
  }
  addEventListener(_type: 'abort', fn: () => void): void {
    if (this.released || this.aborted) return; // as an AbortSignal: no second abort
    if (!this.waiting) {
      this.waiting = new Set();
      this.call.once('cancelled', this.onCancel);
    }
    this.waiting.add(fn);
  }
  removeEventListener(_type: 'abort', fn: () => void): void {
    this.waiting?.delete(fn);
  }
  /** The reply is being sent: a cancellation from now on is grpc-js closing the stream, not Vault. */
  release(): void {
    if (this.released) return;
    void this.aborted; // a cancellation before the reply stays visible
    this.released = true;
    if (this.waiting) this.call.removeListener('cancelled', this.onCancel);
    this.waiting = undefined;
  }
}

export function cancellation(call: grpc.ServerUnaryCall<unknown, unknown>): { signal: RequestSignal; release(): void } {
  const signal = new CallSignal(call);
  return { signal, release: () => signal.release() };
}

/** The secrets role's services by protocol version: 4 serves one mount (Vault 1.8), 5 many (multiplexed). */
export function backendVersions(): VersionedServices {
  const role = (multiplexed: boolean) => (server: ServiceRegistrar, ctx: RuntimeContext) => {
    if (ctx.env.metadataMode) registerMetadataOnly(server, ctx, multiplexed);
    else register(multiplexed)(server, ctx);
    addMultiplexingSupport(server, multiplexed);
  };
  return { 4: role(false), 5: role(true) };
}
