// Vault's username template language: Go text/template syntax restricted to one
// data object (.DisplayName, .RoleName) and Vault's function set. Parsed once at
// Initialize (so a bad template fails the config write), rendered per NewUser.
import { createHash, randomInt, randomUUID } from 'node:crypto';
import { ErrorCode, PluginError } from './errors';
import { FormatError, goSprintf, goTimeFormat, type GoValue } from './gofmt';

/** A fault of the username template (InvalidArgument); `detail` says what, without the field's name. */
export class TemplateError extends PluginError {
  /** `dataDependent`: a fault only of these names (an index past their end), not of the template. */
  constructor(
    readonly detail: string,
    readonly dataDependent = false,
  ) {
    super(ErrorCode.InvalidArgument, `username_template: ${detail}`);
  }
}

/** What a username template can refer to (.DisplayName, .RoleName). */
export interface TemplateData {
  DisplayName: string;
  RoleName: string;
}

type Value = GoValue;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const MAX_RANDOM = 1024;
/**
 * Longest value (in UTF-16 units) a template may hold at any step: far past any user name
 * (63 bytes), yet a bound, so a template that doubles a value over and over, or pads it to
 * a width of millions, is refused as invalid instead of costing the process its memory or
 * failing with an internal RangeError.
 */
const MAX_VALUE = 64 * 1024;
const tooLong = (what: string) => new TemplateError(`${what} would be too long (over ${MAX_VALUE} characters; a user name has at most 63 bytes)`);

/** A value within MAX_VALUE. */
function bounded<T>(v: T, what: string): T {
  if (typeof v === 'string' && v.length > MAX_VALUE) throw tooLong(what);
  return v;
}

