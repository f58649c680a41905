// The validity Vault's PKI gives a certificate when the request names none, and its cap:
// the mount's default and max lease TTL (SystemView), as current Vault's
// GetCertificateNotAfter picks them. Shared by root/generate and sign-intermediate.
import { UserError, type FieldDef, type Request, type SystemView } from '../framework';
import { goDuration } from './certificates';

/** Vault's own default for both when nothing is tuned (768h), used when the binding cannot ask Vault. */
export const VAULT_SYSTEM_TTL = 768 * 3600;

/** A mount's lease TTLs, in seconds. */
export interface MountTtls {
  defaultTtl: number;
  maxTtl: number;
}

/**
 * The mount's default and max lease TTL. When Vault cannot be asked for the default the max
 * stands in for it (Vault's default is never above the max for a request: it is capped to
 * it); without either, Vault's untuned 768h.
 */
export async function mountTtls(system?: SystemView): Promise<MountTtls> {
  const [max, dflt] = await Promise.all([system?.maxLeaseTtl(), system?.defaultLeaseTtl()]);
  const maxTtl = max || VAULT_SYSTEM_TTL;
  return { defaultTtl: dflt || maxTtl, maxTtl };
}

/**
 * The ttl of a certificate: the requested one, else the mount's default; over the mount's
 * max it is cut to the max with Vault's warning, not refused (as current Vault and 1.8).
 */
export function certTtl(requested: number, mount: MountTtls, warnings: string[]): number {
  let ttl = requested || mount.defaultTtl;
  if (ttl > mount.maxTtl) {
    warnings.push(`TTL "${goDuration(ttl)}" is longer than permitted maxTTL "${goDuration(mount.maxTtl)}", so maxTTL is being used`);
    ttl = mount.maxTtl;
  }
  return ttl;
}

/**
 * not_after: an end date instead of a ttl, as current Vault takes it on issue/, sign/,
 * sign-verbatim, sign-intermediate, root/generate and roles (Vault 1.8 had none of these).
 */
export const NOT_AFTER_FIELD: FieldDef = {
  type: 'string',
  default: '',
  description:
    'The notAfter of the certificate instead of a ttl: an RFC 3339 time such as 2030-01-31T23:59:59Z (9999-12-31T23:59:59Z for IEEE 802.1AR devices). Not with ttl.',
};

// Go's time.RFC3339 as time.Parse reads it: fractional seconds allowed, "Z" or a numeric offset.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 time as Go's time.RFC3339 parses it (the seconds kept, fractions dropped), or a 400. */
export function parseNotAfter(text: string, field = 'not_after'): Date {
  const m = RFC3339.exec(text);
  if (m) {
    const [y, mo, da, h, mi, se] = m.slice(1, 7).map(Number);
    // Date would roll 02-30 over to March: the day must exist in its month.
    const day = new Date(Date.UTC(2000, mo - 1, da));
    day.setUTCFullYear(y);
    if (mo >= 1 && mo <= 12 && day.getUTCMonth() === mo - 1 && h < 24 && mi < 60 && se < 60) {
      const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8]}`);
      // (A certificate's time has four digits of year: an offset may not carry it past 9999.)
      if (!Number.isNaN(d.getTime()) && d.getUTCFullYear() <= 9999) return d;
    }
  }
  throw new UserError(`${field}: "${text.slice(0, 40)}" is not a time in the format YYYY-MM-DDTHH:MM:SSZ (RFC 3339)`);
}

/**
 * The notAfter asked for, as current Vault's GetCertificateNotAfter picks it: the role's
 * not_after, else the request's; with a ttl in the request as well it is a 400 (Vault's words).
 * Undefined when neither has one (the ttl then decides).
 */
export function requestedNotAfter(r: Request, roleNotAfter = ''): Date | undefined {
  const text = roleNotAfter || r.data.str('not_after');
  if (!text) return undefined;
  if (r.data.int('ttl') > 0) throw new UserError('Either ttl or not_after should be provided. Both should not be provided in the same request.');
  return parseNotAfter(text);
}

/** not_after and not_before_duration of root/generate, root/rotate and sign-intermediate (current Vault; not in Vault 1.8). */
export const CA_VALIDITY_FIELDS: Record<string, FieldDef> = {
  not_after: NOT_AFTER_FIELD,
  not_before_duration: { type: 'duration', default: 30, description: 'How far before now the certificate becomes valid (default 30s).' },
};

/** not_before_duration of a CA path in seconds: 0 is Vault's 30 s (its signer backdates by 30 s unless given more); negative is a 400. */
export function caNotBefore(r: Request): number {
  const s = r.data.int('not_before_duration');
  if (s < 0) throw new UserError('not_before_duration must not be negative');
  return s || 30;
}
