// A CSR's requested extensions copied into the certificate, as current Vault's PKI copies
// them where it takes the CSR's values (sign-verbatim; root/sign-intermediate and
// issuer/<ref>/sign-intermediate with use_csr_values): all of them in the CSR's order, each
// in place of the certificate's own extension of that type (Go's ExtraExtensions override),
// except Basic Constraints (a leaf gets none from a CSR, a CA its own) and, when other SANs
// make Vault build the SAN itself, the CSR's SAN. So a CSR's key usage, extended key usage,
// subject key identifier, CRL distribution points, AIA, policies and Name Constraints win over
// the request's and the mount's, for CA certificates too (no merging). Its authority key
// identifier only when it names the issuer's key (issuerAuthority, below).
//
// Vault signs a value of a type certificates parse (RFC 5280's, as Go reads them) without
// looking at it, then fails to parse or verify what it signed: a 500. Here such a value is
// read first and, malformed, refused with a 400; so is a critical extension that Vault's
// verification (certificate-transparency-go's x509, which current Vault runs on every
// certificate it signs) does not understand, which Vault also signs and then fails on.
// Values of other types are copied as they are, unread, as Vault copies them. (Vault 1.8
// copies the same way but verifies nothing after signing: it signs such a critical extension.)
import { strictElement, type DerElement as El } from '../../goplugin/der';
import { UserError } from '../framework';
import { oidText, readSans, type CsrExtension, type ParsedCsr } from './csr';

/** The element at `at` before `limit`, with a minimal definite length; undefined if it is not one. */
function el(d: Buffer, at: number, limit: number): El | undefined {
  if (at < limit && (d[at] & 0x1f) === 0x1f) return undefined; // high tag numbers: none in these types
  return strictElement(d, at, limit);
}

/** The elements that exactly fill `e`'s content (each well formed all the way down); undefined if they do not. */
function kids(d: Buffer, e: El, depth = 0): El[] | undefined {
  const out: El[] = [];
  for (let at = e.content; at < e.end; ) {
    const k = el(d, at, e.end);
    if (!k || (k.tag & 0x20 && (depth > 16 || !kids(d, k, depth + 1)))) return undefined;
    out.push(k);
    at = k.end;
  }
  return out;
}

/** The one element that is the whole value, with this tag, well formed inside; undefined otherwise. */
function whole(d: Buffer, tag: number): El | undefined {
  const e = el(d, 0, d.length);
  return e && e.tag === tag && e.end === d.length && (!(tag & 0x20) || kids(d, e)) ? e : undefined;
}

/** An OBJECT IDENTIFIER's content as Go accepts it: not empty, each arc minimally encoded and ended. */
function validOid(d: Buffer, e: El): boolean {
  if (e.tag !== 0x06 || e.end === e.content || d[e.end - 1] & 0x80) return false;
  for (let i = e.content; i < e.end; i++) if (d[i] === 0x80 && (i === e.content || !(d[i - 1] & 0x80))) return false;
  return true;
}

const seqOf = (d: Buffer, e: El | undefined) => (e && e.tag === 0x30 ? kids(d, e) : undefined);

/**
 * GeneralName subtrees of Name Constraints (permitted or excluded): each a SEQUENCE whose
 * base is a name; DNS, email and URI bases ASCII, IP bases an address and mask (8 or 32
 * octets). `unhandled` is set for bases of other kinds, which Go's verifiers do not apply.
 */
function subtrees(d: Buffer, e: El, state: { unhandled: boolean }): boolean {
  const list = kids(d, e);
  if (!list) return false;
  for (const t of list) {
    const parts = t.tag === 0x30 ? kids(d, t) : undefined;
    const base = parts?.[0];
    if (!base) return false;
    const body = d.subarray(base.content, base.end);
    if (base.tag === 0x87) {
      if (body.length !== 8 && body.length !== 32) return false;
    } else if (base.tag === 0x81 || base.tag === 0x82 || base.tag === 0x86) {
      if (body.some((b) => b > 0x7f)) return false;
    } else state.unhandled = true;
  }
  return true;
}

