// The OCSP responder (RFC 6960) of current Vault's PKI (1.12+): GET ocsp/<base64 DER request>
// and POST ocsp (the DER request as the body), readable without a token, answering raw
// application/ocsp-response bodies. As Vault answers:
// - the first CertID of a request is answered (Vault reads a request with Go's
//   x/crypto/ocsp, which keeps only the first); its hash may be SHA-1, -256, -384 or -512;
// - "revoked" (with the revocation time) when the serial's record says so, else "good",
//   signed by the issuer whose name and key hash the CertID carries (the issuer recorded at
//   revocation, else any of the mount's issuers with a key), as that issuer's subject
//   (responderID byName), with no certificates in the response;
// - no issuer of the mount matches: "unknown", signed by the default issuer; an issuer that
//   matches but lacks the ocsp-signing usage, or no default issuer to sign "unknown":
//   the "unauthorized" response (HTTP 401);
// - a request that does not parse, is too large or is missing: "malformedRequest" (HTTP 400);
//   ocsp_disable in config/crl: "unauthorized"; anything else failing: "internalError" (500);
// - thisUpdate now, nextUpdate after config/crl's ocsp_expiry (none when it is 0),
//   producedAt to the minute; RSASSA-PSS issuers sign with PKCS#1 v1.5 (Go's OCSP cannot PSS);
// - request extensions (the nonce) are read past and not answered: Vault echoes no nonce.
// One difference: "unknown" answers with the request's CertID (as RFC 6960 4.2.2.3 asks),
// where Vault's carries the default issuer's name and key hashes.
// DER is read and written with src/goplugin/der.ts, whose strict reader refuses what Go's
// encoding/asn1 refuses (non-minimal lengths and integers).
import { createHash } from 'node:crypto';
import { bits, explicit, octets, oid, readElement, seq, tlv, type DerElement } from '../../goplugin/der';
import { getJson, type Storage } from '../../storage/storage';
import { parseDuration, type PathDef, type Request, type Response } from '../framework';
import { displaySerial, serialKey } from './ca';
import { issuerNameAndKey, signatureAlgorithm, signTbs, withSignatureAlgorithm } from './cert-writer';
import type { PkiCaches } from './index';
import type { IssuerEntry } from './issuers';
import { crlConfig } from './maintenance';

const CONTENT_TYPE = 'application/ocsp-response';
/** Requests this long or longer are refused, as Vault refuses them (a simple request is under 100 bytes). */
const MAX_REQUEST = 2048;

/** An OCSPResponse with only a status (RFC 6960 4.2.1): SEQUENCE { ENUMERATED n }. */
const statusOnly = (n: number) => seq(tlv(0x0a, Uint8Array.of(n)));
const MALFORMED = statusOnly(1);
const INTERNAL_ERROR = statusOnly(2);
const UNAUTHORIZED = statusOnly(6);

const answer = (body: Buffer, status: number): Response => ({
  data: { http_content_type: CONTENT_TYPE, http_raw_body: body.toString('base64'), http_status_code: status },
});
const malformed = () => answer(MALFORMED, 400);
const unauthorized = () => answer(UNAUTHORIZED, 401);

