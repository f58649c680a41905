// google.protobuf.Struct / Value / Timestamp as proto-loader hands them to us, to and
// from plain JS values. The well-known types come from protobufjs's bundled
// definitions, whose field names are camelCase (the wire format is the same).
/** google.protobuf.Value as proto-loader decodes it. */
export interface PbValue {
  nullValue?: string | number | null;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: PbStruct;
  listValue?: { values: PbValue[] };
  kind?: string;
}
/** google.protobuf.Struct as proto-loader decodes it. */
export interface PbStruct {
  fields?: Record<string, PbValue>;
}
/** google.protobuf.Timestamp as proto-loader decodes it. */
export interface PbTimestamp {
  seconds?: string | number;
  nanos?: number;
}

/** A protobuf Value as plain JSON-like data. */
export function fromValue(v: PbValue | undefined): unknown {
  if (!v) return null;
  // Decoded messages name the set field in `kind`; values built in code may not.
  const kind = v.kind ?? (['numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue'] as const).find((k) => v[k] !== undefined && v[k] !== null);
  switch (kind) {
    case 'numberValue':
      return v.numberValue;
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return fromStruct(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(fromValue);
    default:
      return null;
  }
}

/** A protobuf Struct as a plain object (an absent Struct as {}). */
export function fromStruct(s: PbStruct | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromValue(v);
  return out;
}

/** Plain JSON-like data as a protobuf Value. */
export function toValue(v: unknown): PbValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  if (typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

/** A plain object as a protobuf Struct. */
export function toStruct(o: Record<string, unknown>): PbStruct {
  const fields: Record<string, PbValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toValue(v);
  return { fields };
}

/** undefined for an unset timestamp (seconds 0 and nanos 0 is "unset" in Vault's usage). */
export function fromTimestamp(t: PbTimestamp | null | undefined): Date | undefined {
  if (!t) return undefined;
  const secs = Number(t.seconds ?? 0);
  const nanos = t.nanos ?? 0;
  if (secs === 0 && nanos === 0) return undefined;
  return new Date(secs * 1000 + Math.floor(nanos / 1e6));
}
