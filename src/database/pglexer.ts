// PostgreSQL's own lexer (libpg_query's scanner of PostgreSQL 18, compiled to WebAssembly),
// used as an independent check of rendered statements: the plugin's template scanner
// decides where each value goes; this one confirms the server will see it there.
// It lexes with standard_conforming_strings on, which every transaction pins.
import { loadAssetBytes } from '../goplugin/native';

/** One token of PostgreSQL's scanner. */
export interface PgToken {
  /** Offsets in the JavaScript string (UTF-16 units), end exclusive. */
  start: number;
  end: number;
  text: string;
  /** libpg_query's token name: IDENT, SCONST, ICONST, ... or UNKNOWN for keywords and others. */
  name: string;
  keyword: boolean;
}

/** Text PostgreSQL's scanner refuses. */
export class PgLexError extends Error {}

interface WasmModule {
  lengthBytesUTF8(s: string): number;
  stringToUTF8(s: string, ptr: number, max: number): void;
  UTF8ToString(ptr: number): string;
  _malloc(n: number): number;
  _free(ptr: number): void;
  _wasm_scan(ptr: number): number;
  _wasm_free_string(ptr: number): void;
}

interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: object): Promise<object>;
}

let wasm: WasmModule | undefined;
let loading: Promise<void> | undefined;

/** Load the lexer once (about 20 ms); later calls return at once. */
export function loadPgLexer(): Promise<void> {
  loading ??= (async () => {
    // The Emscripten factory, not the package's index (which would look for the .wasm
    // file next to the bundle, where a single executable has none); the module is
    // instantiated from the bytes we hand it.
    // (The project's TypeScript lib has no WebAssembly declarations: the few calls used, typed here.)
    const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    type Factory = (arg: { instantiateWasm: (imports: object, done: (instance: object) => void) => object }) => Promise<WasmModule>;
    const factory = require('libpg-query/wasm/libpg-query.js') as Factory;
    // Outside the executable, the file in node_modules (a name the bundler leaves alone: the build ships it as an asset).
    const devFile = ['libpg-query', 'wasm', 'libpg-query.wasm'].join('/');
    const bytes = loadAssetBytes('libpg-query.wasm', () => require.resolve(devFile));
    const compiled = await WA.compile(bytes);
    wasm = await factory({
      instantiateWasm: (imports, done) => {
        void WA.instantiate(compiled, imports).then(done);
        return {};
      },
    });
  })().catch((e) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

/** Has the lexer's WebAssembly been loaded (it loads on first use)? */
export const pgLexerLoaded = () => wasm !== undefined;

/** Tokens of `sql` as PostgreSQL's scanner sees them (comments included); PgLexError if it does not lex. */
export function pgScan(sql: string): PgToken[] {
  if (!wasm) throw new Error('pgScan before loadPgLexer()');
  if (sql.includes('\u0000')) throw new PgLexError('NUL character');
  if (sql === '') return [];
  const m = wasm;
  const len = m.lengthBytesUTF8(sql) + 1;
  const ptr = m._malloc(len);
  let res = 0;
  let out: string;
  try {
    m.stringToUTF8(sql, ptr, len);
    res = m._wasm_scan(ptr);
    out = m.UTF8ToString(res);
  } finally {
    m._free(ptr);
    if (res) m._wasm_free_string(res);
  }
  if (!out.startsWith('{')) throw new PgLexError(out.split('\n')[0]);
  const parsed = JSON.parse(out) as { tokens?: Array<{ start: number; end: number; tokenName: string; keywordKind: number }> };
  const toChar = byteToCharOffsets(sql);
  return (parsed.tokens ?? []).map((t) => {
    const start = toChar(t.start);
    const end = toChar(t.end);
    return { start, end, text: sql.slice(start, end), name: t.tokenName, keyword: t.keywordKind > 0 };
  });
}

/** libpg_query reports UTF-8 byte offsets. */
function byteToCharOffsets(s: string): (byte: number) => number {
  if (/^[\x00-\x7f]*$/.test(s)) return (b) => b;
  const map = new Map<number, number>();
  let b = 0;
  for (let i = 0; i < s.length; i++) {
    map.set(b, i);
    const cp = s.codePointAt(i)!;
    b += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (cp >= 0x10000) i++;
  }
  map.set(b, s.length);
  return (byte) => {
    const c = map.get(byte);
    if (c === undefined) throw new PgLexError('token boundary inside a character');
    return c;
  };
}
