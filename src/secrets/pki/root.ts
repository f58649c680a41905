// root/generate/<internal|exported|kms>, root/sign-intermediate,
// intermediate/generate/<internal|exported|kms>, intermediate/set-signed
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { getJson, putJson } from '../../storage/storage';
import { UserError, type FieldDef, type PathDef, type Request } from '../framework';
import type { ManagedKeys } from '../managed-keys';
import { CA_KEY, PENDING_KEY, loadCa, requireCa, saveCa, serialKey, signerFor, signingAlgorithm, x509, type StoredCa } from './ca';
import { makeCertificate } from './certificates';
import { readCsr } from './csr';
import { checkKeyForRole, generateKey, type KeyType } from './keys';

export const caFields: Record<string, FieldDef> = {
  type: { type: 'string', description: 'internal (key kept in Vault storage), exported (also returned once), or kms (a managed key: never leaves the HSM/KMS).' },
  common_name: { type: 'string', required: true, description: 'CN of the CA.' },
  alt_names: { type: 'strings', default: [], description: 'DNS SANs.' },
  ip_sans: { type: 'strings', default: [], description: 'IP SANs.' },
  organization: { type: 'strings', default: [], description: 'O values.' },
  ou: { type: 'strings', default: [], description: 'OU values.' },
  ttl: { type: 'duration', default: 315360000, description: 'Validity (default 10 years).' },
  key_type: { type: 'string', default: 'rsa', allowed: ['ec', 'rsa'], description: 'Key type when the key is generated here (default rsa, 2048 bits, as Vault).' },
  key_bits: { type: 'int', default: 0, description: 'ec: 256 (default), 384, 521; rsa: 2048 (default), 3072, 4096.' },
  managed_key_name: { type: 'string', description: 'With type kms: the managed key to use.' },
  max_path_length: { type: 'int', default: -1, description: 'Path length constraint (-1: none).' },
};

async function caKey(r: Request, managed: ManagedKeys): Promise<{ key: StoredCa['key']; pkcs8?: string; publicKey: webcrypto.CryptoKey; kind: 'ec' | 'rsa' }> {
  const type = r.data.str('type');
  if (type === 'kms') {
    const name = r.data.str('managed_key_name');
    if (!name) throw new UserError('managed_key_name is required for type kms');
    const key = { kind: 'managed' as const, managed_key_name: name };
    const signer = await signerFor(key, (n) => managed.byName(n));
    return { key, publicKey: signer.publicKey, kind: signer.spec.kind as 'ec' | 'rsa' };
  }
  if (r.data.has('managed_key_name')) throw new UserError('managed_key_name is only valid with type kms');
  const g = await generateKey(r.data.str('key_type'), r.data.int('key_bits'), true);
  const key = { kind: 'stored' as const, pkcs8: g.pkcs8 };
  return { key, pkcs8: g.pkcs8, publicKey: (await signerFor(key, (n) => managed.byName(n))).publicKey, kind: g.type as 'ec' | 'rsa' };
}

function caRequest(r: Request, publicKey: X509.PublicKeyType, kind: KeyType) {
  return {
    commonName: r.data.str('common_name'), dnsNames: r.data.get<string[]>('alt_names'), ips: r.data.get<string[]>('ip_sans'),
    organization: r.data.get<string[]>('organization'), ou: r.data.get<string[]>('ou'), ttlSeconds: r.data.int('ttl'),
    isCa: true, maxPathLength: r.data.int('max_path_length') >= 0 ? r.data.int('max_path_length') : undefined,
    serverAuth: false, clientAuth: false, publicKey, leafKeyKind: kind,
  };
}

