// gRPC binding of the database role: dbplugin.v5.Database plus Vault's multiplexing
// probe. Version 6 = v5 messages with one process serving many database configs,
// each call naming its instance in the `multiplex_id` metadata; version 5 = one instance.
// This file only converts: protobuf messages to the plain requests of database.ts and
// back, and PluginErrors to gRPC statuses. What the calls do is in sql-database.ts; what
// their errors may say, in sanitizing-database.ts.
import type * as grpc from '@grpc/grpc-js';
import { serviceDef } from '../goplugin/protos';
import type { ServiceRegistrar } from '../goplugin/grpc-server';
import type { RuntimeContext, VersionedServices } from '../goplugin/server';
import { fromStruct, fromTimestamp, toStruct, type PbStruct, type PbTimestamp } from '../goplugin/wellknown';
import type { CallBounds } from './bounds';
import { TYPE_NAME } from './database';
import { invalid } from './errors';
import { Instances } from './instances';
import { sanitizeError } from './sanitizing-database';
import { SINGLE_INSTANCE, addMultiplexingSupport, multiplexIdOf } from '../goplugin/multiplex';

export { TYPE_NAME };
const SINGLE = SINGLE_INSTANCE;

interface Statements {
  Commands?: string[];
}
const commands = (s: Statements | null | undefined) => s?.Commands ?? [];

/** The caller's deadline (epoch ms, if it set one) and a signal aborted when it cancels the call. */
function boundsOf(call: grpc.ServerUnaryCall<unknown, unknown>): CallBounds {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  return { deadline: Number.isFinite(ms) ? ms : undefined, signal: ac.signal };
}

type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;

function multiplexId(call: grpc.ServerUnaryCall<unknown, unknown>, multiplexed: boolean): string {
  const m = multiplexIdOf(call.metadata, multiplexed);
  if ('error' in m) throw invalid(m.error);
  return m.id;
}

/** A gRPC status for an error. Calls' errors come sanitized already; anything else (no instance, no id) carries no secret but is sanitized all the same. */
function toStatus(e: unknown, method: string): Partial<grpc.StatusObject> {
  const err = sanitizeError(e, [], method);
  return { code: err.code as number as grpc.status, details: err.message };
}

interface NewUserMsg {
  username_config?: { display_name?: string; role_name?: string };
  password?: string;
  expiration?: PbTimestamp;
  statements?: Statements;
  credential_type?: number;
}
interface UpdateUserMsg {
  username?: string;
  password?: { new_password?: string; statements?: Statements } | null;
  expiration?: { new_expiration?: PbTimestamp; statements?: Statements } | null;
  public_key?: { new_public_key?: Buffer } | null;
  credential_type?: number;
  self_managed_password?: string;
}
type Empty = Record<string, never>;

/** The gRPC service of dbplugin v5 over the instances (multiplexed or not). */
export function databaseService(instances: Instances, multiplexed: boolean): grpc.UntypedServiceImplementation {
  // Each handler: resolve the instance id, convert the request, run, convert the reply or the error.
  const unary =
    <Req, Res>(name: string, fn: (req: Req, id: string, bounds: CallBounds) => Promise<Res>): Handler<Req, Res> =>
    (call, cb) => {
      let id = SINGLE;
      try {
        id = multiplexId(call as grpc.ServerUnaryCall<unknown, unknown>, multiplexed);
      } catch (e) {
        cb(toStatus(e, name));
        return;
      }
      Promise.resolve()
        .then(() => fn(call.request, id, boundsOf(call as grpc.ServerUnaryCall<unknown, unknown>)))
        .then(
          (res) => cb(null, res),
          (e) => cb(toStatus(e, name)),
        );
    };

  return {
    Initialize: unary<{ config_data?: PbStruct; verify_connection?: boolean }, { config_data: PbStruct }>('Initialize', async (req, id) => {
      const res = await instances.initialize(id, { config: fromStruct(req.config_data), verifyConnection: !!req.verify_connection });
      return { config_data: toStruct(res.config) };
    }),
    NewUser: unary<NewUserMsg, { username: string }>('NewUser', (req, id, bounds) =>
      instances.get(id).newUser({
        ...bounds,
        displayName: req.username_config?.display_name ?? '',
        roleName: req.username_config?.role_name ?? '',
        password: req.password ?? '',
        expiration: fromTimestamp(req.expiration),
        statements: commands(req.statements),
        credentialType: req.credential_type ?? 0,
      }),
    ),
    UpdateUser: unary<UpdateUserMsg, Empty>('UpdateUser', (req, id, bounds) =>
      instances.get(id).updateUser({
        ...bounds,
        username: req.username ?? '',
        password: req.password ? { newPassword: req.password.new_password ?? '', statements: commands(req.password.statements) } : undefined,
        expiration: req.expiration
          ? { newExpiration: fromTimestamp(req.expiration.new_expiration), statements: commands(req.expiration.statements) }
          : undefined,
        publicKey: !!req.public_key && (req.public_key.new_public_key?.length ?? 0) > 0,
        credentialType: req.credential_type,
        selfManagedPassword: req.self_managed_password || undefined,
      }),
    ),
    DeleteUser: unary<{ username?: string; statements?: Statements }, Empty>('DeleteUser', (req, id, bounds) =>
      instances.get(id).deleteUser({ ...bounds, username: req.username ?? '', statements: commands(req.statements) }),
    ),
    Type: (_call: unknown, cb: grpc.sendUnaryData<{ Type: string }>) => cb(null, { Type: TYPE_NAME }),
    Close: unary<unknown, Empty>('Close', async (_req, id) => {
      await instances.close(id);
      return {};
    }),
  };
}

function register(multiplexed: boolean) {
  return (server: ServiceRegistrar, ctx: RuntimeContext) => {
    const instances = new Instances(ctx.log);
    ctx.onShutdown(() => instances.closeAll());
    server.addService(serviceDef('dbplugin.v5.Database'), databaseService(instances, multiplexed));
    addMultiplexingSupport(server, multiplexed);
  };
}

/** The dbplugin services by go-plugin protocol version: 5 single, 6 multiplexed. */
export function databaseVersions(): VersionedServices {
  return { 5: register(false), 6: register(true) };
}