function asInt(v: Value, fn: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new TemplateError(`${fn} needs a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}
const str = (v: Value) => String(v);

/** Cut to at most n bytes of UTF-8 without splitting a character. */
function truncateBytes(s: string, n: number): string {
  if (Buffer.byteLength(s) <= n) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > n) break;
    out += ch;
  }
  return out;
}

type Fn = (args: Value[]) => Value;
const FUNCS: Record<string, { arity: number | 'variadic'; fn: Fn }> = {
  random: {
    arity: 1,
    fn: ([n]) => {
      const len = asInt(n, 'random');
      if (len > MAX_RANDOM) throw new TemplateError(`random length ${len} is over ${MAX_RANDOM}`);
      let s = '';
      for (let i = 0; i < len; i++) s += ALNUM[randomInt(ALNUM.length)];
      return s;
    },
  },
  truncate: { arity: 2, fn: ([n, s]) => truncateBytes(str(s), asInt(n, 'truncate')) },
  truncate_sha256: {
    arity: 2,
    fn: ([n, s]) => {
      const max = asInt(n, 'truncate_sha256');
      if (max <= 8) throw new TemplateError('truncate_sha256 needs a length over 8');
      const v = str(s);
      if (Buffer.byteLength(v) <= max) return v;
      const head = truncateBytes(v, max - 8);
      return head + createHash('sha256').update(v.slice(head.length)).digest('hex').slice(0, 8);
    },
  },
  uppercase: { arity: 1, fn: ([s]) => str(s).toUpperCase() },
  lowercase: { arity: 1, fn: ([s]) => str(s).toLowerCase() },
  replace: { arity: 3, fn: ([from, to, s]) => str(s).split(str(from)).join(str(to)) },
  sha256: { arity: 1, fn: ([s]) => createHash('sha256').update(str(s)).digest('hex') },
  base64: { arity: 1, fn: ([s]) => Buffer.from(str(s)).toString('base64') },
  // Strings, as Vault's own functions return them (so printf "%s" takes them, "%d" does not).
  unix_time: { arity: 0, fn: () => String(Math.floor(Date.now() / 1000)) },
  unix_time_millis: { arity: 0, fn: () => String(Date.now()) },
  timestamp: { arity: 1, fn: ([layout]) => goTimeFormat(str(layout), new Date()) },
  uuid: { arity: 0, fn: () => randomUUID() },
  printf: {
    arity: 'variadic',
    fn: ([f, ...rest]) => {
      if (f === undefined) throw new TemplateError('printf needs a format');
      try {
        return goSprintf(str(f), rest);
      } catch (e) {
        if (e instanceof FormatError) throw new TemplateError(`printf: ${e.message}`);
        throw e;
      }
    },
  },
};

// ---- Parsing: text and actions, as Go's text/template ----

/** The value of a template expression: the data (dot at the top), or a string, integer or boolean. */
type Val = GoValue | TemplateData;

type Arg =
  | { t: 'field'; on: 'dot' | 'root' | { var: string }; name: string }
  | { t: 'dot' }
  | { t: 'var'; name: string }
  | { t: 'lit'; v: GoValue }
  | { t: 'ident'; name: string }
  | { t: 'sub'; pipe: Pipe };
type Cmd = Arg[];
/** A pipeline, optionally declaring ($x := ...) or assigning ($x = ...) a variable. */
interface Pipe {
  decl?: { name: string; op: ':=' | '=' };
  cmds: Cmd[];
}
type Node = { t: 'text'; v: string } | { t: 'action'; pipe: Pipe } | { t: 'if' | 'with'; pipe: Pipe; yes: Node[]; no: Node[] };

const FIELDS = new Set(['DisplayName', 'RoleName']);
const BUILTINS = new Set(['and', 'or', 'not', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'len', 'print', 'println', 'slice', 'index']);
const UNSUPPORTED = new Set(['range', 'define', 'template', 'block', 'break', 'continue']);
/** Deepest nesting of parentheses or {{if}}/{{with}}: a username needs few; the parser recurses. */
const MAX_DEPTH = 50;
const tooDeep = () => new TemplateError(`nested more than ${MAX_DEPTH} levels deep`);

class Lexer {
  i = 0;
  constructor(readonly s: string) {}
  ws() {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }
  peek() {
    this.ws();
    return this.s[this.i];
  }
  /** At the end of the action: "}}" or " -}}". */
  atClose(): boolean {
    this.ws();
    return this.s.startsWith('}}', this.i) || this.s.startsWith('-}}', this.i);
  }
}

function fieldName(name: string): string {
  if (!FIELDS.has(name)) throw new TemplateError(`unknown field .${name} (use .DisplayName or .RoleName)`);
  return name;
}

/** Commands separated by "|", up to the end of the action (or the ")" of a sub-pipeline). */
function parsePipe(lx: Lexer, inParens: boolean, depth = 0): Pipe {
  if (depth > MAX_DEPTH) throw tooDeep();
  const pipe: Pipe = { cmds: [] };
  lx.ws();
  const decl = /^\$([A-Za-z_][A-Za-z0-9_]*)?\s*(:=|=)(?!=)/.exec(lx.s.slice(lx.i));
  if (decl && !inParens) {
    pipe.decl = { name: `$${decl[1] ?? ''}`, op: decl[2] as ':=' | '=' };
    lx.i += decl[0].length;
  }
  let cur: Cmd = [];
  for (;;) {
    const c = lx.peek();
    if (c === undefined) throw new TemplateError(`unterminated expression, expected "${inParens ? ')' : '}}'}"`);
    if (inParens ? c === ')' : lx.atClose()) break;
    if (!inParens && c === ')') throw new TemplateError('unexpected ")"');
    if (c === '|') {
      if (!cur.length) throw new TemplateError('empty command before "|"');
      pipe.cmds.push(cur);
      cur = [];
      lx.i++;
      continue;
    }
    cur.push(parseArg(lx, depth));
  }
  if (!cur.length) throw new TemplateError('empty expression');
  pipe.cmds.push(cur);
  return pipe;
}

function parseArg(lx: Lexer, depth: number): Arg {
  const c = lx.s[lx.i];
  if (c === '(') {
    lx.i++;
    const pipe = parsePipe(lx, true, depth + 1);
    lx.i++;
    return { t: 'sub', pipe };
  }
  if (c === '"') {
    let j = lx.i + 1;
    let v = '';
    while (j < lx.s.length && lx.s[j] !== '"') {
      if (lx.s[j] === '\\') {
        const e = lx.s[j + 1];
        v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        j += 2;
      } else v += lx.s[j++];
    }
    if (j >= lx.s.length) throw new TemplateError('unterminated string');
    lx.i = j + 1;
    return { t: 'lit', v };
  }
  if (c === '`') {
    const j = lx.s.indexOf('`', lx.i + 1);
    if (j < 0) throw new TemplateError('unterminated raw string');
    const v = lx.s.slice(lx.i + 1, j);
    lx.i = j + 1;
    return { t: 'lit', v };
  }
  const m = /^(\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?|\.(?:[A-Za-z_][A-Za-z0-9_]*)?|-?[0-9]+|[A-Za-z_][A-Za-z0-9_]*)/.exec(lx.s.slice(lx.i));
  if (!m) throw new TemplateError(`unexpected ${JSON.stringify(c)} at offset ${lx.i}`);
  const tok = m[0];
  lx.i += tok.length;
  if (tok === '.') return { t: 'dot' };
  if (tok.startsWith('.')) return { t: 'field', on: 'dot', name: fieldName(tok.slice(1)) };
  if (tok.startsWith('$')) {
    const [v, f] = tok.split('.');
    if (f === undefined) return { t: 'var', name: v };
    return { t: 'field', on: v === '$' ? 'root' : { var: v }, name: fieldName(f) };
  }
  if (/^-?[0-9]/.test(tok)) return { t: 'lit', v: Number(tok) };
  if (tok === 'true' || tok === 'false') return { t: 'lit', v: tok === 'true' };
  if (UNSUPPORTED.has(tok)) throw new TemplateError(`"${tok}" is not supported in username templates`);
  if (!(tok in FUNCS) && !BUILTINS.has(tok)) throw new TemplateError(`unknown function "${tok}"`);
  return { t: 'ident', name: tok };
}

