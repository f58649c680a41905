// The OpenAPI document of a mount, built from its path declarations, as Vault's framework
// builds one from a plugin's paths: Vault asks each mount for help on its root path and
// merges the `openapi` it finds there into `sys/internal/specs/openapi`.
import type { FieldDef, FieldType, PathDef } from './framework';

interface Schema {
  type: string;
  format?: string;
  items?: Schema;
  description?: string;
  default?: unknown;
  enum?: readonly string[];
}

// Vault's framework types as its OpenAPI generator names them.
const SCHEMA: Record<FieldType, Schema> = {
  string: { type: 'string' },
  int: { type: 'integer' },
  bool: { type: 'boolean' },
  duration: { type: 'integer', format: 'seconds' },
  array: { type: 'array', items: { type: 'object' } },
  strings: { type: 'array', items: { type: 'string' } },
  object: { type: 'object' },
  raw: { type: 'object' },
};

/** A named group whose body is plain text, as `crl(?<pem>/pem)?`: the text, not a parameter. */
const LITERAL = /^[A-Za-z0-9_/-]+$/;

/** The index just past the group opening at `open` (matching parenthesis; escapes and classes skipped). */
function groupEnd(p: string, open: number): number {
  let depth = 0;
  for (let i = open; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '[') {
      while (i < p.length && p[i] !== ']') i += p[i] === '\\' ? 2 : 1;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  return p.length;
}

/** Split on `|` at the top level of `p`. */
function branches(p: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '(' || p[i] === '[') i = (p[i] === '(' ? groupEnd(p, i) : p.indexOf(']', i) + 1) - 1;
    else if (p[i] === '|') {
      out.push(p.slice(start, i));
      start = i + 1;
    }
  }
  return [...out, p.slice(start)];
}

/**
 * The OpenAPI paths one pattern stands for, as Vault's generator expands them: optional
 * parts both ways, alternations each way, named groups as `{name}` parameters.
 */
export function expandPattern(pattern: string): string[] {
  const expand = (p: string): string[] => branches(p).flatMap((b) => sequence(b));
  const sequence = (p: string): string[] => {
    let acc = [''];
    for (let i = 0; i < p.length; ) {
      let alts: string[];
      let next: number;
      if (p[i] === '(') {
        next = groupEnd(p, i);
        const body = p.slice(i + 1, next - 1);
        const named = /^\?<([A-Za-z_]\w*)>/.exec(body);
        if (named) {
          const inner = body.slice(named[0].length);
          alts = [LITERAL.test(inner) ? inner : `{${named[1]}}`];
        } else alts = expand(body.startsWith('?:') ? body.slice(2) : body);
      } else if (p[i] === '[') {
        next = p.indexOf(']', i) + 1;
        alts = [''];
      } else if (p[i] === '\\') {
        next = i + 2;
        alts = [p[i + 1]];
      } else {
        next = i + 1;
        alts = [p[i]];
      }
      if (p[next] === '?') {
        alts = [...alts, ''];
        next++;
      } else if (p[next] === '{' || p[next] === '+' || p[next] === '*') {
        next = p[next] === '{' ? p.indexOf('}', next) + 1 : next + 1;
      }
      acc = acc.flatMap((a) => alts.map((x) => a + x));
      i = next;
    }
    return acc;
  };
  return [...new Set(expand(pattern).map((x) => `/${x.replace(/\/+$/, '')}`))];
}

const schemaOf = (f: FieldDef): Schema => ({
  ...SCHEMA[f.type],
  description: f.description,
  ...(f.default !== undefined ? { default: f.default } : {}),
  ...(f.allowed ? { enum: f.allowed } : {}),
});

/** The `openapi` document for a mount's paths (paths without the mount's prefix). */
export function openApiDocument(defs: PathDef[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of defs) {
    for (const path of expandPattern(def.pattern)) {
      if (paths[path]) continue; // an earlier declaration answers this path, as the router would
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const body = Object.fromEntries(
        Object.entries(def.fields)
          .filter(([k]) => !params.includes(k))
          .map(([k, f]) => [k, schemaOf(f)]),
      );
      const required = Object.entries(def.fields)
        .filter(([k, f]) => f.required && !params.includes(k))
        .map(([k]) => k);
      const op = (extra: Record<string, unknown> = {}) => ({ summary: def.synopsis, tags: ['secrets'], ...extra });
      const ops = def.operations;
      const item: Record<string, unknown> = {
        description: def.synopsis,
        parameters: params.map((name) => ({
          name,
          description: def.fields[name]?.description ?? name,
          in: 'path',
          schema: { type: 'string' },
          required: true,
        })),
      };
      if (def.existence) item['x-vault-createSupported'] = true;
      if (ops.read || ops.list) {
        const list = ops.list
          ? [{ name: 'list', description: 'Return a list if `true`', in: 'query', schema: { type: 'string' }, ...(ops.read ? {} : { required: true }) }]
          : [];
        item.get = op(list.length ? { parameters: list } : {});
      }
      if (ops.create || ops.update) {
        item.post = op(
          Object.keys(body).length
            ? { requestBody: { content: { 'application/json': { schema: { type: 'object', properties: body, ...(required.length ? { required } : {}) } } } } }
            : {},
        );
      }
      if (ops.delete) item.delete = op();
      paths[path] = item;
    }
  }
  return {
    openapi: '3.0.2',
    info: { title: 'vault-plugin-ts', description: 'HashiCorp Vault plugin in TypeScript', version: '', license: { name: 'MPL-2.0' } },
    paths,
  };
}
