// config/urls: where clients find the CA certificate, the CRL and OCSP. Stored per mount
// and written into every certificate issued afterwards (AIA and CRL distribution points),
// as Vault's PKI does.
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError, type PathDef } from '../framework';
import { x509 } from './ca';

/** config/urls: the AIA and CRL distribution point URLs written into issued certificates. */
export interface UrlsConfig {
  issuing_certificates: string[];
  crl_distribution_points: string[];
  ocsp_servers: string[];
}
/** Storage key of UrlsConfig. */
export const URLS_KEY = 'pki/config/urls';
const FIELDS = ['issuing_certificates', 'crl_distribution_points', 'ocsp_servers'] as const;

/** config/urls, or undefined when no URL is set (certificates then carry no AIA or CRL DP). */
export async function loadUrls(s: Storage): Promise<UrlsConfig | undefined> {
  const u = await getJson<UrlsConfig>(s, URLS_KEY);
  return u && FIELDS.some((f) => u[f]?.length) ? u : undefined;
}

/**
 * Current Vault's warning when a CA certificate is made (root/generate, sign-intermediate) or
 * CA certificates are imported (intermediate/set-signed, config/ca, issuers/import/*) while
 * config/urls has no URL at all; Vault 1.8 gave none. intermediate/generate says more.
 */
export const NO_AIA_WARNING =
  "This mount hasn't configured any authority information access (AIA) fields; this may make it harder for systems to find missing certificates in the chain or to validate revocation status of certificates. Consider updating /config/urls or the newly generated issuer with this information.";
export const NO_AIA_INTERMEDIATE_WARNING = `${NO_AIA_WARNING} Since this certificate is an intermediate, it might be useful to regenerate this certificate after fixing this problem for the root mount.`;

/** The AIA and CRL DP extensions for these URLs (none for empty lists). */
export function urlExtensions(u: UrlsConfig) {
  const X = x509();
  const out = [];
  if (u.issuing_certificates.length || u.ocsp_servers.length) {
    out.push(
      new X.AuthorityInfoAccessExtension({
        caIssuers: u.issuing_certificates.map((v) => new X.GeneralName('url', v)),
        ocsp: u.ocsp_servers.map((v) => new X.GeneralName('url', v)),
      }),
    );
  }
  if (u.crl_distribution_points.length) out.push(new X.CRLDistributionPointsExtension(u.crl_distribution_points));
  return out;
}

function checkUrls(field: string, urls: string[]): void {
  for (const u of urls) {
    let ok = false;
    try {
      ok = ['http:', 'https:', 'ldap:'].includes(new URL(u).protocol);
    } catch {
      /* refused below */
    }
    if (!ok) throw new UserError(`${field}: invalid URL "${String(u).slice(0, 80)}"`);
  }
}

/** config/urls (read, write). */
export function urlPaths(): PathDef[] {
  const list = (d: string) => ({ type: 'strings' as const, default: [], description: d });
  return [
    {
      pattern: 'config/urls',
      fields: {
        issuing_certificates: list('URLs of the CA certificate (Authority Information Access, CA Issuers).'),
        crl_distribution_points: list('URLs of the CRL (CRL Distribution Points).'),
        ocsp_servers: list('OCSP responder URLs (Authority Information Access, OCSP).'),
      },
      synopsis: 'Read or set the URLs written into issued certificates.',
      description: 'They apply to certificates issued after the write.',
      operations: {
        read: async (r) => ({
          data: { ...{ issuing_certificates: [], crl_distribution_points: [], ocsp_servers: [] }, ...(await getJson<UrlsConfig>(r.storage, URLS_KEY)) },
        }),
        update: async (r) => {
          const cur = (await getJson<UrlsConfig>(r.storage, URLS_KEY)) ?? { issuing_certificates: [], crl_distribution_points: [], ocsp_servers: [] };
          for (const f of FIELDS)
            if (r.data.has(f)) {
              checkUrls(f, r.data.get(f));
              cur[f] = r.data.get(f);
            }
          await putJson(r.storage, URLS_KEY, cur);
          return undefined;
        },
      },
    },
  ];
}
