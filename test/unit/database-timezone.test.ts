// The session time zone every connection sets (UTC, as Vault's timezone=UTC), and the
// text of {{expiration}} (Vault's Go layout "2006-01-02 15:04:05-0700" of a UTC time).
// test/integration/database-timezone.test.ts checks both against a real server.
import { describe, expect, it } from 'vitest';
import { clientConfig, connectionSetup, resolveTarget } from '../../src/database/connection';
import { parseConfig } from '../../src/database/config';
import { vaultExpiration } from '../../src/database/dialects/dialect';

const target = (raw: Record<string, unknown>) => resolveTarget(parseConfig({ username: 'admin', password: 'pw', ...raw }).config);

describe('session time zone', () => {
  it('is set to UTC by a SET once a connection is open, for URL, key=value and host/port configurations', () => {
    for (const raw of [
      { connection_url: 'postgres://{{username}}:{{password}}@h:5432/db' },
      { connection_url: 'host=h dbname=db user={{username}} password={{password}}' },
      { host: 'h', db: 'db' },
    ]) {
      const t = target(raw);
      expect(connectionSetup(t)).toBe("SET standard_conforming_strings = on; SET TimeZone = 'UTC'");
      // No startup `options` unless connection_url asks for one: PgBouncer before 1.20 refuses any.
      expect(t.options).toBeUndefined();
      expect(clientConfig(t, parseConfig({ username: 'admin', password: 'pw', ...raw }).config, false).options).toBeUndefined();
    }
  });

  it("is connection_url's when it gives one (a timezone parameter, or in its options), as with Vault", () => {
    const paris = target({ connection_url: 'postgres://{{username}}:{{password}}@h/db?timezone=Europe/Paris' });
    expect(paris.options).toBe('-c timezone=Europe/Paris');
    expect(connectionSetup(paris)).toBe('SET standard_conforming_strings = on');
    const est = target({ connection_url: `postgres://{{username}}:{{password}}@h/db?options=${encodeURIComponent('-c TimeZone=EST5EDT')}&search_path=s` });
    expect(est.options).toBe('-c TimeZone=EST5EDT -c search_path=s');
    expect(connectionSetup(est)).toBe('SET standard_conforming_strings = on');
    const other = target({ connection_url: 'postgres://{{username}}:{{password}}@h/db?search_path=s' });
    expect(connectionSetup(other)).toContain("SET TimeZone = 'UTC'");
  });
});

describe('{{expiration}}', () => {
  it("is Vault's layout, whole seconds (milliseconds truncated, as Go's Format without a fraction), +0000", () => {
    expect(vaultExpiration(new Date(Date.UTC(2031, 11, 31, 23, 59, 59, 999)))).toBe('2031-12-31 23:59:59+0000');
    expect(vaultExpiration(new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 1)))).toBe('2030-01-02 03:04:05+0000');
  });
});
