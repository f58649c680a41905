// Signing other CAs' certificates with one of the mount's issuers, as Vault's PKI does:
// root/sign-intermediate (and issuer/<ref>/sign-intermediate): a CSR becomes an
// intermediate CA certificate; root/sign-self-issued: a self-issued CA certificate
// (e.g. another root, for cross-signing) is re-signed as it is.
import { createPublicKey } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { putJson } from '../../storage/storage';
import { UserError, type FieldDef, type PathDef, type Request } from '../framework';
import { serialKey, x509 } from './ca';
import { makeCertificate, type CertRequest } from './certificates';
import {
  PLACEHOLDER_ALGORITHM,
  SIGNATURE_FIELDS,
  cidrBytes,
  issuerKeyId,
  pssFor,
  signWritten,
  subjectName,
  webAlgorithmName,
  withSignatureAlgorithm,
  withSignatureBits,
} from './cert-writer';
import { readCsr, readSans, type ParsedCsr } from './csr';
import { extensionsToCopy, issuerAuthority } from './csr-extensions';
import type { PkiCaches } from './index';
import {
  OTHER_SANS_FIELD,
  OUTPUT_FIELDS,
  SERIAL_NUMBER_FIELD,
  URI_SANS_FIELD,
  checkSerialNumber,
  formatIssued,
  parseOtherSan,
  vaultSortedNames,
} from './issue-options';
import { issued } from './issue';
import { ISSUER_REF, ISSUER_REF_FIELD } from './issuer-ref';
import { requireUsage } from './issuers';
import { checkKeyForRole } from './keys';
import { CA_KEY_USAGE_FIELD, CA_SUBJECT_FIELDS, caKeyUsage } from './role-fields';
import { NO_AIA_WARNING, urlExtensions } from './urls';
import { CA_VALIDITY_FIELDS, caNotBefore, certTtl, mountTtls, requestedNotAfter } from './ttl';

const strings = (description: string): FieldDef => ({ type: 'strings', default: [], description });

/**
 * The Name Constraints fields of root/generate, root/rotate and sign-intermediate: Vault 1.8's
 * permitted_dns_domains, and current Vault's (1.15+) excluded DNS domains and permitted and
 * excluded IP ranges, email addresses and URI domains.
 */
export const NAME_CONSTRAINT_FIELDS: Record<string, FieldDef> = {
  permitted_dns_domains: strings('DNS domains the CA may issue for (and their subdomains): a critical Name Constraints extension (RFC 5280 4.2.1.10).'),
  excluded_dns_domains: strings('DNS domains the CA may not issue for (and their subdomains).'),
  permitted_ip_ranges: strings('IP ranges the CA may issue for, in CIDR notation (192.0.2.0/24, 2001:db8::/32).'),
  excluded_ip_ranges: strings('IP ranges the CA may not issue for, in CIDR notation.'),
  permitted_email_addresses: strings('Email addresses (or domains) the CA may issue for.'),
  excluded_email_addresses: strings('Email addresses (or domains) the CA may not issue for.'),
  permitted_uri_domains: strings('URI host domains the CA may issue for.'),
  excluded_uri_domains: strings('URI host domains the CA may not issue for.'),
};

