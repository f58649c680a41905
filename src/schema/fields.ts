// Field declarations and the one coercion per type that every schema in the plugin uses:
// secrets-engine paths, database connection config, managed-key and KMS config. A field
// declares its type, description, default, whether it is required or secret, its allowed
// values and bounds; validation, defaults, help and the README's tables read that one place.
import { parseDurationMillis, parseDurationSeconds } from './duration';
import { schemaError, type Fail } from './errors';

/** How a field's value is read: Vault's framework types, plus `raw` (taken as given). */
export type FieldType = 'string' | 'int' | 'bool' | 'duration' | 'array' | 'strings' | 'object' | 'raw';

/** One field's declaration. */
export interface Field {
  type: FieldType;
  description: string;
  /** Applied when the field is not given (in the coerced form: seconds/ms for durations). */
  default?: unknown;
  /** string: the value must be one of these; strings: each item must be. */
  allowed?: readonly string[];
  required?: boolean;
  /** Never returned by a read, never logged (redaction reads it). */
  secret?: boolean;
  /** string: lower-cased before the allowed check (case-insensitive enumerations). */
  lowercase?: boolean;
  /** int and duration bounds (durations in `unit`). */
  min?: number;
  max?: number;
  /** duration: the unit of the coerced value; default whole seconds, as Vault's TypeDurationSecond. */
  unit?: 's' | 'ms';
}

/** Fields by name. */
export type Schema = Record<string, Field>;

// Vault's TypeBool decodes weakly: a boolean; a string as Go's strconv.ParseBool reads it
// (1, t, T, TRUE, true, True and the false forms), "" as false; a JSON number arrives as a
// json.Number string, so 1 and 0 pass and any other number is refused.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False', '']);

/** A boolean as Vault's TypeBool reads one; anything else fails naming the field. */
export function parseBool(v: unknown, name: string, fail: Fail = schemaError): boolean {
  if (typeof v === 'boolean') return v;
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s === 'string') {
    if (TRUE.has(s)) return true;
    if (FALSE.has(s)) return false;
  }
  throw fail(`${name}: expected true or false`);
}

function bounded(n: number, name: string, f: Field, fail: Fail, unit = ''): number {
  if (f.min !== undefined && n < f.min) throw fail(`${name}: must be at least ${f.min}${unit}`);
  if (f.max !== undefined && n > f.max) throw fail(`${name}: must be at most ${f.max}${unit}`);
  return n;
}

/** A list of scalars, or a comma-separated string (Vault's TypeCommaStringSlice): items trimmed, empty ones dropped. */
function stringList(name: string, f: Field, v: unknown, fail: Fail): string[] {
  let items: string[];
  if (typeof v === 'string') items = v.split(',');
  else if (Array.isArray(v) && v.every((x) => ['string', 'number', 'boolean'].includes(typeof x))) items = v.map(String);
  else throw fail(`${name}: expected a list of strings`);
  items = items.map((s) => s.trim()).filter(Boolean);
  if (f.allowed) for (const i of items) if (!f.allowed.includes(i)) throw fail(`${name}: unknown value "${i.slice(0, 30)}" (allowed: ${f.allowed.join(', ')})`);
  return items;
}

/** One field's value, validated and converted per its declaration. */
export function coerceField(name: string, f: Field, v: unknown, fail: Fail = schemaError): unknown {
  switch (f.type) {
    case 'string': {
      // Vault decodes strings weakly too: a number or boolean is its text.
      if (typeof v === 'number' || typeof v === 'boolean') v = String(v);
      if (typeof v !== 'string') throw fail(`${name}: expected a string`);
      const s = f.lowercase ? v.toLowerCase() : v;
      if (f.allowed && !f.allowed.includes(s)) throw fail(`${name}: must be one of ${f.allowed.join(', ')}; got ${JSON.stringify(v.slice(0, 40))}`);
      return s;
    }
    case 'int': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
      if (!Number.isSafeInteger(n)) throw fail(`${name}: expected an integer`);
      return bounded(n, name, f, fail);
    }
    case 'bool':
      return parseBool(v, name, fail);
    case 'duration':
      return f.unit === 'ms'
        ? bounded(parseDurationMillis(v, name, fail), name, f, fail, 'ms')
        : bounded(parseDurationSeconds(v, name, fail), name, f, fail, 's');
    case 'array':
      if (Array.isArray(v)) return v;
      if (typeof v === 'string')
        return v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      throw fail(`${name}: expected a list`);
    case 'strings':
      return stringList(name, f, v, fail);
    case 'object':
      if (v && typeof v === 'object' && !Array.isArray(v)) return v;
      throw fail(`${name}: expected an object`);
    case 'raw':
      return v;
  }
}

/** What parseFields gives. */
export interface ParsedFields {
  /** Coerced values, defaults applied. */
  values: Record<string, unknown>;
  /** The fields the input gave (not defaulted). */
  given: Set<string>;
  /** Input keys the schema does not declare, in input order. */
  unknown: string[];
}

/**
 * A config object (database connection details, a managed key) read by its schema: null,
 * undefined and "" mean "not given" (Vault's CLI sends `field=` to clear a value), every
 * other value is coerced, then defaults are applied. Unknown keys are returned for the
 * caller to refuse or report; required fields are checked with missingRequired.
 */
export function parseFields(schema: Schema, raw: Record<string, unknown>, fail: Fail = schemaError): ParsedFields {
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(raw)) {
    const f = Object.hasOwn(schema, k) ? schema[k] : undefined;
    if (!f) {
      unknown.push(k);
      continue;
    }
    if (v === undefined || v === null || v === '') continue;
    values[k] = coerceField(k, f, v, fail);
    given.add(k);
  }
  applyDefaults(schema, values, given);
  return { values, given, unknown };
}

/** Fill every field not given with its declared default. */
export function applyDefaults(schema: Schema, values: Record<string, unknown>, given: ReadonlySet<string>): void {
  for (const [k, d] of digestOf(schema).defaults) {
    if (!given.has(k)) values[k] = Array.isArray(d) ? [...d] : d;
  }
}

/** The first required field not given, if any. */
export function missingRequired(schema: Schema, given: ReadonlySet<string>): string | undefined {
  return digestOf(schema).required.find((k) => !given.has(k));
}

/**
 * A schema's defaults and required fields, listed once per schema object: every request
 * routed to a path asks both, and walking all its fields each time was a visible share of
 * a transit call. Schemas are declarations, never changed once used.
 */
const digests = new WeakMap<Schema, { defaults: Array<[string, unknown]>; required: string[] }>();
function digestOf(schema: Schema): { defaults: Array<[string, unknown]>; required: string[] } {
  let d = digests.get(schema);
  if (!d) {
    const entries = Object.entries(schema);
    d = {
      defaults: entries.filter(([, f]) => f.default !== undefined).map(([k, f]) => [k, f.default]),
      required: entries.filter(([, f]) => f.required).map(([k]) => k),
    };
    digests.set(schema, d);
  }
  return d;
}

/** The values of the secret fields given, for redaction. */
export function secretValues(schema: Schema, values: Record<string, unknown>): string[] {
  return Object.entries(values)
    .filter(([k, v]) => schema[k]?.secret && typeof v === 'string' && v !== '')
    .map(([, v]) => v as string);
}
