// root/generate|rotate/<internal|exported|kms|existing>, root/replace, root,
// intermediate/generate/<type>, intermediate/set-signed (signing other CAs: sign-ca.ts)
import { putJson } from '../../storage/storage';
import { UserError, type FieldDef, type PathDef, type Request } from '../framework';
import type { ManagedKeys } from '../managed-keys';
import { pem, pemDer, strictDer } from '../../goplugin/der';
import { CA_KEY, PENDING_KEY, serialKey, signerFor, x509, type CaSigner } from './ca';
import { makeCertificate } from './certificates';
import { writeCsr } from './csr';
import { SIGNATURE_FIELDS, checkSignatureBits, keyUsageBits, pssFor, signerAlgorithmName, withSignatureBits } from './cert-writer';
import { OUTPUT_FIELDS } from './issue-options';
import { CA_KEY_USAGE_FIELD, CA_SUBJECT_FIELDS, caKeyUsage, keyUsageFlags } from './role-fields';
import { NAME_CONSTRAINT_FIELDS, NO_SUBJECT_WARNING, caRequestNames, emptySubject, requestNameConstraints } from './sign-ca';
import { CA_VALIDITY_FIELDS, caNotBefore, certTtl, mountTtls, requestedNotAfter } from './ttl';
import type { PkiCaches } from './index';
import {
  ISSUERS_CONFIG_KEY,
  ISSUER_PREFIX,
  KEYS_CONFIG_KEY,
  KEY_PREFIX,
  addIssuer,
  addKey,
  checkName,
  issuerKey,
  issuerWithCertificate,
  keyForPublicKey,
  keyKey,
  type IssuerEntry,
  type KeyEntry,
  type Registry,
} from './issuers';
import { DEFAULT_FOLLOWS_LATEST_ISSUER_FIELD } from './issuer-ref';
import { CRL_PREFIX } from './revoke';
import { exportedPrivateKey, generateKey, type KeyType } from './keys';
import { NO_AIA_INTERMEDIATE_WARNING, NO_AIA_WARNING } from './urls';

const strings = (description: string): FieldDef => ({ type: 'strings', default: [], description });

/** The fields of root/generate, root/rotate and intermediate/generate that describe the new CA and its key. */
export const caFields: Record<string, FieldDef> = {
  type: {
    type: 'string',
    description: 'internal (key kept in Vault storage), exported (also returned once), or kms (a managed key: never leaves the HSM/KMS).',
  },
  // Optional, as in current Vault (and 1.8): without it (and any other subject field) the subject is empty, with a warning on root/generate.
  common_name: { type: 'string', default: '', description: 'CN of the CA (optional).' },
  alt_names: strings('DNS SANs; names with an "@" are email SANs.'),
  ip_sans: strings('IP SANs.'),
  uri_sans: strings('URI SANs.'),
  other_sans: strings('otherName SANs, "<oid>;UTF8:<value>" each.'),
  exclude_cn_from_sans: { type: 'bool', default: false, description: 'Do not repeat the CN (a hostname or an email address) as a SAN.' },
  serial_number: { type: 'string', default: '', description: "The subject's serialNumber attribute (not the certificate serial)." },
  ...CA_SUBJECT_FIELDS,
  ttl: { type: 'duration', default: 0, description: "Validity (default: the mount's default lease TTL; capped at its max lease TTL)." },
  // As current Vault: intermediate/generate takes them too (its CSR has no validity: unused there).
  ...CA_VALIDITY_FIELDS,
  // The self-signature's (root) or the CSR's (intermediate/generate) hash.
  signature_bits: SIGNATURE_FIELDS.signature_bits,
  key_type: {
    type: 'string',
    default: 'rsa',
    allowed: ['ec', 'rsa', 'ed25519'],
    description: 'Key type when the key is generated here (default rsa, 2048 bits, as Vault).',
  },
  key_bits: { type: 'int', default: 0, description: 'ec: 256 (default), 384, 521; rsa: 2048 (default), 3072, 4096; ed25519: none.' },
  managed_key_name: { type: 'string', description: 'With type kms: the managed key to use.' },
  max_path_length: { type: 'int', default: -1, description: 'Path length constraint (-1: none).' },
  ...OUTPUT_FIELDS,
};

