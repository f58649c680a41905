// What issue/ and sign/ take besides the names and ttl, after Vault's PKI: where the names
// come from (the request or the CSR: use_csr_common_name, use_csr_sans, require_cn), the
// leaf's profile from the role (key usages, Basic Constraints, subject extras), and the
// answer's encoding (format pem|der|pem_bundle, private_key_format der|pem|pkcs8).
import { UserError, type FieldDef, type Request } from '../framework';
import type { CertRequest, Role } from './certificates';
import { readSans, type ParsedCsr } from './csr';
import type { GeneratedLeafKey, KeyType, LeafKeyFormat } from './keys';
import { pem, pemDer } from '../../goplugin/der';
import { globMatch } from './names';
import { leafExtKeyUsage, leafKeyUsage, withDefaults, type RoleExtras } from './role-fields';

/** format and private_key_format: how issue/, sign/, sign-verbatim and sign-intermediate encode what they return. */
export const OUTPUT_FIELDS: Record<string, FieldDef> = {
  format: {
    type: 'string',
    default: 'pem',
    allowed: ['pem', 'der', 'pem_bundle'],
    description: 'pem; der (base64 DER); pem_bundle (certificate holds the key, the certificate and the issuing CA).',
  },
  private_key_format: {
    type: 'string',
    default: 'der',
    allowed: ['der', 'pem', 'pkcs8'],
    description: 'der/pem: PKCS#1 (RSA) or SEC 1 (EC) in the chosen format; pkcs8: PKCS#8. Ed25519 keys are always PKCS#8.',
  },
};

/** uri_sans, checked against the role by checkUris. */
export const URI_SANS_FIELD: FieldDef = {
  type: 'strings',
  default: [],
  description: "URI SANs; each must match one of the role's allowed_uri_sans (glob patterns).",
};

/** URI SANs must each match one of the role's allowed_uri_sans patterns, as in Vault. */
export function checkUris(role: Role & RoleExtras, uris: string[]): void {
  for (const u of uris) {
    if (typeof u !== 'string' || !/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/.test(u)) throw new UserError(`"${String(u).slice(0, 80)}" is not a URI`);
    if (!role.allowed_uri_sans.some((pattern) => globMatch(pattern, u)))
      throw new UserError(`URI Subject Alternative Name "${u.slice(0, 80)}" is not allowed by this role`);
  }
}

/** other_sans, in Vault's "<oid>;UTF8:<value>" syntax. */
export const OTHER_SANS_FIELD: FieldDef = {
  type: 'strings',
  default: [],
  description: 'otherName SANs, "<oid>;UTF8:<value>" each; each must be allowed by the role\'s allowed_other_sans.',
};
/** serial_number: the subject's serialNumber attribute, checked against the role's allowed_serial_numbers. */
export const SERIAL_NUMBER_FIELD: FieldDef = {
  type: 'string',
  default: '',
  description: "The subject's serialNumber attribute (not the certificate serial); must match one of the role's allowed_serial_numbers (globs).",
};

/** user_ids: the subject's UID attributes (current Vault 1.14+; not in Vault 1.8), checked against the role's allowed_user_ids. */
export const USER_IDS_FIELD: FieldDef = {
  type: 'strings',
  default: [],
  description: "UID (0.9.2342.19200300.100.1.1) values for the subject; each must be allowed by the role's allowed_user_ids. sign/: default the CSR's.",
};
export const UID_OID = '0.9.2342.19200300.100.1.1';

/**
 * The subject UIDs of issue/ and sign/, as current Vault: the request's user_ids, else (sign/)
 * the CSR's UID attributes; each must equal one of allowed_user_ids (case-insensitive) or match
 * one with a "*", else a 400 in Vault's words.
 */
