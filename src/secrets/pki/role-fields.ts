// The role fields Vault's PKI has beyond names, key and ttl: key usages, CSR handling,
// require_cn, no_store, subject extras. Declared once here (validation, defaults, help),
// stored with the role, and filled in with Vault's defaults for roles written before
// they existed, so every role reads back with Vault's full set of fields.
import { UserError, type FieldDef, type FieldData } from '../framework';
import type { Role } from './certificates';
import { parseOtherSan } from './issue-options';
import { NOT_AFTER_FIELD, parseNotAfter } from './ttl';
import { checkSignatureBits } from './cert-writer';

/** Vault's key usage names (x509.KeyUsage without the prefix) → X.509 KeyUsage bits. */
export const KEY_USAGE_BITS: Record<string, number> = {
  digitalsignature: 1,
  contentcommitment: 2,
  keyencipherment: 4,
  dataencipherment: 8,
  keyagreement: 16,
  certsign: 32,
  crlsign: 64,
  encipheronly: 128,
  decipheronly: 256,
};
/** Vault's extended key usage names → OIDs. */
export const EXT_KEY_USAGE_OIDS: Record<string, string> = {
  any: '2.5.29.37.0',
  serverauth: '1.3.6.1.5.5.7.3.1',
  clientauth: '1.3.6.1.5.5.7.3.2',
  codesigning: '1.3.6.1.5.5.7.3.3',
  emailprotection: '1.3.6.1.5.5.7.3.4',
  ipsecendsystem: '1.3.6.1.5.5.7.3.5',
  ipsectunnel: '1.3.6.1.5.5.7.3.6',
  ipsecuser: '1.3.6.1.5.5.7.3.7',
  timestamping: '1.3.6.1.5.5.7.3.8',
  ocspsigning: '1.3.6.1.5.5.7.3.9',
  microsoftservergatedcrypto: '1.3.6.1.4.1.311.10.3.3',
  netscapeservergatedcrypto: '2.16.840.1.113730.4.1',
  microsoftcommercialcodesigning: '1.3.6.1.4.1.311.2.1.22',
  microsoftkernelcodesigning: '1.3.6.1.4.1.311.61.1.1',
};
const usageKey = (n: string) => n.toLowerCase().replace(/^(x509\.)?(extkeyusage|keyusage)/, '');

const DEFAULT_KEY_USAGE = ['DigitalSignature', 'KeyAgreement', 'KeyEncipherment'];

/** The role fields beyond Role, added as this engine caught up with Vault; stored roles may lack them (withDefaults). */
export interface RoleExtras {
  key_usage: string[];
  ext_key_usage: string[];
  ext_key_usage_oids: string[];
  use_csr_common_name: boolean;
  use_csr_sans: boolean;
  require_cn: boolean;
  no_store: boolean;
  generate_lease: boolean;
  code_signing_flag: boolean;
  email_protection_flag: boolean;
  basic_constraints_valid_for_non_ca: boolean;
  allowed_uri_sans: string[];
  allowed_other_sans: string[];
  allowed_serial_numbers: string[];
  allowed_user_ids: string[];
  serial_number_source: string;
  signature_bits: number;
  use_pss: boolean;
  cn_validations: string[];
  allowed_domains_template: boolean;
  allowed_uri_sans_template: boolean;
  allow_token_displayname: boolean;
  policy_identifiers: string[];
  not_before_duration: number;
  not_after: string;
  issuer_ref: string;
  country: string[];
  province: string[];
  locality: string[];
  street_address: string[];
  postal_code: string[];
}

const strings = (description: string): FieldDef => ({ type: 'strings', default: [], description });
const bool = (dflt: boolean, description: string): FieldDef => ({ type: 'bool', default: dflt, description });