const signIntermediateFields: Record<string, FieldDef> = {
  csr: { type: 'string', required: true, description: 'PEM CSR of the intermediate CA.' },
  common_name: { type: 'string', description: "CN (default: the CSR's; none if the CSR has none)." },
  alt_names: strings('DNS SANs; names with an "@" are email SANs.'),
  ip_sans: strings('IP SANs.'),
  uri_sans: URI_SANS_FIELD,
  other_sans: {
    ...OTHER_SANS_FIELD,
    description:
      'otherName SANs, "<oid>;UTF8:<value>" each; any OID and value (no role applies). With use_csr_values they replace the CSR\'s own otherName SANs.',
  },
  exclude_cn_from_sans: { type: 'bool', default: false, description: 'Do not repeat the CN (when it is a hostname or an email address) as a SAN.' },
  serial_number: { ...SERIAL_NUMBER_FIELD, description: "The subject's serialNumber attribute (not the certificate serial)." },
  ttl: { type: 'duration', default: 0, description: "Validity (default: the mount's default lease TTL; capped at its max lease TTL)." },
  max_path_length: {
    type: 'int',
    default: -1,
    description: "Path length constraint (-1: none). Default: the issuer's less one (none if the issuer has none).",
  },
  enforce_leaf_not_after_behavior: {
    type: 'bool',
    default: false,
    description: "Apply the issuer's leaf_not_after_behavior; by default a certificate outliving its issuer is cut to the issuer's notAfter.",
  },
  ...NAME_CONSTRAINT_FIELDS,
  use_csr_values: {
    type: 'bool',
    default: false,
    description: "Take the subject and the SANs from the CSR (the request's name fields are then ignored), as Vault does.",
  },
  ...CA_SUBJECT_FIELDS,
  key_usage: CA_KEY_USAGE_FIELD,
  ...CA_VALIDITY_FIELDS,
  ...SIGNATURE_FIELDS,
  skid: {
    type: 'string',
    default: '',
    description:
      "The Subject Key Identifier to write, in hex (colons, dashes or spaces between the octets allowed): for cross-signing, the existing certificate's, so that chain builders matching AKID to SKID (OpenSSL) take either. Default: the key's SHA-1 identifier.",
  },
  // private_key_format: taken as Vault takes it (shared with issue/); there is no private key in this answer.
  ...OUTPUT_FIELDS,
};

// The request's subject extras, by the attribute names the certificate builder writes.
export const SUBJECT_FIELDS: Array<[string, string]> = [
  ['country', 'C'],
  ['province', 'ST'],
  ['locality', 'L'],
  ['street_address', '2.5.4.9'],
  ['postal_code', '2.5.4.17'],
];
const JSON_NAME: Record<string, string> = { CN: 'commonName', O: 'organization', OU: 'ou' };

/** The CSR's subject, attribute by attribute in its order (CN, O and OU also by name): use_csr_values and sign-verbatim. */
export function csrSubject(csr: ParsedCsr): Pick<CertRequest, 'commonName' | 'organization' | 'ou' | 'subjectExtra' | 'subjectRdns'> {
  const out = {
    commonName: '',
    organization: [] as string[],
    ou: [] as string[],
    subjectExtra: [] as Array<[string, string]>,
    subjectRdns: [] as Array<[string, string]>,
  };
  for (const rdn of csr.request.subjectName.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) {
      for (const v of values) {
        out.subjectRdns.push([type, v]);
        const f = JSON_NAME[type];
        if (f === 'commonName') out.commonName ||= v;
        else if (f) out[f as 'organization' | 'ou'].push(v);
        else out.subjectExtra.push([type, v]);
      }
    }
  }
  return out;
}

type CaNames = Omit<CertRequest, 'ttlSeconds' | 'isCa' | 'serverAuth' | 'clientAuth' | 'publicKey' | 'leafKeyKind'>;

/**
 * A CA's names from the request, as Vault takes them for root/generate, intermediate/generate
 * and sign-intermediate: the subject fields (written in Go's pkix.Name order by the writer),
 * the SANs, and the CN among the DNS (or email) SANs unless exclude_cn_from_sans or it is no
 * hostname. other_sans: any, in the "<oid>;UTF8:<value>" form (requestOtherSans).
 */
