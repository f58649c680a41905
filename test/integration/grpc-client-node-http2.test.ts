// grpc-client.test.ts again, with GrpcClient on node:http2 (VAULT_PLUGIN_TS_HTTP2=node, the
// fallback to the default HTTP/2 layer of our own; read when a client connects).
import { afterAll } from 'vitest';

const before = process.env.VAULT_PLUGIN_TS_HTTP2;
process.env.VAULT_PLUGIN_TS_HTTP2 = 'node';
afterAll(() => {
  if (before === undefined) delete process.env.VAULT_PLUGIN_TS_HTTP2;
  else process.env.VAULT_PLUGIN_TS_HTTP2 = before;
});

await import('./grpc-client.test');
