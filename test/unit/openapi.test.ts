// The OpenAPI document a mount hands Vault (help on its root): paths expanded from the
// declared patterns as Vault's generator expands them, operations from the handlers.
import { describe, expect, it } from 'vitest';
import { expandPattern } from '../../src/secrets/openapi';
import { SecretsBackend } from '../../src/secrets/backend';
import { MemoryStorage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';

describe('expandPattern', () => {
  it.each([
    ['keys/?', ['/keys']],
    ['keys/(?<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})/rotate', ['/keys/{name}/rotate']],
    ['sign/(?<name>[A-Za-z0-9]{0,127})(?:/(?<urlalgorithm>sha2-256|none))?', ['/sign/{name}/{urlalgorithm}', '/sign/{name}']],
    ['restore(?:/(?<name>[A-Za-z0-9]+))?', ['/restore/{name}', '/restore']],
    ['random(?:/(?<urlbytes>\\d+))?', ['/random/{urlbytes}', '/random']],
    ['crl(?<pem>/pem)?', ['/crl/pem', '/crl']],
    ['cert/(?<serial>ca|[0-9A-Fa-f:-]+)', ['/cert/{serial}']],
    ['(?:cert/)?ca_chain', ['/cert/ca_chain', '/ca_chain']],
  ])('%s', (pattern, paths) => expect(expandPattern(pattern)).toEqual(paths));
});

describe('help on the mount root carries the openapi document Vault merges', () => {
  it('transit: every path with its operations, parameters and body fields', async () => {
    const be = new SecretsBackend(new MemoryStorage(), createLogger({ level: 'error', sink: () => undefined }));
    const res = await be.handle('help' as never, '', {}, { displayName: 'token', mountPoint: 'transit/' });
    const doc = (res as { data: { openapi: { openapi: string; paths: Record<string, any> } } }).data.openapi;
    expect(doc.openapi).toBe('3.0.2');
    const enc = doc.paths['/encrypt/{name}'];
    expect(enc['x-vault-createSupported']).toBe(true);
    expect(enc.parameters).toEqual([expect.objectContaining({ name: 'name', in: 'path', required: true })]);
    expect(Object.keys(enc.post.requestBody.content['application/json'].schema.properties)).toContain('plaintext');
    expect(enc.post.requestBody.content['application/json'].schema.properties.name).toBeUndefined();
    expect(Object.keys(doc.paths['/keys/{name}']).filter((k) => ['get', 'post', 'delete'].includes(k))).toEqual(['get', 'post', 'delete']);
    expect(doc.paths['/keys'].get.parameters[0]).toMatchObject({ name: 'list', in: 'query', required: true });
    expect(doc.paths['/keys/{name}'].post.requestBody.content['application/json'].schema.properties.auto_rotate_period).toMatchObject({
      type: 'integer',
      format: 'seconds',
    });
    expect(doc.paths['/derive-key/{name}'].post.requestBody.content['application/json'].schema.required).toEqual(['base_key_name', 'peer_public_key']);
    // Help on any other path is path-help only.
    expect(((await be.handle('help' as never, 'encrypt/x', {}, { displayName: 'token', mountPoint: 'transit/' })) as any).data.openapi).toBeUndefined();
  });
});
