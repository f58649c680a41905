import { beforeAll, describe, expect, it, vi } from 'vitest';
import { assertNoTransactionControl, renderStatement, renderVerified, splitStatements, verifyPlacement } from '../../src/database/statements';
import { loadPgLexer } from '../../src/database/pglexer';

/** PostgreSQL's lexer as the statements module sees it; `misread` makes it read every ' as " (a lexer that disagrees with the scanner). */
const lexer = vi.hoisted(() => ({ misread: false }));
vi.mock('../../src/database/pglexer', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/database/pglexer')>();
  return { ...real, pgScan: (sql: string) => real.pgScan(lexer.misread ? sql.replace(/'/g, '"') : sql) };
});

beforeAll(() => loadPgLexer());

describe('splitStatements', () => {
  it('splits on top-level semicolons and drops empty pieces', () => {
    expect(splitStatements('CREATE ROLE a; GRANT x TO a;;  ')).toEqual(['CREATE ROLE a', 'GRANT x TO a']);
  });
  it('keeps dollar-quoted bodies whole, with or without tags', () => {
    const doBlock = `DO $$ BEGIN IF NOT EXISTS (SELECT 1) THEN CREATE ROLE a; END IF; END $$`;
    const tagged = `CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; SELECT 2; $fn$ LANGUAGE sql`;
    expect(splitStatements(`${doBlock}; ${tagged}; SELECT 3`)).toEqual([doBlock, tagged, 'SELECT 3']);
  });
  it('does not split inside quoted literals, identifiers, E-strings or comments', () => {
    const s = `COMMENT ON ROLE "we;ird" IS 'a;b''c'; SELECT E'x\\';y'; -- trailing; comment\nSELECT /* a; /* nested; */ b */ 1`;
    expect(splitStatements(s)).toEqual([`COMMENT ON ROLE "we;ird" IS 'a;b''c'`, `SELECT E'x\\';y'`, `-- trailing; comment\nSELECT /* a; /* nested; */ b */ 1`]);
  });
  it('keeps BEGIN ATOMIC ... END function bodies (with CASE ... END inside) whole', () => {
    const fn = `CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; SELECT 2; END`;
    expect(splitStatements(`${fn}; SELECT 1`)).toEqual([fn, 'SELECT 1']);
  });
  it('an unterminated (nested) comment runs to the end: nothing after it is split off, and a placeholder before it is refused', () => {
    // PostgreSQL reads the rest of the text as comment (and refuses the string): so must the splitter.
    expect(splitStatements('SELECT 1; /* a /* b */ c; GRANT x TO y')).toEqual(['SELECT 1', '/* a /* b */ c; GRANT x TO y']);
    expect(() => renderVerified(`SELECT '{{name}}' /* /* x */; SELECT 2`, { name: 'v-a' })).toThrow(/unterminated \/\* comment/);
  });
  it('does not mistake $1 parameters or identifiers containing $ for dollar quotes', () => {
    expect(splitStatements('SELECT $1; SELECT a$b$c; SELECT 2')).toEqual(['SELECT $1', 'SELECT a$b$c', 'SELECT 2']);
  });
});

describe('renderStatement', () => {
  const stmt = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`;
  it('fills placeholders', () => {
    expect(renderStatement(stmt, { name: 'v-a', password: 'pw', expiration: '2030-01-01 00:00:00+0000' })).toBe(
      `CREATE ROLE "v-a" WITH LOGIN PASSWORD 'pw' VALID UNTIL '2030-01-01 00:00:00+0000'`,
    );
  });
  it('escapes each value for the quotes it sits in, so it cannot break out', () => {
    const out = renderStatement(stmt, { name: 'x"; DROP TABLE t; --', password: "p'; DROP TABLE t; --", expiration: 'e' });
    expect(out).toBe(`CREATE ROLE "x""; DROP TABLE t; --" WITH LOGIN PASSWORD 'p''; DROP TABLE t; --' VALID UNTIL 'e'`);
    expect(splitStatements(out)).toHaveLength(1);
  });
  it('escapes backslashes inside E-strings', () => {
    expect(renderStatement(`SELECT E'{{password}}'`, { password: `a\\'b` })).toBe(`SELECT E'a\\\\''b'`);
  });
  it('escapes nested contexts inside dollar-quoted dynamic SQL', () => {
    const s = `DO $$ BEGIN EXECUTE 'CREATE ROLE "{{name}}" PASSWORD ''{{password}}'''; END $$`;
    const out = renderStatement(s, { name: `a"b'c`, password: 'p' });
    expect(out).toContain(`"a""b''c"`);
  });
  it('refuses a value that would close the dollar quote it is in', () => {
    expect(() => renderStatement(`DO $x$ BEGIN PERFORM '{{password}}'; END $x$`, { password: 'a$x$b' })).toThrow(/would end/);
  });
  it('allows plain words unquoted but refuses special characters outside quotes', () => {
    expect(renderStatement('GRANT r TO {{name}}', { name: 'abc_1' })).toBe('GRANT r TO abc_1');
    expect(() => renderStatement('GRANT r TO {{name}}', { name: 'a b; DROP' })).toThrow(/inside quotes/);
  });
  it('refuses values that would change how the statement tokenises (found by the fuzz suite)', () => {
    expect(() => renderStatement('{{password}}$$;ATOMIC', { password: '0' })).toThrow(/followed by "\$"/);
    expect(renderStatement(`SELECT '{{password}}'$$x$$`, { password: '0' })).toBe(`SELECT '0'$$x$$`);
  });
  it('leaves unknown placeholders and placeholders in comments alone', () => {
    expect(renderStatement(`SELECT '{{other}}' -- {{name}}`, { name: 'n' })).toBe(`SELECT '{{other}}' -- {{name}}`);
  });
  it('rejects NUL bytes', () => {
    expect(() => renderStatement(`SELECT '{{password}}'`, { password: 'a\u0000b' })).toThrow(/NUL/);
  });
});

