// Which names a role allows in a certificate (CN and DNS SANs), after Vault's PKI rules:
// allow_any_name, enforce_hostnames, allow_wildcard_certificates (default true),
// allow_localhost, allowed_domains with allow_bare_domains / allow_subdomains /
// allow_glob_domains, and email-style names (user@domain).
import { domainToASCII } from 'node:url';
import { UserError } from '../framework';
import type { Role } from './certificates';

// Control characters, invisible format characters and every kind of space: never part of
// a certificate name, whatever the role says. The one exception is a common name under a
// role with allow_any_name and enforce_hostnames=false, which Vault takes as free text
// ("Jane Doe" for a client certificate): it may hold spaces, never the rest.
const CONTROL_OR_SPACE = /[\p{Cc}\p{Cf}\p{Z}]/u;
const CONTROL_OR_LINE_BREAK = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * A DNS name as a certificate carries it: an internationalised name in its ASCII (IDNA,
 * "xn--") form, as Vault converts it; an ASCII name as given; undefined for what is not a
 * DNS name at all.
 */
export function asciiDnsName(name: string): string | undefined {
  if (!NON_ASCII.test(name)) return name;
  return domainToASCII(name) || undefined;
}
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// Looser DNS labels (underscores, as in _service names) for enforce_hostnames=false.
const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

function isName(name: string, label: RegExp): boolean {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n.length > 0 && n.length <= 253 && n.split('.').every((l) => label.test(l));
}

/** Vault's glob (ryanuber/go-glob): "*" matches any run of characters, dots included. */
export function globMatch(pattern: string, subject: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === subject;
  const first = parts[0],
    last = parts[parts.length - 1];
  if (!subject.startsWith(first) || !subject.endsWith(last) || subject.length < first.length + last.length) return false;
  let at = first.length;
  const end = subject.length - last.length;
  for (const mid of parts.slice(1, -1)) {
    const i = subject.indexOf(mid, at);
    if (i < 0 || i + mid.length > end) return false;
    at = i + mid.length;
  }
  return true;
}

/** A common name that is free text (cn_validations "disabled"): a 400 only for control characters and line breaks, which no name may hold. */
export function checkFreeTextName(name: string): void {
  if (CONTROL_OR_LINE_BREAK.test(name))
    throw new UserError(`name ${JSON.stringify(name.slice(0, 80))} has control characters or spaces, which no certificate name may contain`);
}

/** Throws a 400 unless the role allows this name (`commonName`: the subject's CN, see CONTROL_OR_SPACE). */
export function checkName(role: Role, name: unknown, commonName = false): void {
  if (typeof name !== 'string' || name === '') throw new UserError('names must be non-empty strings');
  const freeText = commonName && role.allow_any_name && !role.enforce_hostnames;
  if ((freeText ? CONTROL_OR_LINE_BREAK : CONTROL_OR_SPACE).test(name))
    throw new UserError(`name ${JSON.stringify(name.slice(0, 80))} has control characters or spaces, which no certificate name may contain`);
  const denied = () => new UserError(`name "${name.slice(0, 80)}" not allowed by this role`);
  let reduced = name;
  let isEmail = false;
  if (name.includes('@')) {
    const parts = name.split('@');
    if (parts.length !== 2 || !parts[0]) throw denied();
    reduced = parts[1];
    isEmail = true;
  }
  let isWildcard = false;
  let wildcardLabel = '';
  if (reduced.includes('*')) {
    // allow_wildcard_certificates=false wins over allow_any_name, as in Vault.
    if (role.allow_wildcard_certificates === false || isEmail) throw denied();
    const labels = reduced.split('.');
    wildcardLabel = labels[0];
    reduced = labels.slice(1).join('.');
    // RFC 6125: one "*", in the leftmost label only, with a domain after it.
    if (!reduced || reduced.includes('*') || wildcardLabel.split('*').length !== 2) throw denied();
    isWildcard = true;
  }
  // An internationalised domain is checked, and matched against allowed_domains, in its ASCII form.
  let full = name.toLowerCase();
  if (NON_ASCII.test(reduced)) {
    const ascii = asciiDnsName(reduced);
    if (!ascii) {
      if (role.enforce_hostnames) throw new UserError(`name "${name.slice(0, 80)}" is not a valid hostname (the role enforces hostnames)`);
      if (role.allow_any_name) return;
      throw denied();
    }
    full = (name.slice(0, name.length - reduced.length) + ascii).toLowerCase();
    reduced = ascii;
  }
  if (role.enforce_hostnames) {
    if (!isName(reduced, HOST_LABEL) || (isWildcard && !/^[A-Za-z0-9-]*\*[A-Za-z0-9-]*$/.test(wildcardLabel))) {
      throw new UserError(`name "${name.slice(0, 80)}" is not a valid hostname (the role enforces hostnames)`);
    }
  }
  if (role.allow_any_name) return;
  // Everything below matches the name against domains, so it must be a DNS name even when
  // hostnames are not enforced: Vault would let "evil.com/.example.com" through as a
  // subdomain of example.com; no certificate consumer reads it that way.
  if (!isName(reduced, DNS_LABEL) || (isWildcard && !/^[A-Za-z0-9_-]*\*[A-Za-z0-9_-]*$/.test(wildcardLabel))) throw denied();
  const r = reduced.toLowerCase();
  if (role.allow_localhost) {
    if (!isWildcard && ['localhost', 'localdomain', 'localhost.localdomain'].includes(r)) return;
    if (role.allow_subdomains && (r.endsWith('.localhost') || r.endsWith('.localdomain') || (isWildcard && (r === 'localhost' || r === 'localdomain')))) return;
  }
  for (const d of (role.allowed_domains ?? []).map((x) => (asciiDnsName(String(x)) ?? String(x)).toLowerCase()).filter(Boolean)) {
    if (role.allow_bare_domains && !isWildcard && r === d) return;
    if (role.allow_subdomains && (r.endsWith(`.${d}`) || (isWildcard && r === d))) return;
    if (role.allow_glob_domains && d.includes('*') && globMatch(d, full)) return;
  }
  throw denied();
}
