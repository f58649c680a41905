// gRPC binding of the secrets-engine role: Vault's pb.Backend service. Version 4 serves
// one mount per process; version 5 many, each call naming its mount in the
// `multiplex_id` metadata. Setup dials the broker id Vault gives to reach its Storage:
// every piece of state goes there, none stays in the process.
import * as grpc from '@grpc/grpc-js';
import { clientCtor, serviceDef } from '../goplugin/protos';
import { Broker } from '../goplugin/broker';
import { redact, type Logger } from '../goplugin/log';
import type { RuntimeContext, VersionedServices } from '../goplugin/server';
import { GrpcStorage, type Storage } from '../storage/storage';
import { UserError, type Operation, type Response } from './framework';
import { ENGINES, SecretsBackend, type Engine } from './backend';

const OPERATIONS = new Set(['read', 'create', 'update', 'delete', 'list', 'help', 'rollback']);
const ERR_INTERNAL = 2, ERR_CODED = 3, ERR_UNSUPPORTED_OPERATION = 5, ERR_UNSUPPORTED_PATH = 6;

interface PbRequest { operation?: string; path?: string; data?: string; display_name?: string; mount_point?: string }
interface Mount { backend: SecretsBackend; storage: Storage; channel: grpc.Channel }

function multiplexId(call: grpc.ServerUnaryCall<unknown, unknown>, multiplexed: boolean): string {
  if (!multiplexed) return '';
  const v = call.metadata.get('multiplex_id');
  return typeof v[0] === 'string' ? v[0] : '';
}

/** A framework response, or an error, as Vault's pb.Response / pb.ProtoError. */
export function toReply(res: Response | undefined, e?: unknown): { response?: object; err?: object } {
  if (e instanceof UserError) {
    if (e.status === 404 && e.message === 'unsupported path') return { err: { err_type: ERR_UNSUPPORTED_PATH, err_msg: 'unsupported path', err_code: 0 } };
    if (e.status === 405) return { err: { err_type: ERR_UNSUPPORTED_OPERATION, err_msg: 'unsupported operation', err_code: 0 } };
    if (e.status === 400) {
      // Vault's convention: a response with data.error is sent as HTTP 400 with that message.
      return { response: { data: JSON.stringify({ error: redact(e.message) }), warnings: [] } };
    }
    return { err: { err_type: ERR_CODED, err_msg: redact(e.message), err_code: e.status } };
  }
  if (e) return { err: { err_type: ERR_INTERNAL, err_msg: redact(`internal error: ${(e as Error).message ?? e}`), err_code: 500 } };
  if (!res) return {};
  return { response: { data: res.data ? JSON.stringify(res.data) : '', warnings: res.warnings ?? [] } };
}

function register(multiplexed: boolean) {
  return (server: grpc.Server, ctx: RuntimeContext) => {
    const log: Logger = ctx.log;
    const mounts = new Map<string, Mount>();
    const mountOf = (id: string): Mount => {
      const m = mounts.get(id);
      if (!m) throw new UserError('backend is not set up (Vault calls Setup when it mounts the engine)', 500);
      return m;
    };
    ctx.onShutdown(async () => { for (const m of mounts.values()) { await m.backend.cleanup(); m.channel.close(); } });

    const requestArgs = (req: PbRequest) => {
      let data: Record<string, unknown> = {};
      if (req.data) {
        const parsed = JSON.parse(req.data);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) data = parsed;
      }
      return { op: String(req.operation ?? ''), path: String(req.path ?? ''), data };
    };

    server.addService(serviceDef('pb.Backend'), {
      Setup: (call: grpc.ServerUnaryCall<{ broker_id: number; Config?: Record<string, string>; backendUUID?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const id = multiplexId(call, multiplexed);
        const engine = (call.request.Config?.engine ?? 'transit') as Engine;
        if (!ENGINES.includes(engine)) {
          cb(null, { err: `unknown engine "${String(engine).slice(0, 40)}": mount with -options=engine=transit or engine=pki` });
          return;
        }
        ctx.broker.dialChannel(call.request.broker_id).then((channel) => {
          const storage = new GrpcStorage(Broker.client(channel, clientCtor('pb.Storage')), () => new grpc.Metadata());
          const sys = Broker.client(channel, clientCtor('pb.SystemView'));
          const system = {
            maxLeaseTtl: () => new Promise<number>((resolve) => (sys as unknown as { MaxLeaseTTL: Function }).MaxLeaseTTL({}, { deadline: Date.now() + 5000 },
              (e: Error | null, r: { TTL?: string | number }) => resolve(e ? 0 : Number(r?.TTL ?? 0)))),
          };
          const old = mounts.get(id);
          if (old) { void old.backend.cleanup(); old.channel.close(); }
          mounts.set(id, { backend: new SecretsBackend(storage, log.named(id ? `mount.${id.slice(0, 8)}` : 'mount'), engine, system), storage, channel });
          cb(null, { err: '' });
        }, (e: Error) => cb(null, { err: `cannot reach Vault's storage over the broker: ${e.message}` }));
      },
      Initialize: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
      Type: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { type: 1 }),
      SpecialPaths: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { paths: { root: [], unauthenticated: [], local_storage: [], seal_wrap_storage: ['managed-keys/'] } }),
      Cleanup: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const id = multiplexId(call, multiplexed);
        const m = mounts.get(id);
        mounts.delete(id);
        void Promise.resolve(m?.backend.cleanup()).finally(() => { m?.channel.close(); cb(null, {}); });
      },
      InvalidateKey: (call: grpc.ServerUnaryCall<{ key: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        mounts.get(multiplexId(call, multiplexed))?.backend.invalidate(call.request.key);
        cb(null, {});
      },
      HandleRequest: (call: grpc.ServerUnaryCall<{ request?: PbRequest }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        let args: ReturnType<typeof requestArgs>;
        try {
          args = requestArgs(call.request.request ?? {});
        } catch {
          cb(null, toReply(undefined, new UserError('request data is not a JSON object')));
          return;
        }
        const run = async () => {
          if (!OPERATIONS.has(args.op)) throw new UserError('unsupported operation', 405);
          const m = mountOf(multiplexId(call, multiplexed));
          return m.backend.handle(args.op as Operation | 'rollback', args.path, args.data, {
            displayName: call.request.request?.display_name ?? '', mountPoint: call.request.request?.mount_point ?? '',
          });
        };
        run().then((res) => cb(null, toReply(res)), (e) => {
          if (!(e instanceof UserError)) log.error('request failed', { path: args.path, operation: args.op, error: (e as Error).message });
          cb(null, toReply(undefined, e));
        });
      },
      HandleExistenceCheck: (call: grpc.ServerUnaryCall<{ request?: PbRequest }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const path = String(call.request.request?.path ?? '');
        Promise.resolve().then(() => mountOf(multiplexId(call, multiplexed)).backend.exists(path)).then(
          (r) => cb(null, { check_found: r.found, exists: r.exists }),
          (e) => cb(null, { check_found: false, exists: false, err: toReply(undefined, e).err }),
        );
      },
    });
    server.addService(serviceDef('pluginutil.multiplexing.PluginMultiplexing'), {
      MultiplexingSupport: (_call: unknown, cb: grpc.sendUnaryData<{ supported: boolean }>) => cb(null, { supported: multiplexed }),
    });
  };
}

export function backendVersions(): VersionedServices {
  return { 4: register(false), 5: register(true) };
}