export function caRequestNames(r: Request, cn: string): CaNames {
  const alt = r.data.get<string[]>('alt_names');
  const withCn = !r.data.bool('exclude_cn_from_sans');
  const serial = r.data.str('serial_number');
  // A CA's subject may carry any serialNumber (Vault's roles for these paths have "*"); its form is still checked.
  checkSerialNumber({ allowed_serial_numbers: ['*'] } as never, serial);
  for (const u of r.data.get<string[]>('uri_sans')) {
    try {
      new URL(u);
    } catch {
      throw new UserError(`"${u.slice(0, 80)}" is not a valid URI`);
    }
  }
  const attrs = (f: string, attr: string) => r.data.get<string[]>(f).map((v): [string, string] => [attr, v]);
  return {
    commonName: cn,
    organization: r.data.get('organization'),
    ou: r.data.get('ou'),
    subjectExtra: [...SUBJECT_FIELDS.flatMap(([f, attr]) => attrs(f, attr)), ...(serial ? [['2.5.4.5', serial] as [string, string]] : [])],
    // Sorted, as Vault lists the DNS and email SANs it builds (vaultSortedNames).
    dnsNames: vaultSortedNames([
      ...(withCn && !cn.includes('@') && /^[A-Za-z0-9*][A-Za-z0-9.-]*$/.test(cn) ? [cn] : []),
      ...alt.filter((n) => !n.includes('@')),
    ]),
    emails: vaultSortedNames([...(withCn && cn.includes('@') ? [cn] : []), ...alt.filter((n) => n.includes('@'))]),
    ips: r.data.get('ip_sans'),
    uris: r.data.get('uri_sans'),
    otherSans: requestOtherSans(r),
  };
}

/**
 * other_sans of root/generate, intermediate/generate and sign-intermediate: any OID and value,
 * as current Vault (the role it makes for these paths allows "*"; Vault 1.8 refused every
 * other SAN on sign-intermediate); only the form is checked, a 400 when wrong.
 */
const requestOtherSans = (r: Request) => r.data.get<string[]>('other_sans').map((t) => parseOtherSan('other_sans', t));

/** The names of the intermediate: from the request (caRequestNames), or with use_csr_values all from the CSR, as in Vault. */
function intermediateNames(r: Request, csr: ParsedCsr, issuerPem: string, warnings: string[]): CaNames {
  if (r.data.bool('use_csr_values')) {
    // Vault does not read the CSR's other SANs here (its role for this path leaves use_csr_sans off).
    const sans = csr.sanDer ? readSans(csr.sanDer, 'skip') : { dns: [], ips: [], uris: [], emails: [], otherSans: [] };
    // As current Vault: the CSR's extensions are copied as they are (csr-extensions.ts), its
    // SAN too (its names in its order, its other SANs, its critical flag) unless other SANs are
    // requested: those make a new one, then the CSR's DNS, email, IP and URI names in its order.
    // (The CSR's Basic Constraints are never copied: the intermediate gets its own.)
    const asked = requestOtherSans(r);
    return {
      ...csrSubject(csr),
      dnsNames: sans.dns,
      ips: sans.ips,
      uris: sans.uris,
      emails: sans.emails,
      otherSans: asked,
      csrExtensions: issuerAuthority(extensionsToCopy(csr, !asked.length), issuerKeyId(issuerPem), warnings),
    };
  }
  // No CN asked for and none in the CSR: none (Vault 1.8 and current alike), and the answer warns if the subject is empty.
  return caRequestNames(r, r.data.str('common_name') || csr.cn || '');
}

/**
 * sign-intermediate's skid (current Vault; not in Vault 1.8): hex, with the separators Vault
 * strips (colons, dashes, spaces: OpenSSL's, Vault's own once, Chromium's); undefined when
 * empty; not hex (or longer than 64 bytes) is a 400.
 */
export function requestedSkid(r: Request): Buffer | undefined {
  const text = r.data.str('skid').replace(/[:\- ]/g, '');
  if (!text) return undefined;
  if (!/^([0-9a-fA-F]{2}){1,64}$/.test(text))
    throw new UserError(`skid: unable to parse requested SKID value as hex (at most 64 bytes): "${text.slice(0, 40)}"`);
  return Buffer.from(text, 'hex');
}

/** DNS domains of Name Constraints (a leading "." allowed), or a 400 naming the field. */
export function checkDomains(domains: string[], field = 'permitted_dns_domains'): string[] {
  for (const d of domains) if (!/^\.?[A-Za-z0-9*_-][A-Za-z0-9.*_-]*$/.test(d)) throw new UserError(`${field}: "${d.slice(0, 80)}" is not a DNS domain`);
  return domains;
}