export function userIds(r: Request, role: Role & RoleExtras, csrUids: string[]): string[] {
  const asked = (r.data.get<string[] | undefined>('user_ids') ?? []).filter((u) => u !== '');
  const ids = asked.length ? asked : csrUids;
  for (const id of ids) {
    if (typeof id !== 'string' || CONTROL.test(id) || id.length > 256)
      throw new UserError('user_ids must be strings of at most 256 characters, without control characters');
    const ok = role.allowed_user_ids.some((p) => p === '*' || p.toLowerCase() === id.toLowerCase() || (p.includes('*') && globMatch(p, id)));
    if (!ok) throw new UserError(`user_id ${id.slice(0, 80)} is not allowed by this role`);
  }
  return ids;
}

/** The names a certificate is issued for, from the request or the CSR, before the role checks them. */
export interface Names {
  cn: string;
  dns: string[];
  ips: string[];
  uris: string[];
  emails: string[];
  otherSans: Array<{ oid: string; value: string }>;
}

/** "<oid>;UTF8:<value>" (or UTF-8), Vault's other_sans syntax; `allowStar`: "*" alone, for allowed_other_sans. */
export function parseOtherSan(field: string, text: string, allowStar = false): { oid: string; value: string } {
  if (allowStar && text === '*') return { oid: '*', value: '*' };
  const m = /^([^;]+);(?:UTF8|UTF-8):(.*)$/s.exec(text);
  const bad = () => new UserError(`${field}: "${text.slice(0, 80)}" is not of the form <oid>;UTF8:<value> (UTF8 is the only type)`);
  if (!m) throw bad();
  if (!(allowStar && m[1] === '*') && !/^[0-2](\.\d+)+$/.test(m[1])) throw bad();
  return { oid: m[1], value: m[2] };
}

/** Every requested other SAN must match an allowed_other_sans entry (same OID or "*", value glob), as in Vault. */
export function checkOtherSans(role: Role & RoleExtras, sans: Array<{ oid: string; value: string }>): void {
  if (!sans.length) return;
  const allowed = role.allowed_other_sans.map((a) => parseOtherSan('allowed_other_sans', a, true));
  for (const o of sans) {
    if (CONTROL.test(o.value)) throw new UserError(`other SAN ${o.oid}: the value has control characters`);
    if (!allowed.some((a) => (a.oid === '*' || a.oid === o.oid) && globMatch(a.value, o.value)))
      throw new UserError(`other SAN ${o.oid};UTF8:${o.value.slice(0, 80)} is not allowed by this role (allowed_other_sans)`);
  }
}
const CONTROL = /[\p{Cc}]/u;

/**
 * The subject serialNumber (the request's, or on sign/ the CSR's) must match one of
 * allowed_serial_numbers (globs; none allowed when empty), refused in Vault's words
 * (ValidateSerialNumber's caller: clients may look for them).
 */
export function checkSerialNumber(role: Role & RoleExtras, serial: string): void {
  if (!serial) return;
  if (CONTROL.test(serial) || serial.length > 64) throw new UserError('serial_number must be at most 64 characters, without control characters');
  if (!role.allowed_serial_numbers.some((p) => globMatch(p, serial))) throw new UserError(`serial_number ${serial} not allowed by this role`);
}

/**
 * DNS or email SANs as Vault lists them in a certificate it builds the SANs of (issue/, sign/,
 * root/generate, intermediate/generate, sign-intermediate without use_csr_values), whether
 * they came from the request or the CSR: trimmed, empty ones dropped, each once, sorted
 * byte by byte (go-secure-stdlib's strutil.RemoveDuplicates). IP and URI SANs keep their order.
 */
export const vaultSortedNames = (names: string[]): string[] =>
  [...new Set(names.map((n) => n.trim()).filter(Boolean))].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** alt_names: names with an "@" are email (rfc822Name) SANs, the others DNS SANs, as in Vault. */
const splitAltNames = (names: string[]) => ({ dns: names.filter((n) => !String(n).includes('@')), emails: names.filter((n) => String(n).includes('@')) });