/** Variables declared so far, innermost scope last: for checks at parse time. */
type Scopes = Set<string>[];

function checkVars(pipe: Pipe, scopes: Scopes): void {
  const known = (n: string) => n === '$' || scopes.some((s) => s.has(n));
  const walk = (p: Pipe) => {
    for (const cmd of p.cmds)
      for (const a of cmd) {
        const v = a.t === 'var' ? a.name : a.t === 'field' && typeof a.on === 'object' ? a.on.var : undefined;
        if (v && !known(v)) throw new TemplateError(`undefined variable "${v}"`);
        if (a.t === 'sub') walk(a.pipe);
      }
  };
  walk(pipe);
  if (pipe.decl?.op === '=' && !known(pipe.decl.name)) throw new TemplateError(`undefined variable "${pipe.decl.name}"`);
  if (pipe.decl?.op === ':=') scopes[scopes.length - 1].add(pipe.decl.name);
}

/** Parse text and actions until {{end}} / {{else}} (when nested) or the end. */
class Parser {
  i = 0;
  constructor(readonly src: string) {}

  /** The next action's words, or null at the end of the source; leaves text nodes in `out`. */
  private nextAction(out: Node[]): Lexer | null {
    const { src } = this;
    const open = src.indexOf('{{', this.i);
    let text = src.slice(this.i, open < 0 ? undefined : open);
    if (open < 0) {
      if (text) out.push({ t: 'text', v: text });
      this.i = src.length;
      return null;
    }
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.trimEnd();
      start++;
    }
    if (text) out.push({ t: 'text', v: text });
    // A comment: {{/* ... */}}, starting and ending at the delimiters (or trim markers), as in Go.
    // (After a trim marker "{{- ", its one white-space character comes first.)
    const cstart = start > open + 2 ? start + 1 : start;
    if (src.startsWith('/*', cstart)) {
      const end = src.indexOf('*/', cstart + 2);
      if (end < 0) throw new TemplateError('unclosed comment');
      const lx = new Lexer(src);
      lx.i = end + 2;
      if (!src.startsWith('}}', lx.i) && !/^\s-\}\}/.test(src.slice(lx.i))) throw new TemplateError('a comment must end with "*/" right before "}}"');
      this.close(lx);
      return this.nextAction(out);
    }
    const lx = new Lexer(src);
    lx.i = start;
    return lx;
  }

  /** Consume "}}" or " -}}" (which also trims the white space after it). */
  private close(lx: Lexer): void {
    const { src } = this;
    lx.ws();
    let j = lx.i;
    if (src.startsWith('}}', j)) j += 2;
    else if (src.startsWith('-}}', j)) {
      j += 3;
      while (/\s/.test(src[j] ?? '')) j++;
    } else throw new TemplateError(`unexpected ${JSON.stringify(src.slice(j, j + 10))} in action, expected "}}"`);
    this.i = j;
  }

  /** Nodes up to a closing keyword; returns it ('end', 'else', or null at the end of the source). */
  parseList(out: Node[], scopes: Scopes): { end: 'end' | 'else' | null; lx?: Lexer } {
    for (;;) {
      const lx = this.nextAction(out);
      if (!lx) return { end: null };
      lx.ws();
      const word = /^[a-z]+\b/.exec(this.src.slice(lx.i))?.[0];
      if (word === 'end' || word === 'else') {
        lx.i += word.length;
        return { end: word, lx };
      }
      if (word === 'if' || word === 'with') {
        lx.i += word.length;
        out.push(this.parseControl(word, lx, scopes));
        continue;
      }
      const pipe = parsePipe(lx, false);
      checkVars(pipe, scopes);
      this.close(lx);
      out.push({ t: 'action', pipe });
    }
  }

  /** {{if p}} ... [{{else if p}} ... | {{else with p}} ... | {{else}} ...] {{end}}, or with. */
  private parseControl(kind: 'if' | 'with', lx: Lexer, scopes: Scopes): Node {
    if (scopes.length > 2 * MAX_DEPTH) throw tooDeep();
    if (lx.atClose()) throw new TemplateError(`missing value for ${kind}`);
    // The pipeline's variables live until {{end}}.
    scopes.push(new Set());
    const pipe = parsePipe(lx, false);
    checkVars(pipe, scopes);
    this.close(lx);
    const node = { t: kind, pipe, yes: [] as Node[], no: [] as Node[] };
    scopes.push(new Set());
    let r = this.parseList(node.yes, scopes);
    scopes.pop();
    if (r.end === 'else') {
      const elx = r.lx!;
      elx.ws();
      const chained = /^(if|with)\b/.exec(this.src.slice(elx.i))?.[0] as 'if' | 'with' | undefined;
      if (chained) {
        // {{else if ...}} is {{else}}{{if ...}}...{{end}} sharing the outer {{end}}.
        elx.i += chained.length;
        node.no.push(this.parseControl(chained, elx, scopes));
        scopes.pop();
        return node;
      }
      this.close(elx);
      scopes.push(new Set());
      r = this.parseList(node.no, scopes);
      scopes.pop();
    }
    if (r.end !== 'end') throw new TemplateError(r.end === null ? `unexpected end of template: {{${kind}}} needs {{end}}` : `unexpected {{${r.end}}}`);
    this.close(r.lx!);
    scopes.pop();
    return node;
  }
}