/** How a value of each type certificates parse is checked; answers whether a verifier understands it (else undefined: malformed). */
const CHECKS: Record<string, { name: string; check: (d: Buffer) => boolean | undefined }> = {
  '2.5.29.15': {
    name: 'Key Usage',
    // BIT STRING: an unused-bits count up to 7 (0 when empty), those bits zero.
    check: (d) => {
      const e = whole(d, 0x03);
      if (!e || e.end === e.content) return undefined;
      const unused = d[e.content];
      const len = e.end - e.content - 1;
      if (unused > 7 || (len === 0 && unused) || (len && d[e.end - 1] & ((1 << unused) - 1))) return undefined;
      return true;
    },
  },
  '2.5.29.37': {
    name: 'Extended Key Usage',
    check: (d) => {
      const list = seqOf(d, whole(d, 0x30));
      return list?.every((k) => validOid(d, k)) || undefined;
    },
  },
  '2.5.29.14': { name: 'Subject Key Identifier', check: (d) => (whole(d, 0x04) ? true : undefined) },
  '2.5.29.35': {
    name: 'Authority Key Identifier',
    // SEQUENCE { [0] keyIdentifier OPTIONAL, [1] authorityCertIssuer OPTIONAL, [2] serial OPTIONAL }, in that order.
    check: (d) => {
      const list = seqOf(d, whole(d, 0x30));
      if (!list) return undefined;
      let last = -1;
      for (const k of list) {
        const n = [0x80, 0xa1, 0x82].indexOf(k.tag);
        if (n <= last) return undefined;
        last = n;
      }
      return true;
    },
  },
  '2.5.29.17': {
    name: 'Subject Alternative Name',
    // Verifiers understand it when it has a DNS, email, IP or URI name.
    check: (d) => {
      const s = readSans(d, 'skip');
      return s.dns.length + s.emails.length + s.ips.length + s.uris.length > 0;
    },
  },
  '2.5.29.30': {
    name: 'Name Constraints',
    // SEQUENCE { [0] permitted OPTIONAL, [1] excluded OPTIONAL }.
    check: (d) => {
      const list = seqOf(d, whole(d, 0x30));
      const state = { unhandled: false };
      if (!list || list.length > 2 || !list.every((k, i) => (k.tag === 0xa0 || k.tag === 0xa1) && (i === 0 || k.tag > list[0].tag) && subtrees(d, k, state)))
        return undefined;
      return !state.unhandled;
    },
  },
  '2.5.29.31': {
    name: 'CRL Distribution Points',
    check: (d) => {
      const list = seqOf(d, whole(d, 0x30));
      return list?.every((k) => k.tag === 0x30) || undefined;
    },
  },
  '2.5.29.32': {
    name: 'Certificate Policies',
    // SEQUENCE OF PolicyInformation { policyIdentifier OID, qualifiers OPTIONAL }.
    check: (d) => {
      const list = seqOf(d, whole(d, 0x30));
      return (
        list?.every((k) => {
          const first = seqOf(d, k)?.[0];
          return first !== undefined && validOid(d, first);
        }) || undefined
      );
    },
  },
  '1.3.6.1.5.5.7.1.1': {
    name: 'Authority Information Access',
    // SEQUENCE OF AccessDescription { accessMethod OID, accessLocation GeneralName }, not empty (the verifier refuses an empty one).
    check: (d) => {
      const list = seqOf(d, whole(d, 0x30));
      return (
        (list?.length &&
          list.every((k) => {
            const parts = seqOf(d, k);
            return parts?.length === 2 && validOid(d, parts[0]) && (parts[1].tag & 0xc0) === 0x80;
          })) ||
        undefined
      );
    },
  },
};
// Read as the verifier reads them without being among the types checked above: Subject
// Information Access, RFC 3779's IP and AS resources, certificate transparency's SCT list.
const ALSO_UNDERSTOOD = new Set(['1.3.6.1.5.5.7.1.11', '1.3.6.1.5.5.7.1.7', '1.3.6.1.5.5.7.1.8', '1.3.6.1.4.1.11129.2.4.2']);
const BASIC_CONSTRAINTS = '2.5.29.19';
const SUBJECT_ALT_NAME = '2.5.29.17';

