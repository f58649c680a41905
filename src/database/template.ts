// Vault's username template language: Go text/template syntax restricted to one
// data object (.DisplayName, .RoleName) and Vault's function set. Parsed once at
// Initialize (so a bad template fails the config write), rendered per NewUser.
import { createHash, randomInt, randomUUID } from 'node:crypto';
import { ErrorCode, PluginError } from './errors';
import { FormatError, goSprintf, goTimeFormat } from './gofmt';

/** A fault of the username template (InvalidArgument); `detail` says what, without the field's name. */
export class TemplateError extends PluginError {
  constructor(readonly detail: string) {
    super(ErrorCode.InvalidArgument, `username_template: ${detail}`);
  }
}

/** What a username template can refer to (.DisplayName, .RoleName). */
export interface TemplateData {
  DisplayName: string;
  RoleName: string;
}

type Node = { t: 'text'; v: string } | { t: 'pipe'; cmds: Cmd[] };
type Arg = { t: 'field'; name: string } | { t: 'str'; v: string } | { t: 'num'; v: number } | { t: 'ident'; name: string } | { t: 'sub'; cmds: Cmd[] };
type Cmd = Arg[];
type Value = string | number;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const MAX_RANDOM = 1024;

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
}

function parseArgs(lx: Lexer, stopAt: string): Cmd[] {
  const cmds: Cmd[] = [];
  let cur: Cmd = [];
  for (;;) {
    const c = lx.peek();
    if (c === undefined) throw new TemplateError(`unterminated expression, expected "${stopAt}"`);
    if (lx.s.startsWith(stopAt, lx.i) || (stopAt === '}}' && lx.s.startsWith('-}}', lx.i))) break;
    if (c === '|') {
      if (!cur.length) throw new TemplateError('empty command before "|"');
      cmds.push(cur);
      cur = [];
      lx.i++;
      continue;
    }
    if (c === '(') {
      lx.i++;
      const sub = parseArgs(lx, ')');
      lx.i++;
      cur.push({ t: 'sub', cmds: sub });
      continue;
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
      cur.push({ t: 'str', v });
      lx.i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = lx.s.indexOf('`', lx.i + 1);
      if (j < 0) throw new TemplateError('unterminated raw string');
      cur.push({ t: 'str', v: lx.s.slice(lx.i + 1, j) });
      lx.i = j + 1;
      continue;
    }
    const m = /^(\.[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+|[A-Za-z_][A-Za-z0-9_]*)/.exec(lx.s.slice(lx.i));
    if (!m) throw new TemplateError(`unexpected ${JSON.stringify(c)} at offset ${lx.i}`);
    const tok = m[0];
    lx.i += tok.length;
    if (tok.startsWith('.')) {
      const name = tok.slice(1);
      if (name !== 'DisplayName' && name !== 'RoleName') throw new TemplateError(`unknown field .${name} (use .DisplayName or .RoleName)`);
      cur.push({ t: 'field', name });
    } else if (/^-?[0-9]/.test(tok)) cur.push({ t: 'num', v: Number(tok) });
    else {
      if (!(tok in FUNCS)) throw new TemplateError(`unknown function "${tok}"`);
      cur.push({ t: 'ident', name: tok });
    }
  }
  if (!cur.length) throw new TemplateError('empty expression');
  cmds.push(cur);
  return cmds;
}

function evalPipe(cmds: Cmd[], data: TemplateData): Value {
  let piped: Value | undefined;
  for (const cmd of cmds) {
    const [head, ...rest] = cmd;
    const vals = (args: Arg[]) => args.map((a) => evalArg(a, data));
    if (head.t === 'ident') {
      const f = FUNCS[head.name];
      const args = vals(rest);
      if (piped !== undefined) args.push(piped);
      if (f.arity !== 'variadic' && args.length !== f.arity) {
        throw new TemplateError(`${head.name} takes ${f.arity} argument(s), got ${args.length}`);
      }
      piped = f.fn(args);
    } else {
      if (rest.length || piped !== undefined) throw new TemplateError('a value cannot take arguments');
      piped = evalArg(head, data);
    }
  }
  return piped as Value;
}

function evalArg(a: Arg, data: TemplateData): Value {
  switch (a.t) {
    case 'field':
      return data[a.name as keyof TemplateData];
    case 'str':
      return a.v;
    case 'num':
      return a.v;
    case 'sub':
      return evalPipe(a.cmds, data);
    case 'ident':
      return evalPipe([[a]], data);
  }
}

/** A parsed username template (Vault's template language, the functions Vault offers); parse checks it can render. */
export class UsernameTemplate {
  private constructor(
    readonly source: string,
    private readonly nodes: Node[],
  ) {}

  static parse(source: string): UsernameTemplate {
    const nodes: Node[] = [];
    let i = 0;
    while (i < source.length) {
      const open = source.indexOf('{{', i);
      if (open < 0) {
        nodes.push({ t: 'text', v: source.slice(i) });
        break;
      }
      let text = source.slice(i, open);
      let start = open + 2;
      if (source[start] === '-' && /\s/.test(source[start + 1] ?? '')) {
        text = text.trimEnd();
        start++;
      }
      if (text) nodes.push({ t: 'text', v: text });
      const lx = new Lexer(source);
      lx.i = start;
      const cmds = parseArgs(lx, '}}');
      let end = lx.i;
      if (source.startsWith('-}}', end)) {
        end += 3;
        while (/\s/.test(source[end] ?? '')) end++;
      } else end += 2;
      nodes.push({ t: 'pipe', cmds });
      i = end;
    }
    const tpl = new UsernameTemplate(source, nodes);
    tpl.render({ DisplayName: 'token', RoleName: 'role' }); // surface runtime errors at config time
    return tpl;
  }

  render(data: TemplateData): string {
    return this.nodes.map((n) => (n.t === 'text' ? n.v : String(evalPipe(n.cmds, data)))).join('');
  }
}

/** Vault's default username template for database credentials. */
export const DEFAULT_USERNAME_TEMPLATE =
  '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}';
