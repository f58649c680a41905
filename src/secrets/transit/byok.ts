// "Bring your own key": wrapping_key, keys/<name>/import, keys/<name>/import_version and
// byok-export/<destination>/<source>[/<version>], as current Vault's transit has them
// (import since 1.11, public-key imports since 1.15, byok-export since 1.15; the Vault 1.8
// used in test/vault predates all of them, so they follow current Vault's API documentation
// and code). The wrapping format is in wrapping.ts, the key material's rules in material.ts.
//
// Where current Vault answers a refused request with a 500 (most of its import errors are
// plain errors), this plugin answers 400 with the same message: the project's rule.
import { randomBytes } from 'node:crypto';
import { UserError, type FieldDef, type PathDef, type Request } from '../framework';
import { decodeBase64 } from './envelope';
import { newPolicy } from './keys';
import { IMPORT_TYPES, exportMaterial, importedMaterial, importsPublicKey, samePair, type Imported } from './material';
import { madeByDeriveKey, parsed, publicKeyObject, type KeyVersion, type Policy } from './policy';
import type { Transit } from './context';
import { ENCRYPTED_KEY_BYTES, oaepHash, unwrapImport, wrapForImport } from './wrapping';

import { nameGroup } from '../../schema';
const NAME = nameGroup();

/**
 * The mount's wrapping key is kept as Vault keeps it: an rsa-4096 transit key named
 * import/wrapping-key (so in policy/, seal-wrapped like every key; no key name can contain a
 * "/", and key listings skip it).
 */
const WRAPPING_KEY = 'import/wrapping-key';

/** The mount's wrapping key's latest version, created (RSA-4096, on libuv's pool) on first use. */
async function wrappingKey(t: Transit): Promise<KeyVersion> {
  const p =
    (await t.policies.get(WRAPPING_KEY)) ??
    (await t.policies.update(WRAPPING_KEY, async (existing) => {
      if (existing) return { result: existing };
      const fresh = await newPolicy(WRAPPING_KEY, 'rsa-4096', {});
      return { policy: fresh, result: fresh };
    }));
  return p.versions[String(p.latest_version)];
}

const HASH_FIELD: FieldDef = {
  type: 'string',
  default: 'SHA256',
  description: 'Hash of the RSA-OAEP encryption of the ephemeral AES key: SHA1, SHA224, SHA256, SHA384 or SHA512.',
};
const CIPHERTEXT_FIELD: FieldDef = {
  type: 'string',
  description:
    "Base64 of the RSA-OAEP encryption of an ephemeral AES-256 key under this mount's wrapping key (512 bytes), followed by the key to import wrapped with that AES key by AES-KWP (RFC 5649): raw bytes for AES, ChaCha20 and HMAC keys, PKCS#8 DER for RSA, ECDSA and Ed25519 keys.",
};
const PUBLIC_KEY_FIELD: FieldDef = {
  type: 'string',
  description:
    'A PEM public key (SubjectPublicKeyInfo) to import alone (RSA, ECDSA, Ed25519), when ciphertext is not given. It verifies (and RSA encrypts); import_version can add its private key later.',
};

/**
 * The material a request brings: the key unwrapped from `ciphertext` (when given, as in
 * Vault public_key is then ignored), else the PEM public_key; neither is a 400.
 */
async function requestMaterial(t: Transit, r: Request): Promise<Imported> {
  if (r.data.has('ciphertext')) {
    const hash = oaepHash(r.data.str('hash_function'));
    const ciphertext = decodeBase64(r.data.str('ciphertext'));
    if (!ciphertext) throw new UserError('ciphertext must be base64-encoded (standard alphabet, with padding)');
    if (ciphertext.length <= ENCRYPTED_KEY_BYTES) throw new UserError('provided ciphertext is too short');
    const wk = await wrappingKey(t);
    return { private: await unwrapImport(parsed(wk.key!).priv, ciphertext, hash) };
  }
  // (Current Vault takes a missing public_key as an empty one and then fails on parsing it;
  // its earlier releases said this, which is clearer.)
  if (!r.data.has('public_key')) throw new UserError('one of the following fields, ciphertext xor public_key, has to be set');
  return { publicPem: r.data.str('public_key') };
}