/** The CertID hash algorithms Go's OCSP reads, by the DER of their OID. */
const HASHES = new Map(
  Object.entries({ '1.3.14.3.2.26': 'sha1', '2.16.840.1.101.3.4.2.1': 'sha256', '2.16.840.1.101.3.4.2.2': 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512' }).map(
    ([dotted, hash]) => [oid(dotted).toString('hex'), hash],
  ),
);

/** One CertID of a request: its DER (answered as it came), hash, the issuer's name and key hashes, and the serial (INTEGER content). */
export interface CertId {
  der: Buffer;
  hash: string;
  nameHash: Buffer;
  keyHash: Buffer;
  serial: Buffer;
}

class Malformed extends Error {}

/** A DER INTEGER's content as Go's encoding/asn1 takes it: not empty, minimally encoded. */
function checkInteger(b: Buffer): void {
  if (b.length === 0) throw new Malformed();
  if (b.length > 1 && ((b[0] === 0 && !(b[1] & 0x80)) || (b[0] === 0xff && b[1] & 0x80))) throw new Malformed();
}

/**
 * The first CertID of a DER OCSPRequest, read as Go's x/crypto/ocsp reads one: nothing after
 * the request, every Request in the list a SEQUENCE starting with a CertID, at least one, the
 * first one's hash known; what follows a structure's known fields (extensions, a signature)
 * is not read. Throws Malformed otherwise.
 */
export function parseOcspRequest(der: Buffer): CertId {
  const el = (at: number, limit: number, tag: number): DerElement & { start: number } => {
    const e = readElement(der, at, () => new Malformed(), limit);
    if (e.tag !== tag) throw new Malformed();
    return { ...e, start: at };
  };
  const top = el(0, der.length, 0x30);
  if (top.end !== der.length) throw new Malformed();
  const tbs = el(top.content, top.end, 0x30);
  let at = tbs.content;
  const peek = () => readElement(der, at, () => new Malformed(), tbs.end).tag;
  if (peek() === 0xa0) {
    // version [0] EXPLICIT INTEGER
    const v = el(at, tbs.end, 0xa0);
    const n = el(v.content, v.end, 0x02);
    checkInteger(der.subarray(n.content, n.end));
    at = v.end;
  }
  if (peek() === 0xa1) at = el(at, tbs.end, 0xa1).end; // requestorName [1]: read past
  const list = el(at, tbs.end, 0x30);
  const ids: CertId[] = [];
  for (let p = list.content; p < list.end; ) {
    const request = el(p, list.end, 0x30);
    const id = el(request.content, request.end, 0x30);
    const alg = el(id.content, id.end, 0x30);
    const algOid = el(alg.content, alg.end, 0x06);
    const nameHash = el(alg.end, id.end, 0x04);
    const keyHash = el(nameHash.end, id.end, 0x04);
    const serial = el(keyHash.end, id.end, 0x02);
    const serialBytes = der.subarray(serial.content, serial.end);
    checkInteger(serialBytes);
    ids.push({
      der: Buffer.from(der.subarray(id.start, id.end)),
      hash: HASHES.get(der.subarray(alg.content, algOid.end).toString('hex')) ?? '',
      nameHash: Buffer.from(der.subarray(nameHash.content, nameHash.end)),
      keyHash: Buffer.from(der.subarray(keyHash.content, keyHash.end)),
      serial: Buffer.from(serialBytes),
    });
    p = request.end;
  }
  if (!ids.length || !ids[0].hash) throw new Malformed();
  return ids[0];
}

/** Does this CertID name this issuer (its subject's and key's hashes, with the CertID's hash)? */
function names(id: CertId, parts: { subject: Buffer; keyBits: Buffer }): boolean {
  const h = (b: Buffer) => createHash(id.hash).update(b).digest();
  return h(parts.subject).equals(id.nameHash) && h(parts.keyBits).equals(id.keyHash);
}

/** GeneralizedTime to the second, as OCSP writes every time. */
function generalizedTime(d: Date): Buffer {
  return tlv(0x18, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`, 'latin1'));
}

type Status = { kind: 'good' } | { kind: 'revoked'; at: Date } | { kind: 'unknown' };

/** The signed OCSPResponse (successful, id-pkix-ocsp-basic) of one CertID's status. */
async function signedResponse(caches: PkiCaches, s: Storage, issuer: IssuerEntry, id: CertId, status: Status, expirySeconds: number): Promise<Buffer> {
  const ready = await caches.ca.require(s, issuer.issuer_id);
  // The issuer's revocation signature algorithm, PSS as PKCS#1 v1.5 (as Vault: Go's OCSP signs no PSS).
  const named = (issuer.revocation_signature_algorithm ?? '').replace(/PSS$/, '');
  const signer = named ? withSignatureAlgorithm(await ready.signer(), named) : await ready.signer();
  const now = new Date();
  const certStatus =
    status.kind === 'good' ? tlv(0x80, Buffer.alloc(0)) : status.kind === 'revoked' ? tlv(0xa1, generalizedTime(status.at)) : tlv(0x82, Buffer.alloc(0));
  const single = seq(
    id.der,
    certStatus,
    generalizedTime(now),
    ...(expirySeconds > 0 ? [explicit(0, generalizedTime(new Date(now.getTime() + expirySeconds * 1000)))] : []),
  );
  const producedAt = new Date(Math.floor(now.getTime() / 60_000) * 60_000);
  const tbs = seq(explicit(1, issuerNameAndKey(issuer.certificate).subject), generalizedTime(producedAt), seq(single));
  const algorithm = signatureAlgorithm(signer);
  const basic = seq(tbs, algorithm, bits(await signTbs(signer, tbs)));
  return seq(tlv(0x0a, Uint8Array.of(0)), explicit(0, seq(oid('1.3.6.1.5.5.7.48.1.1'), octets(basic))));
}

/** The answer to one DER request (undefined: none came). */
export async function ocspAnswer(caches: PkiCaches, s: Storage, der: Buffer | undefined): Promise<Response> {
  let config: Awaited<ReturnType<typeof crlConfig>>;
  try {
    config = await crlConfig(s);
  } catch {
    return unauthorized();
  }
  if (config.ocsp_disable) return unauthorized();
  if (!der || der.length === 0 || der.length >= MAX_REQUEST) return malformed();
  let id: CertId;
  try {
    id = parseOcspRequest(der);
  } catch (e) {
    if (e instanceof Malformed) return malformed();
    throw e;
  }
  try {
    const expiry = parseDuration(config.ocsp_expiry, 'ocsp_expiry');
    const hex = (id.serial.length > 1 && id.serial[0] === 0 ? id.serial.subarray(1) : id.serial).toString('hex');
    const rec = await getJson<{ revocation_time?: number; issuer_id?: string }>(s, serialKey(displaySerial(hex)));
    const revoked = rec?.revocation_time ? rec : undefined;
    const reg = await caches.ca.registry(s);
    // The issuer recorded at revocation, else every issuer; only those with a key can sign.
    const candidates = revoked?.issuer_id ? [reg.issuers.get(revoked.issuer_id)].filter((i) => i !== undefined) : [...reg.issuers.values()];
    let matchedWithoutUsage = false;
    for (const issuer of candidates) {
      if (!reg.keys.has(issuer.key_id) || !names(id, issuerNameAndKey(issuer.certificate))) continue;
      if (!issuer.usage.includes('ocsp-signing')) {
        matchedWithoutUsage = true; // another issuer (a reissued one) may still match
        continue;
      }
      const status: Status = revoked ? { kind: 'revoked', at: new Date(revoked.revocation_time! * 1000) } : { kind: 'good' };
      return answer(await signedResponse(caches, s, issuer, id, status, expiry), 200);
    }
    if (matchedWithoutUsage) return unauthorized();
    // No issuer of this mount: "unknown", if the default issuer may sign it.
    const fallback = reg.findIssuer('default');
    if (!fallback || !reg.keys.has(fallback.key_id) || !fallback.usage.includes('ocsp-signing')) return unauthorized();
    return answer(await signedResponse(caches, s, fallback, id, { kind: 'unknown' }, expiry), 200);
  } catch {
    return answer(INTERNAL_ERROR, 500);
  }
}

/** Base64 as Go's StdEncoding decodes it (padded, no other characters; line breaks skipped); undefined if it is not. */
function strictBase64(text: string): Buffer | undefined {
  const t = text.replace(/[\r\n]/g, '');
  if (t.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

/** ocsp/<request> (GET) and ocsp (POST). */
export function ocspPaths(caches: PkiCaches): PathDef[] {
  const description =
    "Answers RFC 6960 OCSP requests for certificates of this mount's issuers, without a token. GET takes the DER request base64-encoded in the path; POST takes it as the body (Content-Type: application/ocsp-request).";
  return [
    {
      pattern: 'ocsp/(?<req>.*)',
      fields: { req: { type: 'string', description: 'The DER OCSP request, base64-encoded (URL-escaped in the path).' } },
      synopsis: "Query a certificate's revocation status with OCSP (GET).",
      description,
      operations: {
        read: async (r: Request) => {
          const text = r.data.str('req');
          return ocspAnswer(caches, r.storage, text.length >= MAX_REQUEST ? undefined : strictBase64(text));
        },
      },
    },
    {
      pattern: 'ocsp',
      fields: {
        // Current Vault hands a plugin a binary path's body (this mount declares ocsp binary) as
        // http_raw_body in the request data: the bytes, base64 in the JSON Vault sends. Vault 1.8
        // parses every POST body as JSON or a form and refuses DER before the plugin sees it:
        // there only the GET form reaches this responder.
        http_raw_body: { type: 'string', description: 'The DER OCSP request, as Vault passes a binary body to a plugin (base64).' },
      },
      synopsis: "Query a certificate's revocation status with OCSP (POST).",
      description,
      operations: {
        update: async (r: Request) => {
          const body = r.data.str('http_raw_body');
          // Far too long to be under the limit: not decoded (ocspAnswer measures the DER).
          return ocspAnswer(caches, r.storage, body.length > 4 * MAX_REQUEST ? undefined : strictBase64(body));
        },
      },
    },
  ];
}
