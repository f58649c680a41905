// The validity Vault's PKI gives a certificate when the request names none, and its cap:
// the mount's default and max lease TTL (SystemView), as current Vault's
// GetCertificateNotAfter picks them. Shared by root/generate and sign-intermediate.
import type { SystemView } from '../framework';
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