// ---- Evaluation ----

/** Go's truth: false, 0 and "" are false; anything else (the data too) is true. */
const truth = (v: Val) => !(v === false || v === 0 || v === '');
const isData = (v: Val): v is TemplateData => typeof v === 'object';

/** A value as a template prints it (fmt's %v). */
function show(v: Val): string {
  if (isData(v)) return `{${v.DisplayName} ${v.RoleName}}`;
  return String(v);
}

function plain(v: Val, what: string): GoValue {
  if (isData(v)) throw new TemplateError(`${what} cannot take the template data itself`);
  return v;
}

class Env {
  constructor(
    readonly root: TemplateData,
    readonly dot: Val,
    readonly vars: Map<string, Val>[],
  ) {}
  get(name: string): Val {
    if (name === '$') return this.root;
    for (let k = this.vars.length - 1; k >= 0; k--) if (this.vars[k].has(name)) return this.vars[k].get(name)!;
    throw new TemplateError(`undefined variable "${name}"`);
  }
  set(name: string, v: Val): void {
    for (let k = this.vars.length - 1; k >= 0; k--)
      if (this.vars[k].has(name)) {
        this.vars[k].set(name, v);
        return;
      }
    throw new TemplateError(`undefined variable "${name}"`);
  }
  with(dot: Val): Env {
    return new Env(this.root, dot, [...this.vars, new Map()]);
  }
}

