// Reading a PKCS#10 CSR: its public key (classified, so unsupported keys are a 400), its
// subject CN, and its signature, checked with Node's crypto on the thread pool — which,
// unlike WebCrypto, also knows P-224, so every key Vault's PKI accepts can be verified.
import { constants, createPublicKey, verify as nodeVerify, webcrypto, type KeyObject } from 'node:crypto';
import { bits, bool, octets, oid, readElement, seq, set, strictElement, tlv, uint } from '../../goplugin/der';
import { UserError } from '../framework';
import { x509, type CaSigner } from './ca';
import { signatureAlgorithm, signTbs, subjectAltNames, subjectName } from './cert-writer';
import type { CertRequest } from './certificates';
import { keyInfo, publicKeyFromSpki, type KeyInfo } from './keys';
import type * as X509 from '@peculiar/x509';

/** A PKCS#10 request whose signature has been verified and whose key is one Vault's PKI signs. */
export interface ParsedCsr {
  key: KeyInfo;
  /** The CSR's SubjectPublicKeyInfo, DER: what the leaf certifies. */
  spki: Buffer;
  /** The same key parsed by @peculiar/x509 (made on first use: CA certificates are built with it). */
  readonly publicKey: X509.PublicKey;
  /** The whole request parsed by @peculiar/x509 (made on first use: its subject for sign-verbatim and use_csr_values). */
  readonly request: X509.Pkcs10CertificateRequest;
  cn?: string;
  /** The value of the CSR's Subject Alternative Name extension (GeneralNames, DER), if it asks for one. */
  sanDer?: Buffer;
  /** Whether that extension is marked critical (kept when the extension is copied as it is). */
  sanCritical?: boolean;
  /**
   * Whether the CSR asks for a Basic Constraints extension. As in current Vault it is never
   * copied (leaves: sign/ and sign-verbatim say so in a warning; intermediates get their own).
   */
  basicConstraints: boolean;
  /** Every extension the CSR asks for, in its order (what sign-verbatim and use_csr_values copy: csr-extensions.ts). */
  extensions: CsrExtension[];
}

/** One requested extension as the CSR encodes it: its OID element (tag and length included), critical flag and value. */
export interface CsrExtension {
  oid: Buffer;
  critical: boolean;
  value: Buffer;
}

const invalidCsr = () => new UserError('csr is not a valid PEM certificate request');
/** One DER element at `at` (der.ts's reader); a malformed one makes the CSR invalid, a 400. */
const element = (der: Buffer, at: number) => readElement(der, at, invalidCsr);

const NODE_HASH: Record<string, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };
interface SignatureAlgorithm {
  name: string;
  hash?: { name: string };
}

/** Check the CSR's signature over its CertificationRequestInfo (`tbs`). */
function verifyCsrSignature(a: SignatureAlgorithm, key: KeyObject, tbs: Buffer, sig: Buffer): Promise<boolean> {
  const hash = a.hash ? NODE_HASH[a.hash.name] : undefined;
  let alg_: string | null;
  let opts: Parameters<typeof nodeVerify>[2];
  if (a.name === 'Ed25519') {
    alg_ = null;
    opts = key;
  } else if (!hash)
    throw new UserError(`unsupported CSR signature algorithm ${a.name}${a.hash ? ` with ${a.hash.name}` : ''} (SHA-1 and unknown algorithms are refused)`);
  else if (a.name === 'ECDSA') {
    alg_ = hash;
    opts = { key, dsaEncoding: 'der' };
  } else if (a.name === 'RSASSA-PKCS1-v1_5') {
    alg_ = hash;
    opts = { key, padding: constants.RSA_PKCS1_PADDING };
  } else if (a.name === 'RSA-PSS') {
    alg_ = hash;
    opts = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO };
  } else throw new UserError(`unsupported CSR signature algorithm ${a.name}`);
  // P-256 and Ed25519 verify in ~0.07 ms, less than the thread pool hop costs: on the loop; the rest on the pool.
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ed25519' || (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1')) {
    try {
      return Promise.resolve(nodeVerify(alg_, tbs, opts, sig));
    } catch {
      return Promise.resolve(false);
    }
  }
  return new Promise((resolve) => {
    try {
      nodeVerify(alg_, tbs, opts, sig, (e, ok) => resolve(!e && ok));
    } catch {
      resolve(false);
    }
  });
}

