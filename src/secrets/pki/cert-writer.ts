// Writes an X.509 v3 certificate straight to DER: the TBSCertificate from a CertRequest,
// signed by the CA signer. No ASN.1 object model is built, serialised and parsed back per
// request (that was most of the CPU of issuing through @peculiar/x509). For the inputs the
// @peculiar/x509 path handles it writes the same bytes; it also writes what that path did not
// (street/postalCode attributes, email and otherName SANs, certificate policies).
import { isIP } from 'node:net';
import { constants, sign as nodeSign, webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { bits, bool, explicit, octets, oid, OID_TEXT, pem, readElement, seq, set, time, tlv, uint, utf8 } from '../../goplugin/der';
import { cheapToSignOnLoop, rawToDer } from '../../keys/crypto';
import { UserError, type FieldDef } from '../framework';
import { keyIdentifier, spkiKeyBits, type CaSigner } from './ca';
import type { CertRequest } from './certificates';

/** What writeCertificate signs: the request, the CA's signer, and the serial and validity chosen by the caller. */
export interface WriteInput {
  req: CertRequest;
  signer: CaSigner;
  /** The issuing CA's certificate (PEM); absent for a self-signed root. */
  issuerPem?: string;
  /** Positive serial number, hex. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

const O = (id: string) => oid(id);
// Subject attribute types by the names CertRequest uses (and @peculiar/x509's names for a CSR's subject), as OIDs.
const ATTRIBUTE_OID: Record<string, string> = {
  CN: '2.5.4.3',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  street: '2.5.4.9',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  postalCode: '2.5.4.17',
  serialNumber: '2.5.4.5',
  E: '1.2.840.113549.1.9.1',
  DC: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
};
// emailAddress and domainComponent are IA5Strings (RFC 5280 appendix A), not DirectoryStrings.
const IA5_ATTRIBUTES = new Set(['1.2.840.113549.1.9.1', '0.9.2342.19200300.100.1.25']);
// Go's pkix.Name.ToRDNSequence (what Vault's certificates and CSRs carry): C, ST, L, street,
// postalCode, O, OU, each type's values together in one RDN; then CN, then serialNumber.
const GROUPED = ['2.5.4.6', '2.5.4.8', '2.5.4.7', '2.5.4.9', '2.5.4.17', '2.5.4.10', '2.5.4.11'];
const SINGLE = ['2.5.4.3', '2.5.4.5'];
const EXT = {
  subjectKeyId: O('2.5.29.14'),
  keyUsage: O('2.5.29.15'),
  subjectAltName: O('2.5.29.17'),
  basicConstraints: O('2.5.29.19'),
  crlDistributionPoints: O('2.5.29.31'),
  certificatePolicies: O('2.5.29.32'),
  authorityKeyId: O('2.5.29.35'),
  extKeyUsage: O('2.5.29.37'),
  authorityInfoAccess: O('1.3.6.1.5.5.7.1.1'),
  nameConstraints: O('2.5.29.30'),
};
const AD_OCSP = O('1.3.6.1.5.5.7.48.1');
const AD_CA_ISSUERS = O('1.3.6.1.5.5.7.48.2');
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const NULL = Buffer.from([0x05, 0x00]);
/**
 * id-RSASSA-PSS with explicit RSASSA-PSS-params (RFC 4055 3.1), as Go's x509 writes them for
 * its SHA*WithRSAPSS: the hash (with NULL parameters), MGF1 with that same hash, the salt as
 * long as the digest, and the trailer field left at its default (absent).
 */
function pssAlgorithm(hashOid: string, saltLength: number): Buffer {
  const hash = seq(O(hashOid), NULL);
  return seq(O('1.2.840.113549.1.1.10'), seq(explicit(0, hash), explicit(1, seq(O('1.2.840.113549.1.1.8'), hash)), explicit(2, uintOf(saltLength))));
}
const VERSION_3 = explicit(0, uint(Buffer.from([2])));
const SIGNATURE_ALGORITHM: Record<string, Buffer> = {
  'ECDSA SHA-256': seq(O('1.2.840.10045.4.3.2')),
  'ECDSA SHA-384': seq(O('1.2.840.10045.4.3.3')),
  'ECDSA SHA-512': seq(O('1.2.840.10045.4.3.4')),
  // RSA's AlgorithmIdentifier carries explicit NULL parameters (RFC 4055).
  'RSASSA-PKCS1-v1_5 SHA-256': seq(O('1.2.840.113549.1.1.11'), NULL),
  'RSASSA-PKCS1-v1_5 SHA-384': seq(O('1.2.840.113549.1.1.12'), NULL),
  'RSASSA-PKCS1-v1_5 SHA-512': seq(O('1.2.840.113549.1.1.13'), NULL),
  // Ed25519: no parameters (RFC 8410 3).
  Ed25519: seq(O('1.3.101.112')),
  'RSA-PSS SHA-256': pssAlgorithm('2.16.840.1.101.3.4.2.1', 32),
  'RSA-PSS SHA-384': pssAlgorithm('2.16.840.1.101.3.4.2.2', 48),
  'RSA-PSS SHA-512': pssAlgorithm('2.16.840.1.101.3.4.2.3', 64),
};
// KeyUsage flags as CertRequest.keyUsage carries them (@peculiar/x509's KeyUsageFlags): bit n is named bit n.
const KU_CERT_SIGN = 32,
  KU_CRL_SIGN = 64,
  KU_DIGITAL_SIGNATURE = 1,
  KU_KEY_ENCIPHERMENT = 4,
  KU_KEY_AGREEMENT = 16;

const EMPTY = Buffer.alloc(0);
function uintOf(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return uint(b);
}
const extension = (id: Buffer, critical: boolean, value: Buffer) => seq(id, critical ? bool(true) : EMPTY, octets(value));

// PrintableString's alphabet (X.680); anything else is a UTF8String, as @peculiar/x509 and Go choose.
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const directoryString = (v: string) => (PRINTABLE.test(v) ? tlv(0x13, Buffer.from(v, 'latin1')) : utf8(v));

/** The attributes of a request's subject, as [OID, value] in the order given (empty values left out). */
function subjectAttributes(req: Pick<CertRequest, 'commonName' | 'organization' | 'ou' | 'subjectExtra' | 'subjectRdns'>): Array<[string, string]> {
  const given = req.subjectRdns ?? [
    ['CN', req.commonName],
    ...(req.organization ?? []).map((v): [string, string] => ['O', v]),
    ...(req.ou ?? []).map((v): [string, string] => ['OU', v]),
    ...(req.subjectExtra ?? []),
  ];
  return given
    .filter(([, v]) => v)
    .map(([type, v]): [string, string] => {
      const id = ATTRIBUTE_OID[type] ?? (OID_TEXT.test(type) ? type : undefined);
      if (!id) throw new UserError(`subject attribute ${type.slice(0, 40)} is not supported`);
      return [id, v];
    });
}

const attribute = (id: string, v: string) => seq(oid(id), IA5_ATTRIBUTES.has(id) ? tlv(0x16, ia5('subject attribute', v)) : directoryString(v));

/**
 * The subject (Name, DER) in Go's order, as Vault writes it for leaves, CAs and CSRs alike:
 * each of C, ST, L, street, postalCode, O, OU with all its values in one RDN (a SET OF,
 * sorted by encoding as DER wants), then each CN and serialNumber in an RDN of its own,
 * then any other attribute, one per RDN, in the order given.
 */
export function subjectName(req: Pick<CertRequest, 'commonName' | 'organization' | 'ou' | 'subjectExtra' | 'subjectRdns'>): Buffer {
  const attrs = subjectAttributes(req);
  // A CSR's own subject (use_csr_values, sign-verbatim) keeps the CSR's order, one attribute
  // per RDN: Vault hands Go the CSR's names as ExtraNames, which Go writes as given (seen
  // through Vault 1.8: a CSR's "CN, O, C" stays CN, O, C).
  if (req.subjectRdns) return seq(...attrs.map(([id, v]) => set(attribute(id, v))));
  const rdns: Buffer[] = [];
  for (const id of GROUPED) {
    if (!attrs.some(([t]) => t === id)) continue;
    const values = [...new Set(attrs.filter(([t]) => t === id).map(([, v]) => v))].map((v) => attribute(id, v));
    rdns.push(set(...values.sort(Buffer.compare)));
  }
  for (const id of SINGLE) for (const [t, v] of attrs) if (t === id) rdns.push(set(attribute(id, v)));
  for (const [t, v] of attrs) if (!GROUPED.includes(t) && !SINGLE.includes(t)) rdns.push(set(attribute(t, v)));
  return seq(...rdns);
}

/** IA5String content: ASCII only (Go's x509 refuses the rest too, rather than mangling it). */
function ia5(what: string, v: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(v)) throw new UserError(`${what} "${v.slice(0, 80)}" cannot be encoded as an IA5String (ASCII only)`);
  return Buffer.from(v, 'latin1');
}

/** An IP address's bytes: 4 for IPv4 (and IPv4-mapped IPv6, as Go's x509 writes them), else 16. */
export function ipBytes(ip: string): Buffer {
  const kind = isIP(ip);
  if (kind === 4) return Buffer.from(ip.split('.').map(Number));
  if (kind !== 6 || ip.includes('%')) throw new UserError(`"${ip.slice(0, 60)}" is not an IP address`);
  let text = ip;
  let tail: number[] = [];
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail = dotted[1].split('.').map(Number);
    text = `${text.slice(0, dotted.index)}:0:0`; // two placeholder groups for the IPv4 tail
  }
  const [head, rest] = text.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const h = groups(head),
    r = groups(rest);
  const all = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => {
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  if (tail.length) Buffer.from(tail).copy(out, 12);
  const mapped = out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff;
  return mapped ? out.subarray(12) : out;
}

// The OIDs most certificates carry, encoded once.
const COMMON_OIDS = new Map([SERVER_AUTH, CLIENT_AUTH].map((id) => [id, oid(id)]));

function checkOid(what: string, id: string): Buffer {
  const known = COMMON_OIDS.get(id);
  if (known) return known;
  try {
    return oid(id);
  } catch {
    throw new UserError(`${what}: "${String(id).slice(0, 60)}" is not an OID`);
  }
}

/**
 * otherNames as Vault writes them: gathered by OID (Vault keeps them in a map from OID to
 * values), each OID's values in the order given. Vault's order between OIDs is Go's map
 * order, which is unspecified; here it is the order in which each OID first comes.
 */
function otherNamesByOid(others: Array<{ oid: string; value: string }>): Array<{ oid: string; value: string }> {
  const byOid = new Map<string, string[]>();
  for (const o of others) byOid.set(o.oid, [...(byOid.get(o.oid) ?? []), o.value]);
  return [...byOid].flatMap(([oid, values]) => values.map((value) => ({ oid, value })));
}

/** GeneralNames in Vault's order: its otherNames first, then Go's x509 order (DNS, email, IP, URI). */
function altNames(req: Pick<CertRequest, 'dnsNames' | 'ips' | 'uris' | 'emails' | 'otherSans'>): Buffer[] {
  return [
    // otherName ::= [0] { type-id OID, value [0] EXPLICIT UTF8String }
    ...otherNamesByOid(req.otherSans ?? []).map((o) => tlv(0xa0, Buffer.concat([checkOid('other_sans', o.oid), explicit(0, utf8(o.value))]))),
    ...req.dnsNames.map((v) => tlv(0x82, ia5('DNS name', v))),
    ...(req.emails ?? []).map((v) => tlv(0x81, ia5('email address', v))),
    ...req.ips.map((v) => tlv(0x87, ipBytes(v))),
    ...(req.uris ?? []).map((v) => tlv(0x86, ia5('URI', v))),
  ];
}

/** The Subject Alternative Name extension value (DER), or none without names. The CA path (certificates.ts) uses it too. */
export function subjectAltNames(req: Pick<CertRequest, 'dnsNames' | 'ips' | 'uris' | 'emails' | 'otherSans'>): Buffer | undefined {
  const names = altNames(req);
  return names.length ? seq(...names) : undefined;
}

/** The Certificate Policies extension value (DER): one PolicyInformation per OID, no qualifiers. */
export const certificatePolicies = (oids: string[]): Buffer => seq(...oids.map((p) => seq(checkOid('policy_identifiers', p))));

/** The Key Usage extension value (a DER BIT STRING) for these flags. */
export function keyUsageBits(flags: number): Buffer {
  // Named bit n is the nth bit from the top of the first octet; trailing zero bits are dropped (DER).
  const top = 31 - Math.clz32(flags);
  const octetCount = (top >> 3) + 1;
  const out = Buffer.alloc(octetCount);
  for (let n = 0; n <= top; n++) if (flags & (1 << n)) out[n >> 3] |= 0x80 >> (n & 7);
  return bits(out, octetCount * 8 - (top + 1));
}

/** An IP range in CIDR notation as a Name Constraints base: the address, then the mask (4 + 4 or 16 + 16 octets, as Go writes them). */
export function cidrBytes(cidr: string): Buffer {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  const addr = m && isIP(m[1]) ? ipBytes(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : -1;
  if (!addr || prefix > addr.length * 8)
    throw new UserError(`"${cidr.slice(0, 60)}" is not an IP range in CIDR notation (such as 192.0.2.0/24 or 2001:db8::/32)`);
  const mask = Buffer.alloc(addr.length);
  for (let i = 0; i < prefix; i++) mask[i >> 3] |= 0x80 >> (i & 7);
  return Buffer.concat([addr.map((b, i) => b & mask[i]), mask]);
}

/**
 * NameConstraints (RFC 5280 4.2.1.10): permitted [0] and excluded [1] subtrees, each in Go's
 * order (DNS, IP, email, URI), as Vault's certificates carry them.
 */
export function nameConstraints(nc: NonNullable<CertRequest['nameConstraints']>): Buffer {
  const subtrees = (t: NonNullable<CertRequest['nameConstraints']>['permitted']) =>
    Buffer.concat([
      ...t.dns.map((d) => seq(tlv(0x82, ia5('Name Constraints DNS domain', d)))),
      ...t.ips.map((c) => seq(tlv(0x87, cidrBytes(c)))),
      ...t.emails.map((e) => seq(tlv(0x81, ia5('Name Constraints email address', e)))),
      ...t.uris.map((u) => seq(tlv(0x86, ia5('Name Constraints URI domain', u)))),
    ]);
  const count = (t: NonNullable<CertRequest['nameConstraints']>['permitted']) => t.dns.length + t.ips.length + t.emails.length + t.uris.length;
  return seq(...(count(nc.permitted) ? [tlv(0xa0, subtrees(nc.permitted))] : []), ...(count(nc.excluded) ? [tlv(0xa1, subtrees(nc.excluded))] : []));
}

function extensions(req: CertRequest, spki: Buffer, authorityKeyId: Buffer, subjectEmpty: boolean): Buffer[] {
  // A CSR's extensions copied as they are (sign-verbatim, use_csr_values) replace ours of the
  // same type and come last, in the CSR's order, as Go writes a template's ExtraExtensions.
  const copied = req.csrExtensions ?? [];
  const taken = new Set(copied.map((e) => e.oid.toString('hex')));
  const out: Buffer[] = [];
  const add = (id: Buffer, critical: boolean, value: Buffer) => {
    if (!taken.has(id.toString('hex'))) out.push(extension(id, critical, value));
  };
  if (req.isCa || req.leafBasicConstraints !== false) {
    const pathLen = req.isCa && req.maxPathLength !== undefined ? [uintOf(req.maxPathLength)] : [];
    add(EXT.basicConstraints, true, seq(req.isCa ? bool(true) : EMPTY, ...pathLen));
  }
  const usage = req.isCa
    ? // A CA's own (root/generate's and sign-intermediate's key_usage: CertSign and CRLSign at least), else those two.
      (req.keyUsage ?? KU_CERT_SIGN | KU_CRL_SIGN)
    : // RSA keys encipher keys, EC keys agree on them, Ed25519 keys only sign (RFC 8410).
      (req.keyUsage ?? KU_DIGITAL_SIGNATURE | { rsa: KU_KEY_ENCIPHERMENT, ec: KU_KEY_AGREEMENT, ed25519: 0 }[req.leafKeyKind]);
  // No bits, no extension (RFC 5280 4.2.1.3 wants one bit at least when present; Go leaves it out too).
  if (usage) add(EXT.keyUsage, true, keyUsageBits(usage));
  add(EXT.subjectKeyId, false, octets(req.subjectKeyId ?? keyIdentifier(spki)));
  const eku = req.extKeyUsageOids ?? [...(req.serverAuth ? [SERVER_AUTH] : []), ...(req.clientAuth ? [CLIENT_AUTH] : [])];
  if (eku.length) add(EXT.extKeyUsage, false, seq(...eku.map((o) => checkOid('ext_key_usage_oids', o))));
  // Not even built when the CSR's SAN is copied: its names are the CSR's, as they are.
  const san = taken.has(EXT.subjectAltName.toString('hex')) ? undefined : subjectAltNames(req);
  // RFC 5280 4.2.1.6: with an empty subject the SANs are the names, and critical.
  if (san) add(EXT.subjectAltName, subjectEmpty, san);
  const u = req.urls;
  if (u && (u.ocsp_servers.length || u.issuing_certificates.length)) {
    add(
      EXT.authorityInfoAccess,
      false,
      seq(
        ...u.ocsp_servers.map((v) => seq(AD_OCSP, tlv(0x86, ia5('OCSP server', v)))),
        ...u.issuing_certificates.map((v) => seq(AD_CA_ISSUERS, tlv(0x86, ia5('issuing certificate URL', v)))),
      ),
    );
  }
  if (u?.crl_distribution_points.length) {
    // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
    add(
      EXT.crlDistributionPoints,
      false,
      seq(...u.crl_distribution_points.map((v) => seq(explicit(0, explicit(0, tlv(0x86, ia5('CRL distribution point', v))))))),
    );
  }
  if (req.policyOids?.length) add(EXT.certificatePolicies, false, certificatePolicies(req.policyOids));
  // RFC 5280 4.2.1.10: conforming CAs MUST mark Name Constraints critical (Vault does).
  if (req.isCa && req.nameConstraints) add(EXT.nameConstraints, true, nameConstraints(req.nameConstraints));
  add(EXT.authorityKeyId, false, seq(tlv(0x80, authorityKeyId)));
  for (const e of copied) out.push(extension(e.oid, e.critical, e.value));
  return out;
}

/** What signing under a CA needs from its certificate: its subject (as encoded) and key identifier. */
interface IssuerFacts {
  subject: Buffer;
  keyId: Buffer;
  /** Its public key's bits (what an OCSP CertID's key hash hashes). */
  keyBits: Buffer;
}
const issuerFacts = new Map<string, IssuerFacts>();

/**
 * The issuer's subject exactly as its certificate encodes it (RFC 5280 name chaining compares
 * them), and its Subject Key Identifier (else the SHA-1 key identifier of its key) for the
 * Authority Key Identifier, as Go's x509 takes it.
 */
function readIssuer(pemText: string): IssuerFacts {
  let facts = issuerFacts.get(pemText);
  if (facts) return facts;
  const der = Buffer.from(pemText.replace(/-----[^-]+-----/g, ''), 'base64');
  const unreadable = () => new Error('the CA certificate cannot be read');
  const element = (at: number) => readElement(der, at, unreadable);
  const tbs = element(element(0).content);
  const fields: Array<{ tag: number; content: number; end: number; start: number }> = [];
  for (let at = tbs.content; at < tbs.end; ) {
    const e = element(at);
    fields.push({ ...e, start: at });
    at = e.end;
  }
  const f = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields; // serial, signature, issuer, validity, subject, spki, …
  if (f.length < 6 || f[4].tag !== 0x30 || f[5].tag !== 0x30) throw unreadable();
  const subject = Buffer.from(der.subarray(f[4].start, f[4].end));
  const spki = der.subarray(f[5].start, f[5].end);
  const keyBits = Buffer.from(spkiKeyBits(spki));
  let keyId = keyIdentifier(spki);
  const exts = f.find((e) => e.tag === 0xa3);
  if (exts) {
    const list = element(exts.content);
    for (let at = list.content; at < list.end; ) {
      const ext = element(at);
      const id = element(ext.content);
      if (der.subarray(ext.content, id.end).equals(EXT.subjectKeyId)) {
        let v = element(id.end);
        if (v.tag === 0x01) v = element(v.end); // critical flag
        const inner = element(v.content);
        if (inner.tag === 0x04 && inner.end > inner.content) keyId = Buffer.from(der.subarray(inner.content, inner.end));
      }
      at = ext.end;
    }
  }
  facts = { subject, keyId, keyBits };
  if (issuerFacts.size > 64) issuerFacts.clear(); // a few CAs per process; bound it anyway
  issuerFacts.set(pemText, facts);
  return facts;
}

/** The key identifier an issuer's certificates name as their authority (its Subject Key Identifier, else its key's SHA-1 identifier). */
export const issuerKeyId = (pemText: string): Buffer => readIssuer(pemText).keyId;
/** An issuer certificate's subject Name (DER, as written) and public key bits: what an OCSP CertID hashes. */
export const issuerNameAndKey = (pemText: string): { subject: Buffer; keyBits: Buffer } => readIssuer(pemText);

const NODE_HASH: Record<string, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

/** The AlgorithmIdentifier of the CA's signatures. */
export function signatureAlgorithm(signer: CaSigner): Buffer {
  const a = signer.algorithm as { name: string; hash?: string };
  const id = SIGNATURE_ALGORITHM[a.hash ? `${a.name} ${a.hash}` : a.name];
  if (!id) throw new Error(`no certificate signature algorithm for ${a.name}${a.hash ? ` with ${a.hash}` : ''}`);
  return id;
}

/** signature_bits and use_pss, as current Vault takes them on root/generate, sign-intermediate, sign-verbatim and roles (Vault 1.8 had neither). */
export const SIGNATURE_FIELDS: Record<string, FieldDef> = {
  signature_bits: {
    type: 'int',
    default: 0,
    description: "The signature's hash: 256 (SHA-256), 384 or 512; 0 (default): by the key, SHA-256 for RSA and the curve's size for EC. Ed25519 has none.",
  },
  use_pss: {
    type: 'bool',
    default: false,
    description:
      'RSASSA-PSS signatures (salt as long as the hash, MGF1 with the same hash) instead of PKCS#1 v1.5 when the issuer is RSA; ignored for EC and Ed25519 issuers, as in Vault.',
  },
};

const BITS_HASH: Record<number, string> = { 256: 'SHA-256', 384: 'SHA-384', 512: 'SHA-512' };
const HASH_BYTES: Record<string, number> = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

/** signature_bits as given, before any key is at hand (a 400 for a size no key can sign with). */
export function checkSignatureBits(bits: number): void {
  if (bits && !BITS_HASH[bits]) throw new UserError(`signature_bits: ${bits} is not supported (0, 256, 384 or 512)`);
}

/**
 * Whether Vault signs with RSASSA-PSS for use_pss when the certified key is of `subjectKind`:
 * its hash comes from signature_bits, which Vault fills in (256) only for RSA keys; with 0
 * left for an EC or Ed25519 key, Go's default for the RSA issuer (PKCS#1 v1.5, SHA-256) is
 * what Vault writes, use_pss or not. So an EC leaf of an RSA issuer gets PSS only with an
 * explicit signature_bits.
 */
export const pssFor = (usePss: boolean, bits: number, subjectKind: string): boolean => usePss && (bits !== 0 || subjectKind === 'rsa');

/**
 * The signer with the signature hash asked for (signature_bits; 0 keeps the key's default)
 * and, for an RSA key with `usePss`, RSASSA-PSS (an EC or Ed25519 key ignores it, as in
 * Vault); or a 400: other sizes, and a hash other than a managed key's own (its HSM/KMS signs
 * with the one it was set up for).
 */
export function withSignatureBits(signer: CaSigner, bits: number, usePss = false): CaSigner {
  checkSignatureBits(bits);
  if (signer.spec.kind === 'ed25519') return signer;
  const a = signer.algorithm as { name: string; hash: string };
  const hash = BITS_HASH[bits] ?? a.hash;
  const pss = usePss && signer.spec.kind === 'rsa';
  if (a.hash === hash && !pss) return signer;
  if (!signer.keyObject && a.hash !== hash) throw new UserError(`signature_bits: this issuer's key is a managed key, which signs with ${a.hash} only`);
  const algorithm = pss ? { name: 'RSA-PSS', hash, saltLength: HASH_BYTES[hash] } : { ...a, hash };
  return { ...signer, algorithm: algorithm as CaSigner['algorithm'] };
}

// Vault's names of the signature algorithms (certutil's SignatureAlgorithmNames: an issuer's
// revocation_signature_algorithm), and the signer algorithm each stands for.
const NAMED_ALGORITHMS: Record<string, { kind: 'rsa' | 'ec' | 'ed25519'; name: string; hash?: string }> = {
  SHA256WithRSA: { kind: 'rsa', name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  SHA384WithRSA: { kind: 'rsa', name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
  SHA512WithRSA: { kind: 'rsa', name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' },
  ECDSAWithSHA256: { kind: 'ec', name: 'ECDSA', hash: 'SHA-256' },
  ECDSAWithSHA384: { kind: 'ec', name: 'ECDSA', hash: 'SHA-384' },
  ECDSAWithSHA512: { kind: 'ec', name: 'ECDSA', hash: 'SHA-512' },
  SHA256WithRSAPSS: { kind: 'rsa', name: 'RSA-PSS', hash: 'SHA-256' },
  SHA384WithRSAPSS: { kind: 'rsa', name: 'RSA-PSS', hash: 'SHA-384' },
  SHA512WithRSAPSS: { kind: 'rsa', name: 'RSA-PSS', hash: 'SHA-512' },
  Ed25519: { kind: 'ed25519', name: 'Ed25519' },
};

/** Vault's name ("SHA256WithRSAPSS", "ECDSAWithSHA384", "Ed25519", ...) for a name given in any case (and "PureEd25519"); undefined if unknown. */
export function signatureAlgorithmName(given: string): string | undefined {
  const k = given.toLowerCase() === 'pureed25519' ? 'ed25519' : given.toLowerCase();
  return Object.keys(NAMED_ALGORITHMS).find((n) => n.toLowerCase() === k);
}

/** The key type a named signature algorithm (Vault's name) signs with: rsa, ec or ed25519. */
export const signatureAlgorithmKind = (name: string): string | undefined => NAMED_ALGORITHMS[name]?.kind;

/** Vault's names of the signature algorithms, in its lower-case spelling (for an error's list). */
export const SIGNATURE_ALGORITHM_NAMES = [...Object.keys(NAMED_ALGORITHMS).map((n) => n.toLowerCase()), 'pureed25519'];

/** Vault's name of the algorithm this signer signs with. */
export function signerAlgorithmName(signer: CaSigner): string {
  const a = signer.algorithm as { name: string; hash?: string };
  return Object.keys(NAMED_ALGORITHMS).find((n) => NAMED_ALGORITHMS[n].name === a.name && NAMED_ALGORITHMS[n].hash === a.hash)!;
}

/** The signer signing with the named algorithm (Vault's name); a 400 when the key is of another type or a managed key cannot use that hash. */
export function withSignatureAlgorithm(signer: CaSigner, name: string): CaSigner {
  const n = NAMED_ALGORITHMS[name];
  if (!n) throw new UserError(`unknown signature algorithm ${name.slice(0, 40)}`);
  if (n.kind !== signer.spec.kind) throw new UserError(`signature algorithm ${name} cannot be used with this issuer's ${signer.spec.kind} key`);
  if (!n.hash) return signer;
  const current = (signer.algorithm as { hash: string }).hash;
  if (!signer.keyObject && n.hash !== current)
    throw new UserError(`signature algorithm ${name}: this issuer's key is a managed key, which signs with ${current} only`);
  const bits = Number(n.hash.slice(4));
  return withSignatureBits(
    n.name === 'RSA-PSS' ? signer : { ...signer, algorithm: { ...signer.algorithm, name: n.name } as CaSigner['algorithm'] },
    bits,
    n.name === 'RSA-PSS',
  );
}

/** The CA's signature over `tbs` (a TBSCertificate or CertificationRequestInfo), DER-encoded for ECDSA. */
export async function signTbs(signer: CaSigner, tbs: Buffer): Promise<Buffer> {
  const key = signer.privateKey;
  const k = signer.keyObject;
  // Ed25519 signs the message itself (PureEdDSA): no digest.
  const a = signer.algorithm as { name: string; hash: string; saltLength?: number };
  const hash = signer.spec.kind === 'ed25519' ? null : NODE_HASH[a.hash];
  if (k) {
    // A stored key: node:crypto signs it, without WebCrypto's per-call overhead; P-256 and
    // Ed25519 on the loop (cheaper than the thread pool hop), RSA, P-384 and P-521 on the pool.
    // RSASSA-PSS: the salt as long as the digest (withSignatureBits), as Go's x509 signs.
    const key = a.name === 'RSA-PSS' ? { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: a.saltLength } : { key: k, dsaEncoding: 'der' as const };
    if (cheapToSignOnLoop(signer.spec, tbs.length)) return nodeSign(hash, tbs, key);
    return new Promise((resolve, reject) => nodeSign(hash, tbs, key, (e, sig) => (e ? reject(e) : resolve(sig))));
  }
  // A managed key: its signer's WebCrypto façade sends the data to the HSM/KMS; ECDSA comes back as r||s.
  const sig = Buffer.from(await signer.crypto.subtle.sign(signer.algorithm as never, key, tbs));
  return signer.spec.kind === 'ec' ? rawToDer(sig) : sig;
}

/** The certified key's SubjectPublicKeyInfo: given as DER (a Buffer: no parse needed), a parsed PublicKey or a CryptoKey. */
async function spkiOf(publicKey: X509.PublicKeyType): Promise<Buffer> {
  if (Buffer.isBuffer(publicKey)) return publicKey;
  if (publicKey instanceof ArrayBuffer) return Buffer.from(publicKey);
  if (ArrayBuffer.isView(publicKey)) return Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength);
  if ('rawData' in publicKey && publicKey.rawData instanceof ArrayBuffer) return Buffer.from(publicKey.rawData);
  if (publicKey instanceof CryptoKey) return Buffer.from(await webcrypto.subtle.exportKey('spki', publicKey));
  throw new Error('unsupported public key for a certificate');
}

/** What @peculiar/x509 is given to write a certificate or CRL with a placeholder signature, for signWritten to sign. */
export const PLACEHOLDER_ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
export const PLACEHOLDER_CRYPTO = { subtle: { sign: async () => new ArrayBuffer(0) } };

/**
 * A certificate or CRL that @peculiar/x509 wrote with a placeholder signature, signed by
 * `signer`: its signature algorithm (in the TBS and after it) and signature are written and
 * made here, as writeCertificate's are, so RSASSA-PSS, a hash other than the key's default, and
 * managed keys sign them as they sign the certificates written here. `before`: how many TBS
 * fields come before its signature algorithm (a certificate: 2, version and serial; a CRL: 1).
 */
export async function signWritten(unsigned: Buffer, signer: CaSigner, before: number): Promise<Buffer> {
  const bad = () => new Error('the written certificate or CRL cannot be read back');
  const outer = readElement(unsigned, 0, bad);
  const tbs = readElement(unsigned, outer.content, bad);
  let at = tbs.content;
  for (let i = 0; i < before; i++) at = readElement(unsigned, at, bad, tbs.end).end;
  const placeholder = readElement(unsigned, at, bad, tbs.end);
  if (placeholder.tag !== 0x30) throw bad();
  const algorithm = signatureAlgorithm(signer);
  const signed = seq(unsigned.subarray(tbs.content, at), algorithm, unsigned.subarray(placeholder.end, tbs.end));
  return seq(signed, algorithm, bits(await signTbs(signer, signed)));
}

/** Vault's name of a parsed certificate's signature algorithm (@peculiar/x509's WebCrypto form), if it is one Vault signs with. */
export function webAlgorithmName(a: { name: string; hash?: { name: string } | string; saltLength?: number }): string | undefined {
  const hash = typeof a.hash === 'string' ? a.hash : a.hash?.name;
  if (a.name === 'RSA-PSS' && (!hash || a.saltLength !== HASH_BYTES[hash])) return undefined; // Go reads only the digest-length salt
  return Object.keys(NAMED_ALGORITHMS).find((n) => NAMED_ALGORITHMS[n].name === a.name && NAMED_ALGORITHMS[n].hash === hash);
}

/** The certificate, DER. */
export async function writeCertificate(w: WriteInput): Promise<Buffer> {
  const { req, signer } = w;
  const algorithm = signatureAlgorithm(signer);
  const spki = await spkiOf(req.publicKey);
  const subject = subjectName(req);
  // A self-signed root names itself as issuer and as its authority, as Vault's roots do.
  const issuer = w.issuerPem ? readIssuer(w.issuerPem) : { subject, keyId: keyIdentifier(spki) };
  const tbs = seq(
    VERSION_3,
    uint(Buffer.from(w.serialHex, 'hex')),
    algorithm,
    issuer.subject,
    seq(time(w.notBefore), time(w.notAfter)),
    subject,
    spki,
    explicit(3, seq(...extensions(req, spki, issuer.keyId, subject.length === 2))),
  );
  return seq(tbs, algorithm, bits(await signTbs(signer, tbs)));
}

/** The certificate as PEM, without a final newline (as @peculiar/x509 wrote the mount's certificates). */
export async function writeCertificatePem(w: WriteInput): Promise<string> {
  return pem(await writeCertificate(w), 'CERTIFICATE').trimEnd();
}