const newHmacKey = () => randomBytes(32).toString('base64');

/** A new version from imported material (its HMAC key is random, except an hmac key's, which is the key). */
function newImportedVersion(p: Pick<Policy, 'type' | 'derived'>, m: Imported): { v: KeyVersion; keySize?: number } {
  const { key, public_key, keySize } = importedMaterial(p, m);
  const v: KeyVersion = { creation_time: new Date().toISOString(), hmac_key: p.type === 'hmac' ? key! : newHmacKey() };
  if (key) v.key = key;
  if (public_key) v.public_key = public_key;
  return { v, keySize };
}

/**
 * import_version with a private key for `n`, a version that has only its public key: the
 * key must be that public key's pair.
 */
function completeVersion(p: Policy, n: number, m: { private: Buffer }): Policy {
  const v = p.versions[String(n)];
  const { key } = importedMaterial(p, m);
  if (!samePair(v, key!)) throw new UserError('cannot import key, key pair does not match');
  const { public_key: _, ...rest } = v;
  return { ...p, versions: { ...p.versions, [n]: { ...rest, key } } };
}

/** The import_version rules for an explicit version (current Vault's KeyVersionCanBeUpdated). */
function checkUpdatable(p: Policy, n: number, isPrivate: boolean): void {
  const v = n >= p.min_decryption_version && n >= (p.min_available_version ?? 0) ? p.versions[String(n)] : undefined;
  if (!v) throw new UserError('no such key version');
  if (!importsPublicKey(p.type)) throw new UserError('provided type does not support importing key versions');
  if (!v.key && !isPrivate) throw new UserError('cannot add a public key to a key version that already has a public key set');
  if (v.key) throw new UserError('private key imported, key version cannot be updated');
}

/** byok-export's version: latest, N or vN (Go's Atoi: a sign and leading zeros allowed); else a 400. */
function exportVersion(p: Policy, raw: string): number {
  if (raw === 'latest') return p.latest_version;
  const s = raw.startsWith('v') ? raw.slice(1) : raw;
  if (!/^[+-]?\d{1,18}$/.test(s)) throw new UserError('invalid key version');
  return Number(s);
}

