// issue/<role>, sign/<role>, issuer/<ref>/issue/<role>, issuer/<ref>/sign/<role>
import { X509Certificate } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { putJson } from '../../storage/storage';
import { UserError, type FieldDef, type PathDef, type Request } from '../framework';
import type { PkiCaches } from './index';
import { serialKey } from './ca';
import { checkIps, effectiveTtl, goDuration, makeCertificate, type Role } from './certificates';
import { asciiDnsName, checkFreeTextName, checkName } from './names';
import { chainConstraints, checkNameConstraints } from './name-constraints';
import { readCsr, type ParsedCsr } from './csr';
import { extensionsToCopy, issuerAuthority } from './csr-extensions';
import { issuerKeyId, pssFor, withSignatureBits } from './cert-writer';
import {
  OTHER_SANS_FIELD,
  OUTPUT_FIELDS,
  SERIAL_NUMBER_FIELD,
  UID_OID,
  USER_IDS_FIELD,
  URI_SANS_FIELD,
  checkOtherSans,
  checkSerialNumber,
  checkUris,
  formatIssued,
  leafKeyFormat,
  leafProfile,
  requestNames,
  userIds,
  vaultSortedNames,
} from './issue-options';
import { withDefaults, type RoleExtras } from './role-fields';
import { requireUsage, type ReadyIssuer } from './issuers';
import { ISSUER_REF } from './issuer-ref';
import { csrSubject } from './sign-ca';
import { NOT_AFTER_FIELD, VAULT_SYSTEM_TTL, requestedNotAfter } from './ttl';
import { checkKeyForRole, generateLeafKey, roleKeyBits, type KeyType } from './keys';

import { nameGroup } from '../../schema';
const ROLE = nameGroup('role');
/** remove_roots_from_chain (current Vault; not in Vault 1.8): issue/, sign/ and sign-verbatim. */
export const REMOVE_ROOTS_FIELD: FieldDef = {
  type: 'bool',
  default: false,
  description: 'Leave the self-signed (root) certificates out of ca_chain (no ca_chain when nothing is left).',
};

const fields: Record<string, FieldDef> = {
  role: { type: 'string', description: 'Role name.' },
  common_name: { type: 'string', description: 'CN of the certificate.' },
  alt_names: { type: 'strings', default: [], description: 'DNS SANs; names with an "@" are email (rfc822Name) SANs.' },
  ip_sans: { type: 'strings', default: [], description: 'IP SANs.' },
  ttl: { type: 'duration', default: 0, description: "Validity (default: the role's ttl, else the mount's default lease TTL)." },
  exclude_cn_from_sans: { type: 'bool', default: false, description: 'Do not repeat the CN as a DNS (or email) SAN.' },
  uri_sans: URI_SANS_FIELD,
  other_sans: OTHER_SANS_FIELD,
  serial_number: SERIAL_NUMBER_FIELD,
  issuer_ref: { type: 'string', description: 'The issuer to sign with (issuer_id, issuer_name or "default"; default: the role\'s issuer_ref).' },
  not_after: NOT_AFTER_FIELD,
  remove_roots_from_chain: REMOVE_ROOTS_FIELD,
  user_ids: USER_IDS_FIELD,
  ...OUTPUT_FIELDS,
};
/**
 * The leaf's validity, as Vault's PKI: the request's ttl, else the role's, else the mount's
 * default lease TTL; capped (with a warning) by the role's max_ttl, else the mount's max lease TTL.
 * Vault is asked only for what the request and role leave open.
 */
async function leafTtl(r: Request, role: Role, warnings: string[]): Promise<number> {
  const requested = r.data.int('ttl');
  const fallback = requested || role.ttl ? 0 : (await r.system?.defaultLeaseTtl()) || VAULT_SYSTEM_TTL;
  return effectiveTtl(role, requested, fallback, role.max_ttl ? 0 : await r.system?.maxLeaseTtl(), warnings);
}

/**
 * not_after on issue/, sign/ and sign-verbatim: the role's, else the request's (sign-verbatim:
 * the request's only), as current Vault. Vault does not hold a requested not_after to the
 * role's max_ttl; here a role with an explicit max_ttl cuts it there, with a warning, as it cuts
 * a ttl (a role's max_ttl is the operator's limit for whoever may call issue/ or sign/).
 */
function leafNotAfter(r: Request, role: Role & RoleExtras, verbatim: boolean, warnings: string[]): Date | undefined {
  const asked = requestedNotAfter(r, verbatim ? '' : role.not_after);
  if (!asked || !role.max_ttl || (!verbatim && role.not_after)) return asked;
  const cap = new Date(Date.now() + role.max_ttl * 1000);
  if (asked <= cap) return asked;
  warnings.push(`not_after "${asked.toISOString()}" is beyond the role's max_ttl "${goDuration(role.max_ttl)}", so max_ttl is being used`);
  return cap;
}

