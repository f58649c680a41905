// keys/generate/<internal|exported|kms> and keys/import: a key joins the mount on its own,
// with no certificate yet, as in current Vault (1.11+); root/generate/existing,
// intermediate/generate/existing (key_ref) and issuers/import/cert then use it.
import { X509Certificate, createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { putJson } from '../../storage/storage';
import { strictDer } from '../../goplugin/der';
import type { ManagedKeys } from '../managed-keys';
import { UserError, type FieldDef, type PathDef, type Request } from '../framework';
import { signerFor, type StoredCa } from './ca';
import type { PkiCaches } from './index';
import { ISSUERS_CONFIG_KEY, addKey, checkName, issuerKey, keyForPublicKey, type KeyEntry, type Registry } from './issuers';
import { exportedPrivateKey, generateKey, keyInfo, type KeyType } from './keys';

const KEY_NAME_FIELD: FieldDef = { type: 'string', description: 'A name for the key (unique in the mount; not "default").' };

/** Refuse a key_name now, before a key is generated or imported for nothing. */
function checkNewKeyName(reg: Registry, name: string): void {
  checkName('key', name);
  if (reg.keyNameTaken(name)) throw new UserError(`a key with the name "${name}" already exists`);
}

/** The public key of a stored or managed key as SPKI DER. */
async function spkiOf(key: StoredCa['key'], managed: ManagedKeys): Promise<Buffer> {
  const signer = await signerFor(key, (n) => managed.byName(n));
  return Buffer.from(await webcrypto.subtle.exportKey('spki', signer.publicKey));
}

/**
 * Issuers imported without their key (issuers/import/cert) get it now, as Vault links them when
 * the key arrives; the first such issuer becomes the default when the mount has none.
 */
async function linkIssuers(r: Request, reg: Registry, key: KeyEntry, spki: Buffer): Promise<void> {
  for (const i of reg.issuers.values()) {
    if (i.key_id && reg.keys.has(i.key_id)) continue;
    if (!certSpki(i.certificate).equals(spki)) continue;
    const linked = { ...i, key_id: key.key_id };
    await putJson(r.storage, issuerKey(i.issuer_id), linked);
    reg.issuers.set(i.issuer_id, linked);
    if (!reg.issuers.has(reg.config.default)) {
      reg.config.default = i.issuer_id;
      await putJson(r.storage, ISSUERS_CONFIG_KEY, reg.config);
    }
  }
}

const certSpki = (pemText: string) => new X509Certificate(pemText).publicKey.export({ type: 'spki', format: 'der' }) as Buffer;

/** The one private key of a keys/import pem_bundle, as Vault reads it (one PEM block, unencrypted). */
function readOneKey(text: string): KeyObject {
  // As Vault: anything this short cannot be a PEM key; most likely a file path was sent instead of its contents.
  if (text.length < 64)
    throw new UserError('provided data for import was too short; perhaps a path was passed to the API rather than the contents of a PEM file');
  const blocks = text.match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----/g) ?? [];
  if (!blocks.length) throw new UserError('provided PEM block contained no data');
  if (blocks.length !== 1) throw new UserError('only a single key can be present within the pem_bundle for importing');
  if (/^-----BEGIN (?:X509 )?CERTIFICATE-----/.test(blocks[0]))
    throw new UserError('pem_bundle holds a certificate, not a private key: import certificates with issuers/import/cert or issuers/import/bundle');
  let k: KeyObject;
  try {
    strictDer(blocks[0]); // as Go's key parsers (OpenSSL alone also reads BER's longer lengths)
    k = createPrivateKey(blocks[0]);
  } catch {
    throw new UserError('error parsing key: not an unencrypted PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key in PEM');
  }
  const info = keyInfo(createPublicKey(k));
  if (info.type === 'ec' && info.bits === 224) throw new UserError('EC P-224 keys cannot sign certificates here (P-256, P-384 or P-521)');
  if (info.type === 'rsa' && info.bits < 2048)
    throw new UserError(`RSA keys must have at least 2048 bits to sign certificates here (this one has ${info.bits})`);
  return k;
}