/** The signed part and the signature of a CSR's DER (CertificationRequest ::= SEQUENCE { info, algorithm, signature }). */
function signedParts(der: Buffer): { tbs: Buffer; sig: Buffer } {
  const outer = element(der, 0);
  const info = element(der, outer.content);
  const alg = element(der, info.end);
  const bits = element(der, alg.end);
  return { tbs: der.subarray(outer.content, info.end), sig: der.subarray(bits.content + 1, bits.end) };
}

/** Parse a PEM CSR, classify its key, and check its signature: anything wrong is a 400. */
export async function readCsr(pemText: string): Promise<ParsedCsr> {
  const plain = readPlainCsr(pemText);
  if (!plain) return readCsrWithX509(pemText);
  let key: KeyObject;
  try {
    key = publicKeyFromSpki(plain.spki);
  } catch {
    throw invalidCsr();
  }
  const info = keyInfo(key);
  if (!(await verifyCsrSignature(plain.algorithm, key, plain.tbs, plain.sig))) throw new UserError('the CSR signature does not verify');
  checkSan(plain.sanDer);
  const { spki } = plain;
  let parsed: X509.PublicKey | undefined;
  let request: X509.Pkcs10CertificateRequest | undefined;
  return {
    key: info,
    spki,
    cn: plain.cn,
    sanDer: plain.sanDer,
    sanCritical: plain.sanCritical,
    basicConstraints: plain.basicConstraints,
    extensions: plain.extensions,
    get publicKey() {
      parsed ??= new (x509().PublicKey)(spki);
      return parsed;
    },
    get request() {
      request ??= new (x509().Pkcs10CertificateRequest)(pemText);
      return request;
    },
  };
}

/** Any CSR @peculiar/x509 reads: the general (and slower) path, for what readPlainCsr leaves. */
export async function readCsrWithX509(pemText: string): Promise<ParsedCsr> {
  const X = x509();
  let csr: X509.Pkcs10CertificateRequest;
  let key: KeyObject;
  try {
    csr = new X.Pkcs10CertificateRequest(pemText);
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    throw invalidCsr();
  }
  const info = keyInfo(key);
  const { tbs, sig } = signedParts(Buffer.from(csr.rawData));
  if (!(await verifyCsrSignature(csr.signatureAlgorithm as SignatureAlgorithm, key, tbs, sig))) throw new UserError('the CSR signature does not verify');
  // The extensions by our own walk: @peculiar/x509 decodes each extension it knows when asked
  // for any, and throws (a 500) on a value it cannot decode, e.g. a malformed Basic
  // Constraints that Vault, which never decodes it, signs with a warning.
  const extensions = requestedExtensions(tbs);
  const find = (id: string) => extensions.find((e) => e.oid.toString('hex') === id);
  const san = find(OID_SAN);
  checkSan(san?.value);
  return {
    key: info,
    spki: Buffer.from(csr.publicKey.rawData),
    publicKey: csr.publicKey,
    request: csr,
    cn: /(?:^|,\s*)CN=([^,]+)/.exec(csr.subject)?.[1],
    sanDer: san?.value,
    sanCritical: san?.critical,
    basicConstraints: find(OID_BASIC_CONSTRAINTS) !== undefined,
    extensions,
  };
}

/**
 * The extensions a CertificationRequestInfo (DER, `info`) asks for, in order, read as Go
 * reads them (what Vault signs from): every extensionRequest attribute's first value;
 * attributes of another shape are passed over, a malformed extension list is a 400, and so
 * is one extension asked for twice (Go refuses such a CSR since 1.21).
 */
function requestedExtensions(info: Buffer): CsrExtension[] {
  const out: CsrExtension[] = [];
  const seen = new Set<string>();
  const body = element(info, 0);
  const version = element(info, body.content);
  const subject = element(info, version.end);
  const spki = element(info, subject.end);
  if (spki.end >= body.end || info[spki.end] !== 0xa0) return out;
  const attrs = element(info, spki.end);
  for (let p = attrs.content; p < attrs.end; ) {
    const attr = element(info, p);
    const type = info[p] === 0x30 && info[attr.content] === 0x06 ? element(info, attr.content) : undefined;
    const values = type && type.end < attr.end && info[type.end] === 0x31 ? element(info, type.end) : undefined;
    if (type && values && values.content < values.end && info.toString('hex', attr.content, type.end) === OID_EXTENSION_REQUEST) {
      if (info[values.content] !== 0x30) throw invalidCsr();
      const list = element(info, values.content);
      for (let q = list.content; q < list.end; ) {
        const ext = element(info, q);
        if (info[q] !== 0x30 || info[ext.content] !== 0x06) throw invalidCsr();
        const id = element(info, ext.content);
        let at = id.end;
        let critical = false;
        if (at < ext.end && info[at] === 0x01) {
          const flag = element(info, at);
          // A BOOLEAN is one octet, 00 or FF in DER: Go refuses the CSR otherwise.
          if (flag.end !== flag.content + 1 || (info[flag.content] !== 0 && info[flag.content] !== 0xff)) throw invalidCsr();
          critical = info[flag.content] !== 0;
          at = flag.end;
        }
        if (at >= ext.end || info[at] !== 0x04) throw invalidCsr();
        const value = element(info, at);
        if (value.end !== ext.end) throw invalidCsr();
        const key = info.toString('hex', ext.content, id.end);
        if (seen.has(key)) throw duplicateExtension(oidText(info.subarray(id.content, id.end)));
        seen.add(key);
        out.push({ oid: Buffer.from(info.subarray(ext.content, id.end)), critical, value: Buffer.from(info.subarray(value.content, value.end)) });
        q = ext.end;
      }
    }
    p = attr.end;
  }
  return out;
}

