// Statement handling for creation/renew/rotation/revocation templates:
//  - splitStatements: split on top-level semicolons, keeping dollar-quoted bodies,
//    quoted strings/identifiers, comments and BEGIN ATOMIC ... END blocks whole;
//  - renderStatement: substitute {{name}}/{{username}}/{{password}}/{{expiration}},
//    escaping each value for the quoting context it lands in, so a quote in a
//    password or display name can never end the string it was written into.
import { escapeIn } from './quote';
import { invalid } from './errors';

type Ctx = { kind: 'single' | 'escape' | 'double' } | { kind: 'dollar'; tag: string };

interface ScanHooks {
  /** Called for each {{key}} outside comments; returns replacement text or undefined to keep it. */
  placeholder?(key: string, stack: readonly Ctx[]): string | undefined;
  /** Called for each top-level statement terminator. */
  terminator?(): void;
}

const isIdentChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);

/** One pass over SQL text. Returns the (possibly substituted) text; calls hooks. */
function scan(sql: string, hooks: ScanHooks, onChunk: (s: string) => void): void {
  const stack: Ctx[] = [];
  let i = 0;
  let atomicDepth = 0;
  let prevWord = '';
  const top = () => stack[stack.length - 1];
  const inDollar = () => stack.some((c) => c.kind === 'dollar');
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    const t = top();
    // Placeholders are recognised in every context except comments.
    if (c === '{' && next === '{' && hooks.placeholder) {
      const end = sql.indexOf('}}', i + 2);
      if (end > 0) {
        const key = sql.slice(i + 2, end).trim();
        if (/^[a-z_]+$/.test(key)) {
          const rep = hooks.placeholder(key, stack);
          const bare = stack.length === 0 || stack[stack.length - 1].kind === 'dollar';
          // A bare value followed by "$" would turn a dollar quote into part of an identifier.
          if (rep !== undefined && bare && sql[end + 2] === '$') {
            throw invalid(`{{${key}}} is directly followed by "$": put a space or quotes between them`);
          }
          onChunk(rep ?? sql.slice(i, end + 2));
          i = end + 2;
          continue;
        }
      }
    }
    if (t?.kind === 'dollar') {
      const close = `$${t.tag}$`;
      if (sql.startsWith(close, i)) {
        // The body ends here whatever quotes it left open.
        while (stack.length && top().kind !== 'dollar') stack.pop();
        stack.pop();
        onChunk(close);
        i += close.length;
        continue;
      }
    }
    if (t && t.kind !== 'dollar') {
      if (t.kind === 'double' && c === '"') {
        if (next === '"') { onChunk('""'); i += 2; continue; }
        stack.pop(); onChunk(c); i++; continue;
      }
      if ((t.kind === 'single' || t.kind === 'escape') && c === "'") {
        if (next === "'") { onChunk("''"); i += 2; continue; }
        stack.pop(); onChunk(c); i++; continue;
      }
      if (t.kind === 'escape' && c === '\\') { onChunk(sql.slice(i, i + 2)); i += 2; continue; }
      // Inside a literal within a dollar body (dynamic SQL), track identifiers too.
      if (t.kind === 'single' && c === '"' && inDollar()) { stack.push({ kind: 'double' }); onChunk(c); i++; continue; }
      onChunk(c); i++; continue;
    }
    // Bare SQL (top level or inside a dollar body).
    if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      const stop = nl < 0 ? sql.length : nl;
      onChunk(sql.slice(i, stop)); i = stop; continue;
    }
    if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < sql.length && depth > 0) {
        if (sql.startsWith('/*', j)) { depth++; j += 2; }
        else if (sql.startsWith('*/', j)) { depth--; j += 2; }
        else j++;
      }
      onChunk(sql.slice(i, j)); i = j; continue;
    }
    if (c === "'") {
      const escape = (sql[i - 1] === 'E' || sql[i - 1] === 'e') && !isIdentChar(sql[i - 2]);
      stack.push({ kind: escape ? 'escape' : 'single' }); onChunk(c); i++; continue;
    }
    if (c === '"') { stack.push({ kind: 'double' }); onChunk(c); i++; continue; }
    if (c === '$' && !isIdentChar(sql[i - 1])) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (m) { stack.push({ kind: 'dollar', tag: m[1] ?? '' }); onChunk(m[0]); i += m[0].length; continue; }
    }
    if (/[A-Za-z_]/.test(c) && !isIdentChar(sql[i - 1])) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))!;
      const w = m[0].toUpperCase();
      if (stack.length === 0) {
        if (prevWord === 'BEGIN' && w === 'ATOMIC') atomicDepth++;
        else if (atomicDepth > 0 && w === 'CASE') atomicDepth++;
        else if (atomicDepth > 0 && w === 'END') atomicDepth--;
        prevWord = w;
      }
      onChunk(m[0]); i += m[0].length; continue;
    }
    if (c === ';' && stack.length === 0 && atomicDepth === 0) {
      hooks.terminator?.();
      i++;
      continue;
    }
    onChunk(c); i++;
  }
}

