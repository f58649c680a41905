// A small declarative framework for logical backends, in the spirit of Vault's own:
// each path is declared once — pattern, typed fields, operations, existence check, help
// — and validation, defaults, `vault path-help` text and operation dispatch all come from
// that one declaration.
import type { Storage } from '../storage/storage';
import { applyDefaults, coerceField, fieldHelp, missingRequired, parseDurationSeconds, type Field } from '../schema';
import type { LeasedSecret } from './lease';
import { openApiDocument } from './openapi';

export type Operation = 'read' | 'create' | 'update' | 'delete' | 'list' | 'help';
// Fields are declared in the plugin's one schema language (src/schema); re-exported here
// under the names the engines import.
export type { FieldType, Field as FieldDef } from '../schema';
export { MAX_DURATION_SECONDS } from '../schema';

/** What Vault's SystemView tells a mount (served back over the broker). */
export interface SystemView {
  /** The mount's max lease TTL in seconds (0 if unknown). */
  maxLeaseTtl(): Promise<number>;
}

export interface Request {
  system?: SystemView;
  operation: Operation;
  path: string;
  /** Validated field values (defaults applied), including those captured from the path. */
  data: FieldData;
  /** The path's field declarations (batch items are validated by them too). */
  fields?: Record<string, Field>;
  storage: Storage;
  displayName: string;
  mountPoint: string;
}

export interface Response {
  data?: Record<string, unknown>;
  warnings?: string[];
  /** A secret Vault keeps a lease for (see lease.ts). */
  secret?: LeasedSecret;
}

/** A response Vault writes raw to HTTP (certificates, CRLs), as its own PKI does. */
export function rawResponse(body: Buffer | string, contentType: string): Response {
  return { data: { http_content_type: contentType, http_raw_body: Buffer.from(body).toString('base64'), http_status_code: 200 } };
}

export type Handler = (req: Request) => Promise<Response | undefined>;

export interface PathDef {
  /** Regex source, anchored; named groups become fields. E.g. `keys/(?<name>[\w.-]+)`. */
  pattern: string;
  fields: Record<string, Field>;
  operations: Partial<Record<Exclude<Operation, 'help'>, Handler>>;
  /** Does the object at this path exist (decides create vs update, as Vault's ACLs need)? */
  existence?: (req: Request) => Promise<boolean>;
  synopsis: string;
  description: string;
}

/** A request error Vault shows as an HTTP status with this message. */
export class UserError extends Error {
  constructor(message: string, readonly status = 400, options?: ErrorOptions) { super(message, options); }
}

/** No path of the mount matches (Vault's logical.ErrUnsupportedPath). */
export class UnsupportedPathError extends UserError {
  constructor() { super('unsupported path', 404); }
}

/** The path (or secret type) does not do this operation (Vault's logical.ErrUnsupportedOperation). */
export class UnsupportedOperationError extends UserError {
  constructor() { super('unsupported operation', 405); }
}

const userError = (message: string) => new UserError(message);

/** A duration field's value in whole seconds (the schema's one parser), or a 400. */
export function parseDuration(v: unknown, name: string): number {
  return parseDurationSeconds(v, name, userError);
}

/** Request data nested deeper than this is refused (a 400) before any handler reads it. */
export const MAX_DATA_DEPTH = 64;

/** Depth of a JSON-like value, counted without recursion (so any depth is measured safely). */
function depthExceeds(root: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    if (d >= max) return true;
    for (const child of Object.values(v as object)) if (child && typeof child === 'object') stack.push([child, d + 1]);
  }
  return false;
}

export class FieldData {
  constructor(private readonly values: Record<string, unknown>, private readonly set: Set<string>) {}
  get<T = unknown>(k: string): T { return this.values[k] as T; }
  str(k: string): string { return (this.values[k] as string) ?? ''; }
  int(k: string): number { return (this.values[k] as number) ?? 0; }
  bool(k: string): boolean { return Boolean(this.values[k]); }
  /** Was the field given in the request (not defaulted)? */
  has(k: string): boolean { return this.set.has(k); }
}

/** One field's value, validated and converted per its declaration (also used for batch items), or a 400. */
export function coerce(name: string, f: Field, v: unknown): unknown {
  return coerceField(name, f, v, userError);
}

interface Compiled { def: PathDef; re: RegExp }

export interface Routed { def: PathDef; req: Request; warnings: string[] }

/** Does the regex source have a "|" outside any group or class (so it has several starts)? */
function topLevelAlternation(source: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') i++;
    else if (inClass) inClass = ch !== ']';
    else if (ch === '[') inClass = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) return true;
  }
  return false;
}

/**
 * The first path segment every match of `pattern` has, when the pattern spells it out
 * literally ("keys/(?<name>...)" → "keys"; "roles/?" → "roles"); undefined otherwise
 * ("(?:cert/)?ca_chain", "crl(?<pem>/pem)?", alternations), and such paths are tried for every path.
 */
