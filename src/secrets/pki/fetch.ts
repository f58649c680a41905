// ca, ca/pem, cert/ca, ca_chain, cert/ca_chain, cert/<serial>, certs/
import { getJson } from '../../storage/storage';
import { UserError, rawResponse, type PathDef } from '../framework';
import { displaySerial, serialKey, x509 } from './ca';
import type { PkiCaches } from './index';

/** PEM certificates one after another, as Vault joins a chain: each trimmed, one newline between. */
export const pemChain = (pems: string[]): string => pems.map((p) => p.trim()).join('\n');

type Store = Parameters<PkiCaches['ca']['registry']>[0];

/** The mount's default issuer, or undefined before the mount has a CA (Vault then answers 204 or 404, not an error). */
export const findDefaultIssuer = async (caches: PkiCaches, s: Store) => (await caches.ca.registry(s)).findIssuer('default');

/** A raw read before the mount has a CA: Vault's 204 with the content type the path serves. */
export const noContent = (contentType: string) => ({ data: { http_content_type: contentType, http_raw_body: '', http_status_code: 204 } });

/** ca, ca_chain and cert/ca serve the default issuer, as in current Vault. */
export function fetchPaths(caches: PkiCaches): PathDef[] {
  const defaultIssuer = async (s: Store) => (await caches.ca.require(s)).entry;
  return [
    {
      pattern: 'ca(?<pem>/pem)?',
      fields: { pem: { type: 'string', description: '' } },
      synopsis: 'The CA certificate: DER, or PEM at ca/pem.',
      description: "Served raw, as Vault's PKI does.",
      operations: {
        read: async (r) => {
          const ca = await findDefaultIssuer(caches, r.storage);
          if (!ca) return noContent('application/pkix-cert');
          return r.data.str('pem')
            ? rawResponse(ca.certificate, 'application/pem-certificate-chain')
            : rawResponse(Buffer.from(new (x509().X509Certificate)(ca.certificate).rawData), 'application/pkix-cert');
        },
      },
    },
    {
      pattern: 'ca_chain',
      fields: {},
      synopsis: 'The CA certificate followed by its issuers, as raw PEM.',
      description: "As current Vault: the chain includes the mount's own CA certificate.",
      operations: {
        read: async (r) => {
          const ca = await findDefaultIssuer(caches, r.storage);
          if (!ca) return noContent('application/pkix-cert');
          return rawResponse(pemChain([ca.certificate, ...ca.ca_chain]), 'application/pem-certificate-chain');
        },
      },
    },
    {
      pattern: 'cert/ca_chain',
      fields: {},
      synopsis: 'The CA certificate followed by its issuers, as PEM in JSON.',
      description: '',
      operations: {
        read: async (r) => {
          const ca = await defaultIssuer(r.storage);
          return { data: { certificate: pemChain([ca.certificate, ...ca.ca_chain]), ca_chain: [ca.certificate, ...ca.ca_chain] } };
        },
      },
    },
    {
      pattern: 'cert/(?<serial>ca|[0-9A-Fa-f:-]+)',
      fields: { serial: { type: 'string', description: 'Serial number, or "ca".' } },
      synopsis: 'A certificate issued by this mount, by serial.',
      description: 'Includes revocation_time (0 if not revoked).',
      operations: {
        read: async (r) => {
          if (r.data.str('serial') === 'ca') {
            const ca = await findDefaultIssuer(caches, r.storage);
            return ca ? { data: { certificate: ca.certificate, revocation_time: 0 } } : undefined; // no CA yet: Vault's 404
          }
          const s = displaySerial(r.data.str('serial'));
          if (!s) throw new UserError('invalid serial');
          const rec = await getJson<{ certificate: string; revocation_time?: number }>(r.storage, serialKey(s));
          return rec ? { data: { certificate: rec.certificate, revocation_time: rec.revocation_time ?? 0 } } : undefined;
        },
      },
    },
    {
      // Current Vault (1.11+): the certificate alone, DER or PEM, for a relying party with no JSON parser.
      pattern: 'cert/(?<serial>ca|[0-9A-Fa-f:-]+)/raw(?<pem>/pem)?',
      fields: { serial: { type: 'string', description: 'Serial number, or "ca".' }, pem: { type: 'string', description: '' } },
      synopsis: 'A certificate issued by this mount (or the CA), raw: DER, or PEM at .../raw/pem.',
      description: "Served raw, as Vault's PKI does.",
      operations: {
        read: async (r) => {
          let pem: string | undefined;
          if (r.data.str('serial') === 'ca') pem = (await defaultIssuer(r.storage)).certificate;
          else {
            const s = displaySerial(r.data.str('serial'));
            if (!s) throw new UserError('invalid serial');
            pem = (await getJson<{ certificate: string }>(r.storage, serialKey(s)))?.certificate;
          }
          if (!pem) return undefined;
          return r.data.str('pem')
            ? rawResponse(pem, 'application/pem-certificate-chain')
            : rawResponse(Buffer.from(new (x509().X509Certificate)(pem).rawData), 'application/pkix-cert');
        },
      },
    },
    {
      pattern: 'certs/revoked/?',
      fields: {},
      synopsis: 'List the serial numbers of revoked certificates (current Vault).',
      description: '',
      operations: {
        list: async (r) => {
          const keys: string[] = [];
          for (const k of await r.storage.list('pki/certs/')) {
            const rec = await getJson<{ revocation_time?: number }>(r.storage, `pki/certs/${k}`);
            if (rec?.revocation_time) keys.push(k.replace(/-/g, ':'));
          }
          return { data: { keys } };
        },
      },
    },
    {
      pattern: 'certs/?',
      fields: {},
      synopsis: 'List the serial numbers of issued certificates.',
      description: '',
      operations: { list: async (r) => ({ data: { keys: (await r.storage.list('pki/certs/')).map((k) => k.replace(/-/g, ':')) } }) },
    },
  ];
}