export function rootPaths(managed: ManagedKeys): PathDef[] {
  const m = (n: string) => managed.byName(n);
  return [
    {
      pattern: 'root/generate/(?<type>internal|exported|kms)',
      fields: caFields,
      synopsis: 'Generate a self-signed root CA for this mount.',
      description: 'Refused when a CA already exists (delete root first). With kms the root key is a managed key: it signs in the HSM/KMS and never exists here.',
      operations: {
        update: async (r) => {
          if (await loadCa(r.storage)) throw new UserError('this mount already has a CA; delete root to replace it');
          const k = await caKey(r, managed);
          const signer = await signerFor(k.key, m);
          const cert = await makeCertificate(caRequest(r, signer.publicKey, k.kind), signer);
          await saveCa(r.storage, { certificate: cert.pem, ca_chain: [], key: k.key, crl_number: 0 });
          await putJson(r.storage, serialKey(cert.serial), { certificate: cert.pem });
          return { data: { certificate: cert.pem, issuing_ca: cert.pem, serial_number: cert.serial, expiration: Math.floor(cert.notAfter.getTime() / 1000), ...(r.data.str('type') === 'exported' ? { private_key: k.pkcs8, private_key_type: k.kind } : {}) } };
        },
      },
    },
    {
      pattern: 'root',
      fields: {},
      synopsis: 'Delete the CA of this mount (its certificate and, if stored here, its key).',
      description: 'Issued certificates stay listed. A managed key is not touched.',
      operations: { delete: async (r) => { await r.storage.delete(CA_KEY); return undefined; } },
    },
    {
      pattern: 'root/sign-intermediate',
      fields: {
        csr: { type: 'string', required: true, description: 'PEM CSR of the intermediate CA.' },
        common_name: { type: 'string', description: 'CN (default: the CSR\'s).' },
        ttl: { type: 'duration', default: 157680000, description: 'Validity (default 5 years).' },
        max_path_length: { type: 'int', default: -1, description: 'Path length constraint (-1: none).' },
        organization: caFields.organization, ou: caFields.ou,
      },
      synopsis: 'Sign an intermediate CA\'s CSR with this mount\'s CA.',
      description: 'The CSR\'s signature is verified first.',
      operations: {
        update: async (r) => {
          const X = x509();
          const ca = await requireCa(r.storage);
          const csr = await readCsr(r.data.str('csr'));
          // Vault signs intermediates as a role with key_type "any": its minimums only.
          checkKeyForRole({ key_type: 'any', key_bits: 0 }, csr.key);
          const signer = await signerFor(ca.key, m);
          const caCert = new X.X509Certificate(ca.certificate);
          const cn = r.data.str('common_name') || csr.cn || 'intermediate';
          const cert = await makeCertificate({ ...caRequest(r, csr.publicKey, csr.key.type), commonName: cn, dnsNames: [], ips: [] }, signer, { cert: ca.certificate, notAfter: caCert.notAfter });
          await putJson(r.storage, serialKey(cert.serial), { certificate: cert.pem });
          return { data: { certificate: cert.pem, issuing_ca: ca.certificate, ca_chain: [ca.certificate, ...ca.ca_chain], serial_number: cert.serial } };
        },
      },
    },
    {
      pattern: 'intermediate/generate/(?<type>internal|exported|kms)',
      fields: caFields,
      synopsis: 'Generate the key and CSR of an intermediate CA; have it signed, then set-signed.',
      description: 'The key (or managed key reference) waits in storage until intermediate/set-signed installs the signed certificate.',
      operations: {
        update: async (r) => {
          const X = x509();
          const k = await caKey(r, managed);
          const signer = await signerFor(k.key, m);
          const csr = await X.Pkcs10CertificateRequestGenerator.create({
            name: `CN=${r.data.str('common_name').replace(/([,+"\\<>;=#])/g, '\\$1')}`,
            keys: { publicKey: signer.publicKey, privateKey: signer.privateKey }, signingAlgorithm: signingAlgorithm(signer.spec),
          }, signer.crypto as never);
          await putJson(r.storage, PENDING_KEY, { key: k.key });
          return { data: { csr: csr.toString('pem'), ...(r.data.str('type') === 'exported' ? { private_key: k.pkcs8, private_key_type: k.kind } : {}) } };
        },
      },
    },
    {
      pattern: 'intermediate/set-signed',
      fields: { certificate: { type: 'string', required: true, description: 'PEM: the signed intermediate certificate, optionally followed by its issuer chain.' } },
      synopsis: 'Install the signed certificate of the pending intermediate CA.',
      description: 'The certificate must be for the pending key (the public keys must match).',
      operations: {
        update: async (r) => {
          const X = x509();
          const pending = await getJson<{ key: StoredCa['key'] }>(r.storage, PENDING_KEY);
          if (!pending) throw new UserError('no pending intermediate: run intermediate/generate first');
          const pems = r.data.str('certificate').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
          if (!pems.length) throw new UserError('certificate must contain a PEM certificate');
          const cert = new X.X509Certificate(pems[0]);
          const signer = await signerFor(pending.key, m);
          const want = Buffer.from(await webcrypto.subtle.exportKey('spki', signer.publicKey));
          if (!Buffer.from(cert.publicKey.rawData).equals(want)) throw new UserError('the certificate is not for the pending intermediate key');
          await saveCa(r.storage, { certificate: cert.toString('pem'), ca_chain: pems.slice(1).map((p) => new X.X509Certificate(p).toString('pem')), key: pending.key, crl_number: 0 });
          await r.storage.delete(PENDING_KEY);
          return { data: { imported_issuers: [cert.serialNumber] } };
        },
      },
    },
  ];
}
