// Go's fmt verbs and time layouts, as Vault's username templates (Go text/template with
// printf and timestamp) render them. Written from the fmt and time package docs. The
// values a template has are strings, integers and booleans, so the float verbs are not
// needed; anything Go would print as "%!verb(...)" (a wrong type, a missing or extra
// argument) is an error here, found when the template is parsed, never a username.

/** A value of a username template. */
export type GoValue = string | number | boolean;

/** A printf fault: the message says which verb and why. */
export class FormatError extends Error {}

const typeName = (v: GoValue) => (typeof v === 'number' ? 'int' : typeof v === 'boolean' ? 'bool' : 'string');

interface Flags {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width?: number;
  prec?: number;
}

const runes = (s: string) => [...s];

/** Pad to the width in runes: left with spaces (or right, with '-'); zeros only where a caller asked. */
function pad(s: string, f: Flags, zeros = false): string {
  const n = runes(s).length;
  if (f.width === undefined || n >= f.width) return s;
  const fill = (zeros && !f.minus ? '0' : ' ').repeat(f.width - n);
  return f.minus ? s + fill : fill + s;
}

/** Go's strconv.Quote: a double-quoted string with Go escapes; printable characters as they are. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const named: Record<string, string> = {
      '"': '\\"',
      '\\': '\\\\',
      '\x07': '\\a',
      '\b': '\\b',
      '\f': '\\f',
      '\n': '\\n',
      '\r': '\\r',
      '\t': '\\t',
      '\v': '\\v',
    };
    if (named[ch]) out += named[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    // Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    else if (ch !== ' ' && !/[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch))
      out += cp > 0xffff ? `\\U${cp.toString(16).padStart(8, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function formatInt(n: number, verb: string, f: Flags): string {
  const base = { d: 10, b: 2, o: 8, O: 8, x: 16, X: 16 }[verb]!;
  let digits = Math.abs(n).toString(base);
  if (verb === 'X') digits = digits.toUpperCase();
  const sign = n < 0 ? '-' : f.plus ? '+' : f.space ? ' ' : '';
  if (f.prec !== undefined) {
    if (f.prec === 0 && n === 0) digits = '';
    else digits = digits.padStart(f.prec, '0');
  } else if (f.zero && !f.minus && f.width !== undefined) {
    // Zeros fill the width after the sign; a 0x/0b prefix comes on top, as in Go.
    digits = digits.padStart(f.width - sign.length, '0');
  }
  let prefix = '';
  if (verb === 'O') prefix = '0o';
  else if (f.sharp) {
    if (verb === 'b') prefix = '0b';
    else if (verb === 'o' && !digits.startsWith('0')) prefix = '0';
    else if (verb === 'x') prefix = '0x';
    else if (verb === 'X') prefix = '0X';
  }
  return pad(sign + prefix + digits, f);
}

function formatOne(verb: string, v: GoValue, f: Flags): string {
  const bad = () => new FormatError(`%${verb} cannot format the ${typeName(v)} ${JSON.stringify(v)}`);
  if (verb === 'T') return pad(typeName(v), f);
  if (typeof v === 'boolean') {
    if (verb !== 't' && verb !== 'v') throw bad();
    return pad(String(v), f);
  }
  if (typeof v === 'number') {
    switch (verb) {
      case 'v':
        return formatInt(v, 'd', f);
      case 'd':
      case 'b':
      case 'o':
      case 'O':
      case 'x':
      case 'X':
        return formatInt(v, verb, f);
      case 'c':
        return pad(charOf(v), f);
      case 'q':
        return pad(`'${charOf(v) === "'" ? "\\'" : goQuote(charOf(v)).slice(1, -1).replace(/\\"/g, '"')}'`, f);
      case 'U': {
        const hex = v
          .toString(16)
          .toUpperCase()
          .padStart(Math.max(4, f.prec ?? 0), '0');
        return pad(f.sharp ? `U+${hex} '${charOf(v)}'` : `U+${hex}`, f);
      }
      default:
        throw bad();
    }
  }
  // A string: precision counts runes (%s, %q) or bytes (%x).
  const cut = f.prec === undefined ? v : runes(v).slice(0, f.prec).join('');
  switch (verb) {
    case 's':
      return pad(cut, f);
    case 'v':
      return pad(f.sharp ? goQuote(v) : v, f);
    case 'q':
      return pad(f.sharp && !/[`\p{Cc}\ufeff]/u.test(cut.replace(/\t/g, '')) ? `\`${cut}\`` : goQuote(cut), f);
    case 'x':
    case 'X': {
      let bytes = [...Buffer.from(v)];
      if (f.prec !== undefined) bytes = bytes.slice(0, f.prec);
      const hex = bytes.map((b) => b.toString(16).padStart(2, '0'));
      const pre = f.sharp ? '0x' : '';
      let s = f.space ? hex.map((h) => pre + h).join(' ') : pre + hex.join('');
      if (verb === 'X') s = s.toUpperCase();
      return pad(s, f);
    }
    default:
      throw bad();
  }
}

function charOf(n: number): string {
  return Number.isInteger(n) && n >= 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : '\ufffd';
}

const VERBS = new Set(['v', 's', 'q', 'x', 'X', 'd', 'b', 'o', 'O', 'c', 'U', 't', 'T']);

/** Go's fmt.Sprintf for template values: flags + - # space 0, width, .precision, * and [n] argument indexes. */
export function goSprintf(format: string, args: readonly GoValue[]): string {
  let out = '';
  let next = 0;
  let indexed = false;
  const intArg = (what: string) => {
    if (next >= args.length) throw new FormatError(`no argument for the ${what} "*" in ${JSON.stringify(format)}`);
    const v = args[next++];
    if (typeof v !== 'number') throw new FormatError(`the ${what} "*" needs an integer argument, got the ${typeName(v)} ${JSON.stringify(v)}`);
    return v;
  };
  let i = 0;
  const argIndex = () => {
    const m = /^\[(\d+)\]/.exec(format.slice(i));
    if (!m) return;
    const n = Number(m[1]);
    if (n < 1 || n > args.length) throw new FormatError(`argument index [${n}] is out of range in ${JSON.stringify(format)}`);
    next = n - 1;
    indexed = true;
    i += m[0].length;
  };
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const f: Flags = { minus: false, plus: false, sharp: false, space: false, zero: false };
    for (; i < format.length; i++) {
      const c = format[i];
      if (c === '-') f.minus = true;
      else if (c === '+') f.plus = true;
      else if (c === '#') f.sharp = true;
      else if (c === ' ') f.space = true;
      else if (c === '0') f.zero = true;
      else break;
    }
    argIndex();
    if (format[i] === '*') {
      i++;
      f.width = intArg('width');
      if (f.width < 0) {
        f.minus = true;
        f.width = -f.width;
      }
      argIndex();
    } else {
      const m = /^\d+/.exec(format.slice(i));
      if (m) {
        f.width = Number(m[0]);
        i += m[0].length;
      }
    }
    if (format[i] === '.') {
      i++;
      argIndex();
      if (format[i] === '*') {
        i++;
        const p = intArg('precision');
        f.prec = p < 0 ? undefined : p;
        argIndex();
      } else {
        const m = /^\d+/.exec(format.slice(i));
        f.prec = m ? Number(m[0]) : 0;
        if (m) i += m[0].length;
      }
    }
    argIndex();
    const verb = String.fromCodePoint(format.codePointAt(i) ?? 0);
    if (i >= format.length) throw new FormatError(`${JSON.stringify(format)} ends with an incomplete verb`);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (!VERBS.has(verb)) {
      throw new FormatError(`%${verb} is not supported (supported verbs: %v %s %q %x %X %d %b %o %O %c %U %t %T %%, with flags, width and precision)`);
    }
    if (next >= args.length) throw new FormatError(`%${verb} has no argument in ${JSON.stringify(format)}`);
    out += formatOne(verb, args[next++], f);
  }
  if (!indexed && next < args.length) throw new FormatError(`${JSON.stringify(format)} has more arguments than verbs`);
  return out;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/**
 * Go's Time.Format for a UTC time. A layout is scanned left to right for Go's reference
 * time elements (2006 01 02 15 04 05, Jan, Mon, MST, -0700, ...); everything else is
 * literal. Fractional seconds: "." or "," then a run of 0s (that many digits) or 9s (at
 * most that many, trailing zeros removed, the separator too when nothing is left), when
 * no other digit follows the run. `nanos`: the time's nanoseconds within its second.
 */
