// The one field-schema language (src/schema): one coercion per type, one bounded duration
// parser and one name rule, used alike by secrets-engine paths, the database connection
// config, managed-key config and KMS credentials; each user keeps its own error type.
import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { parseConfig } from '../../src/database/config';
import { PluginError } from '../../src/database/errors';
import { parseKeyConfig } from '../../src/keys/config';
import { isKeyError } from '../../src/keys/errors';
import { parseCredentials } from '../../src/secrets/keymgmt/providers/config';
import { Router, UserError, type PathDef } from '../../src/secrets/framework';
import { NAME } from '../../src/secrets/keymgmt/keys';
import { fieldTable, isName, parseBool, parseDurationMillis, SchemaError } from '../../src/schema';
import { MemoryStorage } from '../../src/storage/storage';

const db = (raw: Record<string, unknown>) => parseConfig({ host: 'h', ...raw }).config;
const key = (raw: Record<string, unknown>) => parseKeyConfig('software', 'k1', { key_type: 'ed25519', ...raw });
const hsm = (raw: Record<string, unknown>) => parseKeyConfig('pkcs11', 'k1', { library: '/x.so', pin: '1', ...raw });
const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
};

/** A one-path router whose handler returns the validated data. */
function echo(fields: PathDef['fields']) {
  const router = new Router(
    [
      {
        pattern: 'echo',
        fields,
        synopsis: '',
        description: '',
        operations: { update: async (r) => ({ data: Object.fromEntries(Object.keys(fields).map((k) => [k, r.data.get(k)])) }) },
      },
    ],
    '',
  );
  const ctx = { storage: new MemoryStorage(), displayName: 't', mountPoint: 'm/' };
  return (raw: Record<string, unknown>) => router.handle('update', 'echo', raw, ctx);
}

