// grpc-js client classes for the plugin's services, for tests and benchmarks that act as
// the host. The plugin itself never loads grpc-js (src/goplugin/protos.ts).
import * as grpc from '@grpc/grpc-js';
import { serviceDef } from '../../src/goplugin/protos';

/** A client constructor for a service by its dotted name, e.g. "dbplugin.v5.Database". */
export function clientCtor(dotted: string): grpc.ServiceClientConstructor {
  return grpc.makeClientConstructor(serviceDef(dotted), dotted);
}
