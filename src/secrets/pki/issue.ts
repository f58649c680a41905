// issue/<role>, sign/<role>
import { webcrypto } from 'node:crypto';
import { putJson } from '../../storage/storage';
import { UserError, type PathDef, type Request } from '../framework';
import type { ManagedKeys } from '../managed-keys';
import { generateKeyPair, requireCa, serialKey, signerFor, x509 } from './ca';
import { checkIps, checkName, effectiveTtl, makeCertificate, type Role } from './certificates';
import { loadRole } from './roles';

const ROLE = '(?<role>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})';
const fields = {
  role: { type: 'string', description: 'Role name.' },
  common_name: { type: 'string', description: 'CN of the certificate.' },
  alt_names: { type: 'array', default: [], description: 'DNS SANs.' },
  ip_sans: { type: 'array', default: [], description: 'IP SANs.' },
  ttl: { type: 'duration', default: 0, description: 'Validity (default: the role\'s ttl, else 30 days).' },
  exclude_cn_from_sans: { type: 'bool', default: false, description: 'Do not repeat the CN as a DNS SAN.' },
} as const;
const DEFAULT_TTL = 30 * 86400;

async function issueFor(r: Request, managed: ManagedKeys, publicKey: webcrypto.CryptoKey, kind: 'ec' | 'rsa', csrNames?: { cn?: string }) {
  const role = await loadRole(r.storage, r.data.str('role'));
  if (!role) throw new UserError(`unknown role: ${r.data.str('role')}`);
  const cn = r.data.str('common_name') || csrNames?.cn || '';
  if (!cn) throw new UserError('common_name is required');
  const alt: string[] = r.data.get('alt_names');
  const ips: string[] = r.data.get('ip_sans');
  checkName(role, cn);
  for (const n of alt) checkName(role, n);
  checkIps(role, ips);
  const ca = await requireCa(r.storage);
  const X = x509();
  const signer = await signerFor(ca.key, (n) => managed.byName(n));
  const caCert = new X.X509Certificate(ca.certificate);
  const dns = [...new Set([...(r.data.bool('exclude_cn_from_sans') || !/^[A-Za-z0-9*][A-Za-z0-9.-]*$/.test(cn) || cn.includes('@') ? [] : [cn]), ...alt])];
  const warnings: string[] = [];
  const cert = await makeCertificate({
    commonName: cn, dnsNames: dns, ips, organization: role.organization, ou: role.ou,
    ttlSeconds: effectiveTtl(role, r.data.int('ttl'), DEFAULT_TTL, await r.system?.maxLeaseTtl(), warnings), isCa: false,
    serverAuth: role.server_flag, clientAuth: role.client_flag, publicKey, leafKeyKind: kind,
  }, signer, { cert: ca.certificate, notAfter: caCert.notAfter });
  await putJson(r.storage, serialKey(cert.serial), { certificate: cert.pem });
  return { cert, ca, role, warnings };
}

export function issuePaths(managed: ManagedKeys): PathDef[] {
  return [
    {
      pattern: `issue/${ROLE}`,
      fields,
      synopsis: 'Issue a certificate and its private key under a role.',
      description: 'The private key is generated here, returned once, and not stored.',
      operations: {
        update: async (r) => {
          const role: Role | undefined = await loadRole(r.storage, r.data.str('role'));
          if (!role) throw new UserError(`unknown role: ${r.data.str('role')}`);
          const g = await generateKeyPair(role.key_type, role.key_bits);
          const { cert, ca, warnings } = await issueFor(r, managed, g.pair.publicKey, g.spec.kind as 'ec' | 'rsa');
          return { data: { certificate: cert.pem, issuing_ca: ca.certificate, ca_chain: [ca.certificate, ...ca.ca_chain], private_key: g.pkcs8, private_key_type: role.key_type, serial_number: cert.serial, expiration: Math.floor(cert.notAfter.getTime() / 1000) }, warnings };
        },
      },
    },
    {
      pattern: `sign/${ROLE}`,
      fields: { ...fields, csr: { type: 'string', required: true, description: 'PEM certificate signing request.' } },
      synopsis: 'Sign a CSR under a role.',
      description: 'The CSR\'s own signature is verified; names come from the request fields (or the CSR\'s CN) and are checked against the role.',
      operations: {
        update: async (r) => {
          const X = x509();
          let csr;
          try { csr = new X.Pkcs10CertificateRequest(r.data.str('csr')); } catch { throw new UserError('csr is not a valid PEM certificate request'); }
          if (!(await csr.verify())) throw new UserError('the CSR signature does not verify');
          const pub = await csr.publicKey.export(webcrypto as never);
          const kind = pub.algorithm.name === 'ECDSA' ? 'ec' : 'rsa';
          const { cert, ca, warnings } = await issueFor(r, managed, pub, kind, { cn: /CN=([^,]+)/.exec(csr.subject)?.[1] });
          return { data: { certificate: cert.pem, issuing_ca: ca.certificate, ca_chain: [ca.certificate, ...ca.ca_chain], serial_number: cert.serial, expiration: Math.floor(cert.notAfter.getTime() / 1000) }, warnings };
        },
      },
    },
  ];
}
