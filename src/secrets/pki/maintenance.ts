// config/crl, crl/rotate and sign-verbatim (tidy: tidy.ts): the rest of Vault's PKI API that clients
// and operators' scripts call.
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError, parseDuration, type FieldDef, type PathDef, type Request } from '../framework';
import { goDuration, type Role } from './certificates';
import { checkKeyForRole } from './keys';
import { readCsr, type ParsedCsr } from './csr';
import { csrSubject } from './sign-ca';
import { OTHER_SANS_FIELD, OUTPUT_FIELDS, formatIssued } from './issue-options';
import { ROLE_EXTRA_FIELDS, withDefaults } from './role-fields';
import { nameGroup } from '../../schema';
import { REMOVE_ROOTS_FIELD, issued, issueFor } from './issue';
import type { PkiCaches } from './index';
import { rebuildAllCrls } from './revoke';
import { ISSUER_REF } from './issuer-ref';
import { NOT_AFTER_FIELD } from './ttl';
import { SIGNATURE_FIELDS } from './cert-writer';

const ROLE = nameGroup('role');

interface CrlConfig {
  expiry: number;
  disable: boolean;
  /** Current Vault (1.12+): the OCSP responder answers "unauthorized" when set. */
  ocsp_disable?: boolean;
  /** Current Vault (1.12+): how long an OCSP response is valid (its nextUpdate), as given ("12h"; "0": no nextUpdate). */
  ocsp_expiry?: string;
}
const CRL_CONFIG_KEY = 'pki/config/crl';
const DEFAULT_CRL_EXPIRY = 72 * 3600;
const DEFAULT_OCSP_EXPIRY = '12h';

/** config/crl as stored, with Vault's defaults (expiry 72h, enabled; OCSP on, 12h) for what was never set. */
export async function crlConfig(s: Storage): Promise<Required<CrlConfig>> {
  const c = await getJson<CrlConfig>(s, CRL_CONFIG_KEY);
  return {
    expiry: c?.expiry || DEFAULT_CRL_EXPIRY,
    disable: c?.disable ?? false,
    ocsp_disable: c?.ocsp_disable ?? false,
    ocsp_expiry: c?.ocsp_expiry ?? DEFAULT_OCSP_EXPIRY,
  };
}

/**
 * sign-verbatim signs what the CSR says (its subject CN, O, OU, C, ST, L, street, postalCode, and its SANs; the request's name fields are
 * taken and ignored, as in Vault), as a role that allows any name and key would. Key usages
 * come from the request (other_sans are added, as current Vault allows any; Vault 1.8 refused
 * them); with a role (sign-verbatim/<role>) its ttl, max_ttl, no_store,
 * generate_lease, not_before_duration and issuer apply, as in Vault.
 */
async function verbatimRole(r: Request, caches: PkiCaches, csr: ParsedCsr): Promise<Role> {
  const name = r.data.str('role');
  const role = name ? await caches.roles.get(r.storage, name) : undefined;
  if (name && !role) throw new UserError(`unknown role: ${name}`);
  const from = role ? withDefaults(role) : undefined;
  const subject = csrSubject(csr);
  const attr = (a: string) => subject.subjectExtra!.filter(([t]) => t === a).map(([, v]) => v);
  return {
    allowed_domains: [],
    allow_subdomains: false,
    allow_bare_domains: false,
    allow_any_name: true,
    allow_localhost: true,
    allow_ip_sans: true,
    allow_wildcard_certificates: true,
    enforce_hostnames: false,
    server_flag: false,
    client_flag: false,
    key_type: 'any',
    key_bits: 0,
    ttl: from?.ttl ?? 0,
    max_ttl: from?.max_ttl ?? 0,
    ou: subject.ou!,
    organization: subject.organization!,
    ...{
      require_cn: false,
      use_csr_common_name: true,
      use_csr_sans: true,
      allowed_uri_sans: ['*'],
      allowed_other_sans: ['*'],
      allowed_serial_numbers: ['*'],
      country: attr('C'),
      province: attr('ST'),
      locality: attr('L'),
      street_address: attr('2.5.4.9'),
      postal_code: attr('2.5.4.17'),
      key_usage: r.data.get('key_usage'),
      ext_key_usage: r.data.get('ext_key_usage'),
      ext_key_usage_oids: r.data.get('ext_key_usage_oids'),
      ...(from
        ? { no_store: from.no_store, generate_lease: from.generate_lease, not_before_duration: from.not_before_duration, issuer_ref: from.issuer_ref }
        : {}),
      // Current Vault: the request's (sign-verbatim's own fields), whatever the role says.
      signature_bits: r.data.int('signature_bits'),
      use_pss: r.data.bool('use_pss'),
      // Current Vault: the request's, else the role's (Vault 1.8 had no such field here).
      basic_constraints_valid_for_non_ca: r.data.has('basic_constraints_valid_for_non_ca')
        ? r.data.bool('basic_constraints_valid_for_non_ca')
        : (from?.basic_constraints_valid_for_non_ca ?? false),
    },
  } as Role;
}

