// gRPC binding of the database role: dbplugin.v5.Database plus Vault's multiplexing
// probe. Version 6 = v5 messages with one process serving many database configs,
// each call naming its instance in the `multiplex_id` metadata; version 5 = one instance.
import * as grpc from '@grpc/grpc-js';
import { serviceDef } from '../goplugin/protos';
import type { RuntimeContext, VersionedServices } from '../goplugin/server';

const TYPE_NAME = 'vault-plugin-ts';

function unimplemented(_call: unknown, cb: grpc.sendUnaryData<unknown>): void {
  cb({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented yet' });
}

function register(multiplexed: boolean) {
  return (server: grpc.Server, _ctx: RuntimeContext) => {
    server.addService(serviceDef('dbplugin.v5.Database'), {
      Initialize: unimplemented,
      NewUser: unimplemented,
      UpdateUser: unimplemented,
      DeleteUser: unimplemented,
      Type: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { Type: TYPE_NAME }),
      Close: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    });
    server.addService(serviceDef('pluginutil.multiplexing.PluginMultiplexing'), {
      MultiplexingSupport: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { supported: multiplexed }),
    });
  };
}

export function databaseVersions(): VersionedServices {
  return { 5: register(false), 6: register(true) };
}
