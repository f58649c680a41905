// Naming an issuer in a path (issuer/<ref>/...) or a field (issuer_ref): its issuer_id,
// its issuer_name, or "default", as in current Vault.
import type { FieldDef } from '../framework';

/** A path segment naming an issuer (its id, its name or "default"), captured as issuer_ref. */
export const ISSUER_REF = '(?<issuer_ref>[\\w.-]{1,128})';
/** The issuer_ref field, defaulting to the mount's default issuer. */
export const ISSUER_REF_FIELD: FieldDef = {
  type: 'string',
  default: 'default',
  description: 'The issuer to sign with: issuer_id, issuer_name, or "default" (the mount\'s default issuer, config/issuers).',
};
/** config/issuers and root/replace (which writes the same config): whether each new issuer becomes the default. */
export const DEFAULT_FOLLOWS_LATEST_ISSUER_FIELD: FieldDef = { type: 'bool', description: 'Make each new issuer (root/generate, set-signed) the default.' };
