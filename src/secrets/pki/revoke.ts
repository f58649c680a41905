// revoke, crl (DER), crl/pem, cert/crl, issuer/<ref>/crl[/pem|/der]: one CRL per issuer, as
// in current Vault. A CRL is built when revocations change (revoke, crl/rotate, tidy,
// config/crl) and stored; reads serve the stored one, never re-signing it (only a missing or
// expired CRL is built on a read).
import { getJson, putJson, type Storage } from '../../storage/storage';
import { pem } from '../../goplugin/der';
import { UserError, rawResponse, type PathDef } from '../framework';
import { crlConfig } from './maintenance';
import { crlNumberExtension, keyIdentifier, serialKey, x509 } from './ca';
import { PLACEHOLDER_ALGORITHM, PLACEHOLDER_CRYPTO, signWritten, withSignatureAlgorithm } from './cert-writer';
import type { PkiCaches } from './index';
import { revokedIssuersSignedBy, type ReadyIssuer } from './issuers';
import { ISSUER_REF } from './issuer-ref';
import { findDefaultIssuer, noContent } from './fetch';

/** A certificate this mount issued (or was given to revoke), at pki/certs/<serial>. */
export interface CertRecord {
  certificate: string;
  revocation_time?: number;
  issuer_id?: string;
}
interface StoredCrl {
  number: number;
  der: string;
  next_update: number;
}

/** Storage prefix of the built CRLs, one per issuer_id. */
export const CRL_PREFIX = 'pki/crls/';
const crlKey = (issuerId: string) => `${CRL_PREFIX}${issuerId}`;

/** Was this certificate issued by this issuer? By the issuer_id recorded since issuers exist, else by key identifier. */
function issuedBy(rec: CertRecord, ready: ReadyIssuer, issuerKeyId: string): boolean {
  if (rec.issuer_id) return rec.issuer_id === ready.entry.issuer_id;
  const X = x509();
  try {
    return new X.X509Certificate(rec.certificate).getExtension(X.AuthorityKeyIdentifierExtension)?.keyId === issuerKeyId;
  } catch {
    return false;
  }
}

/** Build, sign (in the HSM for managed keys) and store a fresh CRL of this issuer's revoked certificates. */
export async function buildCrl(storage: Storage, caches: PkiCaches, ref = 'default'): Promise<{ pem: string; der: Buffer }> {
  const X = x509();
  const ready = await caches.ca.require(storage, ref);
  // The issuer's revocation_signature_algorithm (a root's own, from root/generate), else its key's default.
  const named = ready.entry.revocation_signature_algorithm;
  const signer = named ? withSignatureAlgorithm(await ready.signer(), named) : await ready.signer();
  const config = await crlConfig(storage);
  const caCert = new X.X509Certificate(ready.entry.certificate);
  const keyId = keyIdentifier(Buffer.from(caCert.publicKey.rawData)).toString('hex');
  const entries: Array<{ serialNumber: string; revocationDate: Date }> = [];
  if (!config.disable) {
    for (const k of await storage.list('pki/certs/')) {
      const rec = await getJson<CertRecord>(storage, `pki/certs/${k}`);
      if (rec?.revocation_time && issuedBy(rec, ready, keyId))
        entries.push({ serialNumber: k.replace(/-/g, ''), revocationDate: new Date(rec.revocation_time * 1000) });
    }
    // Issuers of this mount it signed and issuer/<ref>/revoke revoked, as current Vault lists them.
    const listed = new Set(entries.map((e) => e.serialNumber));
    for (const c of revokedIssuersSignedBy(await caches.ca.registry(storage), ready.entry))
      if (!listed.has(c.serial)) entries.push({ serialNumber: c.serial, revocationDate: new Date(c.revocation_time * 1000) });
  }
  const prev = await getJson<StoredCrl>(storage, crlKey(ready.entry.issuer_id));
  const number = Math.max(prev?.number ?? 0, ready.entry.crl_number) + 1;
  const nextUpdate = new Date(Date.now() + config.expiry * 1000);
  // @peculiar/x509 writes the TBSCertList (with a placeholder signature); signWritten signs it.
  const unsigned = await X.X509CrlGenerator.create(
    {
      issuer: caCert.subject,
      thisUpdate: new Date(),
      nextUpdate,
      entries,
      signingAlgorithm: PLACEHOLDER_ALGORITHM,
      signingKey: { algorithm: PLACEHOLDER_ALGORITHM } as never,
      extensions: [ready.issuer.authorityKeyId, crlNumberExtension(number)],
    },
    PLACEHOLDER_CRYPTO as never,
  );
  const der = await signWritten(Buffer.from(unsigned.rawData), signer, 1);
  await putJson(storage, crlKey(ready.entry.issuer_id), { number, der: der.toString('base64'), next_update: nextUpdate.getTime() } satisfies StoredCrl);
  return { pem: crlPem(der), der };
}