export function literalFirstSegment(pattern: string): string | undefined {
  const m = /^([A-Za-z0-9_-]+)(?:$|\/[?*]?$|\/(?![?*+{]))/.exec(pattern);
  return m && !topLevelAlternation(pattern) ? m[1] : undefined;
}

export class Router {
  private readonly paths: Compiled[];
  /** Paths by their literal first segment, each list with the unindexed paths merged in, in declaration order. */
  private readonly byFirstSegment = new Map<string, Compiled[]>();
  private readonly unindexed: Compiled[];

  constructor(defs: PathDef[], private readonly backendHelp: string) {
    this.paths = defs.map((def) => ({ def, re: new RegExp(`^${def.pattern}$`) }));
    const first = this.paths.map((c) => literalFirstSegment(c.def.pattern));
    this.unindexed = this.paths.filter((_, i) => first[i] === undefined);
    for (const seg of new Set(first)) {
      if (seg !== undefined) this.byFirstSegment.set(seg, this.paths.filter((_, i) => first[i] === seg || first[i] === undefined));
    }
  }

  /** The first declared path matching `path` (as a scan of every path would find it), trying only candidates. */
  match(path: string): { c: Compiled; m: RegExpExecArray } | undefined {
    const slash = path.indexOf('/');
    const candidates = this.byFirstSegment.get(slash === -1 ? path : path.slice(0, slash)) ?? this.unindexed;
    for (const c of candidates) {
      const m = c.re.exec(path);
      if (m) return { c, m };
    }
    return undefined;
  }

  /** Match the path, validate the fields, apply defaults. Throws UserError(404/405/400). */
  route(operation: Operation, path: string, raw: Record<string, unknown>, ctx: Omit<Request, 'operation' | 'path' | 'data'>): Routed {
    return this.routeMatched(this.match(path), operation, path, raw, ctx);
  }

  private routeMatched(hit: ReturnType<Router['match']>, operation: Operation, path: string, raw: Record<string, unknown>, ctx: Omit<Request, 'operation' | 'path' | 'data'>): Routed {
    if (!hit) throw new UnsupportedPathError();
    const { def } = hit.c;
    const values: Record<string, unknown> = {};
    const set = new Set<string>();
    const warnings: string[] = [];
    if (depthExceeds(raw, MAX_DATA_DEPTH)) throw new UserError(`request data is nested more than ${MAX_DATA_DEPTH} levels deep`);
    const given = { ...raw, ...(hit.m.groups ?? {}) };
    for (const [k, v] of Object.entries(given)) {
      // Own properties only: a parameter named "constructor" or "__proto__" is unrecognized, not Object's.
      const f = Object.hasOwn(def.fields, k) ? def.fields[k] : undefined;
      if (!f) { warnings.push(`Endpoint ignored these unrecognized parameters: [${k}]`); continue; }
      if (v === undefined || v === null) continue;
      values[k] = coerce(k, f, v);
      set.add(k);
    }
    if (operation !== 'help' && operation !== 'read' && operation !== 'list' && operation !== 'delete') {
      const missing = missingRequired(def.fields, set);
      if (missing !== undefined) throw new UserError(`missing required field "${missing}"`);
    }
    applyDefaults(def.fields, values, set);
    const req = Object.assign({}, ctx, { operation, path, data: new FieldData(values, set), fields: def.fields }) as Request;
    return { def, warnings, req };
  }

  async handle(operation: Operation, path: string, raw: Record<string, unknown>, ctx: Omit<Request, 'operation' | 'path' | 'data'>): Promise<Response | undefined> {
    if (operation === 'help') {
      // Help on the mount's root also carries its OpenAPI document, which Vault merges into sys/internal/specs/openapi.
      return { data: { help: this.help(path), see_also: [], ...(path === '' ? { openapi: openApiDocument(this.paths.map((c) => c.def)) } : {}) } };
    }
    const { def, req, warnings } = this.route(operation, path, raw, ctx);
    // Vault sends "create" only after an existence check said no; a path without one gets "update".
    const fn = def.operations[operation] ?? (operation === 'create' ? def.operations.update : operation === 'update' ? def.operations.create : undefined);
    if (!fn) throw new UnsupportedOperationError();
    const res = await fn(req);
    if (res && warnings.length) res.warnings = [...(res.warnings ?? []), ...warnings];
    return res;
  }

  async exists(path: string, ctx: Omit<Request, 'operation' | 'path' | 'data'>): Promise<{ found: boolean; exists: boolean }> {
    const hit = this.match(path);
    // Most paths declare no existence check: answer without validating any fields.
    if (!hit?.c.def.existence) return { found: false, exists: false };
    let routed: Routed;
    try {
      routed = this.routeMatched(hit, 'read', path, {}, ctx);
    } catch {
      return { found: false, exists: false };
    }
    return { found: true, exists: await hit.c.def.existence(routed.req) };
  }

  /** `vault path-help`: the matching path's declaration, or an index of all paths. */
  help(path: string): string {
    const hit = this.match(path)?.c;
    if (!hit) {
      return `${this.backendHelp}\n\n## PATHS\n\n` + this.paths.map((c) => `    ^${c.def.pattern}$\n        ${c.def.synopsis}`).join('\n\n') + '\n';
    }
    const d = hit.def;
    const fields = fieldHelp(d.fields);
    return `Request:        ${path}\nMatching Route: ^${d.pattern}$\n\n${d.synopsis}\n\n## OPERATIONS\n\n    ${Object.keys(d.operations).join(', ')}\n\n## PARAMETERS\n\n${fields || '    (none)'}\n\n## DESCRIPTION\n\n${d.description}\n`;
  }
}
