import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig, storedConfig } from '../../src/database/config';
import { parseDurationSeconds } from '../../src/schema';
import { loadTlsFiles, resolveTarget, tlsAttempts, tlsOptions } from '../../src/database/connection';
import { SqlDatabase } from '../../src/database/sql-database';
import { createLogger } from '../../src/goplugin/log';

const quietLog = () => createLogger({ level: 'error', sink: () => undefined });

const parse = (raw: Record<string, unknown>) => parseConfig(raw).config;

describe('connection config', () => {
  it("applies Vault's pool defaults and rules", () => {
    const c = parse({ connection_url: 'postgres://{{username}}:{{password}}@h/db', username: 'u', password: 'p' });
    expect([c.maxOpen, c.maxIdle, c.maxLifetimeSec]).toEqual([4, 4, 0]);
    expect(parse({ host: 'h', username: 'u', max_open_connections: '10', max_idle_connections: 3, max_connection_lifetime: '1m30s' })).toMatchObject({
      maxOpen: 10,
      maxIdle: 3,
      maxLifetimeSec: 90,
    });
    expect(parse({ host: 'h', username: 'u', max_open_connections: 2, max_idle_connections: 9 }).maxIdle).toBe(2);
  });
  it.each([
    // [open, idle] given -> [open, idle] used, as Vault's SQL connection producer and Go's database/sql
    [0, 0, 4, 4],
    [0, 2, 4, 2],
    [-1, 0, Number.POSITIVE_INFINITY, 0],
    [-1, 3, Number.POSITIVE_INFINITY, 0],
    [5, -5, 5, 0],
    [3, 0, 3, 3],
  ])('max_open_connections=%i max_idle_connections=%i are accepted: open %d, idle %d', (open, idle, wantOpen, wantIdle) => {
    const c = parse({ host: 'h', username: 'u', max_open_connections: open, max_idle_connections: idle });
    expect([c.maxOpen, c.maxIdle]).toEqual([wantOpen, wantIdle]);
  });
  it('rejects bad values with the field name', () => {
    expect(() => parse({})).toThrow(/connection_url or host is required/);
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
  it("parses Go durations with the schema's one parser (whole seconds; milliseconds for connect_timeout)", () => {
    expect(parseDurationSeconds('1h2m3s', 'x')).toBe(3723);
    expect(parseDurationSeconds('1500ms', 'x')).toBe(1);
    expect(parseDurationSeconds(30, 'x')).toBe(30);
    expect(() => parseDurationSeconds('-1s', 'x')).toThrow();
    expect(parse({ host: 'h', connect_timeout: '250ms' }).connectTimeoutMs).toBe(250);
  });
});

describe('connection target', () => {
  const special = `p@ss:w/o?r#d%20'"\\ é`;
  it('URL-escapes {{username}}/{{password}} so any password survives', () => {
    const t = resolveTarget(
      parse({ connection_url: 'postgresql://{{username}}:{{password}}@db.example:6543/app?sslmode=require', username: 'adm in', password: special }),
    );
    expect(t).toMatchObject({ host: 'db.example', port: 6543, database: 'app', user: 'adm in', password: special, sslmode: 'require' });
  });
  it('supports the key=value form with quoting', () => {
    const t = resolveTarget(
      parse({ connection_url: 'host=h port=7000 dbname=d user={{username}} password={{password}} sslmode=disable', username: 'u', password: special }),
    );
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
  });
});

describe('certificate and key files (security review, item 5)', () => {
  const base = { host: 'db.example', port: 1, database: 'd', user: 'u', sslmode: 'require' } as const;
  it('a path that is not a readable regular file is refused without naming it or why', async () => {
    const err = await SqlDatabase.open(
      { host: '127.0.0.1', username: 'u', sslmode: 'require', sslrootcert: '/nonexistent/secret-dir/ca.pem' },
      false,
      quietLog(),
    ).catch((e) => e);
    expect(err.message).toMatch(/sslrootcert is not a readable file/);
    expect(err.message).not.toContain('secret-dir');
    expect(err.message).not.toMatch(/ENOENT/);
  });
  it("endless devices, FIFOs and the process's own descriptors are refused at once, without blocking", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-fifo-'));
    const fifo = path.join(dir, 'ca.pem');
    execFileSync('mkfifo', [fifo]);
    for (const [field, p] of [
      ['sslrootcert', '/dev/zero'],
      ['sslcert', fifo],
      ['sslkey', '/proc/self/fd/1'],
      ['sslrootcert', dir],
    ] as const) {
      const t0 = Date.now();
      await expect(loadTlsFiles({ ...base, [field]: p })).rejects.toThrow(new RegExp(`${field} is not a readable file`));
      expect(Date.now() - t0).toBeLessThan(1000);
    }
  });
  it('inline PEM is kept; a regular file is read (asynchronously) into the target', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-ca-')), 'ca.pem');
    fs.writeFileSync(f, pem);
    expect(await loadTlsFiles({ ...base, sslrootcert: pem, sslcert: f, sslkey: f })).toMatchObject({ sslrootcert: pem, sslcert: pem, sslkey: pem });
    // sslmode=disable never reads them, as before
    expect(await loadTlsFiles({ ...base, sslmode: 'disable', sslrootcert: '/dev/zero' })).toMatchObject({ sslrootcert: '/dev/zero' });
  });
});