function compare(name: string, a: Val, b: Val): number {
  const x = plain(a, name);
  const y = plain(b, name);
  if (typeof x !== typeof y) throw new TemplateError(`${name}: cannot compare the ${typeof x} ${JSON.stringify(x)} with the ${typeof y} ${JSON.stringify(y)}`);
  if (typeof x === 'boolean' && name !== 'eq' && name !== 'ne') throw new TemplateError(`${name}: booleans have no order`);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Go's fmt.Sprint: operands side by side, a space between two when neither is a string. */
function sprint(args: Val[]): string {
  let out = '';
  args.forEach((a, k) => {
    if (k > 0 && typeof a !== 'string' && typeof args[k - 1] !== 'string') out += ' ';
    out += show(a);
  });
  return out;
}

/** The builtins, which take their arguments unevaluated only for and/or (Go evaluates those lazily). */
function callBuiltin(name: string, argNodes: Arg[], piped: Val | undefined, env: Env): Val {
  const evalAll = () => {
    const vs = argNodes.map((a) => evalArg(a, env));
    if (piped !== undefined) vs.push(piped);
    return vs;
  };
  const need = (vs: Val[], n: number, max = n) => {
    if (vs.length < n || vs.length > max) throw new TemplateError(`${name} takes ${n === max ? n : `${n} to ${max}`} argument(s), got ${vs.length}`);
    return vs;
  };
  switch (name) {
    case 'and':
    case 'or': {
      const thunks: Array<() => Val> = argNodes.map((a) => () => evalArg(a, env));
      if (piped !== undefined) thunks.push(() => piped);
      if (!thunks.length) throw new TemplateError(`${name} needs at least 1 argument`);
      let v: Val = false;
      for (const th of thunks) {
        v = th();
        if (name === 'and' ? !truth(v) : truth(v)) return v;
      }
      return v;
    }
    case 'not':
      return !truth(need(evalAll(), 1)[0]);
    case 'eq': {
      const vs = evalAll();
      if (vs.length < 2) throw new TemplateError('eq needs at least 2 arguments');
      return vs.slice(1).some((b) => compare('eq', vs[0], b) === 0);
    }
    case 'ne':
    case 'lt':
    case 'le':
    case 'gt':
    case 'ge': {
      const [a, b] = need(evalAll(), 2);
      const c = compare(name, a, b);
      return { ne: c !== 0, lt: c < 0, le: c <= 0, gt: c > 0, ge: c >= 0 }[name];
    }
    case 'len': {
      const [v] = need(evalAll(), 1);
      if (typeof v !== 'string') throw new TemplateError(`len of the ${isData(v) ? 'data' : typeof v} ${show(v)}`);
      return Buffer.byteLength(v); // Go's len of a string counts bytes
    }
    case 'print':
      return sprint(evalAll());
    case 'println':
      return `${evalAll().map(show).join(' ')}\n`;
    case 'index': {
      const [v, k] = need(evalAll(), 2);
      if (typeof v !== 'string' || typeof k !== 'number') throw new TemplateError('index takes a string and an integer here');
      const b = Buffer.from(v);
      if (!Number.isInteger(k) || k < 0 || k >= b.length) throw new TemplateError(`index out of range: ${k}`, true);
      return b[k];
    }
    case 'slice': {
      const vs = need(evalAll(), 1, 3);
      const [v, ...ks] = vs;
      if (typeof v !== 'string') throw new TemplateError(`slice of the ${isData(v) ? 'data' : typeof v} ${show(v)}`);
      // Go slices a string by bytes; a cut inside a character is refused rather than mangled.
      const b = Buffer.from(v);
      const [from = 0, to = b.length] = ks.map((k) => {
        if (typeof k !== 'number' || !Number.isInteger(k)) throw new TemplateError('slice indexes must be integers');
        return k;
      });
      if (from < 0 || to > b.length || from > to) throw new TemplateError(`slice indexes out of range: [${from}:${to}] of ${b.length} bytes`, true);
      const out = b.subarray(from, to).toString('utf8');
      if (Buffer.byteLength(out) !== to - from) throw new TemplateError(`slice [${from}:${to}] would cut a character in two`, true);
      return out;
    }
  }
  throw new TemplateError(`unknown function "${name}"`);
}

function evalPipe(pipe: Pipe, env: Env): Val {
  let piped: Val | undefined;
  for (const cmd of pipe.cmds) {
    const [head, ...rest] = cmd;
    if (head.t === 'ident') {
      if (BUILTINS.has(head.name)) {
        piped = bounded(callBuiltin(head.name, rest, piped, env), `the result of ${head.name}`);
        continue;
      }
      const f = FUNCS[head.name];
      const args = rest.map((a) => plain(evalArg(a, env), head.name));
      if (piped !== undefined) args.push(plain(piped, head.name));
      // Vault's functions take strings and integers; only printf formats booleans (%t, %v).
      if (head.name !== 'printf' && args.some((x) => typeof x === 'boolean')) throw new TemplateError(`${head.name} takes strings and integers, not booleans`);
      if (f.arity !== 'variadic' && args.length !== f.arity) {
        throw new TemplateError(`${head.name} takes ${f.arity} argument(s), got ${args.length}`);
      }
      try {
        piped = f.fn(args);
      } catch (e) {
        // Past the longest string the engine can make (printf's width, a replace multiplying a value).
        if (e instanceof RangeError) throw tooLong(`the result of ${head.name}`);
        throw e;
      }
    } else {
      if (rest.length || piped !== undefined) throw new TemplateError('a value cannot take arguments');
      piped = evalArg(head, env);
    }
    piped = bounded(piped, 'a value of the template');
  }
  return piped as Val;
}

function evalArg(a: Arg, env: Env): Val {
  switch (a.t) {
    case 'dot':
      return env.dot;
    case 'var':
      return env.get(a.name);
    case 'field': {
      const on = a.on === 'dot' ? env.dot : a.on === 'root' ? env.root : env.get(a.on.var);
      if (!isData(on)) throw new TemplateError(`.${a.name} of the ${typeof on} ${JSON.stringify(on)}: fields belong to the template data`);
      return on[a.name as keyof TemplateData];
    }
    case 'lit':
      return a.v;
    case 'sub':
      return evalPipe(a.pipe, env);
    case 'ident':
      return evalPipe({ cmds: [[a]] }, env);
  }
}

function run(nodes: Node[], env: Env): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.v;
    else if (n.t === 'action') {
      const v = evalPipe(n.pipe, env);
      if (n.pipe.decl) {
        if (n.pipe.decl.op === ':=') env.vars[env.vars.length - 1].set(n.pipe.decl.name, v);
        else env.set(n.pipe.decl.name, v);
      } else out += show(v);
      bounded(out, 'the user name');
    } else {
      // The pipeline's variables are visible in both branches, until {{end}}.
      const scope = new Env(env.root, env.dot, [...env.vars, new Map()]);
      const v = evalPipe(n.pipe, scope);
      if (n.pipe.decl) {
        if (n.pipe.decl.op === ':=') scope.vars[scope.vars.length - 1].set(n.pipe.decl.name, v);
        else scope.set(n.pipe.decl.name, v);
      }
      if (truth(v)) out += run(n.yes, n.t === 'with' ? scope.with(v) : scope.with(scope.dot));
      else out += run(n.no, scope.with(scope.dot));
      bounded(out, 'the user name');
    }
  }
  return out;
}