/** keys/generate/<type> and keys/import. */
export function keyManagementPaths(managed: ManagedKeys, caches: PkiCaches): PathDef[] {
  return [
    {
      pattern: 'keys/generate/(?<type>internal|exported|kms)',
      fields: {
        type: { type: 'string', description: 'internal (kept in Vault storage), exported (also returned once, in this answer), or kms (a managed key).' },
        key_name: KEY_NAME_FIELD,
        key_type: { type: 'string', default: 'rsa', allowed: ['rsa', 'ec', 'ed25519'], description: 'rsa (default), ec or ed25519.' },
        key_bits: { type: 'int', default: 0, description: 'rsa: 2048 (default), 3072 or 4096; ec: 256 (default), 384 or 521; ed25519: none.' },
        managed_key_name: {
          type: 'string',
          description: 'With kms: the managed key (managed-keys/<type>/<name>) to use; it never leaves the HSM/KMS. Ignored for the other types, as in Vault.',
        },
      },
      synopsis: 'Generate a new key for this mount (no certificate yet).',
      description:
        "As current Vault: the key joins the mount's keys (the default key when there is none); exported answers its private key this once. kms takes a managed key: the same managed key twice is one key of the mount.",
      operations: {
        update: async (r) => {
          const reg = await caches.ca.registry(r.storage);
          const name = r.data.str('key_name');
          checkNewKeyName(reg, name);
          const type = r.data.str('type');
          if (type === 'kms') {
            const managedName = r.data.str('managed_key_name');
            if (!managedName) throw new UserError('managed_key_name is required for type kms');
            const key = { kind: 'managed' as const, managed_key_name: managedName };
            const signer = await signerFor(key, (n) => managed.byName(n));
            const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', signer.publicKey));
            const entry = (await keyForPublicKey(reg, spki, (n) => managed.byName(n))) ?? (await addKey(r.storage, reg, key, signer.spec.kind, name));
            return { data: { key_id: entry.key_id, key_name: entry.key_name, key_type: entry.key_type } };
          }
          const g = await generateKey(r.data.str('key_type'), r.data.int('key_bits'), true);
          const entry = await addKey(r.storage, reg, { kind: 'stored', pkcs8: g.pkcs8 }, g.type, name);
          return {
            data: {
              key_id: entry.key_id,
              key_name: entry.key_name,
              key_type: entry.key_type,
              // As Vault: the key's own structure (PKCS#1 for RSA, SEC 1 for EC; PKCS#8 for Ed25519).
              ...(type === 'exported' ? { private_key: exportedPrivateKey(g.pkcs8, g.type as KeyType, 'der').pem } : {}),
            },
          };
        },
      },
    },
    {
      pattern: 'keys/import',
      fields: {
        pem_bundle: { type: 'string', default: '', description: 'One unencrypted private key in PEM (PKCS#8, PKCS#1 or SEC 1).' },
        key_name: KEY_NAME_FIELD,
      },
      synopsis: 'Import a private key into this mount (no certificate).',
      description:
        'As current Vault: a key the mount already has is not added twice (its key_id is answered, with a warning); issuers imported earlier without their key (issuers/import/cert) can sign once it is here.',
      operations: {
        update: async (r) => {
          const reg = await caches.ca.registry(r.storage);
          const name = r.data.str('key_name');
          checkNewKeyName(reg, name);
          const k = readOneKey(r.data.str('pem_bundle'));
          const spki = createPublicKey(k).export({ type: 'spki', format: 'der' }) as Buffer;
          const existing = await keyForPublicKey(reg, spki, (n) => managed.byName(n));
          if (existing)
            return {
              data: { key_id: existing.key_id, key_name: existing.key_name, key_type: existing.key_type },
              warnings: ['Key already imported, use key/ endpoint to update name.'],
            };
          const key = { kind: 'stored' as const, pkcs8: k.export({ type: 'pkcs8', format: 'pem' }) as string };
          await spkiOf(key, managed); // a key the CA signer cannot use is refused here, not at its first signature
          const entry = await addKey(r.storage, reg, key, keyInfo(createPublicKey(k)).type, name);
          await linkIssuers(r, reg, entry, spki);
          return { data: { key_id: entry.key_id, key_name: entry.key_name, key_type: entry.key_type } };
        },
      },
    },
  ];
}
