// The one error-sanitising wrapper every database call goes through.
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/database/database';
import { ErrorCode, PluginError, unavailable, withSecrets } from '../../src/database/errors';
import { Instances } from '../../src/database/instances';
import { SanitizingDatabase } from '../../src/database/sanitizing-database';
import { quietLog } from '../support/db';

/** A Database whose every call fails with the error given. */
function failing(make: () => unknown): Database {
  const fail = async (): Promise<never> => {
    throw make();
  };
  return { initialize: fail, newUser: fail, updateUser: fail, deleteUser: fail, close: fail, type: () => 'fake' };
}

const CONFIG_SECRET = 'cfg-Secret-1';
const pgError = (message: string, code: string) => Object.assign(new Error(message), { code, severity: 'ERROR' });

describe('SanitizingDatabase', () => {
  it("redacts the configuration secrets and each request's own passwords from every method's errors", async () => {
    const reqPw = 'req-Secret-2';
    const newPw = 'new-Secret-3';
    const self = 'self-Secret-4';
    const text = `role failed: ${CONFIG_SECRET} ${reqPw} ${newPw} ${self}`;
    const db = new SanitizingDatabase(
      failing(() => pgError(text, '42601')),
      () => [CONFIG_SECRET],
      quietLog(),
    );
    const errs = await Promise.all([
      db.newUser({ displayName: 'd', roleName: 'r', password: reqPw, statements: ['x'], credentialType: 0 }).catch((e) => e),
      db.updateUser({ username: 'u', password: { newPassword: newPw, statements: [] }, selfManagedPassword: self }).catch((e) => e),
      db.deleteUser({ username: 'u', statements: [] }).catch((e) => e),
    ]);
    for (const e of errs) {
      expect(e).toBeInstanceOf(PluginError);
      expect(e.message).toMatch(/^(NewUser|UpdateUser|DeleteUser): role failed: /);
      expect(e.message).toContain('SQLSTATE 42601');
      expect(e.message).not.toContain(CONFIG_SECRET);
    }
    expect(errs[0].message).not.toContain(reqPw);
    expect(errs[1].message).not.toContain(newPw);
    expect(errs[1].message).not.toContain(self);
  });

  it("redacts Initialize's secret fields (password, sslkey, connection_url) even before the instance has a config", async () => {
    const url = 'postgres://u:UrlPw-5@db.internal/x';
    const db = new SanitizingDatabase(
      failing(() => new Error(`cannot parse UrlPw-5 / pw-6 / ${url}`)),
      () => [],
      quietLog(),
    );
    const e = await db.initialize({ config: { connection_url: url, password: 'pw-6', host: 'db.internal' }, verifyConnection: false }).catch((x) => x);
    expect(e).toBeInstanceOf(PluginError);
    expect(e.message).not.toMatch(/UrlPw-5|pw-6/);
    // The secrets only: the host (not a secret field) and the rest stay readable.
    expect(e.message).toBe('Initialize: cannot parse [redacted] / [redacted] / postgres://u:[redacted]@db.internal/x');
  });

  it('keeps the code of a PluginError and redacts its message; redacts secrets attached to an error or its cause', async () => {
    const derived = 'SCRAM-SHA-256$4096:derived';
    const db = new SanitizingDatabase(
      failing(() => withSecrets(unavailable(`cannot connect as x: ${CONFIG_SECRET}`, { cause: withSecrets(new Error('inner'), [derived]) }), [])),
      () => [CONFIG_SECRET],
      quietLog(),
    );
    const e = await db.deleteUser({ username: 'u', statements: [] }).catch((x) => x);
    expect(e.code).toBe(ErrorCode.Unavailable);
    expect(e.message).toBe('DeleteUser: cannot connect as x: [redacted]'); // wrapping a cause: the call is named
    const db2 = new SanitizingDatabase(
      failing(() => new PluginError(ErrorCode.Internal, 'wrapped', { cause: withSecrets(new Error(derived), [derived]) })),
      () => [],
      quietLog(),
    );
    const e2 = await db2.newUser({ displayName: 'd', roleName: 'r', password: 'p', statements: [], credentialType: 0 }).catch((x) => x);
    expect(e2.message).toBe('NewUser: wrapped');
    expect(e2.cause).toBeUndefined(); // the unredacted cause stays inside
  });

  it('is what Instances hands out: a bad config fails Initialize as a sanitized InvalidArgument', async () => {
    const inst = new Instances(quietLog());
    const e = await inst
      .initialize('x', { config: { host: 'h', username: 'u', password: 'Pw-7', port: 'not-a-port' }, verifyConnection: false })
      .catch((x) => x);
    expect(e).toBeInstanceOf(PluginError);
    expect(e.code).toBe(ErrorCode.InvalidArgument);
    await inst.initialize('y', { config: { host: '127.0.0.1', port: 1, username: 'u', password: 'Pw-8' }, verifyConnection: false });
    const db = inst.get('y');
    expect(db).toBeInstanceOf(SanitizingDatabase);
    const e2 = await db.newUser({ displayName: 'd', roleName: 'r', password: 'p', statements: ['CREATE ROLE "{{name}}"'], credentialType: 0 }).catch((x) => x);
    expect(e2.code).toBe(ErrorCode.Unavailable);
    expect(e2.message).toMatch(/cannot connect to 127\.0\.0\.1:1/);
    expect(e2.message).not.toContain('Pw-8');
    await inst.closeAll();
  });
});