/** Schema of the RoleExtras fields: validation, defaults and help for roles/<name>. */
export const ROLE_EXTRA_FIELDS: Record<keyof RoleExtras, FieldDef> = {
  key_usage: {
    type: 'strings',
    default: DEFAULT_KEY_USAGE,
    description:
      "Key usages of issued certificates (Vault's names: DigitalSignature, KeyAgreement, KeyEncipherment, ContentCommitment, DataEncipherment, CertSign, CRLSign, EncipherOnly, DecipherOnly). Ed25519 leaves keep only the signing usages.",
  },
  ext_key_usage: strings(
    'Extended key usages besides server_flag/client_flag/code_signing_flag/email_protection_flag (ServerAuth, ClientAuth, CodeSigning, EmailProtection, TimeStamping, OCSPSigning, Any, IPSec…).',
  ),
  ext_key_usage_oids: strings('Extended key usage OIDs (dotted).'),
  use_csr_common_name: bool(true, 'sign/: take the CN from the CSR (else from common_name).'),
  use_csr_sans: bool(true, 'sign/: take the DNS/email SANs from the CSR (else from alt_names).'),
  require_cn: bool(true, 'A CN is required (false: a certificate may carry SANs only, as cert-manager asks).'),
  no_store: bool(false, 'Do not store issued certificates (they cannot be listed or revoked).'),
  generate_lease: bool(false, 'Must stay false: certificates are not leased here (revoke them by serial).'),
  code_signing_flag: bool(false, 'Add the codeSigning extended key usage.'),
  email_protection_flag: bool(false, 'Add the emailProtection extended key usage.'),
  basic_constraints_valid_for_non_ca: bool(false, 'Put Basic Constraints (CA:FALSE) into leaf certificates.'),
  allowed_uri_sans: strings('URI SANs allowed (glob patterns).'),
  allowed_other_sans: strings('otherName SANs allowed in other_sans: "<oid>;UTF8:<value glob>" each (the OID may be "*"), or "*" for any.'),
  allowed_serial_numbers: strings('Subject serialNumber values allowed in serial_number (globs; none when empty).'),
  signature_bits: {
    type: 'int',
    default: 0,
    description: "The hash of the issuer's signatures under this role: 256, 384 or 512; 0 (default): by the issuer's key.",
  },
  use_pss: bool(
    false,
    'RSASSA-PSS signatures by an RSA issuer (hash: signature_bits, SHA-256 by default for RSA keys); ignored for EC and Ed25519 issuers. As in Vault, an EC or Ed25519 certificate gets PSS only with an explicit signature_bits.',
  ),
  cn_validations: {
    type: 'strings',
    default: ['email', 'hostname'],
    description:
      'What the common name may be (current Vault): email (an email address) and/or hostname (any other name), each still checked against the role; or disabled alone: any CN, unchecked (one copied into the SANs is still checked there). Default both.',
  },
  serial_number_source: {
    type: 'string',
    default: 'json-csr',
    allowed: ['json-csr', 'json', ''],
    description:
      "sign/: where the subject's serialNumber comes from: json-csr (default; empty means the same) the request's serial_number, else the CSR's; json the request's only. Either is checked against allowed_serial_numbers.",
  },
  allowed_user_ids: strings(
    'Subject UID (0.9.2342.19200300.100.1.1) values allowed in user_ids, or in the CSR on sign/ (case-insensitive, or globs; "*" any; none when empty).',
  ),
  allowed_domains_template: bool(
    false,
    'allowed_domains may hold identity templates ({{identity.entity...}}): not supported here, as Vault passes no entity data to this plugin; domains without a template still work.',
  ),
  allowed_uri_sans_template: bool(
    false,
    'allowed_uri_sans may hold identity templates ({{identity.entity...}}), as in current Vault: not supported here (Vault passes no entity data to this plugin); URIs without a template still work.',
  ),
  allow_token_displayname: bool(false, "Allow a name equal to the requesting token's display name."),
  policy_identifiers: {
    type: 'raw',
    default: [],
    description:
      'Certificate Policies OIDs of issued certificates: a list (or comma-separated) of OIDs, or current Vault\'s JSON form [{"oid": "..."}] (policy qualifiers, cps and notice, are not supported).',
  },
  issuer_ref: {
    type: 'string',
    default: 'default',
    description: 'The issuer that signs under this role (issuer_id, issuer_name, or "default": the mount\'s default issuer).',
  },
  not_before_duration: { type: 'duration', default: 30, description: 'How far before now certificates become valid.' },
  not_after: {
    ...NOT_AFTER_FIELD,
    description:
      "The notAfter of every certificate issued under this role (RFC 3339, e.g. 2030-01-31T23:59:59Z), in place of the request's; a request may then give no ttl. Empty: none.",
  },
  country: strings('C values for issued certificates.'),
  province: strings('ST values for issued certificates.'),
  locality: strings('L values for issued certificates.'),
  street_address: strings('street values for issued certificates.'),
  postal_code: strings('postalCode values for issued certificates.'),
};

/** The subject's fields a CA request takes (root and intermediate generate, sign-intermediate): O and OU, then the role's address fields. */
export const CA_SUBJECT_FIELDS: Record<string, FieldDef> = {
  organization: strings('O values.'),
  ou: strings('OU values.'),
  country: ROLE_EXTRA_FIELDS.country,
  province: ROLE_EXTRA_FIELDS.province,
  locality: ROLE_EXTRA_FIELDS.locality,
  street_address: ROLE_EXTRA_FIELDS.street_address,
  postal_code: ROLE_EXTRA_FIELDS.postal_code,
};

/**
 * key_usage of root/generate, root/rotate and [issuer/<ref>/|root/]sign-intermediate (current
 * Vault, 1.19.2 and later; Vault 1.8 has no such field there and ignores it): usages added to
 * the CertSign and CRLSign every CA certificate has.
 */