const ONLY_TRIVIA = /^(\s|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*$/;

/** Split a statement template into individual statements (without the trailing semicolons). */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  const flush = () => {
    if (!ONLY_TRIVIA.test(cur)) out.push(cur.trim());
    cur = '';
  };
  scan(text, { terminator: flush }, (s) => { cur += s; });
  flush();
  return out;
}

/** Split every command Vault passed (each may hold several statements). */
export function splitAll(commands: readonly string[]): string[] {
  return commands.flatMap((c) => splitStatements(c));
}

export type Values = Partial<Record<'name' | 'username' | 'password' | 'expiration', string>>;

function escapeFor(stack: readonly Ctx[], key: string, value: string): string {
  if (stack.length === 0 || stack[stack.length - 1].kind === 'dollar') {
    if (/^[A-Za-z0-9_]+$/.test(value)) return value;
    throw invalid(`{{${key}}} must be written inside quotes (e.g. "{{${key}}}" or '{{${key}}}') because its value contains special characters`);
  }
  let v = value;
  for (let k = stack.length - 1; k >= 0; k--) {
    const ctx = stack[k];
    if (ctx.kind === 'dollar') {
      if (v.includes(`$${ctx.tag}$`)) throw invalid(`{{${key}}} value would end the $${ctx.tag}$-quoted body it is written in`);
    } else v = escapeIn(ctx.kind, v);
  }
  return v;
}

/**
 * Substitute placeholders in one statement. Unknown {{keys}} are left untouched (as Vault
 * does). A value can never change how the statement splits: that is checked, not assumed.
 */
export function renderStatement(stmt: string, values: Values): string {
  const out = substitute(stmt, values);
  if (splitStatements(out).length !== splitStatements(stmt).length) {
    throw invalid('a placeholder value would change how the statement is parsed; write placeholders inside quotes');
  }
  return out;
}

function substitute(stmt: string, values: Values): string {
  let out = '';
  scan(stmt, {
    placeholder: (key, stack) => {
      const v = values[key as keyof Values];
      return v === undefined ? undefined : escapeFor(stack, key, v);
    },
    terminator: () => { out += ';'; },
  }, (s) => { out += s; });
  return out;
}

const TX_CONTROL = /^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b(?!\s+ATOMIC)/i;

/** Statements run inside the plugin's own transaction; transaction control would break atomicity. */
export function assertNoTransactionControl(stmts: readonly string[]): void {
  for (const s of stmts) {
    const body = s.replace(/^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*/, '');
    if (TX_CONTROL.test(body)) {
      throw invalid('statements must not contain transaction control (BEGIN/COMMIT/ROLLBACK): the plugin runs them in one transaction');
    }
  }
}
