// issue/<role>, sign/<role>
import type * as X509 from '@peculiar/x509';
import { putJson } from '../../storage/storage';
import { UserError, type PathDef, type Request } from '../framework';
import type { PkiCaches } from './index';
import { serialKey, x509 } from './ca';
import { checkIps, effectiveTtl, makeCertificate, type Role } from './certificates';
import { checkName } from './names';
import { readCsr, type ParsedCsr } from './csr';
import { OUTPUT_FIELDS, URI_SANS_FIELD, checkUris, formatIssued, leafProfile, requestNames } from './issue-options';
import { withDefaults } from './role-fields';
import { checkKeyForRole, generateKey, roleKeyBits, type KeyType } from './keys';

import { nameGroup } from '../../schema';
const ROLE = nameGroup('role');
const fields = {
  role: { type: 'string', description: 'Role name.' },
  common_name: { type: 'string', description: 'CN of the certificate.' },
  alt_names: { type: 'strings', default: [], description: 'DNS SANs.' },
  ip_sans: { type: 'strings', default: [], description: 'IP SANs.' },
  ttl: { type: 'duration', default: 0, description: 'Validity (default: the role\'s ttl, else 30 days).' },
  exclude_cn_from_sans: { type: 'bool', default: false, description: 'Do not repeat the CN as a DNS SAN.' },
  uri_sans: URI_SANS_FIELD,
  ...OUTPUT_FIELDS,
} as const;
const DEFAULT_TTL = 30 * 86400;

async function roleOf(r: Request, caches: PkiCaches): Promise<Role> {
  const role = await caches.roles.get(r.storage, r.data.str('role'));
  if (!role) throw new UserError(`unknown role: ${r.data.str('role')}`);
  return role;
}

export async function issueFor(r: Request, role: Role, caches: PkiCaches, publicKey: X509.PublicKeyType, kind: KeyType, csr?: ParsedCsr) {
  const full = withDefaults(role);
  const names = requestNames(r, full, csr);
  const { cn, ips } = names;
  const alt = names.dns;
  if (cn) checkName(role, cn);
  for (const n of alt) checkName(role, n);
  checkIps(role, ips);
  checkUris(full, names.uris);
  const ready = await caches.ca.require(r.storage);
  const ca = ready.stored;
  const signer = await ready.signer();
  const dns = [...new Set([...(!cn || r.data.bool('exclude_cn_from_sans') || !/^[A-Za-z0-9*][A-Za-z0-9.-]*$/.test(cn) || cn.includes('@') ? [] : [cn]), ...alt])];
  const warnings: string[] = [];
  const cert = await makeCertificate({
    commonName: cn, dnsNames: dns, ips, uris: names.uris, organization: role.organization, ou: role.ou,
    // The mount's max lease TTL only matters without a role max_ttl: ask Vault only then.
    ttlSeconds: effectiveTtl(role, r.data.int('ttl'), DEFAULT_TTL, role.max_ttl ? 0 : await r.system?.maxLeaseTtl(), warnings), isCa: false,
    serverAuth: role.server_flag, clientAuth: role.client_flag, publicKey, leafKeyKind: kind,
    ...leafProfile(role, kind), urls: await caches.urls(r.storage),
  }, signer, ready.issuer);
  if (!full.no_store) await putJson(r.storage, serialKey(cert.serial), { certificate: cert.pem });
  return { cert, ca, warnings };
}

export function issuePaths(caches: PkiCaches): PathDef[] {
  return [
    {
      pattern: `issue/${ROLE}`,
      fields,
      synopsis: 'Issue a certificate and its private key under a role.',
      description: 'The private key is generated here (on the thread pool), returned once, and not stored. Roles with key_type "any" only sign CSRs.',
      operations: {
        update: async (r) => {
          const role = await roleOf(r, caches);
          const g = await generateKey(role.key_type, role.key_type === 'any' ? 0 : roleKeyBits(role.key_type, role.key_bits), false);
          const { cert, ca, warnings } = await issueFor(r, role, caches, new (x509().PublicKey)(g.spki), g.type);
          return { data: formatIssued(r, { certificate: cert.pem, issuing_ca: ca.certificate, ca_chain: [ca.certificate, ...ca.ca_chain], private_key: g.pkcs8, private_key_type: g.type, serial_number: cert.serial, expiration: Math.floor(cert.notAfter.getTime() / 1000) }), warnings };
        },
      },
    },
    {
      pattern: `sign/${ROLE}`,
      fields: { ...fields, csr: { type: 'string', required: true, description: 'PEM certificate signing request.' } },
      synopsis: 'Sign a CSR under a role.',
      description: 'The CSR\'s own signature is verified and its key must fit the role (key_type rsa|ec|ed25519|any, key_bits as a minimum; RSA below 2048 bits never); names come from the request fields (or the CSR\'s CN) and are checked against the role.',
      operations: {
        update: async (r) => {
          const role = await roleOf(r, caches);
          const csr = await readCsr(r.data.str('csr'));
          checkKeyForRole(role, csr.key);
          const { cert, ca, warnings } = await issueFor(r, role, caches, csr.publicKey, csr.key.type, csr);
          return { data: formatIssued(r, { certificate: cert.pem, issuing_ca: ca.certificate, ca_chain: [ca.certificate, ...ca.ca_chain], serial_number: cert.serial, expiration: Math.floor(cert.notAfter.getTime() / 1000) }), warnings };
        },
      },
    },
  ];
}
