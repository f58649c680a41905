// Provider-side names for a distribution: Cloud KMS crypto key ids ([A-Za-z0-9_-], at most
// 63) and Key Vault key names ([A-Za-z0-9-], at most 127). A name that fits maps as it
// always has: the distribution's name (<key>-<unix time>) with other characters as '-'.
// A longer one is cut, and ends with a hash of the Vault key's name and the distribution's
// name, so two keys that share a long prefix never get one provider name. The name chosen
// is recorded (the distribution's container) and read back from there, never recomputed.
import { createHash } from 'node:crypto';
import type { Distribution } from './types';

/** Hex digits of the hash a cut name ends with (48 bits). */
const TAG_LENGTH = 12;

/** The provider name for `d`: its name with `disallowed` characters as '-', cut to `max` with a hash when longer. */
export function providerName(d: Pick<Distribution, 'key' | 'name'>, max: number, disallowed: RegExp): string {
  const plain = d.name.replace(disallowed, '-');
  if (plain.length <= max) return plain;
  const tag = createHash('sha256').update(`${d.key}\0${d.name}`).digest('hex').slice(0, TAG_LENGTH);
  return `${plain.slice(0, max - TAG_LENGTH - 1)}-${tag}`;
}

/** Cloud KMS crypto key id: [A-Za-z0-9_-]{1,63}. */
export const gcpCryptoKeyId = (d: Pick<Distribution, 'key' | 'name'>) => providerName(d, 63, /[^A-Za-z0-9_-]/g);
/** Key Vault key name: [A-Za-z0-9-]{1,127}. */
export const azureKeyName = (d: Pick<Distribution, 'key' | 'name'>) => providerName(d, 127, /[^A-Za-z0-9-]/g);