/** The requested Name Constraints, checked (a 400 names the field); undefined when none is asked for. */
export function requestNameConstraints(r: Request): CertRequest['nameConstraints'] {
  const list = (f: string) =>
    r.data
      .get<string[]>(f)
      .map((v) => v.trim())
      .filter(Boolean);
  const ascii = (f: string, values: string[]) => {
    for (const v of values) if (!/^[\x21-\x7e]+$/.test(v)) throw new UserError(`${f}: "${v.slice(0, 80)}" must be printable ASCII without spaces`);
    return values;
  };
  const ranges = (f: string, values: string[]) => {
    for (const v of values) {
      try {
        cidrBytes(v);
      } catch (e) {
        throw new UserError(`${f}: ${(e as Error).message}`);
      }
    }
    return values;
  };
  const side = (kind: 'permitted' | 'excluded') => ({
    dns: checkDomains(list(`${kind}_dns_domains`), `${kind}_dns_domains`),
    ips: ranges(`${kind}_ip_ranges`, list(`${kind}_ip_ranges`)),
    emails: ascii(`${kind}_email_addresses`, list(`${kind}_email_addresses`)),
    uris: ascii(`${kind}_uri_domains`, list(`${kind}_uri_domains`)),
  });
  const nc = { permitted: side('permitted'), excluded: side('excluded') };
  const any = [nc.permitted, nc.excluded].some((t) => t.dns.length + t.ips.length + t.emails.length + t.uris.length > 0);
  return any ? nc : undefined;
}

/**
 * The intermediate's pathLenConstraint (undefined: none), as current Vault: under an issuer
 * with pathlen 0 no CA can be signed; without max_path_length the issuer's less one; an
 * explicit one must be below the issuer's. (Vault 1.8 took an explicit value unchecked.)
 */
function intermediatePathLength(r: Request, issuerPathLength: number | undefined): number | undefined {
  if (issuerPathLength === 0) throw new UserError('signing certificate has a max path length of zero, and cannot issue further CA certificates');
  if (!r.data.has('max_path_length')) return issuerPathLength === undefined ? undefined : issuerPathLength - 1;
  const asked = r.data.int('max_path_length');
  if (asked < -1) throw new UserError(`requested max_path_length ${asked} is invalid: must be a non-negative integer or -1 for no constraint`);
  if (issuerPathLength !== undefined && (asked < 0 || asked >= issuerPathLength))
    throw new UserError(
      `requested max_path_length ${asked} is not allowed: the signing CA has a pathLenConstraint of ${issuerPathLength}, so the intermediate's pathLenConstraint must be a non-negative value less than ${issuerPathLength}`,
    );
  return asked < 0 ? undefined : asked;
}

/**
 * Current Vault's warning for a CA certificate made with an empty subject (root/generate
 * without common_name or any other subject field; sign-intermediate likewise, of a CSR
 * without a CN); Vault 1.8 made such CAs without a word.
 */
export const NO_SUBJECT_WARNING =
  'This issuer certificate was generated without a Subject; this makes it likely that issuing leaf certs with this certificate will cause TLS validation libraries to reject this certificate.';
/** Is this subject empty (an empty SEQUENCE: Vault looks for a raw subject of two bytes or fewer)? */
export const emptySubject = (names: Parameters<typeof subjectName>[0]) => subjectName(names).length <= 2;

const TRUNCATED = "the signed intermediary CA certificate's notAfter was truncated to the issuer's notAfter";

