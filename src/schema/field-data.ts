// Validated request data, readable only through the schema that validated it: asking for
// a field the path does not declare is a programming error (as in Vault's framework,
// where FieldData.Get panics), caught by the first test that takes that code path instead
// of silently reading undefined.
import type { Schema } from './fields';

export class FieldData {
  constructor(private readonly schema: Schema, private readonly values: Record<string, unknown>, private readonly given: ReadonlySet<string>) {}

  private declared(k: string): string {
    if (!Object.hasOwn(this.schema, k)) throw new Error(`field "${k}" is not declared by this path`);
    return k;
  }

  get<T = unknown>(k: string): T { return this.values[this.declared(k)] as T; }
  str(k: string): string { return (this.values[this.declared(k)] as string) ?? ''; }
  int(k: string): number { return (this.values[this.declared(k)] as number) ?? 0; }
  bool(k: string): boolean { return Boolean(this.values[this.declared(k)]); }
  /** Was the field given in the request (not defaulted)? */
  has(k: string): boolean { return this.given.has(this.declared(k)); }
}