// RFC 7468's label is "X509 CRL" (the library writes "CRL", which OpenSSL refuses).
const crlPem = (der: Buffer) => pem(der, 'X509 CRL');

/** The issuer's stored CRL; built only when there is none yet or it has expired. */
export async function currentCrl(storage: Storage, caches: PkiCaches, ref = 'default'): Promise<{ pem: string; der: Buffer }> {
  const ready = await caches.ca.require(storage, ref);
  const stored = await getJson<StoredCrl>(storage, crlKey(ready.entry.issuer_id));
  if (stored && stored.next_update > Date.now()) {
    const der = Buffer.from(stored.der, 'base64');
    return { pem: crlPem(der), der };
  }
  return buildCrl(storage, caches, ready.entry.issuer_id);
}

/** Rebuild the CRL of every issuer that has a key (crl/rotate, tidy, config/crl). */
export async function rebuildAllCrls(storage: Storage, caches: PkiCaches): Promise<void> {
  const reg = await caches.ca.registry(storage);
  for (const i of reg.issuers.values()) if (reg.keys.has(i.key_id)) await buildCrl(storage, caches, i.issuer_id);
}

/**
 * Revoke the stored certificate `rec` (serial in display form) and rebuild its issuer's CRL
 * (every CRL when its issuer is unknown); an issuer's own certificate is refused (issuer/<ref>/revoke
 * revokes an issuer). Revoking twice answers the first revocation's time.
 */
export async function revokeStored(storage: Storage, caches: PkiCaches, serial: string, rec: CertRecord) {
  const X = x509();
  const reg = await caches.ca.registry(storage);
  const bare = serial.replace(/:/g, '');
  if ([...reg.issuers.values()].some((i) => new X.X509Certificate(i.certificate).serialNumber.toLowerCase() === bare))
    throw new UserError("refusing to revoke an issuer's own certificate");
  const time = rec.revocation_time ?? Math.floor(Date.now() / 1000);
  if (!rec.revocation_time) await putJson(storage, serialKey(serial), { ...rec, revocation_time: time });
  if (rec.issuer_id && reg.issuers.has(rec.issuer_id)) await buildCrl(storage, caches, rec.issuer_id);
  else await rebuildAllCrls(storage, caches);
  return { data: { revocation_time: time, revocation_time_rfc3339: new Date(time * 1000).toISOString() } };
}

/** revoke, crl[/pem], cert/crl and issuer/<ref>/crl[/pem|/der]. */
export function revokePaths(caches: PkiCaches): PathDef[] {
  const serve = (crl: { pem: string; der: Buffer }, as: string) =>
    as === 'pem' ? rawResponse(crl.pem, 'application/x-pem-file') : rawResponse(crl.der, 'application/pkix-crl');
  return [
    {
      pattern: 'crl(?<pem>/pem)?',
      fields: { pem: { type: 'string', description: '' } },
      synopsis: "The default issuer's CRL: DER, or PEM at crl/pem.",
      description: "Served raw, as Vault's PKI does.",
      operations: {
        read: async (r) => {
          if (!(await findDefaultIssuer(caches, r.storage))) return noContent('application/pkix-crl');
          return serve(await currentCrl(r.storage, caches), r.data.str('pem') ? 'pem' : 'der');
        },
      },
    },
    {
      pattern: 'cert/crl',
      fields: {},
      synopsis: "The default issuer's CRL as JSON ({certificate: PEM}).",
      description: 'For API clients.',
      operations: {
        // No CA yet: no CRL (Vault's 404).
        read: async (r) =>
          (await findDefaultIssuer(caches, r.storage)) ? { data: { certificate: (await currentCrl(r.storage, caches)).pem, revocation_time: 0 } } : undefined,
      },
    },
    {
      pattern: `issuer/${ISSUER_REF}/crl(?:/(?<format>pem|der))?`,
      fields: { issuer_ref: { type: 'string', description: 'The issuer: issuer_id, issuer_name or "default".' }, format: { type: 'string', description: '' } },
      synopsis: "An issuer's CRL: JSON ({crl: PEM}), or raw at /pem and /der.",
      description: 'As current Vault.',
      operations: {
        read: async (r) => {
          const crl = await currentCrl(r.storage, caches, r.data.str('issuer_ref'));
          const f = r.data.str('format');
          return f ? serve(crl, f) : { data: { crl: crl.pem } };
        },
      },
    },
  ];
}