const duplicateExtension = (id: string) =>
  new UserError(`certificate request could not be parsed: it asks for the extension ${id.slice(0, 60)} more than once`);

// readPlainCsr: the CSRs tools write (openssl, Go, cert-manager) read with a strict DER walk
// instead of @peculiar/x509's ASN.1 object model (~1 ms a CSR). It answers only for CSRs whose
// reading by readCsrWithX509 is certain to be the same: one PEM block; the signature
// algorithms below with their exact encodings; single-valued RDNs; one CN at most, of plain
// characters (@peculiar/x509 escapes others in its subject text, from which the CN was taken);
// no "," in other subject values (the CN regex splits on it); one extensionRequest with at
// most one SAN extension. Anything else: undefined, and the general path decides.
const SIGNATURE_ALGORITHMS: Record<string, SignatureAlgorithm> = {
  '300a06082a8648ce3d040302': { name: 'ECDSA', hash: { name: 'SHA-256' } },
  '300a06082a8648ce3d040303': { name: 'ECDSA', hash: { name: 'SHA-384' } },
  '300a06082a8648ce3d040304': { name: 'ECDSA', hash: { name: 'SHA-512' } },
  '300d06092a864886f70d01010b0500': { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-256' } },
  '300d06092a864886f70d01010c0500': { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-384' } },
  '300d06092a864886f70d01010d0500': { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-512' } },
  '300506032b6570': { name: 'Ed25519' },
};
const OID_CN = '0603550403';
const OID_EXTENSION_REQUEST = '06092a864886f70d01090e';
const OID_SAN = '0603551d11';
const OID_BASIC_CONSTRAINTS = '0603551d13';
const PEM_CSR = /^\s*-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE REQUEST-----\s*$/;
const PLAIN_CN = /^[A-Za-z0-9*_.@:/-]([A-Za-z0-9 *_.@:/-]*[A-Za-z0-9*_.@:/-])?$/;
// Directory string types whose bytes are the text: PrintableString, UTF8String, IA5String.
const TEXT_TAGS = new Set([0x13, 0x0c, 0x16]);

interface PlainCsr {
  algorithm: SignatureAlgorithm;
  spki: Buffer;
  cn?: string;
  sanDer?: Buffer;
  sanCritical?: boolean;
  basicConstraints: boolean;
  extensions: CsrExtension[];
  tbs: Buffer;
  sig: Buffer;
}

/** A DER reader that answers undefined instead of throwing: every check failing means "not plain". */
export function readPlainCsr(pemText: string): PlainCsr | undefined {
  const m = typeof pemText === 'string' ? PEM_CSR.exec(pemText) : null;
  if (!m) return undefined;
  const der = Buffer.from(m[1].replace(/\r?\n/g, ''), 'base64');
  /** The element at `pos` if it has this tag (any tag: -1), a minimal DER length and fits before `limit`. */
  const at = (pos: number, tag: number, limit: number) => {
    const e = strictElement(der, pos, limit);
    return e && (tag < 0 || e.tag === tag) ? { start: pos, content: e.content, end: e.end } : undefined;
  };
  const hex = (e: { start: number; end: number }) => der.toString('hex', e.start, e.end);
  const outer = at(0, 0x30, der.length);
  if (!outer || outer.end !== der.length) return undefined;
  const info = at(outer.content, 0x30, outer.end);
  const alg = info && at(info.end, 0x30, outer.end);
  const sigBits = alg && at(alg.end, 0x03, outer.end);
  if (!info || !alg || !sigBits || sigBits.end !== outer.end || sigBits.end - sigBits.content < 2 || der[sigBits.content] !== 0) return undefined;
  const algorithm = SIGNATURE_ALGORITHMS[hex(alg)];
  if (!algorithm) return undefined;
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo, attributes [0] }
  const version = at(info.content, 0x02, info.end);
  if (!version || hex(version) !== '020100') return undefined;
  const subject = at(version.end, 0x30, info.end);
  const spki = subject && at(subject.end, 0x30, info.end);
  const attrs = spki && at(spki.end, 0xa0, info.end);
  if (!subject || !spki || !attrs || attrs.end !== info.end) return undefined;
  let cn: string | undefined;
  for (let p = subject.content; p < subject.end; ) {
    const rdn = at(p, 0x31, subject.end);
    const atv = rdn && at(rdn.content, 0x30, rdn.end);
    if (!rdn || !atv || atv.end !== rdn.end) return undefined;
    const type = at(atv.content, 0x06, atv.end);
    if (!type) return undefined;
    const value = at(type.end, -1, atv.end);
    if (!value || value.end !== atv.end || !TEXT_TAGS.has(der[type.end])) return undefined;
    const text = der.toString('latin1', value.content, value.end);
    if (hex(type) === OID_CN) {
      if (cn !== undefined || !PLAIN_CN.test(text)) return undefined;
      cn = text;
    } else if (text.includes(',')) return undefined;
    p = rdn.end;
  }
  let sanDer: Buffer | undefined;
  let sanCritical: boolean | undefined;
  const requested = new Set<string>();
  const extensions: CsrExtension[] = [];
  let extensionRequests = 0;
  for (let p = attrs.content; p < attrs.end; ) {
    const attr = at(p, 0x30, attrs.end);
    const type = attr && at(attr.content, 0x06, attr.end);
    const values = type && at(type.end, 0x31, attr.end);
    if (!attr || !type || !values || values.end !== attr.end) return undefined;
    if (hex(type) === OID_EXTENSION_REQUEST) {
      if (++extensionRequests > 1) return undefined;
      const exts = at(values.content, 0x30, values.end);
      if (!exts || exts.end !== values.end) return undefined;
      for (let q = exts.content; q < exts.end; ) {
        const ext = at(q, 0x30, exts.end);
        const id = ext && at(ext.content, 0x06, ext.end);
        if (!ext || !id) return undefined;
        let v = at(id.end, 0x04, ext.end);
        let critical = false;
        if (!v) {
          const flag = at(id.end, 0x01, ext.end);
          // DER's two BOOLEAN values only (Go refuses any other); anything else: the general path decides.
          if (!flag || flag.end - flag.content !== 1 || (der[flag.content] !== 0 && der[flag.content] !== 0xff)) return undefined;
          critical = der[flag.content] !== 0;
          v = at(flag.end, 0x04, ext.end);
        }
        if (!v || v.end !== ext.end) return undefined;
        // An extension asked for twice: the general path refuses the CSR.
        if (requested.has(hex(id))) return undefined;
        requested.add(hex(id));
        extensions.push({ oid: Buffer.from(der.subarray(id.start, id.end)), critical, value: Buffer.from(der.subarray(v.content, v.end)) });
        if (hex(id) === OID_SAN) {
          sanDer = Buffer.from(der.subarray(v.content, v.end));
          sanCritical = critical;
        }
        q = ext.end;
      }
    }
    p = attr.end;
  }
  return {
    algorithm,
    spki: Buffer.from(der.subarray(spki.start, spki.end)),
    cn,
    sanDer,
    sanCritical,
    basicConstraints: requested.has(OID_BASIC_CONSTRAINTS),
    extensions,
    tbs: der.subarray(outer.content, info.end),
    sig: der.subarray(sigBits.content + 1, sigBits.end),
  };
}

/** The SANs of a CSR, by kind: what sign/ takes with use_csr_sans. */
export interface CsrSans {
  dns: string[];
  ips: string[];
  uris: string[];
  emails: string[];
  otherSans: Array<{ oid: string; value: string }>;
}

/** An OID's content octets as dotted text. */
export function oidText(b: Buffer): string {
  const out = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (const x of b.subarray(1)) {
    v = v * 128 + (x & 0x7f);
    if (!(x & 0x80)) {
      out.push(v);
      v = 0;
    }
  }
  return out.join('.');
}

function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) return Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  throw new UserError('the CSR has an IP SAN of a length that is neither IPv4 nor IPv6');
}