describe('bool: Vault\'s rule (strconv.ParseBool forms, "" as false, JSON 1/0) for every user', () => {
  it('parseBool', () => {
    for (const t of [true, 1, '1', 't', 'T', 'true', 'TRUE', 'True']) expect(parseBool(t, 'x')).toBe(true);
    for (const f of [false, 0, '0', 'f', 'F', 'false', 'FALSE', 'False', '']) expect(parseBool(f, 'x')).toBe(false);
    for (const bad of ['yes', 'on', 'tRUE', ' true', 2, -1, null, [], {}]) expect(() => parseBool(bad, 'x')).toThrow(SchemaError);
  });
  it("managed keys: allow_generate_key=1 and =t are accepted (refused before), as a secrets path's derived=1 is", () => {
    expect(key({ allow_generate_key: '1', any_mount: 't' }).common).toMatchObject({ allowGenerate: true, anyMount: true });
    expect(key({ allow_replace_key: 0 }).common.allowReplace).toBe(false);
    const e = thrown(() => key({ allow_generate_key: 'yes' }));
    expect(isKeyError(e) && e.kind === 'invalid' && e.message).toBe('allow_generate_key: expected true or false');
  });
  it('database: disable_escaping=True / =t are accepted (refused before); the error stays gRPC InvalidArgument', () => {
    expect(db({ disable_escaping: 'True' }).disableEscaping).toBe(true);
    expect(db({ disable_escaping: 't' }).disableEscaping).toBe(true);
    const e = thrown(() => db({ disable_escaping: 'yes' }));
    expect(e).toBeInstanceOf(PluginError);
    expect((e as PluginError).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
  it('secrets paths: derived=T and derived="" (false) are accepted (refused before); a bad bool is a 400', async () => {
    const call = echo({ derived: { type: 'bool', description: '' } });
    expect((await call({ derived: 'T' }))?.data).toEqual({ derived: true });
    expect((await call({ derived: '' }))?.data).toEqual({ derived: false });
    const e = await call({ derived: 'yes' }).catch((x) => x);
    expect(e).toBeInstanceOf(UserError);
    expect([e.status, e.message]).toEqual([400, 'derived: expected true or false']);
  });
});

describe('durations: the one strict, bounded parser (database config included)', () => {
  it('keeps sub-second database timeouts and the defaults', () => {
    expect(db({}).connectTimeoutMs).toBe(10_000);
    expect(db({ connect_timeout: '250ms' }).connectTimeoutMs).toBe(250);
    expect(db({ connect_timeout: 30 }).connectTimeoutMs).toBe(30_000);
    expect(db({ max_connection_lifetime: '1h2m3s' }).maxLifetimeSec).toBe(3723);
    expect(parseDurationMillis(0.5, 'x')).toBe(500);
  });
  it('refuses what the database\'s own parser accepted wrongly: Infinity, > Go\'s range, timers Node fires at once, "1.5"', () => {
    for (const [field, v] of [
      ['connect_timeout', '9'.repeat(400)], // was Infinity ms
      ['max_connection_lifetime', 1e308], // was 1e308 seconds
      ['max_connection_lifetime', '3000000000000h'], // beyond Go's time.Duration
      ['connect_timeout', '600h'], // > 2^31-1 ms: Node's timer would fire at once
      ['max_connection_lifetime', '1.5'], // Vault reads a plain number as integer seconds only
      ['connect_timeout', '-1s'],
    ] as const) {
      const e = thrown(() => db({ [field]: v }));
      expect(e, `${field}=${String(v).slice(0, 20)}`).toBeInstanceOf(PluginError);
      expect((e as PluginError).message).toMatch(new RegExp(`^${field}: `));
    }
  });
  it('accepts what it refused wrongly: days, ".5s", the Greek mu', () => {
    expect(db({ max_connection_lifetime: '2d' }).maxLifetimeSec).toBe(172_800);
    expect(db({ connect_timeout: '.5s' }).connectTimeoutMs).toBe(500);
    expect(db({ connect_timeout: '1500000μs' }).connectTimeoutMs).toBe(1500);
  });
});

describe('one coercion per type', () => {
  it('strings take numbers as text (Vault decodes weakly): a numeric slot or credential was refused before', () => {
    expect(hsm({ pin: 1234, slot: 0 }).fields).toMatchObject({ slot: '0', pin: '1234' });
    expect(parseCredentials('azurekeyvault', { client_id: 42 })).toEqual({ client_id: '42' });
    expect(db({ username: 7 }).username).toBe('7');
  });
  it('ints: bounds from the declaration, in every user', () => {
    expect(() => hsm({ key_bits: 0 })).toThrow('key_bits: must be at least 1');
    expect(() => db({ port: 0 })).toThrow('port: must be at least 1');
    expect(() => hsm({ key_bits: '2e3' })).toThrow('key_bits: expected an integer');
  });
  it("lists: a secrets path's list items are trimmed, as Vault's TypeCommaStringSlice and managed keys' usages are", async () => {
    const call = echo({ names: { type: 'strings', description: '' } });
    expect((await call({ names: [' a', 'b ', ''] }))?.data).toEqual({ names: ['a', 'b'] });
    expect(key({ usages: [' sign ', 'verify'] }).common.usages).toEqual(['sign', 'verify']);
  });
  it("a field named after an Object property is unknown, not Object's (was accepted or mis-read before)", async () => {
    expect(() => key({ constructor: 'x' })).toThrow('unknown field "constructor"');
    expect(parseConfig({ host: 'h', toString: 'x' }).unknownKeys).toEqual(['toString']);
    expect(() => parseCredentials('awskms', { constructor: 'x' })).toThrow(/unknown name "constructor"/);
    const res = await echo({ a: { type: 'string', description: '' } })({ constructor: 'x' });
    expect(res?.warnings).toEqual(['Endpoint ignored these unrecognized parameters: [constructor]']);
  });
});

describe('declarations drive defaults, docs and names', () => {
  it('defaults come from the declaration and show in the generated table', () => {
    expect(key({}).common).toEqual({
      allowGenerate: false,
      allowReplace: false,
      allowStore: false,
      anyMount: false,
      usages: ['sign', 'verify', 'encrypt', 'decrypt', 'random'],
    });
    const table = fieldTable({ t: { type: 'duration', unit: 'ms', default: 1500, description: 'a | b', secret: true, required: true } });
    expect(table.split('\n')[2]).toBe('| `t` | duration | `1500ms` | a \\| b (required) (secret: never logged) |');
  });
  it('one name rule: managed keys, keymgmt paths', () => {
    for (const n of ['a', 'a.b-c_d', 'A'.repeat(128)]) expect([isName(n), new RegExp(`^${NAME}$`).test(n)]).toEqual([true, true]);
    for (const n of ['', '-a', '.a', '_a', 'a/b', 'a b', 'A'.repeat(129)]) expect([isName(n), new RegExp(`^${NAME}$`).test(n)]).toEqual([false, false]);
    expect(() => parseKeyConfig('software', '-k', { key_type: 'ed25519' })).toThrow(/managed key name must be 1-128 letters/);
  });
});

describe('parseDurationNs: the parsed strings it keeps', () => {
  it('answers a repeated string as the first time, and still refuses bad ones after many good ones', async () => {
    const { parseDurationNs } = await import('../../src/schema/duration');
    expect(parseDurationNs('1h', 'ttl')).toBe(3_600_000_000_000n);
    expect(parseDurationNs('1h', 'ttl')).toBe(3_600_000_000_000n);
    expect(parseDurationNs(' 90s ', 'ttl')).toBe(90_000_000_000n);
    for (let i = 0; i < 600; i++) expect(parseDurationNs(`${i}s`, 'ttl')).toBe(BigInt(i) * 1_000_000_000n);
    expect(parseDurationNs('0s', 'ttl')).toBe(0n);
    expect(() => parseDurationNs('1x', 'ttl')).toThrow('ttl: invalid duration "1x"');
    expect(() => parseDurationNs('1x', 'ttl')).toThrow('ttl: invalid duration "1x"');
    expect(() => parseDurationNs('-1h', 'max_ttl')).toThrow('max_ttl: invalid duration "-1h"');
  });
});
