// Loads the wire contracts in proto/. In the single executable the files are not on
// disk, so the build embeds their text as __EMBEDDED_PROTOS__; in development and
// tests they are read from the repository.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';

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

let cached: protoLoader.PackageDefinition | undefined;

/**
 * All services and messages of proto/, by their dotted names (built once). The services are
 * proto-loader's own definitions; grpc-js (whose loadPackageDefinition only wraps them in
 * client classes) is not needed, so the plugin starts without loading it.
 */
export function loadProtos(): protoLoader.PackageDefinition {
  if (cached) return cached;
  const root = new protobuf.Root();
  for (const wk of WELL_KNOWN) {
    const json = protobuf.common.get(wk);
    if (json) root.addJSON(json.nested as Record<string, protobuf.AnyNestedObject>);
  }
  for (const text of Object.values(protoSources())) protobuf.parse(text, root, { keepCase: true });
  root.resolveAll();
  cached = protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS);
  return cached;
}

/** The service definition a server registers handlers for, by its dotted name, e.g. "dbplugin.v5.Database". */
export function serviceDef(dotted: string): grpc.ServiceDefinition {
  const all = loadProtos();
  const def = Object.hasOwn(all, dotted) ? all[dotted] : undefined;
  // A message type has a `format`; a service is a map of its methods.
  if (!def || 'format' in def) throw new Error(`unknown gRPC service ${dotted}`);
  return def as grpc.ServiceDefinition;
}

/** One method of a service by name, typed by its caller (what grpc-client.ts calls). */
export function methodDef<Req, Res>(dotted: string, name: string): grpc.MethodDefinition<Req, Res> {
  const service = serviceDef(dotted);
  const m = Object.hasOwn(service, name) ? service[name] : undefined;
  if (!m) throw new Error(`unknown gRPC method ${dotted}/${name}`);
  return m as grpc.MethodDefinition<Req, Res>;
}
