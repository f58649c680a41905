// config/crl, crl/rotate, tidy and sign-verbatim: the rest of Vault's PKI API that clients
// and operators' scripts call.
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError, type PathDef } from '../framework';
import { x509 } from './ca';
import { goDuration, type Role } from './certificates';
import { checkKeyForRole } from './keys';
import { readCsr } from './csr';
import { OTHER_SANS_FIELD, OUTPUT_FIELDS, SERIAL_NUMBER_FIELD, formatIssued } from './issue-options';
import { issueFor } from './issue';
import type { PkiCaches } from './index';
import { rebuildAllCrls } from './revoke';
import { ISSUER_REF } from './issuer-ref';

interface CrlConfig { expiry: number; disable: boolean }
const CRL_CONFIG_KEY = 'pki/config/crl';
const DEFAULT_CRL_EXPIRY = 72 * 3600;

export async function crlConfig(s: Storage): Promise<CrlConfig> {
  const c = await getJson<CrlConfig>(s, CRL_CONFIG_KEY);
  return { expiry: c?.expiry || DEFAULT_CRL_EXPIRY, disable: c?.disable ?? false };
}

/** Vault answers tidy with 202 Accepted and a warning; the body is a JSON response. */
function accepted(warning: string) {
  return { data: { http_content_type: 'application/json', http_raw_body: Buffer.from(JSON.stringify({ request_id: '', lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: [warning], auth: null })).toString('base64'), http_status_code: 202 } };
}

/** sign-verbatim signs what the CSR says, as a role that allows any name and key would. */
const VERBATIM_ROLE: Role = {
  allowed_domains: [], allow_subdomains: false, allow_bare_domains: false, allow_any_name: true, allow_localhost: true, allow_ip_sans: true,
  enforce_hostnames: false, server_flag: true, client_flag: true, key_type: 'any', key_bits: 0, ttl: 0, max_ttl: 0, ou: [], organization: [],
  ...{ require_cn: false, use_csr_common_name: true, use_csr_sans: true, allowed_uri_sans: ['*'], allowed_other_sans: ['*'], allowed_serial_numbers: ['*'] },
} as Role;

export function maintenancePaths(caches: PkiCaches): PathDef[] {
  return [
    {
      pattern: 'config/crl',
      fields: {
        expiry: { type: 'duration', default: DEFAULT_CRL_EXPIRY, description: 'How long a CRL is valid (its nextUpdate).' },
        disable: { type: 'bool', default: false, description: 'Build empty CRLs (no revoked certificates listed), as Vault does when CRLs are disabled.' },
      },
      synopsis: 'Read or set how long CRLs are valid.',
      description: 'Every issuer\'s CRL is rebuilt with the new settings.',
      operations: {
        read: async (r) => {
          const c = await getJson<CrlConfig>(r.storage, CRL_CONFIG_KEY);
          return { data: { expiry: goDuration(c?.expiry || DEFAULT_CRL_EXPIRY), disable: c?.disable ?? false } };
        },
        update: async (r) => {
          const expiry = r.data.int('expiry');
          if (expiry <= 0) throw new UserError('expiry must be positive');
          await putJson(r.storage, CRL_CONFIG_KEY, { expiry, disable: r.data.bool('disable') } satisfies CrlConfig);
          await rebuildAllCrls(r.storage, caches);
          return undefined;
        },
      },
    },
    {
      pattern: 'crl/rotate',
      fields: {},
      synopsis: 'Rebuild every issuer\'s CRL now.',
      description: '',
      operations: { read: async (r) => { await rebuildAllCrls(r.storage, caches); return { data: { success: true } }; } },
    },
    {
      pattern: 'tidy',
      fields: {
        tidy_cert_store: { type: 'bool', default: false, description: 'Remove expired certificates from storage.' },
        tidy_revoked_certs: { type: 'bool', default: false, description: 'Remove revoked certificates that have expired.' },
        safety_buffer: { type: 'duration', default: 72 * 3600, description: 'Only certificates expired for longer than this are removed.' },
      },
      synopsis: 'Remove certificates that expired more than safety_buffer ago.',
      description: 'Answers 202 as Vault does; the work is done before the answer (it is a storage scan).',
      operations: {
        update: async (r) => {
          const X = x509();
          const cutoff = Date.now() - r.data.int('safety_buffer') * 1000;
          const store = r.data.bool('tidy_cert_store'), revoked = r.data.bool('tidy_revoked_certs');
          let removed = false;
          for (const k of await r.storage.list('pki/certs/')) {
            const rec = await getJson<{ certificate: string; revocation_time?: number }>(r.storage, `pki/certs/${k}`);
            if (!rec) continue;
            const expired = new X.X509Certificate(rec.certificate).notAfter.getTime() < cutoff;
            if (expired && ((store && !rec.revocation_time) || (revoked && rec.revocation_time))) { await r.storage.delete(`pki/certs/${k}`); removed ||= Boolean(rec.revocation_time); }
          }
          if (removed) await rebuildAllCrls(r.storage, caches);
          return accepted('Tidy operation successfully started. Any information from the operation will be printed to Vault\'s server logs.');
        },
      },
    },
    ...['sign-verbatim', `issuer/${ISSUER_REF}/sign-verbatim`].map((pattern): PathDef => ({
      pattern,
      fields: {
        csr: { type: 'string', required: true, description: 'PEM certificate signing request.' },
        ttl: { type: 'duration', default: 0, description: 'Validity (default 30 days, capped by the mount\'s max lease TTL).' },
        issuer_ref: { type: 'string', default: 'default', description: 'The issuer to sign with (issuer_id, issuer_name or "default").' },
        common_name: { type: 'string', description: 'CN of the certificate when the CSR has none.' },
        exclude_cn_from_sans: { type: 'bool', default: false, description: 'Do not repeat the CN as a DNS (or email) SAN.' },
        other_sans: OTHER_SANS_FIELD,
        serial_number: SERIAL_NUMBER_FIELD,
        ...OUTPUT_FIELDS,
      },
      synopsis: 'Sign a CSR as it is: its subject CN and SANs, any key type Vault accepts.',
      description: 'A privileged endpoint (no role checks names): grant it only to operators.',
      operations: {
        update: async (r) => {
          const csr = await readCsr(r.data.str('csr'));
          checkKeyForRole({ key_type: 'any', key_bits: 0 }, csr.key); // Vault's minimums only
          const { cert, ready, warnings } = await issueFor(r, VERBATIM_ROLE, caches, csr.publicKey, csr.key.type, csr);
          return { data: formatIssued(r, { certificate: cert.pem, issuing_ca: ready.entry.certificate, ca_chain: ready.chain, serial_number: cert.serial, expiration: Math.floor(cert.notAfter.getTime() / 1000) }), warnings };
        },
      },
    })),
  ];
}