describe('the config Vault stores (InitializeResponse.config)', () => {
  const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';
  // Vault's read of database/config/<name> shows every connection detail but these.
  const shown = (c: Record<string, unknown>) => JSON.stringify(Object.entries(c).filter(([k]) => k !== 'password' && k !== 'private_key'));

  it('moves an inline sslkey to private_key; a key file path stays as it is', () => {
    const given = { host: 'h', username: 'u', password: 'p', sslcert: 'CERT', sslkey: pem };
    const stored = storedConfig(given);
    expect(stored).toEqual({ host: 'h', username: 'u', password: 'p', sslcert: 'CERT', private_key: pem });
    expect(shown(stored)).not.toContain('PRIVATE KEY');
    expect(parse(stored).sslkey).toBe(pem); // and it is read back from there
    expect(storedConfig({ host: 'h', sslkey: '/etc/k.pem' })).toEqual({ host: 'h', sslkey: '/etc/k.pem' });
  });

  it('moves an inline sslkey out of connection_url (URL and key=value forms)', () => {
    const url = `postgres://{{username}}:{{password}}@h/db?sslmode=require&sslkey=${encodeURIComponent(pem)}&application_name=x`;
    const a = storedConfig({ connection_url: url, username: 'u' });
    expect(a).toEqual({ connection_url: 'postgres://{{username}}:{{password}}@h/db?sslmode=require&application_name=x', username: 'u', private_key: pem });
    const kv = `host=h user={{username}} sslkey='${pem.replace(/\n/g, ' ')}' sslmode=require`;
    const b = storedConfig({ connection_url: kv });
    expect(shown(b)).not.toContain('PRIVATE KEY');
    expect(b.private_key).toBe(pem.replace(/\n/g, ' '));
    expect(b.connection_url).toBe('host=h user={{username}} sslmode=require');
  });

  it("accepts current Vault's tls_ca, tls_certificate and private_key; refuses two different values for one setting", () => {
    expect(parse({ host: 'h', username: 'u', tls_ca: 'CA', tls_certificate: 'C', private_key: pem })).toMatchObject({
      sslrootcert: 'CA',
      sslcert: 'C',
      sslkey: pem,
    });
    expect(() => parse({ host: 'h', username: 'u', sslkey: pem, private_key: pem + 'x' })).toThrow(/set sslkey or private_key, not both/);
    expect(parseConfig({ host: 'h', username: 'u', private_key: pem }).unknownKeys).toEqual([]);
  });

  it('Initialize returns the stored form', async () => {
    const d = new SqlDatabase(quietLog());
    try {
      const { config } = await d.initialize({
        config: { host: '127.0.0.1', username: 'u', sslmode: 'require', sslcert: '-----BEGIN CERTIFICATE-----\nX\n', sslkey: pem },
        verifyConnection: false,
      });
      expect(shown(config)).not.toContain('PRIVATE KEY');
      expect(config.private_key).toBe(pem);
    } finally {
      await d.close();
    }
  });
});

describe('connection_url in key=value form', () => {
  const target = (url: string, username: string, password: string) => resolveTarget(parse({ connection_url: url, username, password }));
  const nasty = `p'a\\ss w"rd\\'`;

  it.each([
    ["user='{{username}}' password='{{password}}'", 'quoted placeholders'],
    ['user={{username}} password={{password}}', 'unquoted placeholders'],
    ["user = '{{username}}'   password = {{password}}", 'spaces around = and mixed'],
  ])('fills %s (%s) with values holding quotes, backslashes and spaces', (tail) => {
    const t = target(`host=127.0.0.1 port=5432 dbname=postgres sslmode=disable ${tail}`, `ad'min \\x`, nasty);
    expect(t).toMatchObject({ host: '127.0.0.1', port: 5432, database: 'postgres', sslmode: 'disable', user: `ad'min \\x`, password: nasty });
  });

  it('fills a placeholder inside a longer quoted or unquoted value, and an empty value does not swallow the next keyword', () => {
    expect(target("host=h user='pre {{username}}' password=x{{password}}y", 'a b', `c'd`)).toMatchObject({ user: 'pre a b', password: `xc'dy` });
    expect(target('host=h user={{username}} password={{password}} dbname=d', 'u', '')).toMatchObject({ password: '', database: 'd' });
  });

  it("reads libpq's escapes and quoting; refuses an unterminated quote", () => {
    expect(target("host=h user=u password='a\\'b c' dbname=my\\ db", 'u', 'p')).toMatchObject({ password: "a'b c", database: 'my db' });
    expect(() => target("host=h user='u", 'u', 'p')).toThrow(/cannot parse the key=value connection string/);
  });
});

describe('a connection_url without a user (review item 7)', () => {
  it('with username set, says that connection_url needs {{username}}/{{password}} for it to be used', () => {
    for (const url of ['postgres://h:5432/db?sslmode=disable', 'host=h dbname=db sslmode=disable']) {
      expect(() => resolveTarget(parse({ connection_url: url, username: 'admin', password: 'pw' }))).toThrow(
        /connection_url names no user: the username and password fields are used only through \{\{username\}\} and \{\{password\}\} in connection_url/,
      );
    }
    expect(() => resolveTarget(parse({ connection_url: 'postgres://h/db' }))).toThrow(/no username: set username and write \{\{username\}\}/);
    expect(resolveTarget(parse({ connection_url: 'postgres://{{username}}:{{password}}@h/db', username: 'admin', password: 'pw' })).user).toBe('admin');
  });
});