async function signIntermediate(r: Request, caches: PkiCaches) {
  const ready = await caches.ca.require(r.storage, r.data.str('issuer_ref'));
  requireUsage(ready.entry, 'issuing-certificates');
  const csr = await readCsr(r.data.str('csr'));
  // Vault signs intermediates as a role with key_type "any": its minimums only.
  checkKeyForRole({ key_type: 'any', key_bits: 0 }, csr.key);
  const akidWarnings: string[] = [];
  const names = intermediateNames(r, csr, ready.issuer.cert, akidWarnings);
  const maxPathLength = intermediatePathLength(r, ready.issuer.pathLength);
  // (A CSR's own Key Usage, copied with use_csr_values, still replaces this one, as in Vault.)
  const usageWarnings: string[] = [];
  const keyUsage = caKeyUsage(r.data.get<string[]>('key_usage'), 'Invalid key usage: ', usageWarnings);
  const ttlWarnings: string[] = [];
  const ttl = certTtl(r.data.int('ttl'), await mountTtls(r.system), ttlWarnings);
  const notAfter = requestedNotAfter(r);
  const urls = await caches.urls(r.storage);
  // Current Vault (1.17+) cuts an intermediate that would outlive its issuer to the issuer's
  // notAfter unless enforce_leaf_not_after_behavior asks for the issuer's own behaviour;
  // Vault 1.8 applied no such limit to intermediates.
  const enforce = r.data.bool('enforce_leaf_not_after_behavior');
  const behavior = enforce ? ready.entry.leaf_not_after_behavior : 'truncate';
  const cert = await makeCertificate(
    {
      ...names,
      ttlSeconds: ttl,
      notAfter,
      notBeforeSeconds: caNotBefore(r),
      subjectKeyId: requestedSkid(r),
      isCa: true,
      maxPathLength,
      keyUsage,
      serverAuth: false,
      clientAuth: false,
      publicKey: csr.publicKey,
      leafKeyKind: csr.key.type,
      nameConstraints: requestNameConstraints(r),
      urls,
    },
    withSignatureBits(await ready.signer(), r.data.int('signature_bits'), pssFor(r.data.bool('use_pss'), r.data.int('signature_bits'), csr.key.type)),
    ready.issuer,
    behavior,
  );
  await putJson(r.storage, serialKey(cert.serial), { certificate: cert.pem, issuer_id: ready.entry.issuer_id });
  const issuerEnd = ready.issuer.notAfter.getTime();
  // Current Vault's warnings, in its order.
  const warnings: string[] = [];
  if (cert.notAfter.getTime() > issuerEnd)
    warnings.push(
      "The expiration time for the signed certificate is after the CA's expiration time. If the new certificate is not treated as a root, validation paths with the certificate past the issuing CA's expiration time will fail.",
    );
  if (emptySubject(names)) warnings.push(NO_SUBJECT_WARNING);
  // The intermediate has no AIA or CRL DP: config/urls is empty.
  if (!urls) warnings.push(NO_AIA_WARNING);
  if (maxPathLength === 0)
    warnings.push('Max path length of the signed certificate is zero. This certificate cannot be used to issue intermediate CA certificates.');
  warnings.push(...ttlWarnings);
  if (!enforce && cert.notAfter.getTime() === issuerEnd) warnings.push(TRUNCATED);
  warnings.push(...usageWarnings, ...akidWarnings);
  return { data: formatIssued(r, issued(cert, ready)), warnings };
}

// Extensions of the self-issued certificate replaced by the signer's: its authority, where its issuer's certificate and CRL are.
const REPLACED = new Set(['2.5.29.35', '1.3.6.1.5.5.7.1.1', '2.5.29.31']);

const keyKind = (spki: ArrayBuffer) => createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).asymmetricKeyType;

