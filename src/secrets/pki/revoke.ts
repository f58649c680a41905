// revoke, crl (DER), crl/pem, cert/crl
import { getJson, putJson, type Storage } from '../../storage/storage';
import { pem } from '../../goplugin/der';
import { UserError, rawResponse, type PathDef } from '../framework';
import type { ManagedKeys } from '../managed-keys';
import { crlExpirySeconds } from './maintenance';
import { crlNumberExtension, displaySerial, requireCa, saveCa, serialKey, signerFor, x509 } from './ca';

interface CertRecord { certificate: string; revocation_time?: number }

/** A fresh CRL of every revoked certificate, signed by the CA (in the HSM for kms CAs). */
export async function buildCrl(storage: Storage, managed: ManagedKeys): Promise<{ pem: string; der: Buffer }> {
  const X = x509();
  const ca = await requireCa(storage);
  const signer = await signerFor(ca.key, (n) => managed.byName(n));
  const entries: Array<{ serialNumber: string; revocationDate: Date }> = [];
  for (const k of await storage.list('pki/certs/')) {
    const rec = await getJson<CertRecord>(storage, `pki/certs/${k}`);
    if (rec?.revocation_time) entries.push({ serialNumber: k.replace(/-/g, ''), revocationDate: new Date(rec.revocation_time * 1000) });
  }
  const number = ca.crl_number + 1;
  await saveCa(storage, { ...ca, crl_number: number });
  const caCert = new X.X509Certificate(ca.certificate);
  const crl = await X.X509CrlGenerator.create({
    issuer: caCert.subject, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + (await crlExpirySeconds(storage)) * 1000),
    entries, signingAlgorithm: signer.algorithm, signingKey: signer.privateKey,
    extensions: [await X.AuthorityKeyIdentifierExtension.create(caCert, false, signer.crypto as never), crlNumberExtension(number)],
  }, signer.crypto as never);
  const der = Buffer.from(crl.rawData);
  // RFC 7468's label is "X509 CRL" (the library writes "CRL", which OpenSSL refuses).
  return { pem: pem(der, 'X509 CRL'), der };
}

export function revokePaths(managed: ManagedKeys): PathDef[] {
  return [
    {
      pattern: 'revoke',
      fields: { serial_number: { type: 'string', required: true, description: 'Serial of the certificate to revoke (hex, ":" or "-" separated).' } },
      synopsis: 'Revoke a certificate issued by this mount; the CRL is rebuilt.',
      description: 'Revoking the CA\'s own certificate is refused.',
      operations: {
        update: async (r) => {
          const serial = displaySerial(r.data.str('serial_number'));
          if (!/^([0-9a-f]{2}:)*[0-9a-f]{2}$/.test(serial)) throw new UserError('serial_number must be hex');
          const rec = await getJson<CertRecord>(r.storage, serialKey(serial));
          if (!rec) throw new UserError(`certificate with serial ${serial} not found`);
          const ca = await requireCa(r.storage);
          const X = x509();
          if (new X.X509Certificate(ca.certificate).serialNumber.toLowerCase() === serial.replace(/:/g, '')) throw new UserError('refusing to revoke the CA\'s own certificate');
          const time = rec.revocation_time ?? Math.floor(Date.now() / 1000);
          if (!rec.revocation_time) await putJson(r.storage, serialKey(serial), { ...rec, revocation_time: time });
          await buildCrl(r.storage, managed);
          return { data: { revocation_time: time, revocation_time_rfc3339: new Date(time * 1000).toISOString() } };
        },
      },
    },
    {
      pattern: 'crl(?<pem>/pem)?',
      fields: { pem: { type: 'string', description: '' } },
      synopsis: 'The current CRL: DER, or PEM at crl/pem.',
      description: 'Served raw, as Vault\'s PKI does.',
      operations: {
        read: async (r) => {
          const crl = await buildCrl(r.storage, managed);
          return r.data.str('pem') ? rawResponse(crl.pem, 'application/x-pem-file') : rawResponse(crl.der, 'application/pkix-crl');
        },
      },
    },
    {
      pattern: 'cert/crl',
      fields: {},
      synopsis: 'The current CRL as JSON ({certificate: PEM}).',
      description: 'For API clients.',
      operations: { read: async (r) => ({ data: { certificate: (await buildCrl(r.storage, managed)).pem, revocation_time: 0 } }) },
    },
  ];
}