export const CA_KEY_USAGE_FIELD: FieldDef = {
  type: 'strings',
  default: ['CertSign', 'CRLSign'],
  description:
    "Key usages added to CertSign and CRLSign, which the CA certificate always has: DigitalSignature is the one other a CA may have (Vault's names; a leaf-only usage is left out with a warning, an unknown name is a 400).",
};
const CA_USAGES = new Set(['certsign', 'crlsign', 'digitalsignature']);

/**
 * The key usage bits of a CA certificate from key_usage, as current Vault: CertSign and CRLSign
 * always, DigitalSignature when asked; a usage only leaves may have is left out and named in
 * `warnings` (Vault's words, after `prefix`); an unknown name is a 400 (Vault warns and drops
 * it too; here a misspelt usage is not signed away silently).
 */
export function caKeyUsage(asked: string[], prefix: string, warnings: string[]): number {
  let bits = KEY_USAGE_BITS.certsign | KEY_USAGE_BITS.crlsign;
  const leafOnly: string[] = [];
  for (const raw of asked) {
    const u = String(raw).trim();
    if (!u) continue;
    const k = usageKey(u);
    if (!(k in KEY_USAGE_BITS)) throw new UserError(`key_usage: unknown key usage "${u.slice(0, 40)}" (a CA may have CertSign, CRLSign and DigitalSignature)`);
    if (CA_USAGES.has(k)) bits |= KEY_USAGE_BITS[k];
    else leafOnly.push(`key usage ${u.slice(0, 40)} is only valid for non-Ca certs`);
  }
  if (leafOnly.length) warnings.push(`${prefix}${leafOnly.join('; ')}`);
  return bits;
}

/** Key usage names (Vault's) as X.509 KeyUsage bits, each known (else a 400); empty entries are skipped. */
export function keyUsageFlags(names: string[]): number {
  let bits = 0;
  for (const raw of names) {
    const u = String(raw).trim();
    if (!u) continue;
    const bit = KEY_USAGE_BITS[usageKey(u)];
    if (bit === undefined) throw new UserError(`key_usage: unknown key usage "${u.slice(0, 40)}"`);
    bits |= bit;
  }
  return bits;
}

/** The names of ROLE_EXTRA_FIELDS, typed as RoleExtras' keys (the schema declares exactly those). */
const EXTRA_NAMES = Object.keys(ROLE_EXTRA_FIELDS) as Array<keyof RoleExtras>;

/** The RoleExtras of a role write, validated: unknown usages, bad OIDs or other_sans, negative not_before_duration, generate_lease and identity templates are a 400. */
export function roleExtras(d: FieldData): RoleExtras {
  const out: Partial<Record<keyof RoleExtras, unknown>> = {};
  for (const k of EXTRA_NAMES) out[k] = d.get(k);
  const x = out as RoleExtras;
  for (const u of x.key_usage) if (!(usageKey(u) in KEY_USAGE_BITS)) throw new UserError(`key_usage: unknown key usage "${String(u).slice(0, 40)}"`);
  for (const u of x.ext_key_usage)
    if (!(usageKey(u) in EXT_KEY_USAGE_OIDS)) throw new UserError(`ext_key_usage: unknown extended key usage "${String(u).slice(0, 40)}"`);
  for (const o of x.ext_key_usage_oids) if (!/^[0-2](\.\d+)+$/.test(o)) throw new UserError(`ext_key_usage_oids: "${String(o).slice(0, 40)}" is not an OID`);
  if (x.not_before_duration < 0) throw new UserError('not_before_duration must not be negative');
  if (x.not_after) parseNotAfter(x.not_after);
  checkSignatureBits(x.signature_bits);
  x.cn_validations = cnValidations(x.cn_validations);
  x.policy_identifiers = policyOids(out.policy_identifiers);
  for (const a of x.allowed_other_sans) parseOtherSan('allowed_other_sans', a, true);
  if (x.generate_lease) throw new UserError('generate_lease=true is not supported: certificates issued here carry no lease (revoke them by serial_number)');
  if (x.allowed_uri_sans_template && x.allowed_uri_sans.some((a) => a.includes('{{')))
    throw new UserError(
      "allowed_uri_sans_template: identity templates ({{identity.entity...}}) cannot be filled here: Vault passes this plugin the requesting entity's ID but no entity data; use literal allowed_uri_sans (globs allowed)",
    );
  if (x.allowed_domains_template && (d.get<string[] | undefined>('allowed_domains') ?? []).some((a) => a.includes('{{'))) {
    throw new UserError(
      "allowed_domains_template: identity templates ({{identity.entity...}}) cannot be filled here: Vault passes this plugin the requesting entity's ID but no entity data (its EntityInfo system call is not wired up); use literal allowed_domains",
    );
  }
  return x;
}