async function signSelfIssued(r: Request, caches: PkiCaches) {
  const X = x509();
  const pemText = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.data.str('certificate'))?.[0];
  if (!pemText) throw new UserError('certificate must contain a PEM certificate');
  let cert: X509.X509Certificate;
  try {
    cert = new X.X509Certificate(pemText);
  } catch {
    throw new UserError('certificate is not a valid PEM certificate');
  }
  if (!Buffer.from(cert.issuerName.toArrayBuffer()).equals(Buffer.from(cert.subjectName.toArrayBuffer())))
    throw new UserError('given certificate is not self-issued');
  if (!cert.getExtension(X.BasicConstraintsExtension)?.ca) throw new UserError('given certificate is not a CA certificate');
  const ready = await caches.ca.require(r.storage, r.data.str('issuer_ref'));
  requireUsage(ready.entry, 'issuing-certificates');
  const issuerSigner = await ready.signer();
  const signerKind = issuerSigner.spec.kind; // also for a managed key, whose public key is not exported here
  const sameKind = keyKind(cert.publicKey.rawData) === signerKind;
  // Current Vault (1.12+): a certificate of another key type is signed with the issuer's own
  // algorithm unless require_matching_certificate_algorithms asks to refuse it; Vault 1.8 had no such option.
  if (r.data.bool('require_matching_certificate_algorithms') && !sameKind) {
    throw new UserError(
      `the certificate's key type (${keyKind(cert.publicKey.rawData)}) does not match the issuer's (${signerKind}) and require_matching_certificate_algorithms is set`,
    );
  }
  // One of the issuer's key type keeps its own signature algorithm, as Vault (Go signs the
  // parsed certificate as its template): an RSASSA-PSS or SHA-384 certificate stays one. A
  // managed key signs with its one hash, whatever the certificate's.
  const own = sameKind ? webAlgorithmName(cert.signatureAlgorithm as never) : undefined;
  let signer = issuerSigner;
  if (own) {
    try {
      signer = withSignatureAlgorithm(issuerSigner, own);
    } catch (e) {
      if (issuerSigner.keyObject) throw e;
    }
  }
  const urls = await caches.urls(r.storage);
  const signed = await X.X509CertificateGenerator.create({
    serialNumber: cert.serialNumber,
    subject: cert.subjectName,
    issuer: ready.issuer.subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    // Written with a placeholder signature, signed by signWritten.
    signingAlgorithm: PLACEHOLDER_ALGORITHM,
    signature: new ArrayBuffer(0),
    publicKey: cert.publicKey,
    extensions: [...cert.extensions.filter((e) => !REPLACED.has(e.type)), ready.issuer.authorityKeyId, ...(urls ? urlExtensions(urls) : [])],
  } as never);
  const der = await signWritten(Buffer.from(signed.rawData), signer, 2);
  // As Vault: the answer is not stored (the certificate keeps its own serial number).
  return { data: { certificate: new X.X509Certificate(der).toString('pem'), issuing_ca: ready.entry.certificate } };
}

/** [issuer/<ref>/]root/sign-intermediate and [issuer/<ref>/]root/sign-self-issued. */
export function signCaPaths(caches: PkiCaches): PathDef[] {
  const pathRef: FieldDef = { type: 'string', description: 'The issuer: issuer_id, issuer_name or "default".' };
  const selfIssuedFields: Record<string, FieldDef> = {
    certificate: { type: 'string', required: true, description: 'PEM: the self-issued CA certificate to sign.' },
    require_matching_certificate_algorithms: {
      type: 'bool',
      default: false,
      description: "Refuse a certificate whose key type differs from the issuer's (else it is signed with the issuer's algorithm).",
    },
  };
  const selfIssuedDoc = {
    synopsis: "Sign a self-issued CA certificate (another CA's root, e.g. for a rotation or cross-signing) with one of this mount's issuers.",
    description:
      "Its subject, key, serial number, validity and extensions are kept; the issuer, authority key identifier and config/urls are this mount's. Privileged: grant it only to operators.",
  };
  const intermediateDoc = {
    synopsis: "Sign an intermediate CA's CSR with one of this mount's issuers (issuer_ref, default the default issuer).",
    description: "The CSR's signature is verified first.",
  };
  return [
    {
      pattern: 'root/sign-intermediate',
      fields: { ...signIntermediateFields, issuer_ref: ISSUER_REF_FIELD },
      ...intermediateDoc,
      operations: { update: (r) => signIntermediate(r, caches) },
    },
    {
      pattern: `issuer/${ISSUER_REF}/sign-intermediate`,
      fields: { ...signIntermediateFields, issuer_ref: pathRef },
      ...intermediateDoc,
      operations: { update: (r) => signIntermediate(r, caches) },
    },
    {
      pattern: 'root/sign-self-issued',
      fields: { ...selfIssuedFields, issuer_ref: ISSUER_REF_FIELD },
      ...selfIssuedDoc,
      operations: { update: (r) => signSelfIssued(r, caches) },
    },
    {
      pattern: `issuer/${ISSUER_REF}/sign-self-issued`,
      fields: { ...selfIssuedFields, issuer_ref: pathRef },
      ...selfIssuedDoc,
      operations: { update: (r) => signSelfIssued(r, caches) },
    },
  ];
}
