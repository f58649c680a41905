// go-plugin's stdio service (plugin.GRPCStdio). Our output goes straight to the inherited
// stderr/stdout pipes, which the client already reads; the stream only stays open so
// newer clients see support, and ends when the plugin shuts down.
import type * as grpc from '@grpc/grpc-js';
import { serviceDef } from './protos';
import type { ServiceRegistrar } from './grpc-server';

/** Serve StreamStdio; `onShutdown` registers the stream's end and returns how to unregister it. */
export function addStdioService(server: ServiceRegistrar, onShutdown: (fn: () => void) => () => void): void {
  server.addService(serviceDef('plugin.GRPCStdio'), {
    StreamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const unregister = onShutdown(() => void call.end());
      call.on('cancelled', unregister);
    },
  });
}
