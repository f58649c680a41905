// Vault's plugin multiplexing, for both roles: one process serving many mounts (secrets)
// or database configs, each call naming its instance in the `multiplex_id` metadata.
//
// The rule is Vault's own (sdk/helper/pluginutil GetMultiplexIDFromContext, and its
// backend and dbplugin servers): a process serving the single-instance protocol version
// never reads the id (every call is its one instance); one serving the multiplexed
// version needs exactly one non-empty id on every call and refuses a call without.
// Vault 1.8 never multiplexes: it negotiates the single-instance versions (secrets 4,
// database 5) and sends no id, so it is never asked for one.
import type * as grpc from '@grpc/grpc-js';
import { serviceDef } from './protos';
import type { CallMetadata, ServiceRegistrar } from './grpc-server';

/** The metadata key Vault's client puts the instance id under. */
export const MULTIPLEX_ID_KEY = 'multiplex_id';
/** The id of the one instance of a process that does not multiplex. */
export const SINGLE_INSTANCE = '';

/** A call's instance id, or why the call names none. */
export type MultiplexId = { id: string } | { error: string };

/** The instance a call is for, under the negotiated protocol (multiplexed or not). */
export function multiplexIdOf(metadata: CallMetadata, multiplexed: boolean): MultiplexId {
  if (!multiplexed) return { id: SINGLE_INSTANCE };
  const ids = metadata.get(MULTIPLEX_ID_KEY);
  if (ids.length === 0) return { error: `no ${MULTIPLEX_ID_KEY} in the call's metadata (required when the plugin is multiplexed)` };
  if (ids.length !== 1) return { error: `${ids.length} ${MULTIPLEX_ID_KEY} values in the call's metadata; expected one` };
  const id = ids[0];
  if (typeof id !== 'string' || id === '') return { error: `empty ${MULTIPLEX_ID_KEY} in the call's metadata` };
  return { id };
}

/** Serve Vault's multiplexing probe: whether this protocol version multiplexes. */
export function addMultiplexingSupport(server: ServiceRegistrar, multiplexed: boolean): void {
  server.addService(serviceDef('pluginutil.multiplexing.PluginMultiplexing'), {
    MultiplexingSupport: (_call: unknown, cb: grpc.sendUnaryData<{ supported: boolean }>) => cb(null, { supported: multiplexed }),
  });
}
