// Loads the wire contracts in proto/. In the single executable the files are not on
// disk, so the build embeds their text as __EMBEDDED_PROTOS__; in development and
// tests they are read from the repository.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';

declare const __EMBEDDED_PROTOS__: Record<string, string> | undefined;

const WELL_KNOWN = ['google/protobuf/empty.proto', 'google/protobuf/struct.proto', 'google/protobuf/timestamp.proto'];

/** How @grpc/proto-loader decodes messages: field names as in the .proto, 64-bit ints as strings, defaults filled. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

function protoSources(): Record<string, string> {
  if (typeof __EMBEDDED_PROTOS__ !== 'undefined') return __EMBEDDED_PROTOS__;
  const dir = path.resolve(__dirname, '..', '..', 'proto');
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.proto')) out[f] = fs.readFileSync(path.join(dir, f), 'utf8');
  return out;
}

let cached: grpc.GrpcObject | undefined;

/** All services and messages of proto/, as one grpc-js object tree (built once). */
export function loadProtos(): grpc.GrpcObject {
  if (cached) return cached;
  const root = new protobuf.Root();
  for (const wk of WELL_KNOWN) {
    const json = protobuf.common.get(wk);
    if (json) root.addJSON(json.nested as Record<string, protobuf.AnyNestedObject>);
  }
  for (const text of Object.values(protoSources())) protobuf.parse(text, root, { keepCase: true });
  root.resolveAll();
  const def = protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS);
  cached = grpc.loadPackageDefinition(def);
  return cached;
}

/** A client constructor for a service by its dotted name, e.g. "dbplugin.v5.Database". */
export function clientCtor(dotted: string): grpc.ServiceClientConstructor {
  let node: unknown = loadProtos();
  for (const part of dotted.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  const ctor = node as grpc.ServiceClientConstructor | undefined;
  if (!ctor?.service) throw new Error(`unknown gRPC service ${dotted}`);
  return ctor;
}

/** The service definition a server registers handlers for. */
export function serviceDef(dotted: string): grpc.ServiceDefinition {
  return clientCtor(dotted).service;
}

/** One method of a service by name, typed by its caller (what grpc-client.ts calls). */
export function methodDef<Req, Res>(dotted: string, name: string): grpc.MethodDefinition<Req, Res> {
  const m = serviceDef(dotted)[name];
  if (!m) throw new Error(`unknown gRPC method ${dotted}/${name}`);
  return m as grpc.MethodDefinition<Req, Res>;
}
