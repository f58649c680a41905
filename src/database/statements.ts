// Statement handling for creation/renew/rotation/revocation templates:
//  - splitStatements: split on top-level semicolons, keeping dollar-quoted bodies,
//    quoted strings/identifiers, comments and BEGIN ATOMIC ... END blocks whole;
//  - renderStatement: substitute {{name}}/{{username}}/{{password}}/{{expiration}},
//    escaping each value for the quoting context it lands in, so a quote in a
//    password or display name can never end the string it was written into;
//  - renderVerified: the same, then checked with PostgreSQL's own lexer (pglexer.ts).
//
// The scanner follows PostgreSQL's lexer (scan.l) with standard_conforming_strings on:
// '...' with '' only; E'...' with backslash escapes; U&'...' and U&"..."; B'' / X'';
// string continuation across a newline (which keeps an E-string's rules); "..." with "";
// $tag$...$tag$ (a tag cannot follow an identifier character, the body ends at the first
// $tag$); -- and nested /* */ comments. A dollar-quoted body is a string constant to the
// server. In a statement that runs it as code (DO, CREATE FUNCTION/PROCEDURE), placeholders
// inside it are placed by lexing the body as SQL, and inside a string literal of such a
// body by lexing the literal's decoded content for quotes (dynamic SQL); where that is
// ambiguous the template is refused. In any other statement it is plain text
// (COMMENT ... IS $$...$$): a value there only must not end it.
import { escapeIn } from './quote';
import { invalid } from './errors';
import { PgLexError, pgScan, type PgToken } from './pglexer';

/** The quoting contexts a placeholder can sit in. */
export type Quote = 'single' | 'escape' | 'double' | 'unicode' | 'unicode-ident' | 'bits';
/** One quoting level around a placeholder. `reencoded`: the literal is re-encoded as a whole after substitution. */
export type Ctx = { kind: Quote; reencoded?: boolean } | { kind: 'dollar'; tag: string; plain?: boolean };

/** A placeholder in a statement: where it is, which value, and the quoting around it. */
export interface Span {
  start: number;
  end: number;
  key: string;
  stack: readonly Ctx[];
}

interface Hooks {
  /** Called for each {{key}} outside comments; returns replacement text or undefined to keep it. */
  placeholder?(key: string, stack: readonly Ctx[], bareMode: 'sql' | 'text'): string | undefined;
  /** Called for each top-level statement terminator. */
  terminator?(): void;
}

class Out {
  s = '';
  spans: Span[] = [];
}

interface Level {
  /** 'sql': SQL text (top level or a dollar-quoted body); 'text': decoded content of a literal inside a body. */
  mode: 'sql' | 'text';
  stack: Ctx[];
  hooks: Hooks;
  out: Out;
  /** Statement level: terminators and BEGIN ATOMIC tracking apply. */
  top: boolean;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const WORD = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER =
  /(?:0[xXoObB][0-9A-Fa-f_]+|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?|\.[0-9][0-9_]*(?:[eE][+-]?[0-9_]+)?)(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)?/y;
const DOLLAR_OPEN = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const PARAM = /\$[0-9]+/y; // PostgreSQL 18 lexes $1abc as a parameter and an identifier
// scan.l's quotecontinue: horizontal space or -- comments, a newline, then any space or
// -- comment lines, then the next segment's opening quote.
const CONTINUATION = /(?:[ \t\f]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]+|--[^\n\r]*[\n\r])*'/y;
const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/y;

function at(re: RegExp, s: string, i: number): string | undefined {
  re.lastIndex = i;
  return re.exec(s)?.[0];
}

/** A {{key}} at i: its key and end. */
function placeholderAt(s: string, i: number): { key: string; end: number } | undefined {
  if (s[i] !== '{' || s[i + 1] !== '{') return undefined;
  PLACEHOLDER.lastIndex = i;
  const m = PLACEHOLDER.exec(s);
  return m ? { key: m[1], end: i + m[0].length } : undefined;
}