/**
 * cn_validations as current Vault takes them: lower-cased, each of email, hostname, disabled
 * at most once, disabled alone; none given means the default (email and hostname). Refusals
 * in Vault's words.
 */
export function cnValidations(given: string[]): string[] {
  const asked = given.map((v) => String(v).trim()).filter((v) => v !== '');
  if (!asked.length) return ['email', 'hostname'];
  const out = asked.map((v) => v.toLowerCase());
  const seen = new Set<string>();
  for (const [i, v] of out.entries()) {
    if (!['disabled', 'email', 'hostname'].includes(v)) throw new UserError(`cn_validations value incorrect: unknown type: \`${asked[i].slice(0, 40)}\``);
    if (seen.has(v)) throw new UserError(`cn_validations value incorrect: \`${v}\` specified multiple times`);
    seen.add(v);
  }
  if (seen.has('disabled') && seen.size > 1) throw new UserError('cn_validations value incorrect: cannot specify `disabled` along with `email` or `hostname`');
  return out;
}

/**
 * policy_identifiers as written: OIDs (a list or a comma-separated string) or current Vault's
 * JSON form, a list of {"oid", "cps"?, "notice"?} objects (as a JSON string or as objects).
 */
export function policyOids(v: unknown): string[] {
  let items: unknown[];
  if (typeof v === 'string') {
    const t = v.trim();
    if (t.startsWith('[')) {
      try {
        items = JSON.parse(t);
      } catch {
        throw new UserError('policy_identifiers: invalid JSON');
      }
      if (!Array.isArray(items)) throw new UserError('policy_identifiers: expected a JSON list');
    } else
      items = t
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
  } else if (Array.isArray(v)) items = v;
  else if (v === undefined || v === null) items = [];
  else throw new UserError('policy_identifiers: expected a list of OIDs');
  const out = items.flatMap((it): string[] => {
    if (typeof it === 'string' && it.trim().startsWith('[')) return policyOids(it);
    if (typeof it === 'string') return [it.trim()];
    if (it && typeof it === 'object' && !Array.isArray(it)) {
      const o = it as Record<string, unknown>;
      if (o.cps !== undefined || o.notice !== undefined)
        throw new UserError('policy_identifiers: policy qualifiers (cps, notice) are not supported here; give the OIDs only');
      const extra = Object.keys(o).find((k) => k !== 'oid');
      if (extra) throw new UserError(`policy_identifiers: unknown key "${extra.slice(0, 40)}"`);
      return [String(o.oid ?? '')];
    }
    throw new UserError('policy_identifiers: expected OIDs or {"oid": ...} objects');
  });
  for (const o of out) if (!/^[0-2](\.\d+)+$/.test(o) || o.length > 200) throw new UserError(`policy_identifiers: "${o.slice(0, 40)}" is not an OID`);
  return [...new Set(out)];
}

/** A stored role with every field Vault's role read has (older roles get the defaults). */
export function withDefaults(role: Role): Role & RoleExtras {
  const out: Role & Partial<Record<keyof RoleExtras, unknown>> = { ...role };
  for (const k of EXTRA_NAMES) if (out[k] === undefined) out[k] = ROLE_EXTRA_FIELDS[k].default;
  return out as Role & RoleExtras;
}
/** A role as roles/<name> reads it: a copy, with every field's default filled in. */
export const roleView = (role: Role) => ({ ...withDefaults(role) });

/** The key usage bits for a leaf of this key kind. */
export function leafKeyUsage(role: Role, kind: 'rsa' | 'ec' | 'ed25519'): number {
  let bits = 0;
  for (const u of withDefaults(role).key_usage) bits |= KEY_USAGE_BITS[usageKey(u)] ?? 0;
  // RFC 8410: an Ed25519 key only signs. (EC and RSA leaves get the role's usages as
  // written, as Vault's do: its default includes KeyEncipherment and KeyAgreement for both.)
  if (kind === 'ed25519') bits &= KEY_USAGE_BITS.digitalsignature | KEY_USAGE_BITS.contentcommitment;
  return bits;
}

/** The extended key usage OIDs for a leaf under this role. */
export function leafExtKeyUsage(role: Role): string[] {
  const r = withDefaults(role);
  const oids = [
    ...(r.server_flag ? [EXT_KEY_USAGE_OIDS.serverauth] : []),
    ...(r.client_flag ? [EXT_KEY_USAGE_OIDS.clientauth] : []),
    ...(r.code_signing_flag ? [EXT_KEY_USAGE_OIDS.codesigning] : []),
    ...(r.email_protection_flag ? [EXT_KEY_USAGE_OIDS.emailprotection] : []),
    ...r.ext_key_usage.map((u) => EXT_KEY_USAGE_OIDS[usageKey(u)]),
    ...r.ext_key_usage_oids,
  ];
  return [...new Set(oids)];
}