async function roleOf(r: Request, caches: PkiCaches): Promise<Role> {
  const role = await caches.roles.get(r.storage, r.data.str('role'));
  if (!role) throw new UserError(`unknown role: ${r.data.str('role')}`);
  return role;
}

/** A CN that is copied into the SANs as a DNS name (when not excluded): one that looks like one, as Vault's hostname pattern. */
const DNS_LIKE = /^[A-Za-z0-9*][A-Za-z0-9.-]*$/;

/**
 * Check every name against the role; a name equal to the token's display name passes with
 * allow_token_displayname, as in Vault. The CN as the role's cn_validations say (current
 * Vault, 1.12+): "disabled" takes any CN (control characters aside), though one copied into
 * the SANs (`cnToSans`: an email address, or a name that looks like a DNS name) is still
 * checked there, as Vault checks it; otherwise the CN must pass the role and be of a kind
 * listed, an email address (an "@") or a hostname (anything else), else it is refused in
 * Vault's words.
 */
function checkNames(r: Request, role: Role & RoleExtras, cn: string, sans: string[], cnToSans: boolean): void {
  const check = (n: string, commonName: boolean) => {
    if (role.allow_token_displayname && r.displayName && n === r.displayName) return;
    checkName(role, n, commonName);
  };
  if (cn) {
    const validations = role.cn_validations;
    if (validations.length === 1 && validations[0] === 'disabled') {
      checkFreeTextName(cn);
      if (cnToSans && (cn.includes('@') || DNS_LIKE.test(asciiDnsName(cn) ?? ''))) check(cn, false);
    } else {
      check(cn, true);
      if (!validations.includes(cn.includes('@') ? 'email' : 'hostname')) throw new UserError(`common name ${cn.slice(0, 80)} not allowed by this role`);
    }
  }
  for (const n of sans) check(n, false);
}

/**
 * sign/ and sign-verbatim (not issue/), as Vault's PKI: a common_name or alt_names given while
 * the role takes that part from the CSR (use_csr_common_name, use_csr_sans; sign-verbatim's
 * role has both) is not used, and the answer says so, after the signing's own warnings.
 */
function csrFieldWarnings(r: Request, role: Role & RoleExtras): string[] {
  const out: string[] = [];
  if (role.use_csr_common_name && r.data.str('common_name'))
    out.push('the common_name field was provided but the role is set with "use_csr_common_name" set to true');
  if (role.use_csr_sans && (r.data.get<string[] | undefined>('alt_names') ?? []).length)
    out.push('the alt_names field was provided but the role is set with "use_csr_sans" set to true');
  return out;
}

// The UID attribute's OID as DER (06 0a 09 92 26 89 93 f2 2c 64 01 01): a CSR without it has no UID to read.
const UID_OID_DER = Buffer.from('060a0992268993f22c640101', 'hex');

