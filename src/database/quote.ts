// The one place SQL identifiers and literals are quoted. Everything that puts a
// value into SQL text goes through these (see render.ts for statement templates).
import { invalid } from './errors';

function assertNoNul(v: string, what: string): void {
  if (v.includes('\u0000')) throw invalid(`${what} must not contain a NUL character`);
}

/** "ident" with embedded quotes doubled. */
export function quoteIdent(name: string): string {
  assertNoNul(name, 'identifier');
  if (name.length === 0) throw invalid('identifier must not be empty');
  return '"' + name.replace(/"/g, '""') + '"';
}

/** 'literal' with quotes doubled; E'' form when backslashes are present, so the result
 *  means the same whatever standard_conforming_strings is set to. */
export function quoteLiteral(value: string): string {
  assertNoNul(value, 'literal');
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** Escape a value for the inside of an already-open quoted context. */
export function escapeIn(kind: 'single' | 'escape' | 'double', value: string): string {
  assertNoNul(value, 'value');
  switch (kind) {
    case 'double':
      return value.replace(/"/g, '""');
    case 'single':
      return value.replace(/'/g, "''");
    case 'escape':
      return value.replace(/\\/g, '\\\\').replace(/'/g, "''");
  }
}
