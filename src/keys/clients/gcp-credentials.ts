// Google service-account keys, without the SDK: the gcpckms managed keys (src/keys/gcpckms.ts)
// and keymgmt's config checks in the main bundle (src/secrets/keymgmt/providers/config.ts)
// read them the same way.
import { keyInvalid } from '../errors';

/** The two fields of a service-account key file that sign requests. */
export interface ServiceAccount {
  client_email: string;
  private_key: string;
}

/** A service-account key (its JSON text) read to its signing fields; an `invalid` KeyError naming `field` otherwise. */
export function parseServiceAccount(json: string, field: string): ServiceAccount {
  let sa: unknown;
  try {
    sa = JSON.parse(json);
  } catch (e) {
    throw keyInvalid(`${field}: not a service-account key (JSON)`, e);
  }
  if (
    typeof sa !== 'object' ||
    sa === null ||
    !('client_email' in sa) ||
    !('private_key' in sa) ||
    typeof sa.client_email !== 'string' ||
    typeof sa.private_key !== 'string' ||
    !sa.client_email ||
    !sa.private_key
  ) {
    throw keyInvalid(`${field}: the service-account key needs client_email and private_key`);
  }
  return { client_email: sa.client_email, private_key: sa.private_key };
}