/** root/generate and root/rotate only (as Vault: not a field of intermediate/generate). */
const ROOT_ONLY_FIELDS: Record<string, FieldDef> = {
  ...NAME_CONSTRAINT_FIELDS,
  key_usage: CA_KEY_USAGE_FIELD,
  use_pss: SIGNATURE_FIELDS.use_pss,
};

/** intermediate/generate only (current Vault; Vault 1.8 had neither): extensions the CSR asks for. */
const CSR_ONLY_FIELDS: Record<string, FieldDef> = {
  add_basic_constraints: {
    type: 'bool',
    default: false,
    description: 'Ask for a critical Basic Constraints extension with CA:TRUE in the CSR (some CAs, e.g. Active Directory Certificate Services, want it).',
  },
  key_usage: {
    type: 'strings',
    default: [],
    description: "Key usages to ask for in the CSR, a critical Key Usage extension (Vault's names: CertSign, CRLSign, DigitalSignature, ...); none by default.",
  },
};

/** The extensions intermediate/generate's CSR asks for beyond its SAN: Basic Constraints CA:TRUE (add_basic_constraints), then Key Usage (key_usage), as current Vault. */
function csrExtensions(r: Request): Array<{ oid: string; value: Buffer }> {
  const out: Array<{ oid: string; value: Buffer }> = [];
  // BasicConstraints ::= SEQUENCE { cA BOOLEAN TRUE } (no pathLenConstraint: the signer sets it).
  if (r.data.bool('add_basic_constraints')) out.push({ oid: '2.5.29.19', value: Buffer.from('30030101ff', 'hex') });
  const bits = keyUsageFlags(r.data.get<string[]>('key_usage'));
  if (bits) out.push({ oid: '2.5.29.15', value: keyUsageBits(bits) });
  return out;
}

/**
 * The key a new CA certificate is for: generated here (internal, exported), a managed key
 * (kms), or one of the mount's keys (existing, key_ref). New keys join the mount's keys.
 */
async function caKey(r: Request, managed: ManagedKeys, reg: Registry): Promise<{ entry: KeyEntry; pkcs8?: string; signer: CaSigner }> {
  const type = r.data.str('type');
  const m = (n: string) => managed.byName(n);
  if (type === 'existing') {
    if (r.data.has('managed_key_name')) throw new UserError('managed_key_name is only valid with type kms');
    const entry = reg.key(r.data.str('key_ref') || 'default');
    return { entry, signer: await signerFor(entry.key, m) };
  }
  if (r.data.has('key_ref')) throw new UserError('key_ref is only valid with type existing');
  if (type === 'kms') {
    const name = r.data.str('managed_key_name');
    if (!name) throw new UserError('managed_key_name is required for type kms');
    const key = { kind: 'managed' as const, managed_key_name: name };
    const signer = await signerFor(key, m);
    return { entry: await addKey(r.storage, reg, key, signer.spec.kind, r.data.str('key_name')), signer };
  }
  if (r.data.has('managed_key_name')) throw new UserError('managed_key_name is only valid with type kms');
  checkName('key', r.data.str('key_name'));
  const g = await generateKey(r.data.str('key_type'), r.data.int('key_bits'), true);
  const key = { kind: 'stored' as const, pkcs8: g.pkcs8 };
  const signer = await signerFor(key, m);
  return { entry: await addKey(r.storage, reg, key, g.type, r.data.str('key_name')), pkcs8: g.pkcs8, signer };
}

const CA_TYPES = '(?<type>internal|exported|kms|existing)';

/** The key as exported answers carry it (type exported only): private_key_format's structure, PEM or (format der) base64 DER. */
function exportedKey(r: Request, k: { pkcs8?: string; entry: KeyEntry }): { private_key: string; private_key_type: string } | undefined {
  if (r.data.str('type') !== 'exported' || !k.pkcs8) return undefined;
  const key = exportedPrivateKey(k.pkcs8, k.entry.key_type as KeyType, r.data.str('private_key_format'));
  return { private_key: r.data.str('format') === 'der' ? key.der.toString('base64') : key.pem, private_key_type: k.entry.key_type };
}

const derBase64 = (pemText: string) => pemDer(pemText).toString('base64');

/** What root/generate, root/rotate and set-signed answer about the issuer and key, as current Vault. */
const issuerFields = (i: IssuerEntry, k?: KeyEntry) => ({ issuer_id: i.issuer_id, issuer_name: i.issuer_name, key_id: i.key_id, key_name: k?.key_name ?? '' });

