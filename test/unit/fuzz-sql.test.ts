// Property-based checks of statement rendering against PostgreSQL's own lexer (libpg_query,
// the oracle): for hostile templates and values, rendering either refuses with a clear
// InvalidArgument, or every value lies inside the one token the template put it in.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { renderStatement, renderVerified, splitStatements } from '../../src/database/statements';
import { loadPgLexer, pgScan, PgLexError } from '../../src/database/pglexer';
import { PluginError } from '../../src/database/errors';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
beforeAll(() => loadPgLexer());

// Every quoting form of PostgreSQL's lexer, and the characters that end or open them.
const sqlToken = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ';',
      "'",
      '"',
      '$$',
      '$a$',
      '$b$',
      "E'",
      "e'",
      "U&'",
      'U&"',
      "B'",
      "X'",
      "N'",
      '--',
      '/*',
      '*/',
      '\n',
      ' ',
      '\\',
      "''",
      '""',
      'BEGIN',
      'ATOMIC',
      'END',
      'CASE',
      'DO',
      'x',
      '1',
      '$1',
      'EXECUTE',
      '{{name}}',
      '{{password}}',
      '{{username}}',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 3 }) },
);
// Display names reach here through auth methods that keep nearly arbitrary user input.
const hostile = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.array(fc.constantFrom("'", '"', '\\', '$', '$$', '$a$', ';', '--', '/*', '*/', '\n', 'x', 'E', 'DROP TABLE t'), { maxLength: 8 }).map((a) => a.join('')),
);

function clearError(e: unknown): void {
  if (e instanceof PluginError && e.code === grpc.status.INVALID_ARGUMENT) return;
  throw e;
}

/** Token texts of the statement with each value replaced by a marker that changes nothing. */
function tokensAround(text: string): string[] | undefined {
  try {
    return pgScan(text).map((t) => t.text);
  } catch (e) {
    if (e instanceof PgLexError) return undefined;
    throw e;
  }
}

describe("fuzz: statement rendering against PostgreSQL's lexer", () => {
  it('the template scanner agrees with PostgreSQL on where statements end (on templates PostgreSQL lexes)', () => {
    fc.assert(
      fc.property(fc.array(sqlToken, { maxLength: 25 }), (toks) => {
        const sql = toks.join('');
        if (sql.includes('{{') || !tokensAround(sql)) return;
        const pgStatements = pgScan(sql).filter((t) => t.text === ';').length;
        // BEGIN ATOMIC bodies hold semicolons PostgreSQL's lexer does not group; skip those.
        if (/ATOMIC/i.test(sql)) return;
        const ours = splitStatements(sql).length;
        const nonEmpty = sql.split(';').length; // upper bound only
        expect(ours).toBeLessThanOrEqual(nonEmpty);
        expect(ours).toBeLessThanOrEqual(pgStatements + 1);
      }),
      { numRuns: RUNS },
    );
  });

  it('hostile values: refused clearly, or each stays inside its token as PostgreSQL lexes it', () => {
    fc.assert(
      fc.property(fc.array(sqlToken, { maxLength: 20 }), hostile, hostile, (toks, name, password) => {
        const stmt = toks.join('');
        let out: string;
        try {
          out = renderVerified(stmt, { name, username: name, password, expiration: '2030-01-01 00:00:00+0000' });
        } catch (e) {
          clearError(e);
          return;
        }
        // Oracle, independent of the spans: with every special character of the values
        // replaced by a letter, PostgreSQL sees as many tokens and statements.
        const tame = (v: string) => v.replace(/[^A-Za-z0-9_]/g, 'p');
        const neutral = renderStatement(stmt, { name: tame(name), username: tame(name), password: tame(password), expiration: '2030-01-01 00:00:00+0000' });
        const a = tokensAround(neutral);
        const b = tokensAround(out);
        if (!a) return; // a template PostgreSQL cannot lex fails on the server whatever the values
        expect(b).toBeDefined();
        expect(b!.length).toBe(a.length);
        expect(pgScan(out).filter((t) => t.text === ';').length).toBe(pgScan(neutral).filter((t) => t.text === ';').length);
      }),
      { numRuns: RUNS },
    );
  });

  it('the templates Vault users write keep working with any display name', () => {
    const templates = [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
      `COMMENT ON ROLE "{{name}}" IS $$Vault's role$$`,
      `ALTER ROLE "{{name}}" SET application_name = '"{{name}}"'`,
      `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{{name}}') THEN CREATE ROLE "{{name}}"; END IF; END $$`,
      `DO $$ BEGIN EXECUTE 'ALTER ROLE "{{name}}" PASSWORD ''{{password}}'''; END $$`,
      `SELECT E'{{password}}', U&'{{name}}'`,
    ];
    const value = hostile.filter((v) => v.length > 0); // "" is a zero-length identifier: PostgreSQL refuses it too
    fc.assert(
      fc.property(fc.constantFrom(...templates), value, value, (tpl, name, password) => {
        let out: string;
        try {
          out = renderVerified(tpl, { name, password, expiration: '2030-01-01 00:00:00+0000' });
        } catch (e) {
          clearError(e);
          // Only refusals with a reason the caller can act on: NUL, a $-tag, a backslash in U&.
          expect(name + password).toMatch(/\u0000|\$|\\/);
          return;
        }
        expect(pgScan(out).filter((t) => t.text === ';')).toHaveLength(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('the template scanner and PostgreSQL agree: whatever the scanner renders on a lexable template, the check accepts', () => {
    fc.assert(
      fc.property(fc.array(sqlToken, { maxLength: 20 }), hostile, hostile, (toks, name, password) => {
        const stmt = toks.join('');
        const values = { name, username: name, password, expiration: '2030-01-01 00:00:00+0000' };
        try {
          // Output PostgreSQL itself cannot lex (e.g. a bare value 0A: trailing junk) is rightly refused.
          if (!tokensAround(renderStatement(stmt, values))) return;
        } catch (e) {
          clearError(e);
          return;
        }
        expect(() => renderVerified(stmt, values)).not.toThrow();
      }),
      { numRuns: RUNS },
    );
  });
});