export function goTimeFormat(layout: string, d: Date, nanos = d.getUTCMilliseconds() * 1e6): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const h = d.getUTCHours();
  const yday = Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
  const at = (i: number, s: string) => layout.startsWith(s, i);
  let out = '';
  for (let i = 0; i < layout.length; ) {
    const c = layout[i];
    const emit = (s: string, len: number) => {
      out += s;
      i += len;
    };
    if (c === 'J' && at(i, 'January')) emit(MONTHS[d.getUTCMonth()], 7);
    else if (c === 'J' && at(i, 'Jan')) emit(MONTHS[d.getUTCMonth()].slice(0, 3), 3);
    else if (c === 'M' && at(i, 'Monday')) emit(DAYS[d.getUTCDay()], 6);
    else if (c === 'M' && at(i, 'Mon')) emit(DAYS[d.getUTCDay()].slice(0, 3), 3);
    else if (c === 'M' && at(i, 'MST')) emit('UTC', 3);
    else if (c === '0' && at(i, '002')) emit(p(yday, 3), 3);
    else if (c === '0' && /[1-6]/.test(layout[i + 1] ?? '')) {
      const k = layout[i + 1];
      const v = { 1: d.getUTCMonth() + 1, 2: d.getUTCDate(), 3: h % 12 || 12, 4: d.getUTCMinutes(), 5: d.getUTCSeconds(), 6: d.getUTCFullYear() % 100 }[k]!;
      emit(p(v), 2);
    } else if (c === '1' && at(i, '15')) emit(p(h), 2);
    else if (c === '1') emit(String(d.getUTCMonth() + 1), 1);
    else if (c === '2' && at(i, '2006')) emit(String(d.getUTCFullYear()), 4);
    else if (c === '2') emit(String(d.getUTCDate()), 1);
    else if (c === '_' && at(i, '__2')) emit(String(yday).padStart(3, ' '), 3);
    else if (c === '_' && at(i, '_2') && !at(i, '_2006')) emit(String(d.getUTCDate()).padStart(2, ' '), 2);
    else if (c === '3') emit(String(h % 12 || 12), 1);
    else if (c === '4') emit(String(d.getUTCMinutes()), 1);
    else if (c === '5') emit(String(d.getUTCSeconds()), 1);
    else if (c === 'P' && at(i, 'PM')) emit(h < 12 ? 'AM' : 'PM', 2);
    else if (c === 'p' && at(i, 'pm')) emit(h < 12 ? 'am' : 'pm', 2);
    else if (c === '-' || c === 'Z') {
      // Numeric zones; the time is UTC, so Z forms print "Z".
      const zone = ['070000', '07:00:00', '0700', '07:00', '07'].find((z) => at(i + 1, z));
      if (zone) emit(c === 'Z' ? 'Z' : `+${zone.replace(/\d/g, '0')}`, zone.length + 1);
      else emit(c, 1);
    } else if ((c === '.' || c === ',') && (layout[i + 1] === '0' || layout[i + 1] === '9')) {
      const digit = layout[i + 1];
      let j = i + 1;
      while (layout[j] === digit) j++;
      if (/[0-9]/.test(layout[j] ?? '')) {
        emit(c, 1); // not a fractional second: the separator is literal, the digits are read on their own
        continue;
      }
      const n = Math.min(j - i - 1, 9);
      let frac = String(Math.floor(nanos)).padStart(9, '0').slice(0, n);
      if (digit === '9') frac = frac.replace(/0+$/, '');
      emit(frac ? c + frac : '', j - i);
    } else emit(c, 1);
  }
  return out;
}
