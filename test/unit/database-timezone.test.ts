// The session time zone every connection asks for (UTC, as Vault's timezone=UTC), and the
// text of {{expiration}} (Vault's Go layout "2006-01-02 15:04:05-0700" of a UTC time).
// test/integration/database-timezone.test.ts checks both against a real server.
import { describe, expect, it } from 'vitest';
import { resolveTarget } from '../../src/database/connection';
import { parseConfig } from '../../src/database/config';
import { vaultExpiration } from '../../src/database/dialects/dialect';

const target = (raw: Record<string, unknown>) => resolveTarget(parseConfig({ username: 'admin', password: 'pw', ...raw }).config);

describe('session time zone', () => {
  it('is UTC for every form of the configuration: URL, key=value, host/port fields', () => {
    expect(target({ connection_url: 'postgres://{{username}}:{{password}}@h:5432/db' }).options).toBe('-c TimeZone=UTC');
    expect(target({ connection_url: 'host=h dbname=db user={{username}} password={{password}}' }).options).toBe('-c TimeZone=UTC');
    expect(target({ host: 'h', db: 'db' }).options).toBe('-c TimeZone=UTC');
  });

  it("comes first, so connection_url's timezone or options (later switches win on the server) override it", () => {
    expect(target({ connection_url: 'postgres://{{username}}:{{password}}@h/db?timezone=Europe/Paris' }).options).toBe(
      '-c TimeZone=UTC -c timezone=Europe/Paris',
    );
    expect(
      target({ connection_url: `postgres://{{username}}:{{password}}@h/db?options=${encodeURIComponent('-c TimeZone=EST5EDT')}&search_path=s` }).options,
    ).toBe('-c TimeZone=UTC -c TimeZone=EST5EDT -c search_path=s');
  });
});

describe('{{expiration}}', () => {
  it("is Vault's layout, whole seconds (milliseconds truncated, as Go's Format without a fraction), +0000", () => {
    expect(vaultExpiration(new Date(Date.UTC(2031, 11, 31, 23, 59, 59, 999)))).toBe('2031-12-31 23:59:59+0000');
    expect(vaultExpiration(new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 1)))).toBe('2030-01-02 03:04:05+0000');
  });
});