/** Substitute a placeholder; records the value's span. */
function place(lv: Level, key: string, stack: readonly Ctx[], raw: string, rep = lv.hooks.placeholder?.(key, stack, lv.mode)): void {
  if (rep === undefined) {
    lv.out.s += raw;
    return;
  }
  const start = lv.out.s.length;
  lv.out.s += rep;
  lv.out.spans.push({ start, end: start + rep.length, key, stack: [...stack] });
}

/** Lex one level. Returns false when the text ends inside a quote, identifier or comment. */
function lex(src: string, lv: Level): boolean {
  const emit = (s: string) => {
    lv.out.s += s;
  };
  let i = 0;
  let atomicDepth = 0;
  let prevWord = '';
  /** The first words of the current statement (top level): whether its $-bodies are code. */
  let lead: string[] = [];
  let paramEnd = -1;
  const sql = lv.mode === 'sql';
  while (i < src.length) {
    const ph = placeholderAt(src, i);
    if (ph) {
      const rep = lv.hooks.placeholder?.(ph.key, lv.stack, lv.mode);
      const top = lv.stack[lv.stack.length - 1];
      if (rep !== undefined && (!top || top.kind === 'dollar')) {
        const before = src[i - 1];
        const after = src[ph.end];
        // A bare value glued to "$", a quote or "&" could turn what follows into another
        // kind of token (a dollar quote into part of an identifier, '...' into E'...').
        if (before === '$' || paramEnd === i) throw invalid(`{{${ph.key}}} is directly preceded by "$" or a $n parameter: put a space between them`);
        if (after !== undefined && `$'"&`.includes(after))
          throw invalid(`{{${ph.key}}} is directly followed by "${after}": put a space or quotes between them`);
        // ...or glued to the prefix of E'', U&'', B'', X'', N'' (value + prefix would be one identifier).
        const prefix = at(WORD, src, ph.end);
        if (prefix?.length === 1 && /[eEuUbBxXnN]/.test(prefix) && `'&`.includes(src[ph.end + 1] ?? '-')) {
          throw invalid(`{{${ph.key}}} is directly followed by "${prefix}${src[ph.end + 1]}": put a space between them`);
        }
      }
      place(lv, ph.key, lv.stack, src.slice(i, ph.end), rep);
      i = ph.end;
      continue;
    }
    const c = src[i];
    const n = src[i + 1];
    if (sql && c === '-' && n === '-') {
      let stop = i;
      while (stop < src.length && src[stop] !== '\n' && src[stop] !== '\r') stop++;
      emit(src.slice(i, stop));
      i = stop;
      continue;
    }
    if (sql && c === '/' && n === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < src.length && depth > 0) {
        if (src.startsWith('/*', j)) {
          depth++;
          j += 2;
        } else if (src.startsWith('*/', j)) {
          depth--;
          j += 2;
        } else j++;
      }
      emit(src.slice(i, j));
      i = j;
      if (depth > 0) return false;
      continue;
    }
    if (c === "'" || c === '"') {
      i = lexQuoted(src, i, c === "'" ? 'single' : 'double', '', lv);
      if (i < 0) return false;
      continue;
    }
    if (sql && c === '$') {
      const param = at(PARAM, src, i);
      if (param) {
        emit(param);
        i += param.length;
        paramEnd = i;
        continue;
      }
      const open = at(DOLLAR_OPEN, src, i);
      if (open) {
        i = lexDollar(src, i, open, lv, lv.top && lv.stack.length === 0 && !runsBodiesAsCode(lead));
        if (i < 0) return false;
        continue;
      }
      emit(c);
      i++;
      continue;
    }
    if (IDENT_START.test(c)) {
      const w = at(WORD, src, i)!;
      const after = src[i + w.length];
      // Prefixed literals are one token only when the prefix is the whole word.
      if (w.length === 1 && after === "'" && /[eEbBxX]/.test(w)) {
        i = lexQuoted(src, i + 1, /[eE]/.test(w) ? 'escape' : 'bits', w, lv);
        if (i < 0) return false;
        continue;
      }
      if (w.length === 1 && /[uU]/.test(w) && after === '&' && (src[i + 2] === "'" || src[i + 2] === '"')) {
        i = lexQuoted(src, i + 2, src[i + 2] === "'" ? 'unicode' : 'unicode-ident', src.slice(i, i + 2), lv);
        if (i < 0) return false;
        continue;
      }
      if (lv.top && sql) {
        const u = w.toUpperCase();
        if (prevWord === 'BEGIN' && u === 'ATOMIC') atomicDepth++;
        else if (atomicDepth > 0 && u === 'CASE') atomicDepth++;
        else if (atomicDepth > 0 && u === 'END') atomicDepth--;
        prevWord = u;
        if (lead.length < 4) lead.push(u);
      }
      emit(w);
      i += w.length;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(n ?? ''))) {
      const num = at(NUMBER, src, i)!;
      emit(num);
      i += num.length;
      continue;
    }
    if (c === ';' && lv.top && sql && atomicDepth === 0) {
      lead = [];
      lv.hooks.terminator?.();
      i++;
      continue;
    }
    emit(c);
    i++;
  }
  return true;
}

