// Durations, as Vault's parseutil.ParseDurationSecond reads them: plain integer seconds, or
// a Go duration string (units ns, us, µs, ms, s, m, h; decimals; segments like 2160h0m0s),
// plus "d" for days as current Vault accepts (Vault 1.8 did not). A JSON number is seconds.
// Never negative, and no larger than Go's time.Duration can hold (~292 years): anything
// else — negative, NaN, Infinity, 1e308, a 400-digit string, "1.5" (Vault refuses a
// fractional plain number) — is refused, so no caller ever computes a certificate time, a
// rotation or a timer from a non-finite number. The one parser every field uses.
import { schemaError, type Fail } from './errors';

const NS_PER: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};
const GO_DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h|d))+$/;
const SEGMENT = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h|d)/g;
const MAX_DURATION_NS = 9_223_372_036_854_775_807n;
/** The largest duration any field accepts, in seconds. */
export const MAX_DURATION_SECONDS = Number(MAX_DURATION_NS / 1_000_000_000n);

// Requests repeat a few duration strings ("1h", a role's "24h") on every call: the valid ones
// parsed are kept (BigInt arithmetic and two regular expressions each time otherwise).
const parsed = new Map<string, bigint>();
const PARSED_KEPT = 256;

/** A duration in nanoseconds (exact), or the caller's error naming the field. */
export function parseDurationNs(v: unknown, name: string, fail: Fail = schemaError): bigint {
  const bad = (why = 'invalid duration') => fail(`${name}: ${why} ${JSON.stringify(v)?.slice(0, 40) ?? String(v)}`);
  const tooLong = () => bad(`must be between 0 and ${MAX_DURATION_SECONDS} seconds; got`);
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw bad();
    if (!(v >= 0 && v <= MAX_DURATION_SECONDS)) throw tooLong();
    // Whole and fractional seconds apart: v * 1e9 in floating point could land a hair
    // below a whole second and truncate to the second before.
    const whole = Math.floor(v);
    return BigInt(whole) * NS_PER.s + BigInt(Math.floor((v - whole) * 1e9));
  }
  if (typeof v !== 'string') throw bad();
  const known = parsed.get(v);
  if (known !== undefined) return known;
  const s = v.trim();
  if (s === '') return 0n;
  let ns = 0n;
  if (/^\d+$/.test(s)) ns = BigInt(s) * NS_PER.s;
  else if (GO_DURATION.test(s)) {
    for (const [, whole, frac = '', unit] of s.matchAll(SEGMENT)) {
      const scale = 10n ** BigInt(frac.length);
      ns += ((BigInt(whole || '0') * scale + BigInt(frac || '0')) * NS_PER[unit]) / scale;
      if (ns > MAX_DURATION_NS) break;
    }
  } else throw bad();
  if (ns > MAX_DURATION_NS) throw tooLong();
  if (parsed.size >= PARSED_KEPT) parsed.clear();
  parsed.set(v, ns);
  return ns;
}

/** Whole seconds, truncated as Vault's TypeDurationSecond does. */
export function parseDurationSeconds(v: unknown, name: string, fail: Fail = schemaError): number {
  return Number(parseDurationNs(v, name, fail) / NS_PER.s);
}

/** Whole milliseconds, truncated: for timers that need sub-second values ("250ms"). */
export function parseDurationMillis(v: unknown, name: string, fail: Fail = schemaError): number {
  return Number(parseDurationNs(v, name, fail) / NS_PER.ms);
}

/** A duration for docs: 10000 ms → "10s", 90 s → "90s", 250 ms → "250ms". */
export function formatDuration(value: number, unit: 's' | 'ms'): string {
  if (unit === 'ms' && value % 1000 !== 0) return `${value}ms`;
  return `${unit === 'ms' ? value / 1000 : value}s`;
}
