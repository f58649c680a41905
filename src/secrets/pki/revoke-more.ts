// revoke (by serial_number, or by certificate as current Vault 1.12+), revoke-with-key (revoke a
// certificate by proving its private key) and issuer/<ref>/revoke (revoke an issuer of the
// mount), as current Vault (1.11+) has them.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { getJson, putJson } from '../../storage/storage';
import { strictDer } from '../../goplugin/der';
import { UserError, type PathDef, type Request } from '../framework';
import { displaySerial, serialKey } from './ca';
import type { PkiCaches } from './index';
import { issuerKey, certSerialHex, signedBy } from './issuers';
import { issuerView } from './issuer-paths';
import { ISSUER_REF } from './issuer-ref';
import { rebuildAllCrls, revokeStored, type CertRecord } from './revoke';

const PEM_CERT = /-----BEGIN (?:X509 )?CERTIFICATE-----[\s\S]+?-----END (?:X509 )?CERTIFICATE-----/;

/**
 * The certificate revoke-with-key is about, and its record: the stored one for serial_number;
 * for certificate, the stored one when this mount issued it, else (as Vault) a record made for
 * it when one of the mount's issuers signed it (written by the revocation, once the key is proven).
 */
async function certificateToRevoke(r: Request, caches: PkiCaches): Promise<{ serial: string; rec: CertRecord; cert: X509Certificate }> {
  const haveSerial = r.data.has('serial_number'),
    haveCert = r.data.has('certificate');
  if (!haveSerial && !haveCert) throw new UserError('The serial number or certificate to revoke must be provided.');
  if (haveSerial && haveCert) throw new UserError('Must provide either the certificate or the serial to revoke; not both.');
  if (haveSerial) {
    const serial = displaySerial(r.data.str('serial_number'));
    if (!/^([0-9a-f]{2}:)*[0-9a-f]{2}$/.test(serial)) throw new UserError('serial_number must be hex');
    const rec = await getJson<CertRecord>(r.storage, serialKey(serial));
    if (!rec) throw new UserError(`certificate with serial ${serial} not found.`);
    return { serial, rec, cert: new X509Certificate(rec.certificate) };
  }
  const text = r.data.str('certificate');
  if (text.length < 75)
    throw new UserError('provided certificate data was too short; perhaps a path was passed to the API rather than the contents of a PEM file');
  const block = PEM_CERT.exec(text)?.[0];
  if (!block) throw new UserError('certificate contains no PEM data');
  let cert: X509Certificate;
  try {
    strictDer(block);
    cert = new X509Certificate(block);
  } catch {
    throw new UserError('certificate could not be parsed');
  }
  const serial = displaySerial(certSerialHex(cert));
  const stored = await getJson<CertRecord>(r.storage, serialKey(serial));
  if (stored) {
    if (!new X509Certificate(stored.certificate).raw.equals(cert.raw))
      throw new UserError("certificate with same serial but unequal value already present in this cluster's storage; refusing to revoke");
    return { serial, rec: stored, cert };
  }
  const reg = await caches.ca.registry(r.storage);
  for (const i of reg.issuers.values()) {
    if (signedBy(cert, new X509Certificate(i.certificate))) return { serial, rec: { certificate: cert.toString(), issuer_id: i.issuer_id }, cert };
  }
  throw new UserError(
    'unable to verify signature on presented cert from any present issuer in this mount; certificates from previous CAs will need to have their issuing CA and key re-imported if revocation is necessary',
  );
}

/** Does `keyPem` hold the private key of `cert`? Vault's checks and messages. */
function proveKey(cert: X509Certificate, keyPem: string): void {
  const block = /-----BEGIN [^-]*PRIVATE KEY-----[\s\S]+?-----END [^-]*PRIVATE KEY-----/.exec(keyPem)?.[0];
  if (!block) throw new UserError('provided key PEM block contained no data or failed to parse');
  let key: KeyObject;
  try {
    strictDer(block);
    key = createPublicKey(createPrivateKey(block));
  } catch {
    throw new UserError('failed to parse provided private key');
  }
  const certKey = cert.publicKey;
  const kind = (k: KeyObject) => (k.asymmetricKeyType === 'rsa-pss' ? 'rsa' : k.asymmetricKeyType);
  if (!['rsa', 'ec', 'ed25519'].includes(kind(certKey) ?? ''))
    throw new UserError(
      'certificate has an unknown public key algorithm; unable to validate provided private key; ask an admin to revoke this certificate instead',
    );
  if (kind(certKey) !== kind(key)) throw new UserError("provided private key type does not match certificate's public key type");
  // The whole public key (modulus and exponent; curve and point; the Ed25519 key) must be the certificate's.
  if (!certKey.equals(key)) throw new UserError("provided private key does not match certificate's public key");
}

