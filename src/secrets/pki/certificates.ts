// Building certificates: subject, SANs, key usage, validity — one function for roots,
// intermediates and leaves, so every certificate the mount makes is shaped the same way.
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';
import { UserError } from '../framework';
import { writeCertificatePem } from './cert-writer';
import { newSerial, type CaSigner, type Issuer } from './ca';
import type { KeyType, RoleKeyType } from './keys';
import type { LeafNotAfterBehavior } from './issuers';

/** Name Constraints subtrees of one kind (permitted or excluded): DNS domains, IP ranges (CIDR), email addresses or domains, URI domains. */
export interface NameSubtrees {
  dns: string[];
  ips: string[];
  emails: string[];
  uris: string[];
}

/** Everything a certificate is built from (subject, SANs, validity, key, usages, extensions), whatever path asked for it. */
export interface CertRequest {
  commonName: string;
  dnsNames: string[];
  ips: string[];
  organization?: string[];
  ou?: string[];
  ttlSeconds: number;
  /** The Subject Key Identifier to write (sign-intermediate's skid), else the key's SHA-1 identifier. */
  subjectKeyId?: Buffer;
  /** An end date asked for instead of the ttl (not_after). */
  notAfter?: Date;
  isCa: boolean;
  maxPathLength?: number;
  serverAuth: boolean;
  clientAuth: boolean;
  /** The certified key: a CA's CryptoKey, or a leaf's SPKI (any key Vault's PKI signs, P-224 and Ed25519 included). */
  publicKey: X509.PublicKeyType;
  leafKeyKind: KeyType;
  /** Leaves: the role's key usage bits and extended key usage OIDs (else derived from the flags above). CAs: their key usage bits (else CertSign and CRLSign). */
  keyUsage?: number;
  extKeyUsageOids?: string[];
  /** Leaves get Basic Constraints only when the role asks (basic_constraints_valid_for_non_ca), as in Vault. */
  leafBasicConstraints?: boolean;
  /** config/urls: AIA (issuing certificates, OCSP) and CRL distribution points. */
  urls?: { issuing_certificates: string[]; crl_distribution_points: string[]; ocsp_servers: string[] };
  /** URI SANs (checked against the role's allowed_uri_sans by the caller). */
  uris?: string[];
  /** Subject extras (role country, province, …). */
  subjectExtra?: Array<[string, string]>;
  /** How far before now the certificate becomes valid (the role's not_before_duration; default 30 s). */
  notBeforeSeconds?: number;
  /** rfc822Name SANs (checked against the role by the caller). */
  emails?: string[];
  /** otherName SANs with a UTF8String value (checked against allowed_other_sans by the caller). */
  otherSans?: Array<{ oid: string; value: string }>;
  /** Certificate Policies: policy OIDs, no qualifiers. */
  policyOids?: string[];
  /** The subject's attributes, when given as a list (a CSR's subject; else CN, O, OU and subjectExtra); written in Go's order all the same. */
  subjectRdns?: Array<[string, string]>;
  /** CA certificates: a critical Name Constraints extension with these subtrees (permitted_dns_domains and the rest). */
  nameConstraints?: { permitted: NameSubtrees; excluded: NameSubtrees };
  /**
   * A CSR's requested extensions, copied as they are (OID element, critical flag, value) after
   * the certificate's own, each replacing ours of its type: sign-verbatim and sign-intermediate
   * with use_csr_values, as Vault (csr-extensions.ts chooses and checks them). A copied SAN is
   * the CSR's names in its order, instead of one built from the names above.
   */
  csrExtensions?: Array<{ oid: Buffer; critical: boolean; value: Buffer }>;
}

/**
 * `issuer`: a parsed Issuer (the mount's cached CA), or just its PEM and notAfter (parsed
 * here); none for a self-signed root. `notAfterBehavior` is the issuer's
 * leaf_not_after_behavior: a certificate that would outlive its issuer is refused (err),
 * cut to the issuer's notAfter (truncate), or issued as asked (permit), as in current Vault.
 */