/**
 * Does a statement starting with these words (upper case) run its $-quoted constants as
 * code: DO's block, CREATE [OR REPLACE] FUNCTION/PROCEDURE's AS body? Any other
 * statement's $-quoted constants are plain values (COMMENT ... IS, SET x = ..., PASSWORD).
 * Erring towards code is safe: it keeps the stricter rule.
 */
export function runsBodiesAsCode(lead: readonly string[]): boolean {
  if (lead[0] === 'DO') return true;
  return lead[0] === 'CREATE' && lead.slice(1, 4).some((w) => w === 'FUNCTION' || w === 'PROCEDURE');
}

/** $tag$ body $tag$ starting at i (`plain`: a plain string constant, not code). Returns the index after it, or -1 if unterminated. */
function lexDollar(src: string, i: number, open: string, lv: Level, plain = false): number {
  const tag = open.slice(1, -1);
  const bodyStart = i + open.length;
  const close = src.indexOf(open, bodyStart);
  lv.out.s += open;
  if (close < 0) {
    lv.out.s += src.slice(bodyStart);
    return -1;
  }
  const body = src.slice(bodyStart, close);
  const from = lv.out.s.length;
  if (lv.hooks.placeholder && body.includes('{{') && plain) {
    // Text, not SQL: every placeholder in it is a value (no comments or quotes to respect).
    const stack: Ctx[] = [...lv.stack, { kind: 'dollar', tag, plain: true }];
    for (let j = 0; j < body.length; ) {
      const ph = placeholderAt(body, j);
      if (ph) {
        place(lv, ph.key, stack, body.slice(j, ph.end));
        j = ph.end;
      } else lv.out.s += body[j++];
    }
    if ((lv.out.s.slice(from) + open).indexOf(open) !== lv.out.s.length - from)
      throw invalid(`a placeholder value would end the $${tag}$-quoted string it is written in`);
  } else if (lv.hooks.placeholder && body.includes('{{')) {
    const clean = lex(body, { ...lv, mode: 'sql', stack: [...lv.stack, { kind: 'dollar', tag }], top: false });
    const rendered = lv.out.s.slice(from);
    if (rendered !== body) {
      if (!clean) throw invalid(`a placeholder is inside a $${tag}$-quoted body whose quotes or comments do not close; placeholders there need balanced SQL`);
      // The body ends at the first $tag$: a value must not create one (nor complete one with the closing delimiter).
      if ((rendered + open).indexOf(open) !== rendered.length) throw invalid(`a placeholder value would end the $${tag}$-quoted body it is written in`);
    }
  } else {
    lv.out.s += body;
  }
  lv.out.s += open;
  return close + open.length;
}

