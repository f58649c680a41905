// gRPC health service (grpc.health.v1.Health), which go-plugin's client checks on the
// "plugin" service to know the plugin is up.
import type * as grpc from '@grpc/grpc-js';
import { Code } from './grpc-wire';
import { serviceDef } from './protos';
import type { ServiceRegistrar } from './grpc-server';

/** The services the health check answers SERVING for: the server as a whole ('') and go-plugin's "plugin". */
const SERVED = new Set(['', 'plugin']);

/** Serve the health check: SERVING for the plugin, NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch) for anything else. */
export function addHealthService(server: ServiceRegistrar): void {
  server.addService(serviceDef('grpc.health.v1.Health'), {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const svc = call.request.service;
      if (SERVED.has(svc)) cb(null, { status: 'SERVING' });
      else cb({ code: Code.NOT_FOUND, details: `unknown service ${svc}` });
    },
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      call.write({ status: SERVED.has(call.request.service) ? 'SERVING' : 'SERVICE_UNKNOWN' });
    },
  });
}