/** The CN and the SANs of the certificate, as Vault picks them. */
export function requestNames(r: Request, role: Role & RoleExtras, csr?: ParsedCsr, verbatim = false): Names {
  let cn = csr && role.use_csr_common_name ? (csr.cn ?? '') : '';
  if (!cn && !verbatim) cn = r.data.str('common_name');
  if (!cn && role.require_cn) {
    throw new UserError(
      'the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false',
    );
  }
  // As in Vault, other_sans come from the request field even when the SANs come from the CSR
  // (the request's first, then the CSR's).
  const otherSans = (r.data.get<string[] | undefined>('other_sans') ?? []).map((t) => parseOtherSan('other_sans', t));
  if (csr && role.use_csr_sans) {
    const sans = csr.sanDer ? readSans(csr.sanDer) : { dns: [], ips: [], uris: [], emails: [], otherSans: [] };
    return { cn, ...sans, otherSans: [...otherSans, ...sans.otherSans] };
  }
  return { cn, ...splitAltNames(r.data.get('alt_names')), ips: r.data.get('ip_sans'), uris: r.data.get<string[] | undefined>('uri_sans') ?? [], otherSans };
}

// street and postalCode by OID: @peculiar/x509's name parser knows neither name.
const SUBJECT_EXTRA: Array<[keyof RoleExtras, string]> = [
  ['country', 'C'],
  ['province', 'ST'],
  ['locality', 'L'],
  ['street_address', '2.5.4.9'],
  ['postal_code', '2.5.4.17'],
];

/** The role's part of a leaf's profile. */
export function leafProfile(
  role: Role,
  kind: KeyType,
  subjectSerial = '',
): Pick<CertRequest, 'keyUsage' | 'extKeyUsageOids' | 'leafBasicConstraints' | 'subjectExtra' | 'policyOids' | 'notBeforeSeconds'> {
  const r = withDefaults(role);
  return {
    keyUsage: leafKeyUsage(role, kind),
    extKeyUsageOids: leafExtKeyUsage(role),
    leafBasicConstraints: r.basic_constraints_valid_for_non_ca,
    subjectExtra: [
      ...SUBJECT_EXTRA.flatMap(([f, attr]) => (r[f] as string[]).map((v): [string, string] => [attr, v])),
      ...(subjectSerial ? [['2.5.4.5', subjectSerial] as [string, string]] : []), // serialNumber
    ],
    policyOids: r.policy_identifiers,
    notBeforeSeconds: r.not_before_duration,
  };
}

const pemBody = (p: string) => pemDer(p).toString('base64');

type Issued = Record<string, unknown> & {
  certificate: string;
  issuing_ca: string;
  ca_chain?: string[];
  private_key?: string;
  private_key_type?: string;
  serial_number: string;
  expiration: number;
};

/** The PEM label of each private key structure. */
const PRIVATE_KEY_LABEL = { pkcs8: 'PRIVATE KEY', pkcs1: 'RSA PRIVATE KEY', sec1: 'EC PRIVATE KEY' } as const;

/** How the request wants a generated private key written (private_key_format): Vault's default structure, or PKCS#8. */
export const leafKeyFormat = (r: Request): LeafKeyFormat => (r.data.str('private_key_format') === 'pkcs8' ? 'pkcs8' : 'der');

/**
 * The answer in the requested format. The issued leaf's key, if any, comes as DER already
 * in the structure leafKeyFormat asked for (see generateLeafKey); it is only wrapped here.
 */
export function formatIssued(r: Request, d: Issued, leafKey?: GeneratedLeafKey): Issued {
  const format = r.data.str('format') || 'pem';
  const key = leafKey ? pem(leafKey.privateKeyDer, PRIVATE_KEY_LABEL[leafKey.structure]) : undefined;
  const out = { ...d, ...(leafKey ? { private_key: key, private_key_type: leafKey.type } : {}) };
  if (format === 'der') {
    return {
      ...out,
      certificate: pemBody(d.certificate),
      issuing_ca: pemBody(d.issuing_ca),
      ...(d.ca_chain ? { ca_chain: d.ca_chain.map(pemBody) } : {}),
      ...(leafKey ? { private_key: leafKey.privateKeyDer.toString('base64') } : {}),
    };
  }
  if (format === 'pem_bundle') {
    const trim = (p: string) => p.trim();
    return { ...out, certificate: [...(key !== undefined ? [key] : []), d.certificate, d.issuing_ca].map(trim).join('\n') };
  }
  return out;
}