/**
 * A quoted string or identifier whose opening quote is at q (prefix already read, e.g. "E"
 * or "U&"). Returns the index after it (after any continuation segments), or -1 if unterminated.
 */
function lexQuoted(src: string, q: number, kind: Quote, prefix: string, lv: Level): number {
  const quote = src[q];
  const inBody = lv.mode === 'sql' && lv.stack.some((c) => c.kind === 'dollar');
  if (inBody && lv.hooks.placeholder && quote === "'" && kind !== 'bits') {
    const end = literalEnd(src, q + 1, kind);
    if (end >= 0 && src.slice(q + 1, end).includes('{{')) {
      if (kind !== 'single') throw invalid(`placeholders inside ${prefix}'...' literals within $-quoted bodies are not supported: use '...'`);
      lexLiteralInBody(src.slice(q + 1, end), lv);
      return end + 1;
    }
  }
  const emit = (s: string) => {
    lv.out.s += s;
  };
  const stack: Ctx[] = [...lv.stack, { kind }];
  emit(prefix + quote);
  let j = q + 1;
  while (j < src.length) {
    const ph = placeholderAt(src, j);
    if (ph) {
      place(lv, ph.key, stack, src.slice(j, ph.end));
      j = ph.end;
      continue;
    }
    const ch = src[j];
    if (kind === 'escape' && ch === '\\') {
      emit(src.slice(j, j + 2));
      j += 2;
      continue;
    }
    if (ch === quote) {
      if (src[j + 1] === quote && kind !== 'bits') {
        emit(quote + quote);
        j += 2;
        continue;
      }
      emit(quote);
      j++;
      if (quote === "'" && lv.mode === 'sql') {
        const cont = at(CONTINUATION, src, j);
        if (cont) {
          emit(cont);
          j += cont.length;
          continue;
        }
      }
      return j;
    }
    emit(ch);
    j++;
  }
  return -1;
}

/** Index of the closing quote of a '...' segment whose content starts at i, or -1. */
function literalEnd(src: string, i: number, kind: Quote): number {
  for (let j = i; j < src.length; j++) {
    if (kind === 'escape' && src[j] === '\\') {
      j++;
      continue;
    }
    if (src[j] === "'") {
      if (src[j + 1] === "'") {
        j++;
        continue;
      }
      return j;
    }
  }
  return -1;
}

/**
 * A '...' literal inside a dollar-quoted body that holds placeholders: its decoded content
 * may itself be SQL (EXECUTE '...'), so it is lexed for quotes and re-encoded as a whole.
 */
