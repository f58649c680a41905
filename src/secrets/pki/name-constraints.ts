// The Name Constraints (RFC 5280 4.2.1.10) of an issuer and of the CAs above it, checked
// against the names a certificate would carry before it is signed. Current Vault verifies
// each certificate it issues against its chain (Go's x509 verification, which enforces name
// constraints) and refuses one that breaks them; Vault 1.8 signed it, and no verifier then
// accepts the result. Matching follows Go's rules, which RFC 5280's: a DNS constraint
// "example.com" permits the domain and its subdomains, ".example.com" only its subdomains;
// an email constraint is a mailbox, a host (and its subdomains) or ".domain"; an IP
// constraint is an address and mask; a URI's host is matched as a DNS name.
// directoryName and other kinds of constraint are not checked here.
import { readElement } from '../../goplugin/der';
import { UserError } from '../framework';
import { x509 } from './ca';
import { ipBytes } from './cert-writer';

interface Subtrees {
  dns: string[];
  emails: string[];
  uris: string[];
  ips: Array<{ addr: Buffer; mask: Buffer }>;
}

/** One CA certificate's constraints. */
export interface NameConstraints {
  subject: string;
  permitted: Subtrees;
  excluded: Subtrees;
}

/** The names a certificate would carry. */
export interface CertificateNames {
  dns: string[];
  emails: string[];
  uris: string[];
  ips: string[];
}

const NAME_CONSTRAINTS_OID = '2.5.29.30';
const empty = (): Subtrees => ({ dns: [], emails: [], uris: [], ips: [] });

function readSubtrees(der: Buffer, at: number, end: number, into: Subtrees): void {
  while (at < end) {
    const subtree = readElement(der, at); // GeneralSubtree: SEQUENCE { base GeneralName, minimum, maximum }
    const base = readElement(der, subtree.content);
    const value = der.subarray(base.content, base.end);
    if (base.tag === 0x82) into.dns.push(value.toString('latin1').toLowerCase());
    else if (base.tag === 0x81) into.emails.push(value.toString('latin1').toLowerCase());
    else if (base.tag === 0x86) into.uris.push(value.toString('latin1').toLowerCase());
    else if (base.tag === 0x87 && (value.length === 8 || value.length === 32))
      into.ips.push({ addr: value.subarray(0, value.length / 2), mask: value.subarray(value.length / 2) });
    at = subtree.end;
  }
}

/** The Name Constraints extension of a PEM certificate, if it has one. */
export function nameConstraintsOf(pem: string): NameConstraints | undefined {
  const cert = new (x509().X509Certificate)(pem);
  const ext = cert.getExtension(NAME_CONSTRAINTS_OID);
  if (!ext) return undefined;
  const der = Buffer.from(ext.value);
  const out: NameConstraints = { subject: cert.subject, permitted: empty(), excluded: empty() };
  const all = readElement(der, 0);
  for (let at = all.content; at < all.end; ) {
    const part = readElement(der, at);
    if (part.tag === 0xa0) readSubtrees(der, part.content, part.end, out.permitted);
    else if (part.tag === 0xa1) readSubtrees(der, part.content, part.end, out.excluded);
    at = part.end;
  }
  return out;
}

/** Go's domain rule: "" matches all; ".d" subdomains of d; "d" d itself and its subdomains. */
function domainMatches(name: string, constraint: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (!constraint) return true;
  if (constraint.startsWith('.')) return n.endsWith(constraint);
  return n === constraint || n.endsWith(`.${constraint}`);
}

function emailMatches(email: string, constraint: string): boolean {
  const e = email.toLowerCase();
  if (constraint.includes('@')) return e === constraint;
  return domainMatches(e.slice(e.lastIndexOf('@') + 1), constraint);
}

/** The address's bytes as the certificate will carry them (cert-writer's), or undefined for text that is not an IP address. */
function addressOf(ip: string): Buffer | undefined {
  try {
    return ipBytes(ip);
  } catch {
    return undefined;
  }
}

function ipMatches(ip: string, c: { addr: Buffer; mask: Buffer }): boolean {
  const b = addressOf(ip);
  if (!b || b.length !== c.addr.length) return false;
  for (let i = 0; i < b.length; i++) if ((b[i] & c.mask[i]) !== (c.addr[i] & c.mask[i])) return false;
  return true;
}

function uriHost(uri: string): string {
  try {
    return new URL(uri).hostname;
  } catch {
    return '';
  }
}

/** Throws a 400 when a name breaks a constraint of any CA in the chain (the issuer first). */
export function checkNameConstraints(chain: NameConstraints[], names: CertificateNames): void {
  for (const c of chain) {
    const check = <K>(kind: string, list: string[], permitted: K[], excluded: K[], matches: (name: string, k: K) => boolean) => {
      for (const n of list) {
        if (permitted.length && !permitted.some((p) => matches(n, p)))
          throw new UserError(`${kind} ${JSON.stringify(n.slice(0, 100))} is outside the names its issuing CA (${c.subject}) may certify (Name Constraints)`);
        if (excluded.some((x) => matches(n, x)))
          throw new UserError(`${kind} ${JSON.stringify(n.slice(0, 100))} is excluded by the Name Constraints of its issuing CA (${c.subject})`);
      }
    };
    check('DNS name', names.dns, c.permitted.dns, c.excluded.dns, domainMatches);
    check('email address', names.emails, c.permitted.emails, c.excluded.emails, emailMatches);
    check('IP address', names.ips, c.permitted.ips, c.excluded.ips, ipMatches);
    check('URI host', names.uris.map(uriHost), c.permitted.uris, c.excluded.uris, domainMatches);
  }
}

const cache = new WeakMap<object, NameConstraints[]>();

/** The constraints of a chain of PEM certificates (read once per chain object). */
export function chainConstraints(key: object, chainPems: string[]): NameConstraints[] {
  let c = cache.get(key);
  if (!c) {
    c = chainPems.map(nameConstraintsOf).filter((x): x is NameConstraints => x !== undefined);
    cache.set(key, c);
  }
  return c;
}
