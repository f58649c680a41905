// gRPC binding of the database role: dbplugin.v5.Database plus Vault's multiplexing
// probe. Version 6 = v5 messages with one process serving many database configs,
// each call naming its instance in the `multiplex_id` metadata; version 5 = one instance.
import * as grpc from '@grpc/grpc-js';
import { serviceDef } from '../goplugin/protos';
import type { RuntimeContext, VersionedServices } from '../goplugin/server';
import { fromStruct, fromTimestamp, toStruct, type PbStruct, type PbTimestamp } from '../goplugin/wellknown';
import type { Logger } from '../goplugin/log';
import { SqlDatabase } from './sql-database';
import type { CallBounds } from './bounds';
import { invalid, precondition, toGrpcError } from './errors';

export const TYPE_NAME = 'vault-plugin-ts';
const SINGLE = '';

interface Statements { Commands?: string[] }
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

/** The database instances of this process, by multiplex id. */
export class Instances {
  private readonly dbs = new Map<string, SqlDatabase>();
  constructor(private readonly log: Logger) {}

  get(id: string): SqlDatabase {
    const db = this.dbs.get(id);
    if (!db) throw precondition('database connection is not initialized (Vault re-initializes it from the stored config; check the config write succeeded)');
    return db;
  }

  /** Replace (or create) an instance; the old one closes only after the new one is ready. */
  async initialize(id: string, raw: Record<string, unknown>, verify: boolean): Promise<SqlDatabase> {
    const db = await SqlDatabase.open(raw, verify, this.log.named(id ? `db.${id.slice(0, 12)}` : 'db'));
    const old = this.dbs.get(id);
    this.dbs.set(id, db);
    if (old) void old.close();
    return db;
  }

  async close(id: string): Promise<void> {
    const db = this.dbs.get(id);
    this.dbs.delete(id);
    await db?.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.dbs.values()];
    this.dbs.clear();
    await Promise.all(all.map((d) => d.close()));
  }

  get size(): number { return this.dbs.size; }
}

function multiplexId(call: grpc.ServerUnaryCall<unknown, unknown>, multiplexed: boolean): string {
  if (!multiplexed) return SINGLE;
  const v = call.metadata.get('multiplex_id');
  if (v.length !== 1 || typeof v[0] !== 'string' || !v[0]) throw invalid('missing or ambiguous multiplex_id metadata');
  return v[0];
}

export function databaseService(instances: Instances, multiplexed: boolean, log: Logger): grpc.UntypedServiceImplementation {
  // Each handler: resolve the instance, run, map any failure to a redacted gRPC status.
  const unary = <Req, Res>(name: string, fn: (req: Req, id: string, bounds: CallBounds) => Promise<Res>, secretsOf: (req: Req, id: string) => string[]): Handler<Req, Res> =>
    (call, cb) => {
      let id = SINGLE;
      try {
        id = multiplexId(call as grpc.ServerUnaryCall<unknown, unknown>, multiplexed);
      } catch (e) {
        cb(toGrpcError(e, [], name) as grpc.ServiceError);
        return;
      }
      fn(call.request, id, boundsOf(call as grpc.ServerUnaryCall<unknown, unknown>)).then(
        (res) => cb(null, res),
        (e) => {
          const secrets = (() => { try { return secretsOf(call.request, id); } catch { return []; } })();
          const err = toGrpcError(e, secrets, name);
          log.debug('call failed', { method: name, code: grpc.status[err.code], error: err.details });
          cb(err as grpc.ServiceError);
        },
      );
    };
  const instanceSecrets = (id: string) => { try { return instances.get(id).secrets(); } catch { return []; } };

  return {
    Initialize: unary<{ config_data?: PbStruct; verify_connection?: boolean }, { config_data: PbStruct }>(
      'Initialize',
      async (req, id) => {
        const raw = fromStruct(req.config_data);
        await instances.initialize(id, raw, !!req.verify_connection);
        // Vault stores what we return and sends it back after restarts: return it as given.
        return { config_data: toStruct(raw) };
      },
      (req) => Object.entries(fromStruct(req.config_data)).filter(([k]) => /password|sslkey|connection_url/.test(k)).map(([, v]) => String(v)),
    ),
    NewUser: unary<{ username_config?: { display_name?: string; role_name?: string }; password?: string; expiration?: PbTimestamp; statements?: Statements; credential_type?: number }, { username: string }>(
      'NewUser',
      async (req, id, bounds) => ({
        username: await instances.get(id).newUser({
          ...bounds,
          displayName: req.username_config?.display_name ?? '',
          roleName: req.username_config?.role_name ?? '',
          password: req.password ?? '',
          expiration: fromTimestamp(req.expiration),
          statements: commands(req.statements),
          credentialType: req.credential_type ?? 0,
        }),
      }),
      (req, id) => [req.password ?? '', ...instanceSecrets(id)],
    ),
    UpdateUser: unary<{
      username?: string;
      password?: { new_password?: string; statements?: Statements } | null;
      expiration?: { new_expiration?: PbTimestamp; statements?: Statements } | null;
      public_key?: { new_public_key?: Buffer } | null;
      credential_type?: number;
      self_managed_password?: string;
    }, Record<string, never>>(
      'UpdateUser',
      async (req, id, bounds) => {
        await instances.get(id).updateUser({
          ...bounds,
          username: req.username ?? '',
          password: req.password ? { newPassword: req.password.new_password ?? '', statements: commands(req.password.statements) } : undefined,
          expiration: req.expiration ? { newExpiration: fromTimestamp(req.expiration.new_expiration), statements: commands(req.expiration.statements) } : undefined,
          publicKey: !!req.public_key && (req.public_key.new_public_key?.length ?? 0) > 0,
          credentialType: req.credential_type,
          selfManagedPassword: req.self_managed_password || undefined,
        });
        return {};
      },
      (req, id) => [req.password?.new_password ?? '', req.self_managed_password ?? '', ...instanceSecrets(id)],
    ),
    DeleteUser: unary<{ username?: string; statements?: Statements }, Record<string, never>>(
      'DeleteUser',
      async (req, id, bounds) => {
        await instances.get(id).deleteUser(req.username ?? '', commands(req.statements), bounds);
        return {};
      },
      (_req, id) => instanceSecrets(id),
    ),
    Type: (_call: unknown, cb: grpc.sendUnaryData<{ Type: string }>) => cb(null, { Type: TYPE_NAME }),
    Close: unary<unknown, Record<string, never>>(
      'Close',
      async (_req, id) => {
        await instances.close(id);
        return {};
      },
      () => [],
    ),
  };
}

function register(multiplexed: boolean) {
  return (server: grpc.Server, ctx: RuntimeContext) => {
    const instances = new Instances(ctx.log);
    ctx.onShutdown(() => instances.closeAll());
    server.addService(serviceDef('dbplugin.v5.Database'), databaseService(instances, multiplexed, ctx.log));
    server.addService(serviceDef('pluginutil.multiplexing.PluginMultiplexing'), {
      MultiplexingSupport: (_call: unknown, cb: grpc.sendUnaryData<{ supported: boolean }>) => cb(null, { supported: multiplexed }),
    });
  };
}

export function databaseVersions(): VersionedServices {
  return { 5: register(false), 6: register(true) };
}
