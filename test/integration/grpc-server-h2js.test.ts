// grpc-server.test.ts again, with GrpcServer on our own HTTP/2 layer (src/goplugin/h2/,
// VAULT_PLUGIN_TS_HTTP2=js, read when the server listens, in that file's beforeAll).
import { afterAll } from 'vitest';

const before = process.env.VAULT_PLUGIN_TS_HTTP2;
process.env.VAULT_PLUGIN_TS_HTTP2 = 'js';
afterAll(() => {
  if (before === undefined) delete process.env.VAULT_PLUGIN_TS_HTTP2;
  else process.env.VAULT_PLUGIN_TS_HTTP2 = before;
});
await import('./grpc-server.test');
