// grpc-server.test.ts again, with GrpcServer on node:http2 (VAULT_PLUGIN_TS_HTTP2=node, the
// fallback to the default HTTP/2 layer of our own; read when the server listens).
import { afterAll, describe, expect, it } from 'vitest';
import { http2Layer } from '../../src/goplugin/grpc-server';

const before = process.env.VAULT_PLUGIN_TS_HTTP2;
process.env.VAULT_PLUGIN_TS_HTTP2 = 'node';
afterAll(() => {
  if (before === undefined) delete process.env.VAULT_PLUGIN_TS_HTTP2;
  else process.env.VAULT_PLUGIN_TS_HTTP2 = before;
});

describe('VAULT_PLUGIN_TS_HTTP2', () => {
  it('is js (our own HTTP/2 layer) unless set to node; any other value is refused with its name', () => {
    expect(http2Layer({})).toBe('js');
    expect(http2Layer({ VAULT_PLUGIN_TS_HTTP2: '' })).toBe('js');
    expect(http2Layer({ VAULT_PLUGIN_TS_HTTP2: 'js' })).toBe('js');
    expect(http2Layer({ VAULT_PLUGIN_TS_HTTP2: 'node' })).toBe('node');
    expect(() => http2Layer({ VAULT_PLUGIN_TS_HTTP2: 'nghttp2' })).toThrow(/VAULT_PLUGIN_TS_HTTP2 must be js \(the default\) or node, got "nghttp2"/);
  });
});

await import('./grpc-server.test');