/** revoke-with-key and issuer/<ref>/revoke. */
export function moreRevokePaths(caches: PkiCaches): PathDef[] {
  return [
    {
      pattern: 'revoke',
      fields: {
        serial_number: { type: 'string', description: 'Serial of the certificate to revoke (hex, ":" or "-" separated); or give certificate.' },
        certificate: {
          type: 'string',
          description:
            'The certificate to revoke, in PEM (current Vault): one this mount stored, or one an issuer of this mount signed (a no_store certificate).',
        },
      },
      synopsis: "Revoke a certificate issued by this mount; its issuer's CRL is rebuilt.",
      description: "Revoking an issuer's own certificate is refused.",
      operations: {
        update: async (r) => {
          if (r.data.has('certificate') && !r.data.has('serial_number')) {
            const { serial, rec } = await certificateToRevoke(r, caches);
            return revokeStored(r.storage, caches, serial, rec);
          }
          if (!r.data.has('serial_number')) throw new UserError('The serial number or certificate to revoke must be provided.');
          if (r.data.has('certificate')) throw new UserError('Must provide either the certificate or the serial to revoke; not both.');
          const serial = displaySerial(r.data.str('serial_number'));
          if (!/^([0-9a-f]{2}:)*[0-9a-f]{2}$/.test(serial)) throw new UserError('serial_number must be hex');
          const rec = await getJson<CertRecord>(r.storage, serialKey(serial));
          if (!rec) throw new UserError(`certificate with serial ${serial} not found`);
          return revokeStored(r.storage, caches, serial, rec);
        },
      },
    },
    {
      pattern: 'revoke-with-key',
      fields: {
        serial_number: { type: 'string', description: 'Serial of the certificate to revoke (hex, ":" or "-" separated); or give certificate.' },
        certificate: { type: 'string', description: 'The certificate to revoke, in PEM; it must be signed by an issuer of this mount.' },
        private_key: { type: 'string', description: "The certificate's private key in PEM: the proof that the caller may revoke it." },
      },
      synopsis: 'Revoke a certificate by proving its private key.',
      description:
        "As current Vault: a holder of a certificate's key can revoke it without the right to revoke any certificate (grant this path, not revoke). The certificate's issuer's CRL is rebuilt.",
      operations: {
        update: async (r) => {
          if (!r.data.has('private_key')) throw new UserError('Must have private key to revoke via the /revoke-with-key path.');
          const keyPem = r.data.str('private_key');
          if (keyPem.length < 64)
            throw new UserError('Provided data for private_key was too short; perhaps a path was passed to the API rather than the contents of a PEM file?');
          const { serial, rec, cert } = await certificateToRevoke(r, caches);
          // The key is proven before anything is written: no record of a certificate nobody could revoke.
          proveKey(cert, keyPem);
          // A certificate given here that the mount did not store gets its record now, revoked.
          return revokeStored(r.storage, caches, serial, rec);
        },
      },
    },
    {
      pattern: `issuer/${ISSUER_REF}/revoke`,
      fields: { issuer_ref: { type: 'string', description: 'The issuer: issuer_id, issuer_name or "default".' } },
      synopsis: 'Revoke an issuer of this mount: it signs no more certificates and is listed on the CRL of its parent in this mount.',
      description:
        'As current Vault: for good (its usage loses issuing-certificates, which cannot be given back); it still signs its own CRL, so its revoked leaves stay listed. A self-signed issuer is on no CRL of its own; one whose parent is not in this mount is on none.',
      operations: {
        update: async (r) => {
          const reg = await caches.ca.registry(r.storage);
          const cur = reg.issuer(r.data.str('issuer_ref'));
          // Revoked already: its state, without warnings, as Vault answers.
          if (cur.revoked) return { data: issuerView(cur) };
          const next = {
            ...cur,
            revoked: true,
            revocation_time: Math.floor(Date.now() / 1000),
            usage: cur.usage.filter((u) => u !== 'issuing-certificates'),
          };
          await putJson(r.storage, issuerKey(cur.issuer_id), next);
          const cert = new X509Certificate(cur.certificate);
          let selfSigned = false,
            parent = false;
          for (const i of reg.issuers.values()) {
            const signed = signedBy(cert, new X509Certificate(i.certificate));
            if (signed && i.issuer_id === cur.issuer_id) selfSigned = true;
            else if (signed) parent = true;
          }
          // When this mount signed it (root/sign-intermediate), its certificate's record shows the revocation too, as
          // Vault's does; a self-signed issuer's own record stays as it is (it is on no CRL of its own).
          const serial = displaySerial(certSerialHex(cert));
          const rec = await getJson<CertRecord>(r.storage, serialKey(serial));
          if (!selfSigned && rec && !rec.revocation_time && new X509Certificate(rec.certificate).raw.equals(cert.raw))
            await putJson(r.storage, serialKey(serial), { ...rec, revocation_time: next.revocation_time });
          await rebuildAllCrls(r.storage, caches);
          const warnings: string[] = [];
          if (selfSigned)
            warnings.push(
              "This issuer is a self-signed (potentially root) certificate. This means it may not be considered revoked if there is not an external, cross-signed variant of this certificate. This issuer's serial number will not appear on its own CRL.",
            );
          if (!parent)
            warnings.push(
              "This issuer lacks another parent issuer within the mount. This means it will not appear on any other CRLs and may not be considered revoked by clients. Consider adding this issuer to its issuer's CRL as well if it is not self-signed.",
            );
          if (reg.config.default === cur.issuer_id)
            warnings.push(
              'This issuer is currently configured as the default issuer for this mount; operations such as certificate issuance may not work until a new default issuer is selected.',
            );
          return { data: issuerView(next), warnings };
        },
      },
    },
  ];
}
