// Reading a PKCS#10 CSR: its public key (classified, so unsupported keys are a 400), its
// subject CN, and its signature, checked with Node's crypto on the thread pool — which,
// unlike WebCrypto, also knows P-224, so every key Vault's PKI accepts can be verified.
import { constants, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { UserError } from '../framework';
import { x509 } from './ca';
import { keyInfo, type KeyInfo } from './keys';
import type * as X509 from '@peculiar/x509';

export interface ParsedCsr { csr: X509.Pkcs10CertificateRequest; key: KeyInfo; publicKey: X509.PublicKey; cn?: string }

/** One DER element at `at`: where its content starts and where it ends. */
function element(der: Buffer, at: number): { content: number; end: number } {
  if (at + 2 > der.length) throw new UserError('csr is not a valid PEM certificate request');
  let len = der[at + 1];
  let content = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4 || content + n > der.length) throw new UserError('csr is not a valid PEM certificate request');
    len = der.subarray(content, content + n).reduce((a, b) => a * 256 + b, 0);
    content += n;
  }
  if (content + len > der.length) throw new UserError('csr is not a valid PEM certificate request');
  return { content, end: content + len };
}

const NODE_HASH: Record<string, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

function verifyCsrSignature(csr: X509.Pkcs10CertificateRequest, key: KeyObject): Promise<boolean> {
  const der = Buffer.from(csr.rawData);
  const outer = element(der, 0);
  const info = element(der, outer.content);
  const alg = element(der, info.end);
  const bits = element(der, alg.end);
  const tbs = der.subarray(outer.content, info.end);
  const sig = der.subarray(bits.content + 1, bits.end);
  const a = csr.signatureAlgorithm as { name: string; hash?: { name: string } };
  const hash = a.hash ? NODE_HASH[a.hash.name] : undefined;
  let alg_: string | null;
  let opts: Parameters<typeof nodeVerify>[2];
  if (a.name === 'Ed25519') { alg_ = null; opts = key; }
  else if (!hash) throw new UserError(`unsupported CSR signature algorithm ${a.name}${a.hash ? ` with ${a.hash.name}` : ''} (SHA-1 and unknown algorithms are refused)`);
  else if (a.name === 'ECDSA') { alg_ = hash; opts = { key, dsaEncoding: 'der' }; }
  else if (a.name === 'RSASSA-PKCS1-v1_5') { alg_ = hash; opts = { key, padding: constants.RSA_PKCS1_PADDING }; }
  else if (a.name === 'RSA-PSS') { alg_ = hash; opts = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }; }
  else throw new UserError(`unsupported CSR signature algorithm ${a.name}`);
  return new Promise((resolve) => {
    try { nodeVerify(alg_, tbs, opts, sig, (e, ok) => resolve(!e && ok)); } catch { resolve(false); }
  });
}

/** Parse a PEM CSR, classify its key, and check its signature: anything wrong is a 400. */
export async function readCsr(pemText: string): Promise<ParsedCsr> {
  const X = x509();
  let csr: X509.Pkcs10CertificateRequest;
  let key: KeyObject;
  try {
    csr = new X.Pkcs10CertificateRequest(pemText);
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    throw new UserError('csr is not a valid PEM certificate request');
  }
  const info = keyInfo(key);
  if (!(await verifyCsrSignature(csr, key))) throw new UserError('the CSR signature does not verify');
  return { csr, key: info, publicKey: csr.publicKey, cn: /(?:^|,\s*)CN=([^,]+)/.exec(csr.subject)?.[1] };
}

/** The SANs of a CSR, by kind: what sign/ takes with use_csr_sans. */
export interface CsrSans { dns: string[]; ips: string[]; uris: string[]; emails: string[]; otherSans: Array<{ oid: string; value: string }> }

function oidText(b: Buffer): string {
  const out = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (const x of b.subarray(1)) { v = v * 128 + (x & 0x7f); if (!(x & 0x80)) { out.push(v); v = 0; } }
  return out.join('.');
}

function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) return Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  throw new UserError('the CSR has an IP SAN of a length that is neither IPv4 nor IPv6');
}

/** Read a Subject Alternative Name extension value (GeneralNames, DER); kinds this PKI does not issue are a 400. */
export function readSans(der: Buffer): CsrSans {
  const out: CsrSans = { dns: [], ips: [], uris: [], emails: [], otherSans: [] };
  const all = element(der, 0);
  for (let at = all.content; at < all.end;) {
    const tag = der[at];
    const e = element(der, at);
    const body = der.subarray(e.content, e.end);
    if (tag === 0x81) out.emails.push(body.toString('latin1'));
    else if (tag === 0x82) out.dns.push(body.toString('latin1'));
    else if (tag === 0x86) out.uris.push(body.toString('latin1'));
    else if (tag === 0x87) out.ips.push(ipText(body));
    else if (tag === 0xa0) {
      // otherName: type-id OID, then [0] EXPLICIT value; only UTF8String values are issued (as Vault).
      const id = element(der, e.content);
      const wrap = id.end < e.end && der[id.end] === 0xa0 ? element(der, id.end) : undefined;
      const inner = wrap ? element(der, wrap.content) : undefined;
      if (der[e.content] !== 0x06 || !wrap || !inner || der[wrap.content] !== 0x0c) throw new UserError('the CSR has an otherName SAN whose value is not a UTF8String, which this PKI does not issue');
      out.otherSans.push({ oid: oidText(der.subarray(id.content, id.end)), value: der.subarray(inner.content, inner.end).toString('utf8') });
    } else throw new UserError(`the CSR has a SAN of a kind this PKI does not issue (tag 0x${tag.toString(16)}; DNS, IP, URI, email and otherName SANs only)`);
    at = e.end;
  }
  return out;
}