/** The CSR's subject UIDs (sign/ takes them when the request gives no user_ids, as Vault); its subject is parsed only when the OID is in it. */
function csrUids(r: Request, csr: ParsedCsr): string[] {
  if ((r.data.get<string[] | undefined>('user_ids') ?? []).some((u) => u !== '')) return [];
  const der = Buffer.from(r.data.str('csr').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  if (!der.includes(UID_OID_DER)) return [];
  return csrSubject(csr)
    .subjectExtra!.filter(([t]) => t === 'UID' || t === UID_OID)
    .map(([, v]) => v);
}

// The serialNumber attribute's OID as DER (06 03 55 04 05).
const SERIAL_NUMBER_OID_DER = Buffer.from('0603550405', 'hex');

/**
 * sign/ with serial_number_source json-csr (current Vault's default, 1.19+; Vault 1.8 never
 * read it): the CSR's subject serialNumber when the request gives none. The subject is parsed
 * only when the OID is in the CSR.
 */
function csrSerialNumber(r: Request, csr: ParsedCsr): string {
  const der = Buffer.from(r.data.str('csr').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  if (!der.includes(SERIAL_NUMBER_OID_DER)) return '';
  return csrSubject(csr).subjectExtra!.find(([t]) => t === 'serialNumber' || t === '2.5.4.5')?.[1] ?? '';
}

/** Current Vault's words, kept as they are: clients may look for them. */
export const CSR_BASIC_CONSTRAINTS_IGNORED = 'specified CSR contained a Basic Constraints extension that was ignored during issuance';

/** `verbatim` (sign-verbatim): the CSR's CN and SANs exactly, no request CN or subject serialNumber, as Vault. */
export async function issueFor(r: Request, role: Role, caches: PkiCaches, publicKey: X509.PublicKeyType, kind: KeyType, csr?: ParsedCsr, verbatim = false) {
  const full = withDefaults(role);
  if (full.generate_lease) throw new UserError('this role has generate_lease=true, which is not supported here: certificates carry no lease');
  if (full.allowed_domains_template && role.allowed_domains.some((d) => d.includes('{{')))
    throw new UserError("this role's allowed_domains hold identity templates, which cannot be filled here (Vault passes this plugin no entity data)");
  const names = requestNames(r, full, csr, verbatim);
  const { cn, ips } = names;
  // A CN with an "@" is an email address: an email SAN, as in Vault.
  const cnIsEmail = cn.includes('@');
  checkNames(r, full, cn, [...names.dns, ...names.emails], !verbatim && !r.data.bool('exclude_cn_from_sans'));
  for (const e of names.emails) if (!/^[^@\s]+@[^@\s]+$/.test(e)) throw new UserError(`"${e.slice(0, 80)}" is not an email address`);
  checkIps(role, ips);
  checkUris(full, names.uris);
  checkOtherSans(full, names.otherSans);
  const subjectSerial = verbatim ? '' : r.data.str('serial_number') || (csr && full.serial_number_source !== 'json' ? csrSerialNumber(r, csr) : '');
  checkSerialNumber(full, subjectSerial);
  // sign-verbatim: the CSR's subject as it is, its UIDs among it.
  const uids = verbatim ? [] : userIds(r, full, csr ? csrUids(r, csr) : []);
  const profile = leafProfile(role, kind, subjectSerial);
  profile.subjectExtra = [...(profile.subjectExtra ?? []), ...uids.map((v): [string, string] => [UID_OID, v])];
  const ref = r.data.str('issuer_ref') || full.issuer_ref || 'default';
  const ready = await caches.ca.require(r.storage, ref);
  requireUsage(ready.entry, 'issuing-certificates');
  const signer = withSignatureBits(await ready.signer(), full.signature_bits, pssFor(full.use_pss, full.signature_bits, kind));
  const withCn = !verbatim && Boolean(cn) && !r.data.bool('exclude_cn_from_sans');
  // DNS SANs in their ASCII form (an internationalised name as "xn--" labels, as Vault puts it);
  // the CN is copied only when it is a DNS name. Sorted as Vault sorts them, the CSR's too
  // (use_csr_sans); sign-verbatim's are the CSR's own, in its order (Vault takes them as they are).
  const cnDns = withCn && !cnIsEmail ? asciiDnsName(cn) : undefined;
  const dns = verbatim ? names.dns : vaultSortedNames([...(cnDns && DNS_LIKE.test(cnDns) ? [cnDns] : []), ...names.dns.map((n) => asciiDnsName(n) ?? n)]);
  const emails = verbatim ? names.emails : vaultSortedNames([...(withCn && cnIsEmail ? [cn] : []), ...names.emails]);
  // As current Vault: nothing is signed that its chain's Name Constraints forbid (a CN that is
  // a DNS name counts, as OpenSSL checks it, even when it is left out of the SANs).
  const cnAsDns = cn && !cnIsEmail ? asciiDnsName(cn) : undefined;
  checkNameConstraints(chainConstraints(ready, ready.chain), {
    dns: cnAsDns && /^[A-Za-z0-9*][A-Za-z0-9.-]*$/.test(cnAsDns) && !dns.includes(cnAsDns) ? [...dns, cnAsDns] : dns,
    emails,
    ips,
    uris: names.uris,
  });
  const warnings: string[] = [];
  const akidWarnings: string[] = [];
  const ttlSeconds = await leafTtl(r, role, warnings);
  const notAfter = leafNotAfter(r, full, verbatim, warnings);
  const cert = await makeCertificate(
    {
      commonName: cn,
      dnsNames: dns,
      ips,
      uris: names.uris,
      emails,
      otherSans: names.otherSans,
      organization: role.organization,
      ou: role.ou,
      ttlSeconds,
      notAfter,
      isCa: false,
      serverAuth: role.server_flag,
      clientAuth: role.client_flag,
      publicKey,
      leafKeyKind: kind,
      ...profile,
      // sign-verbatim: the CSR's subject as it is, in its order (as Vault, through Go's ExtraNames).
      ...(verbatim && csr ? { subjectRdns: csrSubject(csr).subjectRdns } : {}),
      // sign-verbatim: the CSR's extensions as they are, as Vault copies them (its SAN too,
      // unless other SANs, the request's or the CSR's own, make Vault build one: those, then
      // the CSR's DNS, email, IP and URI names).
      ...(verbatim && csr
        ? { csrExtensions: issuerAuthority(extensionsToCopy(csr, !names.otherSans.length), issuerKeyId(ready.issuer.cert), akidWarnings) }
        : {}),
      urls: await caches.urls(r.storage),
    },
    signer,
    ready.issuer,
    ready.entry.leaf_not_after_behavior,
  );
  // Current Vault: a CSR's Basic Constraints never reaches a leaf (sign/, sign-verbatim), and
  // the answer says so after its TTL warnings; Vault 1.8 dropped it without a word.
  if (csr?.basicConstraints) warnings.push(CSR_BASIC_CONSTRAINTS_IGNORED);
  warnings.push(...akidWarnings);
  if (!full.no_store) await putJson(r.storage, serialKey(cert.serial), { certificate: cert.pem, issuer_id: ready.entry.issuer_id });
  // (Current Vault adds its signing warnings twice, before and after the field warnings:
  // signIssueApiResponse and pathIssueSignCert each add them. Listed once here, where Vault
  // lists them first; the duplicate tells a client nothing more.)
  return { cert, ready, warnings: csr ? [...warnings, ...csrFieldWarnings(r, full)] : warnings };
}

/** What issue/, sign/, sign-verbatim and sign-intermediate answer: the certificate, its issuer and the issuer's chain. */
export const issued = (cert: { pem: string; serial: string; notAfter: Date }, ready: ReadyIssuer, removeRoots = false) => {
  const chain = removeRoots ? ready.chain.filter((p) => !selfIssued(p)) : ready.chain;
  return {
    certificate: cert.pem,
    issuing_ca: ready.entry.certificate,
    // As current Vault: without roots nothing may be left, and then there is no ca_chain.
    ...(chain.length || !removeRoots ? { ca_chain: chain } : {}),
    serial_number: cert.serial,
    expiration: Math.floor(cert.notAfter.getTime() / 1000),
  };
};

// Whether each chain certificate is self-issued (subject = issuer), kept per PEM: a mount has few.
const selfIssuedSeen = new Map<string, boolean>();
function selfIssued(pemText: string): boolean {
  let v = selfIssuedSeen.get(pemText);
  if (v === undefined) {
    const c = new X509Certificate(pemText);
    v = c.subject === c.issuer;
    if (selfIssuedSeen.size > 256) selfIssuedSeen.clear();
    selfIssuedSeen.set(pemText, v);
  }
  return v;
}

/** [issuer/<ref>/]issue/<role> and [issuer/<ref>/]sign/<role>. */
export function issuePaths(caches: PkiCaches): PathDef[] {
  const issue = async (r: Request) => {
    const role = await roleOf(r, caches);
    const g = await generateLeafKey(role.key_type, role.key_type === 'any' ? 0 : roleKeyBits(role.key_type, role.key_bits), leafKeyFormat(r));
    // The writer takes the SPKI as bytes: no parsed PublicKey object per leaf.
    const { cert, ready, warnings } = await issueFor(r, role, caches, g.spki, g.type);
    return { data: formatIssued(r, issued(cert, ready, r.data.bool('remove_roots_from_chain')), g), warnings };
  };
  const sign = async (r: Request) => {
    const role = await roleOf(r, caches);
    const csr = await readCsr(r.data.str('csr'));
    checkKeyForRole(role, csr.key);
    const { cert, ready, warnings } = await issueFor(r, role, caches, csr.spki, csr.key.type, csr);
    return { data: formatIssued(r, issued(cert, ready, r.data.bool('remove_roots_from_chain'))), warnings };
  };
  const issueDoc = {
    synopsis: 'Issue a certificate and its private key under a role.',
    description: 'The private key is generated here (on the thread pool), returned once, and not stored. Roles with key_type "any" only sign CSRs.',
  };
  const signFields = { ...fields, csr: { type: 'string', required: true, description: 'PEM certificate signing request.' } } as Record<string, FieldDef>;
  const signDoc = {
    synopsis: 'Sign a CSR under a role.',
    description:
      "The CSR's own signature is verified and its key must fit the role (key_type rsa|ec|ed25519|any, key_bits as a minimum; RSA below 2048 bits never); names come from the request fields (or the CSR) and are checked against the role.",
  };
  const pathRef = { type: 'string', description: 'The issuer: issuer_id, issuer_name or "default".' } as FieldDef;
  return [
    { pattern: `issue/${ROLE}`, fields, ...issueDoc, operations: { update: issue } },
    { pattern: `sign/${ROLE}`, fields: signFields, ...signDoc, operations: { update: sign } },
    { pattern: `issuer/${ISSUER_REF}/issue/${ROLE}`, fields: { ...fields, issuer_ref: pathRef }, ...issueDoc, operations: { update: issue } },
    { pattern: `issuer/${ISSUER_REF}/sign/${ROLE}`, fields: { ...signFields, issuer_ref: pathRef }, ...signDoc, operations: { update: sign } },
  ];
}