/**
 * Go's CSR parser reads the SAN extension whatever the request does with it, so Vault refuses
 * a CSR with a malformed one on every path (a 400), also where the CSR's names are not used.
 */
function checkSan(sanDer: Buffer | undefined): void {
  if (sanDer) readSans(sanDer, 'skip');
}

/**
 * Read a Subject Alternative Name extension value (GeneralNames, DER) as Go reads a CSR's:
 * DNS, email, URI and IP names (the first three ASCII, as IA5Strings must be; an IP of 4 or
 * 16 octets) and otherNames; names of other kinds (directoryName, registeredID, x400Address,
 * ediPartyName) are passed over, as Go and current Vault pass them over (sign/ leaves them
 * out; sign-verbatim and use_csr_values copy the extension as it is). `otherNames`: "strict"
 * where Vault takes the CSR's other SANs (sign/, sign-verbatim: one whose value is not a
 * UTF8String is a 400), "skip" where it does not read them (sign-intermediate). A malformed
 * list is a 400.
 */
export function readSans(der: Buffer, otherNames: 'strict' | 'skip' = 'strict'): CsrSans {
  const out: CsrSans = { dns: [], ips: [], uris: [], emails: [], otherSans: [] };
  const bad = () => new UserError("the CSR's Subject Alternative Name extension is malformed");
  if (der[0] !== 0x30) throw bad();
  const all = element(der, 0);
  if (all.end !== der.length) throw bad();
  const ascii = (kind: string, body: Buffer) => {
    if (body.some((b) => b > 0x7f)) throw new UserError(`the CSR has a ${kind} SAN that is not ASCII (an IA5String)`);
    return body.toString('latin1');
  };
  for (let at = all.content; at < all.end; ) {
    const tag = der[at];
    const e = element(der, at);
    if (e.end > all.end) throw bad();
    const body = der.subarray(e.content, e.end);
    if (tag === 0x81) out.emails.push(ascii('email', body));
    else if (tag === 0x82) out.dns.push(ascii('DNS', body));
    else if (tag === 0x86) out.uris.push(ascii('URI', body));
    else if (tag === 0x87) out.ips.push(ipText(body));
    else if (tag === 0xa0 && otherNames === 'strict') {
      // otherName: type-id OID, then [0] EXPLICIT value; only UTF8String values are issued (as Vault).
      const id = element(der, e.content);
      const wrap = id.end < e.end && der[id.end] === 0xa0 ? element(der, id.end) : undefined;
      const inner = wrap ? element(der, wrap.content) : undefined;
      if (der[e.content] !== 0x06 || !wrap || !inner || der[wrap.content] !== 0x0c)
        throw new UserError('the CSR has an otherName SAN whose value is not a UTF8String, which this PKI does not issue');
      out.otherSans.push({ oid: oidText(der.subarray(id.content, id.end)), value: der.subarray(inner.content, inner.end).toString('utf8') });
    }
    at = e.end;
  }
  return out;
}

