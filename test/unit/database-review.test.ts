// Findings of a security and correctness review of the database role that need no server:
// each call is refused before it connects (the configuration points at a closed port).
import { describe, expect, it } from 'vitest';
import { ErrorCode, type PluginError } from '../../src/database/errors';
import { SqlDatabase } from '../../src/database/sql-database';
import { quietLog } from '../support/db';

const unreachable = () =>
  SqlDatabase.open(
    { connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/db?sslmode=disable', username: 'admin', password: 'pw-0' },
    false,
    quietLog(),
  );

describe('statements that hold only comments', () => {
  it('NewUser: creation statements of comments only are refused (no user would be created, yet a username returned)', async () => {
    const d = await unreachable();
    try {
      for (const statements of [['-- CREATE ROLE "{{name}}";'], ['/* nothing */', '  ;  '], [';;']]) {
        const err = (await d.newUser({ displayName: 't', roleName: 'r', password: 'pw-1', statements, credentialType: 0 }).catch((e) => e)) as PluginError;
        expect(err.code, JSON.stringify(statements)).toBe(ErrorCode.InvalidArgument);
        expect(err.message).toMatch(/creation statements/);
      }
    } finally {
      await d.close();
    }
  });

  it('UpdateUser: rotation statements of comments only are refused (the password would silently stay the old one)', async () => {
    const d = await unreachable();
    try {
      for (const username of ['app_static', 'admin']) {
        const err = (await d
          .updateUser({ username, password: { newPassword: 'pw-2', statements: ['-- ALTER ROLE "{{name}}" PASSWORD \'{{password}}\';'] } })
          .catch((e) => e)) as PluginError;
        expect(err.code).toBe(ErrorCode.InvalidArgument);
        expect(err.message).toMatch(/rotation statements/);
      }
    } finally {
      await d.close();
    }
  });
});