function lexLiteralInBody(raw: string, lv: Level): void {
  const decoded = raw.replace(/''/g, "'");
  const sub: Level = {
    mode: 'text',
    stack: [...lv.stack, { kind: 'single', reencoded: true }],
    hooks: { placeholder: lv.hooks.placeholder },
    out: new Out(),
    top: false,
  };
  if (!lex(decoded, sub)) throw invalid('a placeholder is inside a quoted string, within a $-quoted body, whose own quotes do not close');
  const base = lv.out.s.length + 1;
  const quotesBefore = (k: number) => (sub.out.s.slice(0, k).match(/'/g) ?? []).length;
  for (const sp of sub.out.spans) {
    lv.out.spans.push({ ...sp, start: base + sp.start + quotesBefore(sp.start), end: base + sp.end + quotesBefore(sp.end) });
  }
  lv.out.s += "'" + sub.out.s.replace(/'/g, "''") + "'";
}

const ONLY_TRIVIA = /^(\s|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*$/;

/** Split a statement template into individual statements (without the trailing semicolons). */
export function splitStatements(text: string): string[] {
  const pieces: string[] = [];
  const out = new Out();
  const flush = () => {
    if (!ONLY_TRIVIA.test(out.s)) pieces.push(out.s.trim());
    out.s = '';
  };
  lex(text, { mode: 'sql', stack: [], hooks: { terminator: flush }, out, top: true });
  flush();
  return pieces;
}

/** Split every command Vault passed (each may hold several statements). */
export function splitAll(commands: readonly string[]): string[] {
  return commands.flatMap((c) => splitStatements(c));
}

/** The values a statement's placeholders are filled with. */
export type Values = Partial<Record<'name' | 'username' | 'password' | 'expiration', string>>;

const BARE_VALUE = /^[A-Za-z0-9_]+$/;

function escapeFor(stack: readonly Ctx[], key: string, value: string): string {
  const top = stack[stack.length - 1];
  if (top?.kind === 'dollar' && top.plain) {
    // A plain $tag$ string holds any text up to its closing tag (the body's end is checked as a whole too).
    if (value.includes(`$${top.tag}$`)) throw invalid(`{{${key}}} value would end the $${top.tag}$-quoted string it is written in`);
    return value;
  }
  if (!top || top.kind === 'dollar') {
    if (BARE_VALUE.test(value)) return value;
    throw invalid(`{{${key}}} must be written inside quotes (e.g. "{{${key}}}" or '{{${key}}}') because its value contains special characters`);
  }
  let v = value;
  for (let k = stack.length - 1; k >= 0; k--) {
    const ctx = stack[k];
    switch (ctx.kind) {
      case 'dollar':
        if (v.includes(`$${ctx.tag}$`)) throw invalid(`{{${key}}} value would end the $${ctx.tag}$-quoted body it is written in`);
        break;
      case 'bits':
        if (!BARE_VALUE.test(v)) throw invalid(`{{${key}}} inside a B'' or X'' literal must be letters and digits only`);
        break;
      case 'unicode':
      case 'unicode-ident':
        // Backslash is U&'s escape character: the value would not mean itself.
        if (v.includes('\\')) throw invalid(`{{${key}}} inside a U&-quoted literal must not contain a backslash`);
        v = escapeIn(ctx.kind === 'unicode' ? 'single' : 'double', v);
        break;
      default:
        if (!ctx.reencoded) v = escapeIn(ctx.kind, v);
    }
  }
  return v;
}

/** Rendered text and where each value went. */
export interface Rendered {
  text: string;
  spans: Span[];
}

function substitute(stmt: string, values: Values): Rendered {
  const out = new Out();
  lex(stmt, {
    mode: 'sql',
    stack: [],
    out,
    top: true,
    hooks: {
      placeholder: (key, stack) => {
        const v = values[key as keyof Values];
        return v === undefined ? undefined : escapeFor(stack, key, v);
      },
      terminator: () => {
        out.s += ';';
      },
    },
  });
  return { text: out.s, spans: out.spans };
}

function renderWithSpans(stmt: string, values: Values): Rendered {
  const r = substitute(stmt, values);
  if (splitStatements(r.text).length !== splitStatements(stmt).length) {
    throw invalid('a placeholder value would change how the statement is parsed; write placeholders inside quotes');
  }
  return r;
}

/**
 * Substitute placeholders in one statement. Unknown {{keys}} are left untouched (as Vault
 * does). A value can never change how the statement splits: that is checked, not assumed.
 */
export function renderStatement(stmt: string, values: Values): string {
  return renderWithSpans(stmt, values).text;
}

/**
 * renderStatement, then an independent check with PostgreSQL's own lexer (call
 * loadPgLexer() first): each value lies inside one token, of the kind it was escaped for.
 */
export function renderVerified(stmt: string, values: Values): string {
  const r = renderWithSpans(stmt, values);
  if (r.spans.length) verifyPlacement(r.text, r.spans, 0);
  return r.text;
}

const refusal = (detail: string) =>
  invalid(
    `a placeholder value would not stay inside its quotes as PostgreSQL reads the statement (${detail}); write placeholders inside plain '...' or "..." quotes`,
  );

/** Check, with PostgreSQL's lexer, that each span sits in one token of the kind its stack says (at this depth). */
export function verifyPlacement(text: string, spans: readonly Span[], depth: number): void {
  let tokens: PgToken[];
  try {
    tokens = pgScan(text);
  } catch (e) {
    if (e instanceof PgLexError) throw refusal(e.message);
    throw e;
  }
  const inner = new Map<PgToken, Span[]>();
  // The statement's first words as PostgreSQL's lexer reads them: a value placed as plain
  // text in a $-quoted constant must not be in a statement that runs such bodies as code.
  const lead = tokens
    .filter((t) => t.name !== 'SQL_COMMENT' && t.name !== 'C_COMMENT')
    .slice(0, 4)
    .map((t) => t.text.toUpperCase());
  for (const sp of spans) {
    const tok = tokens.find((t) => t.start <= sp.start && sp.end <= t.end && t.end > t.start);
    if (!tok) throw refusal(`{{${sp.key}}} spans several tokens`);
    const ctx = sp.stack[depth];
    const t = tok.text;
    let ok: boolean;
    if (!ctx) ok = !tok.text.startsWith('"') && (tok.name === 'IDENT' || tok.keyword || tok.name === 'ICONST' || tok.name === 'FCONST');
    else if (ctx.kind === 'dollar')
      ok =
        tok.name === 'SCONST' &&
        t.startsWith(`$${ctx.tag}$`) &&
        t.endsWith(`$${ctx.tag}$`) &&
        t.length >= 2 * (ctx.tag.length + 2) &&
        !(ctx.plain && (depth > 0 || runsBodiesAsCode(lead)));
    else if (ctx.kind === 'single') ok = tok.name === 'SCONST' && t.startsWith("'");
    else if (ctx.kind === 'escape') ok = tok.name === 'SCONST' && /^[eE]'/.test(t);
    else if (ctx.kind === 'double') ok = tok.name === 'IDENT' && t.startsWith('"');
    else if (ctx.kind === 'unicode') ok = /^[uU]&'/.test(t);
    else if (ctx.kind === 'unicode-ident') ok = /^[uU]&"/.test(t);
    else ok = /^[bBxX]'/.test(t);
    if (!ok) throw refusal(`{{${sp.key}}} is not where the template puts it`);
    if (ctx && sp.stack.length > depth + 1) {
      const list = inner.get(tok) ?? [];
      list.push(sp);
      inner.set(tok, list);
    }
  }
  // Values nested deeper: check inside the dollar body, or in a literal's decoded content.
  for (const [tok, list] of inner) {
    const ctx = list[0].stack[depth];
    if (ctx.kind === 'dollar') {
      const off = tok.start + ctx.tag.length + 2;
      const body = tok.text.slice(ctx.tag.length + 2, tok.text.length - ctx.tag.length - 2);
      verifyPlacement(
        body,
        list.map((s) => ({ ...s, start: s.start - off, end: s.end - off })),
        depth + 1,
      );
    } else if (ctx.kind === 'single' && /^'(?:[^']|'')*'$/.test(tok.text)) {
      // Decode '' and map the spans into the decoded text.
      const content = tok.text.slice(1, -1);
      const decodedIndex = (k: number) => k - (content.slice(0, k).match(/''/g) ?? []).length;
      const off = tok.start + 1;
      verifyPlacement(
        content.replace(/''/g, "'"),
        list.map((s) => ({ ...s, start: decodedIndex(s.start - off), end: decodedIndex(s.end - off) })),
        depth + 1,
      );
    } else {
      throw refusal(`{{${list[0].key}}} is nested in a literal form that cannot be checked`);
    }
  }
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