/** wrapping_key, keys/<name>/import, keys/<name>/import_version and byok-export/. */
export function byokPaths(t: Transit): PathDef[] {
  return [
    {
      pattern: 'wrapping_key',
      fields: {},
      synopsis: "The mount's RSA-4096 public key for wrapping keys to import.",
      description:
        "PEM (SubjectPublicKeyInfo). The key pair is made on first read and kept; its private key never leaves the mount. Use it with keys/<name>/import and import_version, or as the destination of another mount's byok-export.",
      operations: {
        read: async () => ({ data: { public_key: publicKeyObject(await wrappingKey(t)).export({ type: 'spki', format: 'pem' }) as string } }),
      },
    },
    {
      pattern: `keys/${NAME}/import`,
      fields: {
        name: { type: 'string', description: 'Name of the new key.' },
        type: {
          type: 'string',
          default: 'aes256-gcm96',
          description: `Type of the key imported: ${IMPORT_TYPES.join(', ')}.`,
        },
        ciphertext: CIPHERTEXT_FIELD,
        hash_function: HASH_FIELD,
        public_key: PUBLIC_KEY_FIELD,
        allow_rotation: { type: 'bool', default: false, description: 'The key may be rotated here (a rotation makes it no longer an imported key).' },
        derived: {
          type: 'bool',
          default: false,
          description: "Derive a key per request from a context, with Vault's counter-mode KDF for imported keys (HMAC-SHA256, NIST SP 800-108).",
        },
        exportable: { type: 'bool', default: false, description: 'The key may be exported (export/, byok-export/).' },
        allow_plaintext_backup: { type: 'bool', default: false, description: 'The key may be backed up in plaintext.' },
        context: { type: 'string', description: 'Accepted for compatibility (unused, as in Vault).' },
        auto_rotate_period: { type: 'duration', default: 0, description: 'Rotate automatically after this long (needs allow_rotation; 0 disables).' },
        convergent_encryption: { type: 'bool', description: 'Not accepted: imported keys cannot be convergent (a 400, as Vault).' },
      },
      synopsis: 'Import a key made outside this mount as a new key.',
      description:
        'The key is wrapped for this mount (see wrapping_key and ciphertext), or only its public key is given (public_key). Refused if the key exists: import_version adds versions. The key is then used like a generated one; it rotates only with allow_rotation.',
      operations: {
        update: async (r) => {
          const name = r.data.str('name');
          // Current Vault's checks, in its order.
          if (r.data.has('convergent_encryption')) throw new UserError('import cannot be used on keys with convergent encryption enabled');
          const autoRotate = r.data.int('auto_rotate_period');
          const allowRotation = r.data.bool('allow_rotation');
          if (autoRotate < 0) throw new UserError('auto_rotate_period cannot be negative');
          if (autoRotate > 0 && !allowRotation) throw new UserError('allow_rotation must be set to true if auto-rotation is enabled');
          const type = r.data.str('type').toLowerCase();
          if (!(IMPORT_TYPES as readonly string[]).includes(type)) throw new UserError(`unknown key type: ${r.data.str('type').slice(0, 40)}`);
          const exists = 'the import path cannot be used with an existing key; use import-version to rotate an existing imported key';
          if (await t.policies.get(name)) throw new UserError(exists);
          const derived = r.data.bool('derived');
          // Current Vault accepts a derived ed25519 import but then derives a 32-byte value it
          // cannot sign with (every sign fails); refused here when asked.
          if (derived && type === 'ed25519' && r.data.has('ciphertext'))
            throw new UserError('derived ed25519 keys cannot be imported: the key Vault would derive from it cannot sign');
          const shape = { type: type as Policy['type'], derived };
          const material = await requestMaterial(t, r);
          let made: { v: KeyVersion; keySize?: number };
          try {
            made = newImportedVersion(shape, material);
          } catch (e) {
            // As Vault, the key's own problems (size, type, encoding) say they are the import's.
            throw e instanceof UserError ? new UserError(`error importing key: ${e.message}`) : e;
          } finally {
            if ('private' in material) material.private.fill(0);
          }
          await t.policies.update(name, async (existing) => {
            if (existing) throw new UserError(exists);
            const now = new Date().toISOString();
            const policy: Policy = {
              name,
              type: shape.type,
              versions: { 1: made.v },
              ...(made.keySize ? { key_size: made.keySize } : {}),
              latest_version: 1,
              min_decryption_version: 1,
              min_encryption_version: 0,
              derived,
              ...(derived ? { kdf: 'hmac-sha256-counter' as const } : {}),
              convergent_encryption: false,
              exportable: r.data.bool('exportable'),
              deletion_allowed: false,
              auto_rotate_period: autoRotate,
              last_rotated: now,
              ...(r.data.bool('allow_plaintext_backup') ? { allow_plaintext_backup: true } : {}),
              imported_key: true,
              allow_imported_key_rotation: allowRotation,
            };
            return { policy, result: undefined };
          });
          // As current Vault: a 204.
          return undefined;
        },
      },
    },
    {
      pattern: `keys/${NAME}/import_version`,
      fields: {
        name: { type: 'string', description: 'Name of the imported key.' },
        ciphertext: CIPHERTEXT_FIELD,
        hash_function: HASH_FIELD,
        public_key: PUBLIC_KEY_FIELD,
        version: {
          type: 'int',
          description:
            'A version imported with its public key only, to add its private key to. Without it: the private key completes the latest version if that one lacks it and matches, else a new version is added.',
        },
      },
      synopsis: 'Import a new version (or the private half of one) into an imported key.',
      description: 'Only for keys made by keys/<name>/import and not rotated here since. The new version becomes the latest, as a rotation would make it.',
      operations: {
        update: async (r) => {
          const name = r.data.str('name');
          const check = (p: Policy | undefined): Policy => {
            if (!p) throw new UserError(`no key found with name ${name}; to import a new key, use the import/ endpoint`);
            if (!p.imported_key || madeByDeriveKey(p)) throw new UserError('the import_version endpoint can only be used with an imported key');
            return p;
          };
          // Checked before the (costly) unwrapping, and again under the key's lock.
          check(await t.policies.get(name));
          const m = await requestMaterial(t, r);
          const isPrivate = 'private' in m;
          try {
            await t.policies.update(name, async (current) => {
              const p = check(current);
              if (r.data.has('version')) {
                const n = r.data.int('version');
                checkUpdatable(p, n, isPrivate);
                return { policy: completeVersion(p, n, m as { private: Buffer }), result: undefined };
              }
              // As current Vault: a private key first tries to complete a latest version that
              // has only its public key; if it is not that key's pair, it becomes a new version.
              const latest = p.versions[String(p.latest_version)];
              if (isPrivate && !latest.key && latest.public_key) {
                try {
                  return { policy: completeVersion(p, p.latest_version, m), result: undefined };
                } catch {
                  /* a new version below */
                }
              }
              const { v, keySize } = newImportedVersion(p, m);
              const n = p.latest_version + 1;
              const next: Policy = { ...p, versions: { ...p.versions, [n]: v }, latest_version: n, last_rotated: v.creation_time };
              if (keySize) next.key_size = keySize;
              return { policy: next, result: undefined };
            });
          } finally {
            if ('private' in m) m.private.fill(0);
          }
          return undefined;
        },
      },
    },
    {
      pattern: `byok-export/${nameGroup('destination')}/${nameGroup('source')}(?:/(?<version>[^/]+))?`,
      fields: {
        destination: { type: 'string', description: "An RSA key of this mount to wrap for: usually another mount's wrapping_key, imported with public_key." },
        source: { type: 'string', description: 'The key to export (it must be exportable).' },
        version: { type: 'string', description: 'A version, vN or latest (default: every available version).' },
        hash: { type: 'string', default: 'SHA256', description: 'Hash of the RSA-OAEP encryption: SHA1, SHA224, SHA256, SHA384 or SHA512.' },
      },
      synopsis: "Export a key wrapped for another mount's import, never in plaintext.",
      description:
        "Each version is wrapped as keys/<name>/import takes it (RSA-OAEP of an ephemeral AES-256 key under the destination key's latest version, then AES-KWP of the key), ready for the destination mount's import or import_version.",
      operations: {
        read: async (r) => {
          const dst = await t.policies.get(r.data.str('destination'));
          if (!dst) throw new UserError('no such destination key to export to');
          const src = await t.policies.get(r.data.str('source'));
          if (!src) throw new UserError('no such source key for export');
          if (!src.exportable) throw new UserError('key is not exportable');
          const wanted = r.data.str('version');
          let versions: number[];
          if (wanted) {
            const n = exportVersion(src, wanted);
            if (n < src.min_decryption_version) throw new UserError('version for export is below minimum decryption version');
            if (!src.versions[String(n)]) throw new UserError('version does not exist or cannot be found');
            versions = [n];
          } else
            versions = Object.keys(src.versions)
              .map(Number)
              .filter((n) => n >= src.min_decryption_version);
          // The destination must be an RSA key (its latest version; its public key suffices).
          if (!dst.type.startsWith('rsa-')) throw new UserError(`unsupported key type in use; must be a rsa key (${dst.name} is ${dst.type})`);
          const hash = oaepHash(r.data.str('hash'));
          const wrapWith = publicKeyObject(dst.versions[String(dst.latest_version)]);
          const keys: Record<string, string> = {};
          for (const n of versions) {
            const material = exportMaterial(src, src.versions[String(n)], n);
            try {
              keys[n] = wrapForImport(wrapWith, material, hash);
            } finally {
              material.fill(0);
            }
          }
          return { data: { name: src.name, type: src.type, keys } };
        },
      },
    },
  ];
}
