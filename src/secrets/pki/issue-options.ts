// What issue/ and sign/ take besides the names and ttl, after Vault's PKI: where the names
// come from (the request or the CSR: use_csr_common_name, use_csr_sans, require_cn), the
// leaf's profile from the role (key usages, Basic Constraints, subject extras), and the
// answer's encoding (format pem|der|pem_bundle, private_key_format der|pem|pkcs8).
import { createPrivateKey } from 'node:crypto';
import { UserError, type FieldDef, type Request } from '../framework';
import { x509 } from './ca';
import type { CertRequest, Role } from './certificates';
import type { ParsedCsr } from './csr';
import type { KeyType } from './keys';
import { globMatch } from './names';
import { leafExtKeyUsage, leafKeyUsage, withDefaults, type RoleExtras } from './role-fields';

export const OUTPUT_FIELDS: Record<string, FieldDef> = {
  format: { type: 'string', default: 'pem', allowed: ['pem', 'der', 'pem_bundle'], description: 'pem; der (base64 DER); pem_bundle (certificate holds the key, the certificate and the issuing CA).' },
  private_key_format: { type: 'string', default: 'der', allowed: ['der', 'pem', 'pkcs8'], description: 'der/pem: PKCS#1 (RSA) or SEC 1 (EC) in the chosen format; pkcs8: PKCS#8. Ed25519 keys are always PKCS#8.' },
};

export const URI_SANS_FIELD: FieldDef = { type: 'strings', default: [], description: 'URI SANs; each must match one of the role\'s allowed_uri_sans (glob patterns).' };

/** URI SANs must each match one of the role's allowed_uri_sans patterns, as in Vault. */
export function checkUris(role: Role & RoleExtras, uris: string[]): void {
  for (const u of uris) {
    if (typeof u !== 'string' || !/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/.test(u)) throw new UserError(`"${String(u).slice(0, 80)}" is not a URI`);
    if (!role.allowed_uri_sans.some((pattern) => globMatch(pattern, u))) throw new UserError(`URI Subject Alternative Name "${u.slice(0, 80)}" is not allowed by this role`);
  }
}

/** The CN, DNS, IP and URI SANs of the certificate, as Vault picks them. */
export function requestNames(r: Request, role: Role & RoleExtras, csr?: ParsedCsr): { cn: string; dns: string[]; ips: string[]; uris: string[] } {
  let cn = csr && role.use_csr_common_name ? csr.cn ?? '' : '';
  if (!cn) cn = r.data.str('common_name');
  if (!cn && role.require_cn) {
    throw new UserError('the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false');
  }
  if (csr && role.use_csr_sans) {
    const X = x509();
    const raw = csr.csr.getExtension('2.5.29.17');
    const ext = raw ? new X.SubjectAlternativeNameExtension(raw.rawData) : undefined;
    const names = ext?.names.items ?? [];
    const unsupported = names.find((n) => n.type !== 'dns' && n.type !== 'ip' && n.type !== 'url');
    if (unsupported) throw new UserError(`the CSR has a ${unsupported.type} SAN, which this PKI does not issue (DNS, IP and URI SANs only)`);
    const of = (t: string) => names.filter((n) => n.type === t).map((n) => n.value);
    return { cn, dns: of('dns'), ips: of('ip'), uris: of('url') };
  }
  return { cn, dns: r.data.get('alt_names'), ips: r.data.get('ip_sans'), uris: r.data.get<string[] | undefined>('uri_sans') ?? [] };
}

const SUBJECT_EXTRA: Array<[keyof RoleExtras, string]> = [['country', 'C'], ['province', 'ST'], ['locality', 'L'], ['street_address', 'street'], ['postal_code', 'postalCode']];

/** The role's part of a leaf's profile. */
export function leafProfile(role: Role, kind: KeyType): Pick<CertRequest, 'keyUsage' | 'extKeyUsageOids' | 'leafBasicConstraints' | 'subjectExtra'> {
  const r = withDefaults(role);
  return {
    keyUsage: leafKeyUsage(role, kind), extKeyUsageOids: leafExtKeyUsage(role),
    leafBasicConstraints: r.basic_constraints_valid_for_non_ca,
    subjectExtra: SUBJECT_EXTRA.flatMap(([f, attr]) => (r[f] as string[]).map((v): [string, string] => [attr, v])),
  };
}

const pemBody = (p: string) => Buffer.from(p.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64').toString('base64');

type Issued = Record<string, unknown> & { certificate: string; issuing_ca: string; ca_chain: string[]; private_key?: string; private_key_type?: string; serial_number: string; expiration: number };

/** The answer in the requested format and private key format. */
export function formatIssued(r: Request, d: Issued): Issued {
  const format = r.data.str('format') || 'pem';
  const keyFormat = r.data.str('private_key_format') || 'der';
  let key = d.private_key;
  if (key !== undefined && keyFormat !== 'pkcs8' && d.private_key_type !== 'ed25519') {
    // Vault's default: the key's own structure (PKCS#1 for RSA, SEC 1 for EC).
    key = createPrivateKey(key).export({ type: d.private_key_type === 'rsa' ? 'pkcs1' : 'sec1', format: 'pem' }) as string;
  }
  const out = { ...d, ...(key !== undefined ? { private_key: key } : {}) };
  if (format === 'der') {
    return { ...out, certificate: pemBody(d.certificate), issuing_ca: pemBody(d.issuing_ca), ca_chain: d.ca_chain.map(pemBody), ...(key !== undefined ? { private_key: pemBody(key) } : {}) };
  }
  if (format === 'pem_bundle') {
    const trim = (p: string) => p.trim();
    return { ...out, certificate: [...(key !== undefined ? [key] : []), d.certificate, d.issuing_ca].map(trim).join('\n') };
  }
  return out;
}