const rawCerts = (text: string) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

/** root/generate, root/rotate, root/replace, root (DELETE), intermediate/generate and intermediate/set-signed. */
export function rootPaths(managed: ManagedKeys, caches: PkiCaches): PathDef[] {
  const m = (n: string) => managed.byName(n);
  const generateRoot = async (r: Request, defaultName: string) => {
    const reg = await caches.ca.registry(r.storage);
    const name = r.data.has('issuer_name') ? r.data.str('issuer_name') : defaultName;
    checkName('issuer', name);
    if (reg.issuerNameTaken(name)) throw new UserError(`an issuer with the name "${name}" already exists`);
    const names = caRequestNames(r, r.data.str('common_name'));
    const nameConstraints = requestNameConstraints(r);
    const maxPathLength = r.data.int('max_path_length');
    if (maxPathLength < -1)
      throw new UserError(`requested max_path_length ${maxPathLength} is invalid: must be a non-negative integer or -1 for no constraint`);
    const usageWarnings: string[] = [];
    const keyUsage = caKeyUsage(r.data.get<string[]>('key_usage'), 'Invalid key usage will be ignored: ', usageWarnings);
    const ttlWarnings: string[] = [];
    // As Vault: ttl, else the mount's default lease TTL, capped at its max lease TTL (a root has no issuer to outlive).
    const ttlSeconds = certTtl(r.data.int('ttl'), await mountTtls(r.system), ttlWarnings);
    const notAfter = requestedNotAfter(r);
    const notBeforeSeconds = caNotBefore(r);
    const urls = await caches.urls(r.storage);
    checkSignatureBits(r.data.int('signature_bits'));
    const k = await caKey(r, managed, reg);
    const signer = withSignatureBits(k.signer, r.data.int('signature_bits'), pssFor(r.data.bool('use_pss'), r.data.int('signature_bits'), k.entry.key_type));
    const cert = await makeCertificate(
      {
        ...names,
        ttlSeconds,
        notAfter,
        notBeforeSeconds,
        isCa: true,
        maxPathLength: maxPathLength >= 0 ? maxPathLength : undefined,
        keyUsage,
        serverAuth: false,
        clientAuth: false,
        publicKey: k.signer.publicKey,
        leafKeyKind: k.entry.key_type as KeyType,
        nameConstraints,
        // A root has no issuer to take URLs from: config/urls, as Vault's PKI (1.8 and current).
        urls,
      },
      signer,
    );
    // As current Vault: a new root's CRLs are signed as the root itself is (its
    // revocation_signature_algorithm), so a PSS root's CRLs are PSS too, with the same hash.
    const issuer = await addIssuer(r.storage, reg, cert.pem, [], k.entry.key_id, name, signerAlgorithmName(signer));
    await putJson(r.storage, serialKey(cert.serial), { certificate: cert.pem, issuer_id: issuer.issuer_id });
    // Current Vault's warnings, in its order: leaf-only key usages, an empty subject, the root has no AIA or CRL DP (config/urls is empty), path length zero, then the TTL's.
    const warnings = [
      ...usageWarnings,
      ...(emptySubject(names) ? [NO_SUBJECT_WARNING] : []),
      ...(urls ? [] : [NO_AIA_WARNING]),
      ...(maxPathLength === 0
        ? ['Max path length of the generated certificate is zero. This certificate cannot be used to issue intermediate CA certificates.']
        : []),
      ...ttlWarnings,
    ];
    const key = exportedKey(r, k);
    const format = r.data.str('format');
    const certificate = format === 'der' ? derBase64(cert.pem) : cert.pem;
    return {
      data: {
        // pem_bundle: the exported key, then the certificate, as Vault.
        certificate: format === 'pem_bundle' && key ? `${key.private_key}\n${cert.pem}` : certificate,
        issuing_ca: certificate,
        serial_number: cert.serial,
        expiration: Math.floor(cert.notAfter.getTime() / 1000),
        ...issuerFields(issuer, k.entry),
        ...key,
      },
      warnings,
    };
  };
  const nameFields: Record<string, FieldDef> = {
    issuer_name: { type: 'string', description: 'A name for the new issuer (unique in the mount; not "default").' },
    key_name: { type: 'string', description: 'A name for the new key (unique in the mount; not "default").' },
    key_ref: { type: 'string', default: 'default', description: 'With type existing: the key to use (key_id, key_name, or "default").' },
  };
  const paths: PathDef[] = [
    {
      pattern: `root/generate/${CA_TYPES}`,
      fields: { ...caFields, ...ROOT_ONLY_FIELDS, ...nameFields },
      synopsis: 'Generate a self-signed root CA: a new issuer (and key) of this mount.',
      description:
        "As current Vault (1.11+): on a mount that has issuers already this adds one; it becomes the default only when there is none (or config/issuers has default_follows_latest_issuer). With kms the key is a managed key: it signs in the HSM/KMS and never exists here; with existing, key_ref names one of the mount's keys.",
      operations: { update: (r) => generateRoot(r, '') },
    },
    {
      pattern: `root/rotate/${CA_TYPES}`,
      fields: {
        ...caFields,
        ...ROOT_ONLY_FIELDS,
        ...nameFields,
        issuer_name: { type: 'string', default: 'next', description: 'A name for the new issuer (default "next", which root/replace takes by default).' },
      },
      synopsis: 'Generate a new root next to the current one, without making it the default.',
      description: 'As current Vault: root/replace then makes it the default.',
      operations: { update: (r) => generateRoot(r, 'next') },
    },
    {
      pattern: 'root/replace',
      fields: {
        default: { type: 'string', default: 'next', description: 'The issuer to make the default (issuer_id, issuer_name or "default"; default "next").' },
        default_follows_latest_issuer: DEFAULT_FOLLOWS_LATEST_ISSUER_FIELD,
      },
      synopsis: 'Make another issuer the default (after root/rotate).',
      description: 'The same as writing config/issuers.',
      operations: { update: (r) => setDefaultIssuer(r, r.data.str('default'), caches) },
    },
    {
      pattern: 'root',
      fields: {},
      synopsis: 'Delete every issuer and key of this mount.',
      description: 'As current Vault. Issued certificates stay listed. A managed key is only forgotten here, not touched.',
      operations: {
        delete: async (r) => {
          for (const id of await r.storage.list(ISSUER_PREFIX)) await r.storage.delete(issuerKey(id));
          for (const id of await r.storage.list(KEY_PREFIX)) await r.storage.delete(keyKey(id));
          for (const k of [ISSUERS_CONFIG_KEY, KEYS_CONFIG_KEY, CA_KEY, PENDING_KEY]) await r.storage.delete(k);
          for (const id of await r.storage.list(CRL_PREFIX)) await r.storage.delete(`${CRL_PREFIX}${id}`);
          return undefined;
        },
      },
    },
    {
      pattern: `intermediate/generate/${CA_TYPES}`,
      fields: { ...caFields, ...nameFields, ...CSR_ONLY_FIELDS },
      synopsis: 'Generate (or pick) the key of an intermediate CA and its CSR; have it signed, then set-signed.',
      description:
        "As current Vault: the key joins the mount's keys now (key_id in the answer); intermediate/set-signed adds the signed certificate as an issuer using it.",
      operations: {
        update: async (r) => {
          const reg = await caches.ca.registry(r.storage);
          const names = caRequestNames(r, r.data.str('common_name'));
          // Checked before a key is made: a bad key_usage leaves no key behind.
          const more = csrExtensions(r);
          checkSignatureBits(r.data.int('signature_bits'));
          const k = await caKey(r, managed, reg);
          // As Vault's: the whole subject and the SANs (the CN among them) are in the CSR.
          const der = await writeCsr(names, withSignatureBits(k.signer, r.data.int('signature_bits')), more);
          const key = exportedKey(r, k);
          const format = r.data.str('format');
          const csrPem = pem(der, 'CERTIFICATE REQUEST').trimEnd();
          // Current Vault warns here too when config/urls is empty, with a word on the intermediate.
          const warnings = (await caches.urls(r.storage)) ? [] : [NO_AIA_INTERMEDIATE_WARNING];
          return {
            data: {
              // der: base64 DER; pem_bundle: the exported key, then the CSR, as Vault.
              csr: format === 'der' ? der.toString('base64') : format === 'pem_bundle' && key ? `${key.private_key}\n${csrPem}` : csrPem,
              key_id: k.entry.key_id,
              ...key,
            },
            warnings,
          };
        },
      },
    },
    {
      pattern: 'intermediate/set-signed',
      fields: {
        certificate: { type: 'string', required: true, description: 'PEM: the signed intermediate certificate, optionally followed by its issuer chain.' },
        issuer_name: { type: 'string', default: '', description: 'A name for the new issuer.' },
      },
      synopsis: 'Add the signed certificate of an intermediate CA as an issuer of this mount.',
      description: "The certificate must be for one of the mount's keys (from intermediate/generate); the certificates after it are its chain.",
      operations: {
        update: async (r) => {
          const X = x509();
          const pems = rawCerts(r.data.str('certificate'));
          if (!pems.length) throw new UserError('certificate must contain a PEM certificate');
          let certs: InstanceType<typeof X.X509Certificate>[];
          try {
            certs = pems.map((p) => {
              strictDer(p); // as Go's x509 (OpenSSL also reads BER)
              return new X.X509Certificate(p);
            });
          } catch {
            throw new UserError('certificate is not a valid PEM certificate');
          }
          const reg = await caches.ca.registry(r.storage);
          const pemText = certs[0].toString('pem');
          // As current Vault: with config/urls empty, every answer of an import says so (also when nothing was new).
          const warnings = (await caches.urls(r.storage)) ? [] : [NO_AIA_WARNING];
          const existing = issuerWithCertificate(reg, pemText);
          if (existing)
            return {
              data: {
                imported_issuers: [],
                imported_keys: [],
                existing_issuers: [existing.issuer_id],
                existing_keys: [],
                mapping: { [existing.issuer_id]: existing.key_id },
              },
              warnings,
            };
          const key = await keyForPublicKey(reg, Buffer.from(certs[0].publicKey.rawData), m);
          // Current Vault would also import a certificate for no key of the mount (an issuer
          // that cannot sign); here that is refused, as it is almost always a mix-up.
          if (!key) throw new UserError('the certificate is not for any key of this mount (run intermediate/generate on this mount first)');
          const issuer = await addIssuer(
            r.storage,
            reg,
            pemText,
            certs.slice(1).map((c) => c.toString('pem')),
            key.key_id,
            r.data.str('issuer_name'),
          );
          return {
            data: {
              imported_issuers: [issuer.issuer_id],
              imported_keys: [],
              existing_issuers: [],
              existing_keys: [key.key_id],
              mapping: { [issuer.issuer_id]: key.key_id },
            },
            warnings,
          };
        },
      },
    },
  ];
  return [...paths, ...issuersGeneratePaths(paths)];
}