/**
 * A PKCS#10 request for a CA key (intermediate/generate), as Vault's: the full subject in
 * Go's order and, when there are names, a Subject Alternative Name extension in the
 * extensionRequest attribute; signed by the key (stored or managed). PEM.
 */
export async function writeCsr(
  req: Pick<CertRequest, 'commonName' | 'organization' | 'ou' | 'subjectExtra' | 'dnsNames' | 'ips' | 'uris' | 'emails' | 'otherSans'>,
  signer: CaSigner,
  /** Further requested extensions after the SAN (intermediate/generate's add_basic_constraints and key_usage), critical. */
  more: Array<{ oid: string; value: Buffer }> = [],
): Promise<Buffer> {
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', signer.publicKey));
  const subject = subjectName(req);
  const san = subjectAltNames(req);
  // extensionRequest (PKCS#9): SET { Extensions }; the SAN critical when the subject is empty (RFC 5280 4.2.1.6).
  const extensions = [
    ...(san ? [seq(oid('2.5.29.17'), ...(subject.length === 2 ? [bool(true)] : []), octets(san))] : []),
    ...more.map((e) => seq(oid(e.oid), bool(true), octets(e.value))),
  ];
  const attributes = extensions.length ? seq(oid('1.2.840.113549.1.9.14'), set(seq(...extensions))) : undefined;
  const info = seq(uint(Buffer.from([0])), subject, spki, tlv(0xa0, attributes ?? Buffer.alloc(0)));
  return seq(info, signatureAlgorithm(signer), bits(await signTbs(signer, info)));
}