describe('tokenising as PostgreSQL does (security review, item 1)', () => {
  const evil = `x';DROP TABLE t;--`;
  it('an apostrophe inside a $$ string does not invert quoting for what follows', () => {
    const tpl = `COMMENT ON ROLE "{{name}}" IS $$Vault's role$$; ALTER ROLE "{{name}}" SET application_name = '"{{name}}"';`;
    expect(splitStatements(tpl)).toEqual([`COMMENT ON ROLE "{{name}}" IS $$Vault's role$$`, `ALTER ROLE "{{name}}" SET application_name = '"{{name}}"'`]);
    const out = splitStatements(tpl).map((s) => renderVerified(s, { name: evil }));
    expect(out[1]).toBe(`ALTER ROLE "x';DROP TABLE t;--" SET application_name = '"x'';DROP TABLE t;--"'`);
  });
  it('a dollar quote may follow a number but not an identifier character', () => {
    expect(splitStatements('SELECT 1$$;$$; SELECT a$b$c; SELECT 2')).toEqual(['SELECT 1$$;$$', 'SELECT a$b$c', 'SELECT 2']);
  });
  it("a string continued on the next line keeps E'' backslash rules", () => {
    expect(renderVerified(`SELECT E'x'\n'{{password}}'`, { password: `\\'; DROP TABLE t; --` })).toBe(`SELECT E'x'\n'\\\\''; DROP TABLE t; --'`);
  });
  it(`U&'' and U&"" are quoted contexts; a backslash (their escape character) is refused`, () => {
    expect(renderVerified(`SELECT U&'{{password}}', U&"{{name}}"`, { password: `a'b`, name: 'c"d' })).toBe(`SELECT U&'a''b', U&"c""d"`);
    expect(() => renderStatement(`SELECT U&'{{password}}'`, { password: 'a\\0027' })).toThrow(/backslash/);
  });
  it('nested comments hide placeholders; the text after them is SQL again', () => {
    expect(renderVerified(`SELECT /* /* {{name}} */ ' */ '{{name}}'`, { name: evil })).toBe(`SELECT /* /* {{name}} */ ' */ 'x'';DROP TABLE t;--'`);
  });
  it("dynamic SQL in a DO block: a value inside ''...'' is escaped for both levels", () => {
    const tpl = `DO $$ BEGIN EXECUTE 'ALTER ROLE "{{name}}" SET application_name = ''{{name}}'''; END $$`;
    expect(renderVerified(tpl, { name: `a'b"c` })).toBe(`DO $$ BEGIN EXECUTE 'ALTER ROLE "a''b""c" SET application_name = ''a''''b"c'''; END $$`);
  });
  it('refuses a placeholder in a $-body whose quotes do not close, and values that would close the body', () => {
    expect(() => renderStatement(`DO $$ BEGIN PERFORM 'Vault''s; {{name}}'; PERFORM 'x; END $$`, { name: 'n' })).toThrow(/do not close/);
    expect(() => renderStatement(`DO $a$ BEGIN PERFORM '{{password}}'; END $a$`, { password: 'x$a$' })).toThrow(/would end/);
    expect(() => renderStatement(`DO $a$ BEGIN PERFORM '{{password}}'; END $a$`, { password: 'x$a' })).not.toThrow();
    // Inside a body the first $a$ ends it, whatever precedes it: a value there only must not complete one.
    expect(renderVerified(`DO $a$ BEGIN PERFORM 1; END {{name}}$a$`, { name: 'x' })).toBe('DO $a$ BEGIN PERFORM 1; END x$a$');
  });
  it('refuses a bare value glued to a quote or $ (it could change the kind of the next token)', () => {
    expect(() => renderStatement(`SELECT {{name}}'\\'`, { name: 'E' })).toThrow(/followed by "'"/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the SQL text itself holds "${{name}}"
    expect(() => renderStatement('SELECT ${{name}}', { name: '1' })).toThrow(/preceded by "\$"/);
    expect(() => renderStatement('SELECT $1{{name}}', { name: '0' })).toThrow(/preceded by "\$" or a \$n parameter/);
    // found by the fuzz suite: A + U&"..." lexes as the identifier AU, then & and a plain "..."
    expect(() => renderStatement('SELECT {{name}}U&"{{password}}"', { name: 'A', password: 'p' })).toThrow(/followed by "U&"/);
  });
  it('renderVerified runs the independent check on every value it placed (renderStatement does not)', () => {
    // The scanner and PostgreSQL's lexer disagree here: only the check, given each value's span, can tell.
    lexer.misread = true;
    try {
      expect(renderStatement(`SELECT '{{password}}'`, { password: 'pw' })).toBe(`SELECT 'pw'`);
      expect(() => renderVerified(`SELECT '{{password}}'`, { password: 'pw' })).toThrow(/would not stay inside its quotes/);
      expect(() => renderVerified(`SELECT 1 -- '{{password}}'`, { password: 'pw' })).not.toThrow(); // nothing placed, nothing to check
    } finally {
      lexer.misread = false;
    }
  });
  it('the independent check refuses a value that does not sit in the token the scanner claimed', () => {
    const text = `SELECT '"x';DROP TABLE t;--"'`;
    expect(() => verifyPlacement(text, [{ start: 9, end: 27, key: 'name', stack: [{ kind: 'single' }, { kind: 'double' }] }], 0)).toThrow(
      /would not stay inside/,
    );
    expect(() => verifyPlacement(`SELECT "a" , 'b'`, [{ start: 8, end: 9, key: 'name', stack: [{ kind: 'single' }] }], 0)).toThrow(/not where/);
    expect(() => verifyPlacement(`SELECT 'abc`, [{ start: 8, end: 9, key: 'name', stack: [{ kind: 'single' }] }], 0)).toThrow(/unterminated/);
  });
});

describe('placeholders in $-quoted string constants (review item 5)', () => {
  const evil = `x'; DROP TABLE t; --"\\`;
  it('in a plain string constant any value is text up to the closing tag', () => {
    expect(renderVerified(`COMMENT ON ROLE "{{name}}" IS $$hi {{name}}$$`, { name: 'ab' })).toBe(`COMMENT ON ROLE "ab" IS $$hi ab$$`);
    expect(renderVerified(`COMMENT ON ROLE r IS $c$it's {{password}}$c$`, { password: evil })).toBe(`COMMENT ON ROLE r IS $c$it's ${evil}$c$`);
    expect(renderVerified(`ALTER ROLE r SET application_name = $$ {{name}} -- /* $$`, { name: evil })).toBe(
      `ALTER ROLE r SET application_name = $$ ${evil} -- /* $$`,
    );
    expect(renderVerified(`/* note */ COMMENT ON ROLE r IS $$a {{name}}$$`, { name: 'a b' })).toBe(`/* note */ COMMENT ON ROLE r IS $$a a b$$`);
  });
  it('refuses a value that would end the string, alone or with the closing tag', () => {
    expect(() => renderStatement(`COMMENT ON ROLE r IS $$hi {{name}}$$`, { name: 'a$$; DROP TABLE t; --' })).toThrow(/would end the \$\$-quoted string/);
    expect(() => renderStatement(`COMMENT ON ROLE r IS $c$hi {{name}}$c$`, { name: 'a$c' })).toThrow(/would end the \$c\$-quoted string/);
    expect(renderVerified(`COMMENT ON ROLE r IS $c$hi {{name}}$c$`, { name: 'a$$b$d$' })).toBe('COMMENT ON ROLE r IS $c$hi a$$b$d$$c$');
  });
  it('DO and CREATE FUNCTION/PROCEDURE bodies are code: the stricter rule stays', () => {
    for (const tpl of [
      'DO $$ BEGIN RAISE NOTICE {{name}}; END $$',
      'do language plpgsql $$ BEGIN RAISE NOTICE {{name}}; END $$',
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT {{name}} $$',
      'CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $b$ SELECT {{name}} $b$',
      '-- c\nCREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT {{name}} $$ LANGUAGE sql',
    ]) {
      expect(() => renderStatement(tpl, { name: `x'y` }), tpl).toThrow(/must be written inside quotes/);
    }
    expect(() => renderStatement(`DO $$ BEGIN RAISE NOTICE 'it''s'; PERFORM $q$ {{name}} $q$; END $$`, { name: `a'b` })).toThrow(/inside quotes/);
  });
  it("the check with PostgreSQL's lexer refuses a plain-text placement in a statement that runs bodies as code", () => {
    const text = 'DO $$ x $$';
    expect(() => verifyPlacement(text, [{ start: 6, end: 7, key: 'name', stack: [{ kind: 'dollar', tag: '', plain: true }] }], 0)).toThrow(/not where/);
    expect(() =>
      verifyPlacement('COMMENT ON ROLE r IS $$ x $$', [{ start: 24, end: 25, key: 'name', stack: [{ kind: 'dollar', tag: '', plain: true }] }], 0),
    ).not.toThrow();
  });
});

describe('assertNoTransactionControl', () => {
  it('rejects BEGIN/COMMIT/ROLLBACK but not BEGIN ATOMIC bodies', () => {
    for (const s of ['BEGIN', 'commit', ' ROLLBACK', 'START TRANSACTION', '/* c */ END'])
      expect(() => assertNoTransactionControl([s])).toThrow(/transaction control/);
    expect(() => assertNoTransactionControl(['CREATE ROLE a', 'BEGIN ATOMIC SELECT 1; END'])).not.toThrow();
  });
});