/**
 * Current Vault's issuers/generate/root/<type> and issuers/generate/intermediate/<type>: the
 * same operations as root/generate/<type> and intermediate/generate/<type> under the
 * issuers/ prefix (a new issuer never replaces the default; issuer_name, key_name, key_ref).
 */
function issuersGeneratePaths(paths: PathDef[]): PathDef[] {
  const alias = (from: string, to: string, synopsis: string): PathDef => {
    const def = paths.find((p) => p.pattern === `${from}/${CA_TYPES}`);
    if (!def) throw new Error(`no path ${from}/<type> to serve ${to}/<type>`);
    return {
      ...def,
      pattern: `${to}/${CA_TYPES}`,
      synopsis,
      description: `The same as ${from}/<type>, under current Vault's issuers/ prefix. ${def.description}`,
    };
  };
  return [
    alias('root/generate', 'issuers/generate/root', 'Generate a self-signed root CA as a new issuer of this mount.'),
    alias('intermediate/generate', 'issuers/generate/intermediate', 'Generate (or pick) the key of a new intermediate CA and its CSR.'),
  ];
}

/** config/issuers and root/replace: make `ref` the default issuer. */
export async function setDefaultIssuer(r: Request, ref: string, caches: PkiCaches) {
  const reg = await caches.ca.registry(r.storage);
  const issuer = reg.issuer(ref);
  const config = {
    ...reg.config,
    default: issuer.issuer_id,
    ...(r.data.has('default_follows_latest_issuer') ? { default_follows_latest_issuer: r.data.bool('default_follows_latest_issuer') } : {}),
  };
  await putJson(r.storage, ISSUERS_CONFIG_KEY, config);
  return { data: { default: config.default, default_follows_latest_issuer: config.default_follows_latest_issuer } };
}
