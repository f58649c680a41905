// Secrets-engine (logical backend) role. Filled in by the secrets-engine work; until then
// it serves only go-plugin's own services so a misconfigured mount fails with a clear error.
import * as grpc from '@grpc/grpc-js';
import type { VersionedServices } from '../goplugin/server';

export function backendVersions(): VersionedServices {
  return {
    4: (_server: grpc.Server) => undefined,
    5: (_server: grpc.Server) => undefined,
  };
}
