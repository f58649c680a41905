// Naming an issuer in a path (issuer/<ref>/...) or a field (issuer_ref): its issuer_id,
// its issuer_name, or "default", as in current Vault.
import type { FieldDef } from '../framework';

export const ISSUER_REF = '(?<issuer_ref>[\\w.-]{1,128})';
export const ISSUER_REF_FIELD: FieldDef = { type: 'string', default: 'default', description: 'The issuer to sign with: issuer_id, issuer_name, or "default" (the mount\'s default issuer, config/issuers).' };
