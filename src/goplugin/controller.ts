// go-plugin's controller service (plugin.GRPCController): the client asks the plugin to stop.
import type * as grpc from '@grpc/grpc-js';
import { serviceDef } from './protos';
import type { ServiceRegistrar } from './grpc-server';

/** Serve Shutdown: answer first, then stop and exit (the client waits for the process to exit). */
export function addControllerService(server: ServiceRegistrar, shutdown: (reason: string) => Promise<void>, exit: (code: number) => void): void {
  server.addService(serviceDef('plugin.GRPCController'), {
    Shutdown: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      cb(null, {});
      setImmediate(() => void shutdown('controller Shutdown').then(() => exit(0)));
    },
  });
}