/** What sign-verbatim takes: Vault's sign/ fields, most of them ignored for the CSR's values. */
const VERBATIM_FIELDS: Record<string, FieldDef> = {
  csr: { type: 'string', required: true, description: 'PEM certificate signing request.' },
  role: { type: 'string', description: 'A role whose ttl, max_ttl, no_store, generate_lease, not_before_duration and issuer apply (optional).' },
  ttl: {
    type: 'duration',
    default: 0,
    description: "Validity (default: the role's ttl, else the mount's default lease TTL, capped by the role's max_ttl or the mount's max lease TTL).",
  },
  key_usage: ROLE_EXTRA_FIELDS.key_usage,
  ext_key_usage: ROLE_EXTRA_FIELDS.ext_key_usage,
  ext_key_usage_oids: ROLE_EXTRA_FIELDS.ext_key_usage_oids,
  basic_constraints_valid_for_non_ca: {
    type: 'bool',
    default: false,
    description: "Put Basic Constraints (CA:FALSE) into the certificate (default: the role's setting).",
  },
  other_sans: { ...OTHER_SANS_FIELD, description: 'otherName SANs added to the CSR\'s, "<oid>;UTF8:<value>" each.' },
  not_after: NOT_AFTER_FIELD,
  remove_roots_from_chain: REMOVE_ROOTS_FIELD,
  ...SIGNATURE_FIELDS,
  ...Object.fromEntries(
    ['common_name', 'alt_names', 'ip_sans', 'uri_sans', 'serial_number', 'exclude_cn_from_sans'].map((f) => [
      f,
      {
        type: f === 'exclude_cn_from_sans' ? 'bool' : f === 'common_name' || f === 'serial_number' ? 'string' : 'strings',
        description: "Taken as Vault takes it and ignored: the certificate has the CSR's subject and SANs.",
      } satisfies FieldDef,
    ]),
  ),
  ...OUTPUT_FIELDS,
};

/** config/crl, crl/rotate and [issuer/<ref>/]sign-verbatim[/<role>]. */
export function maintenancePaths(caches: PkiCaches): PathDef[] {
  return [
    {
      pattern: 'config/crl',
      fields: {
        expiry: { type: 'duration', default: DEFAULT_CRL_EXPIRY, description: 'How long a CRL is valid (its nextUpdate).' },
        disable: { type: 'bool', default: false, description: 'Build empty CRLs (no revoked certificates listed), as Vault does when CRLs are disabled.' },
        ocsp_disable: { type: 'bool', default: false, description: 'Turn the OCSP responder (ocsp/) off: it then answers "unauthorized".' },
        ocsp_expiry: {
          type: 'string',
          default: DEFAULT_OCSP_EXPIRY,
          description: 'How long an OCSP response is valid (its nextUpdate after thisUpdate); "0" leaves nextUpdate out.',
        },
      },
      synopsis: 'Read or set how long CRLs are valid.',
      description: "Every issuer's CRL is rebuilt with the new settings.",
      operations: {
        read: async (r) => {
          const c = await crlConfig(r.storage);
          return { data: { expiry: goDuration(c.expiry), disable: c.disable, ocsp_disable: c.ocsp_disable, ocsp_expiry: c.ocsp_expiry } };
        },
        update: async (r) => {
          // As Vault: a field left out keeps its stored value (config/crl disable=true keeps the expiry).
          const c = await getJson<CrlConfig>(r.storage, CRL_CONFIG_KEY);
          const expiry = r.data.has('expiry') ? r.data.int('expiry') : c?.expiry || DEFAULT_CRL_EXPIRY;
          if (expiry <= 0) throw new UserError('expiry must be positive');
          const disable = r.data.has('disable') ? r.data.bool('disable') : (c?.disable ?? false);
          const ocsp_disable = r.data.has('ocsp_disable') ? r.data.bool('ocsp_disable') : (c?.ocsp_disable ?? false);
          // Kept as given (Vault stores and reads back the string), once it parses as a duration.
          const ocsp_expiry = r.data.has('ocsp_expiry') ? r.data.str('ocsp_expiry') : (c?.ocsp_expiry ?? DEFAULT_OCSP_EXPIRY);
          parseDuration(ocsp_expiry, 'ocsp_expiry');
          await putJson(r.storage, CRL_CONFIG_KEY, { expiry, disable, ocsp_disable, ocsp_expiry } satisfies CrlConfig);
          await rebuildAllCrls(r.storage, caches);
          return undefined;
        },
      },
    },
    {
      pattern: 'crl/rotate',
      fields: {},
      synopsis: "Rebuild every issuer's CRL now.",
      description: '',
      operations: {
        read: async (r) => {
          await rebuildAllCrls(r.storage, caches);
          return { data: { success: true } };
        },
      },
    },
    ...['sign-verbatim', `sign-verbatim/${ROLE}`, `issuer/${ISSUER_REF}/sign-verbatim`, `issuer/${ISSUER_REF}/sign-verbatim/${ROLE}`].map(
      (pattern): PathDef => ({
        pattern,
        fields: {
          ...VERBATIM_FIELDS,
          issuer_ref: pattern.startsWith('issuer/')
            ? { type: 'string', description: 'The issuer: issuer_id, issuer_name or "default".' }
            : {
                type: 'string',
                description: 'The issuer to sign with (issuer_id, issuer_name or "default"; default: the role\'s issuer, else the default issuer).',
              },
        },
        synopsis: 'Sign a CSR as it is: its subject CN and SANs, any key type Vault accepts.',
        description: 'A privileged endpoint (no role checks names): grant it only to operators.',
        operations: {
          update: async (r) => {
            const csr = await readCsr(r.data.str('csr'));
            checkKeyForRole({ key_type: 'any', key_bits: 0 }, csr.key); // Vault's minimums only
            const { cert, ready, warnings } = await issueFor(r, await verbatimRole(r, caches, csr), caches, csr.publicKey, csr.key.type, csr, true);
            return {
              data: formatIssued(r, issued(cert, ready, r.data.bool('remove_roots_from_chain'))),
              warnings,
            };
          },
        },
      }),
    ),
  ];
}
