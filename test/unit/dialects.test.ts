import { describe, expect, it } from 'vitest';
import { DIALECTS, detectDialect } from '../../src/database/dialects';
import { quoteIdent, quoteLiteral } from '../../src/database/quote';

describe('dialect detection', () => {
  it('recognises each server from version()', () => {
    expect(detectDialect('PostgreSQL 16.4 on x86_64-pc-linux-gnu').name).toBe('postgresql');
    expect(detectDialect('CockroachDB CCL v23.2.4 (x86_64-pc-linux-gnu, built 2024/04/02)').name).toBe('cockroachdb');
    expect(detectDialect('PostgreSQL 11.2-YB-2.20.1.0-b0 on x86_64-pc-linux-gnu').name).toBe('yugabytedb');
  });
});

describe('generated SQL per dialect', () => {
  const user = quoteIdent('v-Token-Role');
  const admin = quoteIdent('vault admin');
  it('PostgreSQL reassigns, drops owned, drops the role; transactional DDL', () => {
    const d = DIALECTS.postgresql;
    expect(d.releaseObjects(user, admin)).toEqual(['REASSIGN OWNED BY "v-Token-Role" TO "vault admin"', 'DROP OWNED BY "v-Token-Role"']);
    expect(d.dropRole(user)).toEqual(['DROP ROLE IF EXISTS "v-Token-Role"']);
    expect(d.transactionalDdl).toBe(true);
    expect(d.normalizeUsername('V-Abc')).toBe('V-Abc');
    expect(d.dependentDatabases('x').text).toMatch(/pg_shdepend/);
    expect(d.dependentDatabases('x').values).toEqual(['x']);
    expect(d.formatExpiration(new Date(Date.UTC(2030, 0, 2, 3, 4, 5)))).toBe('2030-01-02 03:04:05+0000');
  });
  it('CockroachDB lower-cases user names and cleans every database', () => {
    const d = DIALECTS.cockroachdb;
    expect(d.normalizeUsername('v-Token-ROLE')).toBe('v-token-role');
    expect(d.dependentDatabases('x')).toEqual({ text: "SELECT datname FROM pg_catalog.pg_database WHERE datname <> 'system'", values: [] });
    expect(d.releaseObjects(user, admin)).toEqual(['REASSIGN OWNED BY "v-Token-Role" TO "vault admin"', 'DROP OWNED BY "v-Token-Role"']);
    expect(d.terminateSessionsQuery).toBe('CANCEL SESSIONS IF EXISTS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] WHERE user_name = $1)');
  });
  it("YugabyteDB uses PostgreSQL's catalog but no transactional DDL", () => {
    const d = DIALECTS.yugabytedb;
    expect(d.transactionalDdl).toBe(false);
    expect(d.releaseObjects(user, admin)).toEqual(DIALECTS.postgresql.releaseObjects(user, admin));
  });
});

describe('quoting', () => {
  it('quotes identifiers and literals', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('a\\b')).toBe(" E'a\\\\b'");
    expect(() => quoteIdent('')).toThrow(/empty/);
    expect(() => quoteLiteral('\u0000')).toThrow(/NUL/);
  });
});