/**
 * A parsed username template: Go text/template's actions (text, pipelines, {{/* comments * /}},
 * {{if}}/{{else if}}/{{else}}/{{end}}, {{with}}, $variables with := and =) over .DisplayName
 * and .RoleName, with Vault's functions and Go's builtins (and or not eq ne lt le gt ge len
 * print println slice index). {{range}} and template definitions are refused: a username
 * has nothing to iterate. Parse checks it can render.
 */
export class UsernameTemplate {
  private constructor(
    readonly source: string,
    private readonly nodes: Node[],
  ) {}

  static parse(source: string): UsernameTemplate {
    const p = new Parser(source);
    const nodes: Node[] = [];
    const r = p.parseList(nodes, [new Set()]);
    if (r.end !== null) throw new TemplateError(`unexpected {{${r.end}}}`);
    const tpl = new UsernameTemplate(source, nodes);
    // Surface runtime errors at config time; those that depend on the names are left for NewUser.
    try {
      tpl.render({ DisplayName: 'token', RoleName: 'role' });
    } catch (e) {
      if (!(e instanceof TemplateError && e.dataDependent)) throw e;
    }
    return tpl;
  }

  render(data: TemplateData): string {
    return run(this.nodes, new Env(data, data, [new Map()]));
  }
}

/** Vault's default username template for database credentials. */
export const DEFAULT_USERNAME_TEMPLATE =
  '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}';
