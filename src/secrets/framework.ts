// A small declarative framework for logical backends, in the spirit of Vault's own:
// each path is declared once — pattern, typed fields, operations, existence check, help
// — and validation, defaults, `vault path-help` text and operation dispatch all come from
// that one declaration.
import type { Storage } from '../storage/storage';
import { applyDefaults, coerceField, fieldHelp, missingRequired, parseDurationSeconds, type Field } from '../schema';
import type { LeasedSecret } from './lease';
import { openApiDocument } from './openapi';

/** Vault's logical operations (create only after an existence check said no). */
export type Operation = 'read' | 'create' | 'update' | 'delete' | 'list' | 'help';
// Fields are declared in the plugin's one schema language (src/schema); re-exported here
// under the names the engines import.
export type { FieldType, Field as FieldDef } from '../schema';
export { MAX_DURATION_SECONDS } from '../schema';

/** What Vault's SystemView tells a mount (served back over the broker). */
export interface SystemView {
  /** The mount's max lease TTL in seconds (0 if unknown). */
  maxLeaseTtl(): Promise<number>;
  /** The mount's default lease TTL in seconds (0 if unknown). */
  defaultLeaseTtl(): Promise<number>;
}

/** One request to a path: its fields (by the path's declaration), storage, and what Vault said of the caller. */
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

/** What a handler answers: data, warnings, and for engines that lease, a secret. */
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

/** A path's handler for one operation. */
export type Handler = (req: Request) => Promise<Response | undefined>;

