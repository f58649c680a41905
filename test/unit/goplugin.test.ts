import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { generateIdentity } from '../../src/goplugin/autotls';
import { negotiateVersion, readLaunchEnv, detectRole } from '../../src/goplugin/env';
import { createLogger, redact } from '../../src/goplugin/log';
import { fromStruct, toStruct, fromTimestamp } from '../../src/goplugin/wellknown';
import { serviceDef } from '../../src/goplugin/protos';

describe('launch environment', () => {
  it('detects the role from the magic cookie, and nothing else', () => {
    expect(detectRole({ VAULT_DATABASE_PLUGIN: '926a0820-aea2-be28-51d6-83cdf00e8edb' })).toBe('database');
    expect(detectRole({ VAULT_BACKEND_PLUGIN: '6669da05-b1c8-4f49-97d9-c8e5bed98e20' })).toBe('backend');
    expect(detectRole({ VAULT_DATABASE_PLUGIN: 'wrong' })).toBeUndefined();
    expect(detectRole({})).toBeUndefined();
  });
  it('reads ports and versions, with go-plugin defaults', () => {
    const e = readLaunchEnv({
      VAULT_DATABASE_PLUGIN: '926a0820-aea2-be28-51d6-83cdf00e8edb',
      PLUGIN_PROTOCOL_VERSIONS: '5,6,x',
      PLUGIN_MIN_PORT: '0',
      PLUGIN_MAX_PORT: '0',
    })!;
    expect(e.clientVersions).toEqual([5, 6]);
    expect([e.minPort, e.maxPort]).toEqual([10000, 25000]);
  });
  it("reads Vault's plugin variables under OpenBao's BAO_ names too (VAULT_ first)", () => {
    const cookie = { VAULT_BACKEND_PLUGIN: '6669da05-b1c8-4f49-97d9-c8e5bed98e20' };
    const bao = readLaunchEnv({ ...cookie, BAO_PLUGIN_METADATA_MODE: 'true', BAO_VERSION: '2.1.0', BAO_UNWRAP_TOKEN: 'a.b.c' })!;
    expect([bao.metadataMode, bao.vaultVersion, bao.unwrapToken]).toEqual([true, '2.1.0', 'a.b.c']);
    const both = readLaunchEnv({
      ...cookie,
      VAULT_PLUGIN_METADATA_MODE: 'false',
      BAO_PLUGIN_METADATA_MODE: 'true',
      VAULT_VERSION: '1.8.0',
      BAO_VERSION: '2.1.0',
    })!;
    expect([both.metadataMode, both.vaultVersion]).toEqual([false, '1.8.0']);
    const none = readLaunchEnv(cookie)!;
    expect([none.metadataMode, none.vaultVersion, none.unwrapToken]).toEqual([false, undefined, undefined]);
  });
  it('negotiates the highest common version', () => {
    expect(negotiateVersion([5, 6], [5, 6])).toEqual({ version: 6, matched: true });
    expect(negotiateVersion([5, 6], [5])).toEqual({ version: 5, matched: true });
    expect(negotiateVersion([5, 6], [4])).toEqual({ version: 6, matched: false });
    expect(negotiateVersion([5, 6], [])).toEqual({ version: 5, matched: true });
  });
});

describe('AutoMTLS identity', () => {
  it('has the shape go-plugin expects, encoded as unpadded standard base64 DER', async () => {
    const id = await generateIdentity();
    expect(id.handshakeCert).not.toMatch(/[=\n|]/);
    const cert = new X509Certificate(Buffer.from(id.handshakeCert, 'base64'));
    expect(cert.subject).toContain('CN=localhost');
    expect(cert.subjectAltName).toBe('DNS:localhost');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp521r1');
    expect(cert.ca).toBe(true);
    expect(cert.checkPrivateKey(require('node:crypto').createPrivateKey(id.keyPem))).toBe(true);
    expect(new Date(cert.validFrom).getTime()).toBeLessThan(Date.now());
  });
});

describe('logging', () => {
  it('writes hclog JSON lines with the timestamp layout go-plugin parses', () => {
    const lines: string[] = [];
    const log = createLogger({ module: 'm', level: 'debug', sink: (l) => lines.push(l) });
    log.trace('hidden');
    log.named('sub').warn('hello', { n: 1 });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]);
    expect(rec).toMatchObject({ '@level': 'warn', '@message': 'hello', '@module': 'm.sub', n: 1 });
    expect(rec['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });
  it('takes its level from VAULT_PLUGIN_LOG_LEVEL or BAO_PLUGIN_LOG_LEVEL', () => {
    const saved = { v: process.env.VAULT_PLUGIN_LOG_LEVEL, b: process.env.BAO_PLUGIN_LOG_LEVEL };
    try {
      delete process.env.VAULT_PLUGIN_LOG_LEVEL;
      process.env.BAO_PLUGIN_LOG_LEVEL = 'debug';
      const lines: string[] = [];
      createLogger({ sink: (l) => lines.push(l) }).debug('shown');
      process.env.VAULT_PLUGIN_LOG_LEVEL = 'error';
      createLogger({ sink: (l) => lines.push(l) }).warn('hidden');
      expect(lines.map((l) => JSON.parse(l)['@message'])).toEqual(['shown']);
    } finally {
      for (const [k, v] of [
        ['VAULT_PLUGIN_LOG_LEVEL', saved.v],
        ['BAO_PLUGIN_LOG_LEVEL', saved.b],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
  it('redacts credentials in URLs, key=value pairs, SQL and PEM keys', () => {
    const s = redact(
      `postgres://admin:s3cr3t@h/db password=hunter2 ALTER ROLE x PASSWORD 'topsecret' -----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY----- other`,
      ['extra-secret'],
    );
    for (const secret of ['s3cr3t', 'hunter2', 'topsecret', 'AAA']) expect(s).not.toContain(secret);
    // Only the secrets: what the text says around them stays (a redaction eating the rest would hide no secret).
    expect(s).toBe("postgres://admin:[redacted]@h/db password=[redacted] ALTER ROLE x PASSWORD '[redacted]' [redacted private key] other");
    expect(redact('value extra-secret here', ['extra-secret'])).toBe('value [redacted] here');
  });
});

describe('protobuf well-known types', () => {
  it('round-trips Struct and reads Timestamps', () => {
    const o = { a: 'x', b: 2, c: true, d: null, e: [1, 'y'], f: { g: 'h' } };
    expect(fromStruct(toStruct(o))).toEqual(o);
    // and across the wire, through the Initialize serializers
    const m = serviceDef('dbplugin.v5.Database').Initialize;
    const wire = m.requestSerialize({ config_data: toStruct(o), verify_connection: true });
    const back = m.requestDeserialize(wire) as { config_data: never; verify_connection: boolean };
    expect(back.verify_connection).toBe(true);
    expect(fromStruct(back.config_data)).toEqual(o);
    expect(fromTimestamp({ seconds: '1700000000', nanos: 5e8 })?.getTime()).toBe(1700000000500);
    expect(fromTimestamp({ seconds: '0', nanos: 0 })).toBeUndefined();
  });
});