/**
 * The CSR's extensions that go into the certificate as they are (see above), checked: a
 * malformed one, or a critical one no verifier understands, is a 400. `keepSan`: whether the
 * CSR's SAN is among them (Vault leaves it out when other SANs make it build its own).
 */
export function extensionsToCopy(csr: ParsedCsr, keepSan: boolean): CsrExtension[] {
  const out: CsrExtension[] = [];
  for (const e of csr.extensions) {
    const idEl = el(e.oid, 0, e.oid.length);
    if (!idEl || !validOid(e.oid, idEl)) throw new UserError('csr is not a valid PEM certificate request: an extension has a malformed OID');
    const id = oidText(e.oid.subarray(idEl.content, idEl.end));
    if (id === BASIC_CONSTRAINTS || (id === SUBJECT_ALT_NAME && !keepSan)) continue;
    const known = CHECKS[id];
    let understood = ALSO_UNDERSTOOD.has(id);
    if (known) {
      let ok: boolean | undefined;
      try {
        ok = known.check(e.value);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        throw new UserError(`the CSR's ${known.name} extension (${id}) is malformed (${err.message}), so it cannot be copied into the certificate`);
      }
      if (ok === undefined) throw new UserError(`the CSR's ${known.name} extension (${id}) is malformed, so it cannot be copied into the certificate`);
      understood = ok;
    }
    if (e.critical && !understood)
      throw new UserError(
        `the CSR asks for the critical extension ${id.slice(0, 60)}, which certificate verifiers do not understand, so it cannot be copied into the certificate (current Vault signs it and then fails to verify what it signed)`,
      );
    out.push(e);
  }
  return out;
}

const AUTHORITY_KEY_ID = '2.5.29.35';

/**
 * The copied extensions (extensionsToCopy) with the CSR's Authority Key Identifier kept only
 * when its keyIdentifier names the key that signs (`issuerKeyId`); otherwise it is left out,
 * so the certificate gets the issuer's own, and `warnings` says so.
 *
 * Current Vault (and 1.8) copy it whatever it says (Go's ExtraExtensions replace the AKID Go
 * derives from the issuer): the certificate then names another key as its authority, which
 * OpenSSL's chain building refuses (AKID/SKID mismatch) while Vault's own check passes it
 * (certificate-transparency-go falls back to the issuer's name). A requester cannot know the
 * key of a CA that has not signed it yet, so only a CSR that names the right one keeps its own.
 */
export function issuerAuthority(copied: CsrExtension[], issuerKeyId: Buffer, warnings: string[]): CsrExtension[] {
  return copied.filter((e) => {
    const idEl = el(e.oid, 0, e.oid.length);
    if (!idEl || oidText(e.oid.subarray(idEl.content, idEl.end)) !== AUTHORITY_KEY_ID) return true;
    // Checked well formed by extensionsToCopy: SEQUENCE { [0] keyIdentifier OPTIONAL, ... }.
    const first = seqOf(e.value, whole(e.value, 0x30))?.[0];
    const keyId = first?.tag === 0x80 ? e.value.subarray(first.content, first.end) : undefined;
    if (keyId?.equals(issuerKeyId)) return true;
    const shown = keyId ? `keyid ${[...keyId.subarray(0, 32)].map((b) => b.toString(16).padStart(2, '0')).join(':')}` : 'no keyid';
    warnings.push(
      `the CSR's Authority Key Identifier (${shown}) does not name the issuer's key (${[...issuerKeyId].map((b) => b.toString(16).padStart(2, '0')).join(':')}), so the issuer's was used`,
    );
    return false;
  });
}