/** A path of an engine: its pattern, fields, help and handlers, declared together. */
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
  constructor(
    message: string,
    readonly status = 400,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** No path of the mount matches (Vault's logical.ErrUnsupportedPath). */
export class UnsupportedPathError extends UserError {
  constructor() {
    super('unsupported path', 404);
  }
}

/** The path (or secret type) does not do this operation (Vault's logical.ErrUnsupportedOperation). */
export class UnsupportedOperationError extends UserError {
  constructor() {
    super('unsupported operation', 405);
  }
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

/**
 * A handler read a field its path does not declare: a bug in the plugin, not bad input (Vault's
 * FieldData panics). It reaches Vault as a 500 naming the field and the path.
 */
export class UndeclaredFieldError extends Error {
  constructor(
    readonly field: string,
    readonly pattern: string,
  ) {
    super(`programming error: field "${field}" is read by path "${pattern}", which does not declare it`);
    this.name = 'UndeclaredFieldError';
  }
}

/** A request's fields, coerced and defaulted by its path's declarations; only declared fields can be read. */
export class FieldData {
  constructor(
    protected readonly values: Record<string, unknown>,
    protected readonly set: Set<string>,
    protected readonly fields: Readonly<Record<string, Field>>,
    private readonly pattern: string,
  ) {}
  protected value(k: string): unknown {
    if (!Object.hasOwn(this.fields, k)) throw new UndeclaredFieldError(k, this.pattern);
    return this.values[k];
  }
  get<T = unknown>(k: string): T {
    return this.value(k) as T;
  }
  str(k: string): string {
    return (this.value(k) as string) ?? '';
  }
  int(k: string): number {
    return (this.value(k) as number) ?? 0;
  }
  bool(k: string): boolean {
    return Boolean(this.value(k));
  }
  /** Was the field given in the request (not defaulted)? */
  has(k: string): boolean {
    this.value(k);
    return this.set.has(k);
  }
}

/**
 * An existence check's fields: the URL's captures at once, each body field only when the check
 * reads it (the body parsed then, once; the field coerced, or a 400). Vault sends a write's whole
 * body to the check too (a batch of thousands of items), and most checks read only the URL.
 */
class FieldDataWithBody extends FieldData {
  private body?: Record<string, unknown>;
  constructor(
    values: Record<string, unknown>,
    set: Set<string>,
    fields: Readonly<Record<string, Field>>,
    pattern: string,
    private readonly load: () => Record<string, unknown>,
  ) {
    super(values, set, fields, pattern);
  }
  protected override value(k: string): unknown {
    const v = super.value(k);
    if (this.set.has(k)) return v; // a capture (the URL wins over the body, as when routing)
    this.body ??= this.load();
    const given = Object.hasOwn(this.body, k) ? this.body[k] : undefined;
    if (given === undefined || given === null) return v;
    const c = coerce(k, this.fields[k], given);
    this.values[k] = c;
    this.set.add(k);
    return c;
  }
}

/** One field's value, validated and converted per its declaration (also used for batch items), or a 400. */
export function coerce(name: string, f: Field, v: unknown): unknown {
  return coerceField(name, f, v, userError);
}

/** A path's declaration without its handlers: what every mount of one engine has in common. */
export type PathShape = Pick<PathDef, 'pattern' | 'fields' | 'synopsis' | 'description'>;
/** A mount's own half of a path: its handlers, which close over the mount's state. */
type PathHandlers = Pick<PathDef, 'operations' | 'existence'>;

interface Compiled {
  def: PathShape;
  re: RegExp;
  index: number;
}

/** A request matched to its path (declaration and this mount's handlers), fields validated and defaulted, with the warnings to add. */
export interface Routed {
  def: PathShape;
  handlers: PathHandlers;
  req: Request;
  warnings: string[];
}

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

/**
 * The compiled, immutable half of a Router: the regexes, the index by first segment, the
 * declarations and the help text. Mounts of one engine declare the same paths, so they
 * share one table (see Router) and keep only their handlers.
 */
class RouteTable {
  readonly paths: Compiled[];
  /** Paths by their literal first segment, each list with the unindexed paths merged in, in declaration order. */
  readonly byFirstSegment = new Map<string, Compiled[]>();
  readonly unindexed: Compiled[];

  constructor(
    defs: PathShape[],
    readonly backendHelp: string,
    readonly fingerprint: string,
  ) {
    this.paths = defs.map((def, index) => ({ def, re: new RegExp(`^${def.pattern}$`), index }));
    const first = this.paths.map((c) => literalFirstSegment(c.def.pattern));
    this.unindexed = this.paths.filter((_, i) => first[i] === undefined);
    for (const seg of new Set(first)) {
      if (seg !== undefined)
        this.byFirstSegment.set(
          seg,
          this.paths.filter((_, i) => first[i] === seg || first[i] === undefined),
        );
    }
  }
}

/** The declarations as text, handlers left out: mounts share a table only when theirs are equal (undefined: not comparable as JSON). */
function declarationText(defs: PathDef[], backendHelp: string): string | undefined {
  try {
    return JSON.stringify([backendHelp, defs.map((d) => [d.pattern, d.fields, d.synopsis, d.description])]);
  } catch {
    return undefined;
  }
}

/** One table per share key (an engine), replaced if a mount ever declares different paths. */
const sharedTables = new WeakMap<object, RouteTable>();

/** Resolves a request to its path's handlers with validated, defaulted fields; mounts of one engine share one compiled table. */
export class Router {
  private readonly table: RouteTable;
  /** This mount's handlers, by path index in the table. */
  private readonly handlers: PathHandlers[];

  /**
   * `shareKey` (the engine): routers built with the same key and equal declarations share
   * one compiled table, copied without handlers so no mount's state is kept by it.
   */
  constructor(defs: PathDef[], backendHelp: string, shareKey?: object) {
    this.handlers = defs.map((d) => ({ operations: d.operations, existence: d.existence }));
    if (!shareKey) {
      this.table = new RouteTable(defs, backendHelp, '');
      return;
    }
    const text = declarationText(defs, backendHelp);
    if (text === undefined) {
      this.table = new RouteTable(defs, backendHelp, '');
      return;
    }
    const cached = sharedTables.get(shareKey);
    if (cached?.fingerprint === text) {
      this.table = cached;
      return;
    }
    const shapes = defs.map(({ pattern, fields, synopsis, description }) => ({ pattern, fields, synopsis, description }));
    this.table = new RouteTable(shapes, backendHelp, text);
    sharedTables.set(shareKey, this.table);
  }

  /** The first declared path matching `path` (as a scan of every path would find it), trying only candidates. */
  match(path: string): { c: Compiled; m: RegExpExecArray } | undefined {
    const slash = path.indexOf('/');
    const candidates = this.table.byFirstSegment.get(slash === -1 ? path : path.slice(0, slash)) ?? this.table.unindexed;
    for (const c of candidates) {
      const m = c.re.exec(path);
      if (m) return { c, m };
    }
    return undefined;
  }

  /** Does this router use the same compiled table as `other` (mounts of one engine)? */
  sharesTableWith(other: Router): boolean {
    return this.table === other.table;
  }

  /** Match the path, validate the fields, apply defaults. Throws UserError(404/405/400). */
  route(operation: Operation, path: string, raw: Record<string, unknown>, ctx: Omit<Request, 'operation' | 'path' | 'data'>): Routed {
    return this.routeMatched(this.match(path), operation, path, raw, ctx);
  }

  private routeMatched(
    hit: ReturnType<Router['match']>,
    operation: Operation,
    path: string,
    raw: Record<string, unknown>,
    ctx: Omit<Request, 'operation' | 'path' | 'data'>,
    /** For an existence check: the body, read when the check asks for one of its fields. */
    body?: () => Record<string, unknown>,
  ): Routed {
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
      if (!f) {
        warnings.push(`Endpoint ignored these unrecognized parameters: [${k}]`);
        continue;
      }
      if (v === undefined || v === null) continue;
      values[k] = coerce(k, f, v);
      set.add(k);
    }
    if (operation !== 'help' && operation !== 'read' && operation !== 'list' && operation !== 'delete') {
      const missing = missingRequired(def.fields, set);
      if (missing !== undefined) throw new UserError(`missing required field "${missing}"`);
    }
    applyDefaults(def.fields, values, set);
    const data = body ? new FieldDataWithBody(values, set, def.fields, def.pattern, body) : new FieldData(values, set, def.fields, def.pattern);
    const req = Object.assign({}, ctx, { operation, path, data, fields: def.fields }) as Request;
    return { def, handlers: this.handlers[hit.c.index], warnings, req };
  }

  async handle(
    operation: Operation,
    path: string,
    raw: Record<string, unknown>,
    ctx: Omit<Request, 'operation' | 'path' | 'data'>,
  ): Promise<Response | undefined> {
    if (operation === 'help') {
      // Help on the mount's root also carries its OpenAPI document, which Vault merges into sys/internal/specs/openapi.
      return {
        data: {
          help: this.help(path),
          see_also: [],
          ...(path === '' ? { openapi: openApiDocument(this.table.paths.map((c) => ({ ...c.def, ...this.handlers[c.index] }))) } : {}),
        },
      };
    }
    const {
      handlers: { operations },
      req,
      warnings,
    } = this.route(operation, path, raw, ctx);
    // Vault sends "create" only after an existence check said no; a path without one gets "update".
    const fn = operations[operation] ?? (operation === 'create' ? operations.update : operation === 'update' ? operations.create : undefined);
    if (!fn) throw new UnsupportedOperationError();
    const res = await fn(req);
    if (res && warnings.length) res.warnings = [...(res.warnings ?? []), ...warnings];
    return res;
  }

  /**
   * Vault's existence check, with the request's body as Vault's SDK gives it (`body`, read only
   * if the check asks for a body field: FieldDataWithBody). Fields are not required (the request
   * itself is checked when it runs); a path whose captures, or a body field the check reads, do
   * not validate is "not found", so Vault sends it on as an update and the update's own routing
   * answers the 400.
   */
  async exists(
    path: string,
    ctx: Omit<Request, 'operation' | 'path' | 'data'>,
    body: () => Record<string, unknown> = () => ({}),
  ): Promise<{ found: boolean; exists: boolean }> {
    const hit = this.match(path);
    const existence = hit && this.handlers[hit.c.index].existence;
    // Most paths declare no existence check: answer without validating any fields.
    if (!existence) return { found: false, exists: false };
    try {
      return { found: true, exists: await existence(this.routeMatched(hit, 'read', path, {}, ctx, body).req) };
    } catch (e) {
      if (e instanceof UserError) return { found: false, exists: false };
      throw e;
    }
  }

  /** `vault path-help`: the matching path's declaration, or an index of all paths. */
  help(path: string): string {
    const hit = this.match(path)?.c;
    if (!hit) {
      return `${this.table.backendHelp}\n\n## PATHS\n\n` + this.table.paths.map((c) => `    ^${c.def.pattern}$\n        ${c.def.synopsis}`).join('\n\n') + '\n';
    }
    const d = hit.def;
    const fields = fieldHelp(d.fields);
    return `Request:        ${path}\nMatching Route: ^${d.pattern}$\n\n${d.synopsis}\n\n## OPERATIONS\n\n    ${Object.keys(this.handlers[hit.index].operations).join(', ')}\n\n## PARAMETERS\n\n${fields || '    (none)'}\n\n## DESCRIPTION\n\n${d.description}\n`;
  }
}
