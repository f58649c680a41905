import { describe, expect, it } from 'vitest';
import { parseConfig, parseDurationSeconds } from '../../src/database/config';
import { resolveTarget, tlsAttempts, tlsOptions } from '../../src/database/connection';

const parse = (raw: Record<string, unknown>) => parseConfig(raw).config;

describe('connection config', () => {
  it('applies Vault\'s pool defaults and rules', () => {
    const c = parse({ connection_url: 'postgres://{{username}}:{{password}}@h/db', username: 'u', password: 'p' });
    expect([c.maxOpen, c.maxIdle, c.maxLifetimeSec]).toEqual([4, 4, 0]);
    expect(parse({ host: 'h', username: 'u', max_open_connections: '10', max_idle_connections: 3, max_connection_lifetime: '1m30s' }))
      .toMatchObject({ maxOpen: 10, maxIdle: 3, maxLifetimeSec: 90 });
    expect(parse({ host: 'h', username: 'u', max_open_connections: 2, max_idle_connections: 9 }).maxIdle).toBe(2);
  });
  it('rejects bad values with the field name', () => {
    expect(() => parse({})).toThrow(/connection_url or host is required/);
    expect(() => parse({ host: 'h', max_open_connections: 0 })).toThrow(/max_open_connections: must be at least 1/);
    expect(() => parse({ host: 'h', max_open_connections: 'many' })).toThrow(/max_open_connections: expected an integer/);
    expect(() => parse({ host: 'h', sslmode: 'sometimes' })).toThrow(/sslmode: must be one of/);
    expect(() => parse({ host: 'h', max_connection_lifetime: '5 minutes' })).toThrow(/invalid duration/);
    expect(() => parse({ host: 'h', password_authentication: 'md5' })).toThrow(/password_authentication/);
    expect(() => parse({ host: 'h', username_template: '{{ nope }}' })).toThrow(/username_template is invalid: unknown function/);
    expect(() => parse({ host: 'h', connection_url: 'postgres://x' })).toThrow(/not both/);
  });
  it('reports unknown keys without failing (newer Vaults add fields)', () => {
    expect(parseConfig({ host: 'h', conection_url: 'typo' }).unknownKeys).toEqual(['conection_url']);
  });
  it('parses Go durations', () => {
    expect(parseDurationSeconds('1h2m3s', 'x')).toBe(3723);
    expect(parseDurationSeconds('250ms', 'x')).toBe(0.25);
    expect(parseDurationSeconds(30, 'x')).toBe(30);
    expect(() => parseDurationSeconds('-1s', 'x')).toThrow();
  });
});

describe('connection target', () => {
  const special = `p@ss:w/o?r#d%20'"\\ é`;
  it('URL-escapes {{username}}/{{password}} so any password survives', () => {
    const t = resolveTarget(parse({ connection_url: 'postgresql://{{username}}:{{password}}@db.example:6543/app?sslmode=require', username: 'adm in', password: special }));
    expect(t).toMatchObject({ host: 'db.example', port: 6543, database: 'app', user: 'adm in', password: special, sslmode: 'require' });
  });
  it('supports the key=value form with quoting', () => {
    const t = resolveTarget(parse({ connection_url: "host=h port=7000 dbname=d user={{username}} password={{password}} sslmode=disable", username: 'u', password: special }));
    expect(t).toMatchObject({ host: 'h', port: 7000, database: 'd', user: 'u', password: special, sslmode: 'disable' });
  });
  it('separate fields, with libpq defaults', () => {
    expect(resolveTarget(parse({ host: 'h', username: 'u', password: 'p' }))).toMatchObject({ port: 5432, database: 'u', sslmode: 'prefer' });
  });
  it('refuses other schemes and missing users', () => {
    expect(() => resolveTarget(parse({ connection_url: 'mysql://u:p@h/db' }))).toThrow(/unsupported scheme mysql/);
    expect(() => resolveTarget(parse({ host: 'h' }))).toThrow(/no username/);
  });
  it('maps sslmode like libpq', () => {
    expect(tlsAttempts('disable')).toEqual([false]);
    expect(tlsAttempts('prefer')).toEqual([true, false]);
    expect(tlsAttempts('allow')).toEqual([false, true]);
    expect(tlsAttempts('verify-full')).toEqual([true]);
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const base = { host: 'db.example', port: 1, database: 'd', user: 'u' } as const;
    expect(tlsOptions({ ...base, sslmode: 'require' }, true)).toMatchObject({ rejectUnauthorized: false });
    const full = tlsOptions({ ...base, sslmode: 'verify-full', sslrootcert: pem }, true);
    expect(full).toMatchObject({ rejectUnauthorized: true, ca: pem, servername: 'db.example' });
    const ca = tlsOptions({ ...base, sslmode: 'verify-ca', sslrootcert: pem }, true) as { checkServerIdentity: () => unknown };
    expect(ca.checkServerIdentity()).toBeUndefined();
    // require + a root certificate verifies the chain, as libpq does
    expect(tlsOptions({ ...base, sslmode: 'require', sslrootcert: pem }, true)).toMatchObject({ rejectUnauthorized: true });
    expect(() => tlsOptions({ ...base, sslmode: 'verify-full' }, true)).toThrow(/needs sslrootcert/);
    expect(() => tlsOptions({ ...base, sslmode: 'require', sslcert: pem }, true)).toThrow(/together/);
    expect(() => tlsOptions({ ...base, sslmode: 'require', sslrootcert: '/nonexistent/ca.pem' }, true)).toThrow(/cannot read/);
  });
});