export async function makeCertificate(
  req: CertRequest,
  signer: CaSigner,
  issuer?: Issuer | { cert: string; notAfter: Date },
  notAfterBehavior: LeafNotAfterBehavior = 'err',
) {
  const now = Date.now();
  const notBefore = new Date(now - (req.notBeforeSeconds ?? 30) * 1000);
  let notAfter = req.notAfter ?? new Date(now + req.ttlSeconds * 1000);
  // (Vault would sign a certificate that ends before it begins; that is no certificate.)
  if (notAfter <= notBefore) throw new UserError(`not_after ${notAfter.toISOString()} is not after the certificate's notBefore (${notBefore.toISOString()})`);
  if (issuer && notAfter > issuer.notAfter && notAfterBehavior !== 'permit') {
    if (notAfterBehavior === 'truncate') notAfter = issuer.notAfter;
    else throw new UserError(`cannot satisfy request: the requested ttl would end after the issuing CA certificate (${issuer.notAfter.toISOString()})`);
  }
  const serial = newSerial();
  // Every certificate (leaf, intermediate, root) is written straight to DER (cert-writer.ts).
  const pem = await writeCertificatePem({ req, signer, issuerPem: issuer?.cert, serialHex: serial.hex, notBefore, notAfter });
  return { pem, serial: serial.display, notAfter };
}

/** A role as stored at pki/roles/<name>; the fields added later are RoleExtras (role-fields.ts). */
export interface Role {
  allowed_domains: string[];
  allow_subdomains: boolean;
  allow_bare_domains: boolean;
  allow_any_name: boolean;
  allow_localhost: boolean;
  allow_ip_sans: boolean;
  /** Absent in roles written before it existed: true, as Vault migrates them. */
  allow_wildcard_certificates?: boolean;
  allow_glob_domains?: boolean;
  enforce_hostnames: boolean;
  server_flag: boolean;
  client_flag: boolean;
  key_type: RoleKeyType;
  key_bits: number;
  ttl: number;
  max_ttl: number;
  ou: string[];
  organization: string[];
}

/** Refuses IP SANs unless the role allows them, and any entry that is not an IP address. */
export function checkIps(role: Role, ips: string[]): void {
  if (ips.length && !role.allow_ip_sans) throw new UserError('IP SANs are not allowed by this role');
  for (const ip of ips) if (typeof ip !== 'string' || !isIP(ip)) throw new UserError(`"${String(ip).slice(0, 60)}" is not an IP address`);
}

/** Go's time.Duration text for whole seconds ("5h0m0s", "30m0s", "45s"), as Vault's messages print it. */
export function goDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600),
    m = Math.floor((seconds % 3600) / 60),
    sec = seconds % 60;
  return h ? `${h}h${m}m${sec}s` : m ? `${m}m${sec}s` : `${sec}s`;
}

/**
 * Requested, else the role's ttl, else the default; capped by the role's max_ttl or, without
 * one, the mount's max lease TTL. As Vault's PKI does, a ttl over the cap is cut to it, not
 * refused (with a warning when the request or the role asked for it).
 */
export function effectiveTtl(role: Role | undefined, requested: number, fallback: number, mountMax = 0, warnings: string[] = []): number {
  const max = role?.max_ttl || mountMax || 0;
  let ttl = requested || role?.ttl || fallback;
  if (max && ttl > max) {
    // Seen through Vault 1.8: a mount default over the cap is cut silently; a requested or role ttl with this warning.
    if (requested || role?.ttl) warnings.push(`TTL "${goDuration(ttl)}" is longer than permitted maxTTL "${goDuration(max)}", so maxTTL is being used`);
    ttl = max;
  }
  if (ttl <= 0) throw new UserError('ttl must be positive');
  return ttl;
}
