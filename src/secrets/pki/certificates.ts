// Building certificates: subject, SANs, key usage, validity — one function for roots,
// intermediates and leaves, so every certificate the mount makes is shaped the same way.
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';
import { UserError } from '../framework';
import { certificatePolicies, subjectAltNames, writeCertificatePem } from './cert-writer';
import { keyIdentifier, newSerial, parseIssuer, x509, type CaSigner, type Issuer } from './ca';
import type { KeyType, RoleKeyType } from './keys';
import { urlExtensions } from './urls';
import { seq, tlv } from '../../goplugin/der';
import type { LeafNotAfterBehavior } from './issuers';

/** Everything a certificate is built from (subject, SANs, validity, key, usages, extensions), whatever path asked for it. */
export interface CertRequest {
  commonName: string;
  dnsNames: string[];
  ips: string[];
  organization?: string[];
  ou?: string[];
  ttlSeconds: number;
  isCa: boolean;
  maxPathLength?: number;
  serverAuth: boolean;
  clientAuth: boolean;
  /** The certified key: a CA's CryptoKey, or a leaf's SPKI (any key Vault's PKI signs, P-224 and Ed25519 included). */
  publicKey: X509.PublicKeyType;
  leafKeyKind: KeyType;
  /** Leaves: the role's key usage bits and extended key usage OIDs (else derived from the flags above). */
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
  /** CA certificates: the subject's attributes exactly in this order (else CN, O, OU, then subjectExtra). */
  subjectRdns?: Array<[string, string]>;
  /** CA certificates: Name Constraints with these permitted DNS subtrees (root/sign-intermediate permitted_dns_domains). */
  permittedDnsDomains?: string[];
}

/** NameConstraints with permitted dNSName subtrees only (RFC 5280 4.2.1.10), as Vault writes it: not critical. */
export function nameConstraints(domains: string[]): Buffer {
  return seq(tlv(0xa0, Buffer.concat(domains.map((d) => seq(tlv(0x82, Buffer.from(d, 'latin1')))))));
}

function dn(cn: string, org?: string[], ou?: string[], extra: Array<[string, string]> = [], rdns?: Array<[string, string]>): string {
  const esc = (v: string) => v.replace(/([,+"\\<>;=#])/g, '\\$1');
  return (rdns ?? [['CN', cn], ...(org ?? []).map((o) => ['O', o]), ...(ou ?? []).map((o) => ['OU', o]), ...extra])
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}=${esc(v)}`)
    .join(', ');
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
  const X = x509();
  const now = Date.now();
  const notBefore = new Date(now - (req.notBeforeSeconds ?? 30) * 1000);
  let notAfter = new Date(now + req.ttlSeconds * 1000);
  if (issuer && notAfter > issuer.notAfter && notAfterBehavior !== 'permit') {
    if (notAfterBehavior === 'truncate') notAfter = issuer.notAfter;
    else throw new UserError(`cannot satisfy request: the requested ttl would end after the issuing CA certificate (${issuer.notAfter.toISOString()})`);
  }
  const serial = newSerial();
  if (!req.isCa && issuer) {
    // Leaves are written straight to DER (cert-writer.ts); CA certificates below, through @peculiar/x509.
    const pem = await writeCertificatePem({ req, signer, issuerPem: issuer.cert, serialHex: serial.hex, notBefore, notAfter });
    return { pem, serial: serial.display, notAfter };
  }
  const exts: InstanceType<typeof X.Extension>[] = [
    // Vault's CAs: CertSign + CRLSign; its leaves carry no Basic Constraints unless the role asks.
    ...(req.isCa || req.leafBasicConstraints !== false ? [new X.BasicConstraintsExtension(req.isCa, req.isCa ? req.maxPathLength : undefined, true)] : []),
    new X.KeyUsagesExtension(
      req.isCa
        ? X.KeyUsageFlags.keyCertSign | X.KeyUsageFlags.cRLSign
        : // RSA keys encipher keys, EC keys agree on them, Ed25519 keys only sign (RFC 8410).
          (req.keyUsage ??
            X.KeyUsageFlags.digitalSignature | { rsa: X.KeyUsageFlags.keyEncipherment, ec: X.KeyUsageFlags.keyAgreement, ed25519: 0 }[req.leafKeyKind]),
      true,
    ),
    // A leaf's SPKI is at hand: hash it here rather than through WebCrypto (same identifier).
    req.publicKey instanceof X.PublicKey
      ? new X.SubjectKeyIdentifierExtension(keyIdentifier(Buffer.from(req.publicKey.rawData)).toString('hex'))
      : await X.SubjectKeyIdentifierExtension.create(req.publicKey, false, signer.crypto as never),
  ];
  const eku = req.extKeyUsageOids ?? [...(req.serverAuth ? [X.ExtendedKeyUsage.serverAuth] : []), ...(req.clientAuth ? [X.ExtendedKeyUsage.clientAuth] : [])];
  if (eku.length) exts.push(new X.ExtendedKeyUsageExtension(eku));
  const san = subjectAltNames(req);
  // RFC 5280 4.2.1.6: with an empty subject the SANs are the names, and critical.
  if (san) exts.push(new X.Extension('2.5.29.17', !req.commonName && !req.organization?.length && !req.ou?.length, new Uint8Array(san)));
  if (req.policyOids?.length) exts.push(new X.Extension('2.5.29.32', false, new Uint8Array(certificatePolicies(req.policyOids))));
  if (req.urls) exts.push(...urlExtensions(req.urls));
  if (req.permittedDnsDomains?.length) exts.push(new X.Extension('2.5.29.30', false, new Uint8Array(nameConstraints(req.permittedDnsDomains))));
  const subject = dn(req.commonName, req.organization, req.ou, req.subjectExtra, req.subjectRdns);
  let cert: InstanceType<typeof X.X509Certificate>;
  if (!issuer) {
    // A self-signed root names itself as its authority, as Vault's roots do.
    exts.push(await X.AuthorityKeyIdentifierExtension.create(req.publicKey, false, signer.crypto as never));
    cert = await X.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serial.hex,
        name: subject,
        notBefore,
        notAfter,
        signingAlgorithm: signer.algorithm,
        keys: { publicKey: signer.publicKey, privateKey: signer.privateKey },
        extensions: exts,
      },
      signer.crypto as never,
    );
  } else {
    const parsed = 'subject' in issuer ? issuer : parseIssuer(issuer.cert);
    exts.push(parsed.authorityKeyId);
    cert = await X.X509CertificateGenerator.create(
      {
        serialNumber: serial.hex,
        subject,
        issuer: parsed.subject,
        notBefore,
        notAfter,
        signingAlgorithm: signer.algorithm,
        publicKey: req.publicKey,
        signingKey: signer.privateKey,
        extensions: exts,
      },
      signer.crypto as never,
    );
  }
  return { pem: cert.toString('pem'), serial: serial.display, notAfter };
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
 * one, the mount's max lease TTL. As Vault's PKI does, a ttl over the cap is cut to it with a
 * warning, not refused.
 */
export function effectiveTtl(role: Role | undefined, requested: number, fallback: number, mountMax = 0, warnings: string[] = []): number {
  const max = role?.max_ttl || mountMax || 0;
  let ttl = requested || role?.ttl || fallback;
  if (max && ttl > max) {
    warnings.push(`TTL "${goDuration(ttl)}" is longer than permitted maxTTL "${goDuration(max)}", so maxTTL is being used`);
    ttl = max;
  }
  if (ttl <= 0) throw new UserError('ttl must be positive');
  return ttl;
}
