// config/ca, issuers/import/bundle, issuers/import/cert: bring CA certificates (and, for a
// bundle, their private keys) into the mount as issuers and keys, as current Vault (1.11+)
// does. Vault 1.8's config/ca set the one CA of the mount and answered 204; current Vault
// adds issuers and answers with what it imported.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { strictDer } from '../../goplugin/der';
import { UserError, type PathDef, type Request } from '../framework';
import type { PkiCaches } from './index';
import { keyInfo } from './keys';
import { addIssuer, addKey, issuerWithCertificate, type KeyEntry } from './issuers';
import { x509 } from './ca';
import { NO_AIA_WARNING } from './urls';

const CERT_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const KEY_PEM = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/g;
const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' }) as Buffer;

function readKey(text: string): KeyObject {
  let k: KeyObject;
  try {
    // Strict DER first, as Go's key parsers (OpenSSL alone also reads BER's longer lengths).
    strictDer(text);
    k = createPrivateKey(text);
  } catch {
    throw new UserError('pem_bundle: a private key cannot be read (PKCS#8, PKCS#1 or SEC 1 PEM, unencrypted)');
  }
  const info = keyInfo(createPublicKey(k));
  if (info.type === 'ed25519' || (info.type === 'ec' && info.bits === 224)) throw new UserError('pem_bundle: CA keys must be RSA or EC P-256, P-384 or P-521');
  return k;
}

async function importBundle(r: Request, caches: PkiCaches, allowKeys: boolean) {
  const text = r.data.str('pem_bundle');
  const certTexts = text.match(CERT_PEM) ?? [];
  const keyTexts = text.match(KEY_PEM) ?? [];
  if (!allowKeys && keyTexts.length) throw new UserError('issuers/import/cert takes certificates only: import keys with issuers/import/bundle');
  if (!certTexts.length && !keyTexts.length) throw new UserError('pem_bundle holds no PEM certificate or private key');
  const certs = certTexts.map((p) => {
    let c: X509Certificate;
    try {
      strictDer(p);
      c = new X509Certificate(p);
    } catch {
      throw new UserError('pem_bundle: a certificate cannot be read');
    }
    if (!c.ca) throw new UserError(`pem_bundle: ${c.subject.replace(/\n/g, ', ').slice(0, 80)} is not a CA certificate`);
    return c;
  });
  const keys = keyTexts.map(readKey);
  const reg = await caches.ca.registry(r.storage);
  const X = x509();
  const out = {
    imported_issuers: [] as string[],
    imported_keys: [] as string[],
    existing_issuers: [] as string[],
    existing_keys: [] as string[],
    mapping: {} as Record<string, string>,
  };
  // Keys first, so the certificates find them.
  const bySpki = new Map<string, KeyEntry>();
  for (const k of reg.keys.values()) {
    if (k.key.kind === 'stored') bySpki.set(spki(createPublicKey(createPrivateKey(k.key.pkcs8))).toString('hex'), k);
  }
  for (const k of keys) {
    const id = spki(createPublicKey(k)).toString('hex');
    const have = bySpki.get(id);
    if (have) {
      out.existing_keys.push(have.key_id);
      continue;
    }
    const entry = await addKey(
      r.storage,
      reg,
      { kind: 'stored', pkcs8: k.export({ type: 'pkcs8', format: 'pem' }) as string },
      keyInfo(createPublicKey(k)).type,
      '',
    );
    bySpki.set(id, entry);
    out.imported_keys.push(entry.key_id);
  }
  for (const [i, c] of certs.entries()) {
    const pemText = new X.X509Certificate(c.raw).toString('pem');
    const have = issuerWithCertificate(reg, pemText);
    if (have) {
      out.existing_issuers.push(have.issuer_id);
      out.mapping[have.issuer_id] = have.key_id;
      continue;
    }
    const key = bySpki.get(spki(c.publicKey).toString('hex'));
    // The certificates after it in the bundle are its chain, as config/ca took them.
    const chain = certs.slice(i + 1).map((x) => new X.X509Certificate(x.raw).toString('pem'));
    const entry = await addIssuer(r.storage, reg, pemText, chain, key?.key_id ?? '', '');
    out.imported_issuers.push(entry.issuer_id);
    out.mapping[entry.issuer_id] = key?.key_id ?? '';
  }
  // As current Vault: with config/urls empty, every import answer says so (also when nothing was new).
  return { data: out, warnings: (await caches.urls(r.storage)) ? [] : [NO_AIA_WARNING] };
}

/** config/ca, issuers/import/bundle and issuers/import/cert. */
export function importPaths(caches: PkiCaches): PathDef[] {
  const field = { pem_bundle: { type: 'string' as const, required: true, description: 'PEM: CA certificates and (bundle) their private keys.' } };
  return [
    {
      pattern: '(?:config/ca|issuers/import/bundle)',
      fields: field,
      synopsis: 'Import CA certificates and their keys as issuers and keys of this mount.',
      description:
        'Each certificate becomes an issuer (the ones after it in the bundle are its chain), signing with the imported or existing key that matches it; one without a key is an issuer that cannot sign. Already-present certificates and keys are reported as existing.',
      operations: { update: (r) => importBundle(r, caches, true) },
    },
    {
      pattern: 'issuers/import/cert',
      fields: field,
      synopsis: 'Import CA certificates (no keys) as issuers of this mount.',
      description: 'A certificate whose key the mount already has can sign.',
      operations: { update: (r) => importBundle(r, caches, false) },
    },
  ];
}
