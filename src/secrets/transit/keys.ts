// keys/, keys/<name>, keys/<name>/config, keys/<name>/rotate
import { UserError, type PathDef } from '../framework';
import {
  HMAC_KEY_SIZES,
  KEY_TYPES,
  canDerive,
  canEncrypt,
  canSign,
  derivedEd25519,
  isSymmetric,
  madeByDeriveKey,
  newVersion,
  publicKeyOf,
  rawEd25519,
  versionKeyName,
  type Policy,
} from './policy';
import { ML_DSA_SETS, type MlDsaSet } from './mldsa';
import type { Transit } from './context';
import { b64 } from './envelope';
import { chainPem } from './certificates';

import { nameGroup } from '../../schema';
const NAME = nameGroup();

/**
 * A key as keys/<name> reads it, in Vault's shape; versions with a public key show it. As
 * Vault, only versions from min_decryption_version up are listed (Vault archives the older
 * ones, trimmed ones included, out of the key's map).
 */
export function describePolicy(p: Policy, context?: Buffer): Record<string, unknown> {
  const keys: Record<string, unknown> = {};
  for (const [n, v] of Object.entries(p.versions)) {
    if (Number(n) < Math.max(p.min_available_version ?? 0, p.min_decryption_version)) continue;
    // A derived ed25519 key has a public key per context, as Vault: the read's context's, or "" without one.
    const derivedEd = p.derived && p.type === 'ed25519';
    const pub = derivedEd ? (context?.length ? rawEd25519(derivedEd25519(v.key!, context).pub) : '') : publicKeyOf(p, v);
    if (derivedEd) {
      keys[n] = { creation_time: v.creation_time, name: 'ed25519', public_key: pub };
      continue;
    }
    // Vault names each asymmetric version by its key (curve or size): "ed25519", "P-256", "rsa-2048".
    // A chain set by keys/<name>/set-certificate shows as current Vault shows it (PEM, leaf first).
    const chain = chainPem(v);
    keys[n] = pub
      ? { creation_time: v.creation_time, name: versionKeyName(p), public_key: pub, ...(chain ? { certificate_chain: chain } : {}) }
      : Math.floor(Date.parse(v.creation_time) / 1000);
  }
  return {
    name: p.name,
    type: p.type,
    keys,
    latest_version: p.latest_version,
    min_available_version: p.min_available_version ?? 0,
    min_decryption_version: p.min_decryption_version,
    min_encryption_version: p.min_encryption_version,
    deletion_allowed: p.deletion_allowed,
    derived: p.derived,
    exportable: p.exportable,
    allow_plaintext_backup: p.allow_plaintext_backup ?? false,
    // As current Vault: derived keys show their KDF and whether they are convergent (with the
    // convergent version when they are); other keys show neither.
    // Imported keys derive with Vault's counter-mode KDF, which Vault names in both fields.
    ...(p.derived
      ? p.kdf === 'hmac-sha256-counter'
        ? { kdf: p.kdf, kdf_mode: p.kdf, convergent_encryption: p.convergent_encryption }
        : { kdf: 'hkdf_sha256', convergent_encryption: p.convergent_encryption }
      : {}),
    ...(p.convergent_encryption ? { convergent_encryption_version: 2 } : {}),
    auto_rotate_period: p.auto_rotate_period,
    ...(p.backup_info ? { backup_info: p.backup_info } : {}),
    ...(p.restore_info ? { restore_info: p.restore_info } : {}),
    supports_encryption: canEncrypt(p.type) || p.type === 'managed_key',
    supports_decryption: canEncrypt(p.type) || p.type === 'managed_key',
    supports_derivation: canDerive(p.type),
    supports_signing: canSign(p.type) || p.type === 'managed_key',
    ...(p.managed_key_name ? { managed_key_name: p.managed_key_name } : {}),
    // As current Vault: parameter_set on ML-DSA keys; imported_key on every key (true for
    // imported keys until rotated here, and for derive-key's), with whether it may rotate.
    ...(p.parameter_set ? { parameter_set: p.parameter_set } : {}),
    ...(p.key_size ? { key_size: p.key_size } : {}),
    imported_key: !!p.imported_key,
    ...(p.imported_key ? { imported_key_allow_rotation: !!p.allow_imported_key_rotation } : {}),
  };
}

/** A new key with one version, after Vault's checks on the type and options (each refusal a 400). */
export async function newPolicy(
  name: string,
  type: string,
  o: { derived?: boolean; convergent?: boolean; exportable?: boolean; autoRotate?: number; managedKeyName?: string; parameterSet?: string; keySize?: number },
): Promise<Policy> {
  if (!(KEY_TYPES as readonly string[]).includes(type)) throw new UserError(`unknown key type ${type.slice(0, 40)}`);
  const t = type as Policy['type'];
  // As Vault: key_size (bytes) is for hmac keys only, 32 to 512.
  if (o.keySize) {
    if (t !== 'hmac') throw new UserError(`key_size is not valid for algorithm ${t}`);
    if (o.keySize < HMAC_KEY_SIZES.min || o.keySize > HMAC_KEY_SIZES.max) throw new UserError(`invalid key_size ${o.keySize}`);
  }
  // Vault Enterprise's ml-dsa: the parameter set is required (no default); other types take none.
  if (t === 'ml-dsa' && !(ML_DSA_SETS as readonly string[]).includes(o.parameterSet ?? ''))
    throw new UserError(`invalid parameter set ${String(o.parameterSet ?? '').slice(0, 20)} for key type ml-dsa (44, 65 or 87)`);
  if (t !== 'ml-dsa' && o.parameterSet) throw new UserError(`parameter_set is only valid with type ml-dsa`);
  if (o.convergent && !o.derived) throw new UserError('convergent encryption requires derivation to be enabled (derived=true)');
  if (o.derived && !canDerive(t)) throw new UserError(`key derivation is not supported for ${t} keys`);
  if (o.convergent && !isSymmetric(t)) throw new UserError(`convergent encryption not supported for keys of type ${t}`);
  if (t === 'managed_key' && !o.managedKeyName) throw new UserError('managed_key_name is required for type managed_key');
  if (t !== 'managed_key' && o.managedKeyName) throw new UserError('managed_key_name is only valid with type managed_key');
  if (o.autoRotate && o.autoRotate < 3600) throw new UserError('auto_rotate_period must be at least 1h (or 0 to disable)');
  const now = new Date().toISOString();
  return {
    name,
    type: t,
    versions: { 1: await newVersion(t, o.keySize) },
    ...(o.keySize ? { key_size: o.keySize } : {}),
    latest_version: 1,
    ...(t === 'ml-dsa' ? { parameter_set: o.parameterSet as MlDsaSet } : {}),
    min_decryption_version: 1,
    min_encryption_version: 0,
    derived: !!o.derived,
    convergent_encryption: !!o.convergent,
    exportable: !!o.exportable,
    deletion_allowed: false,
    auto_rotate_period: o.autoRotate ?? 0,
    managed_key_name: o.managedKeyName,
    last_rotated: now,
  };
}

/** Can this key rotate here? Not managed keys, derive-key's keys, nor imported keys without allow_rotation. */
export const canRotate = (p: Policy): boolean => p.type !== 'managed_key' && (!p.imported_key || p.allow_imported_key_rotation === true);

/**
 * The key with a new latest version; managed keys, derive-key's keys and imported keys
 * without allow_rotation cannot be rotated (400). As current Vault, rotating an imported key
 * makes it a key of this mount: imported_key becomes false and import_version is refused.
 */
export async function rotate(p: Policy): Promise<Policy> {
  if (p.type === 'managed_key') throw new UserError('managed keys rotate in their own backend (HSM or KMS), not here');
  if (madeByDeriveKey(p)) throw new UserError('this key was made by derive-key and cannot be rotated: derive a new key instead');
  if (p.imported_key && !p.allow_imported_key_rotation) throw new UserError(`imported key ${p.name} does not allow rotation within Vault`);
  const n = p.latest_version + 1;
  const next: Policy = {
    ...p,
    versions: { ...p.versions, [n]: await newVersion(p.type, p.key_size) },
    latest_version: n,
    last_rotated: new Date().toISOString(),
  };
  delete next.imported_key;
  return next;
}

/** keys/ (LIST), keys/<name>, keys/<name>/config and keys/<name>/rotate. */
export function keyPaths(t: Transit): PathDef[] {
  return [
    {
      pattern: 'keys/?',
      fields: {},
      synopsis: 'List the named encryption keys.',
      description: 'Names of the keys of this mount.',
      operations: { list: async () => ({ data: { keys: await t.policies.list() } }) },
    },
    {
      pattern: `keys/${NAME}`,
      fields: {
        name: { type: 'string', description: 'Name of the key.' },
        type: { type: 'string', default: 'aes256-gcm96', allowed: KEY_TYPES, description: 'Key type.' },
        derived: { type: 'bool', default: false, description: 'Derive a key per request from a context (HKDF-SHA256).' },
        convergent_encryption: { type: 'bool', default: false, description: 'Same plaintext and context give the same ciphertext (needs derived).' },
        exportable: { type: 'bool', default: false, description: 'The key may be exported (export/<type>/<name>). Once set it cannot be unset.' },
        auto_rotate_period: { type: 'duration', default: 0, description: 'Rotate automatically after this long (at least 1h; 0 disables).' },
        managed_key_name: { type: 'string', description: 'With type managed_key: the managed key doing the cryptography.' },
        allow_plaintext_backup: {
          type: 'bool',
          default: false,
          description: 'The key may be backed up (backup/<name>), which returns its material in plaintext. Once set it cannot be unset.',
        },
        parameter_set: { type: 'string', description: 'With type ml-dsa (required): the FIPS 204 parameter set, 44, 65 or 87.' },
        key_size: { type: 'int', default: 0, description: 'With type hmac: the key size in bytes, 32 to 512 (default 32).' },
        context: {
          type: 'string',
          description: 'Base64 context: on a read of a derived ed25519 key, the public keys shown are those derived for this context.',
        },
      },
      synopsis: 'Create, read or delete a named encryption key.',
      description:
        'Keys are versioned; ciphertexts, signatures and HMACs name the version as vault:v<N>:. With type managed_key the key material stays in the managed key (HSM/KMS).',
      existence: async (r) => (await t.policies.get(r.data.str('name'))) !== undefined,
      operations: {
        create: async (r) => {
          const n = r.data.str('name');
          return t.policies.update(n, async (existing) => {
            if (existing) return { result: { data: describePolicy(existing) } };
            const p = await newPolicy(n, r.data.str('type'), {
              derived: r.data.bool('derived'),
              convergent: r.data.bool('convergent_encryption'),
              exportable: r.data.bool('exportable'),
              autoRotate: r.data.int('auto_rotate_period'),
              managedKeyName: r.data.get('managed_key_name'),
              parameterSet: r.data.get('parameter_set'),
              keySize: r.data.int('key_size'),
            });
            if (r.data.bool('allow_plaintext_backup')) p.allow_plaintext_backup = true;
            return { policy: p, result: { data: describePolicy(p) } };
          });
        },
        read: async (r) => {
          const p = await t.policies.get(r.data.str('name'));
          return p ? { data: describePolicy(p, b64(r.data.get('context'), 'context', false)) } : undefined;
        },
        delete: async (r) => {
          const n = r.data.str('name');
          await t.policies.update(n, async (p) => {
            // As Vault: deleting a key that does not exist is a 400, not a silent success.
            if (!p) throw new UserError(`error deleting policy ${n}: could not delete key; not found`);
            if (!p.deletion_allowed) throw new UserError('deletion is not allowed for this key (set deletion_allowed=true in keys/<name>/config)');
            await t.policies.delete(n);
            return { result: undefined };
          });
          return undefined;
        },
      },
    },
    {
      pattern: `keys/${NAME}/config`,
      fields: {
        name: { type: 'string', description: 'Name of the key.' },
        min_decryption_version: { type: 'int', description: 'Oldest version that may decrypt, verify or HMAC-verify.' },
        min_encryption_version: { type: 'int', description: 'Oldest version that may encrypt, sign or HMAC (0 = latest).' },
        deletion_allowed: { type: 'bool', description: 'Allow deleting the key.' },
        exportable: { type: 'bool', description: 'The key may be exported; once true it cannot be unset (false is ignored).' },
        allow_plaintext_backup: { type: 'bool', description: 'The key may be backed up in plaintext; once true it cannot be unset (false is ignored).' },
        auto_rotate_period: { type: 'duration', description: 'Rotate automatically after this long (at least 1h; 0 disables).' },
      },
      synopsis: 'Configure a named key.',
      description: 'Version floors, deletion, and automatic rotation.',
      operations: {
        update: async (r) =>
          t.policies.update(r.data.str('name'), async (p) => {
            if (!p) throw new UserError(`encryption key not found: ${r.data.str('name')}`);
            const next = { ...p };
            // Vault's rules and messages, in Vault's order.
            if (r.data.has('min_decryption_version')) {
              const v = r.data.int('min_decryption_version');
              if (v < 0) throw new UserError('min decryption version cannot be negative');
              if (v > p.latest_version) throw new UserError(`cannot set min decryption version of ${v}, latest key version is ${p.latest_version}`);
              next.min_decryption_version = Math.max(1, v);
            }
            if (r.data.has('min_encryption_version')) {
              const v = r.data.int('min_encryption_version');
              if (v < 0) throw new UserError('min encryption version cannot be negative');
              if (v > p.latest_version) throw new UserError(`cannot set min encryption version of ${v}, latest key version is ${p.latest_version}`);
              next.min_encryption_version = v;
            }
            if (next.min_encryption_version > 0 && next.min_encryption_version < next.min_decryption_version) {
              throw new UserError(
                `cannot set min encryption/decryption values; min encryption version of ${next.min_encryption_version} must be greater than or equal to min decryption version of ${next.min_decryption_version}`,
              );
            }
            // After a trim the versions below min_available_version are gone: neither floor may
            // point below it (0, "latest only", is below it too for min_encryption_version).
            const avail = p.min_available_version ?? 0;
            if (avail > next.min_encryption_version) throw new UserError('min encryption version should not be less than min available version');
            // (Vault's message, its typo included, so callers matching on it keep working.)
            if (avail > next.min_decryption_version) throw new UserError('min decryption version should not be less then min available version');
            if (r.data.has('deletion_allowed')) next.deletion_allowed = r.data.bool('deletion_allowed');
            // derive-key's keys hold a key-agreement secret that is never returned (README): not exportable, no plaintext backup.
            if (madeByDeriveKey(p) && (r.data.bool('exportable') || r.data.bool('allow_plaintext_backup')))
              throw new UserError('this key was made by derive-key: its shared secret is never exported or backed up in plaintext');
            // As Vault: exportable and allow_plaintext_backup can be set, never unset; false is ignored.
            if (r.data.bool('exportable')) next.exportable = true;
            if (r.data.bool('allow_plaintext_backup')) next.allow_plaintext_backup = true;
            if (r.data.has('auto_rotate_period')) {
              const a = r.data.int('auto_rotate_period');
              if (a !== 0 && a < 3600) throw new UserError('auto_rotate_period must be at least 1h (or 0 to disable)');
              // As Vault: a managed key rotates in its backend, so a period here would never act.
              if (p.type === 'managed_key' && a !== 0) throw new UserError('Auto rotation can not be set for managed keys');
              next.auto_rotate_period = a;
            }
            return { policy: next, result: { data: describePolicy(next) } };
          }),
      },
    },
    {
      pattern: `keys/${NAME}/rotate`,
      fields: { name: { type: 'string', description: 'Name of the key.' } },
      synopsis: 'Rotate a named key: add a version and make it the one used for new operations.',
      description: 'Old versions keep decrypting and verifying down to min_decryption_version.',
      operations: {
        update: async (r) =>
          t.policies.update(r.data.str('name'), async (p) => {
            if (!p) throw new UserError(`encryption key not found: ${r.data.str('name')}`);
            const next = await rotate(p);
            return { policy: next, result: { data: describePolicy(next) } };
          }),
      },
    },
  ];
}

/**
 * Vault's periodic "rollback" call: rotate keys whose auto_rotate_period has passed. As
 * Vault's, a key that fails (unreadable, a storage error) does not stop the others: the
 * failures are reported together at the end.
 */
export async function autoRotate(t: Transit, now = Date.now()): Promise<string[]> {
  const rotated: string[] = [];
  const failed: string[] = [];
  for (const n of await t.policies.list()) {
    try {
      await t.policies.update(n, async (p) => {
        if (!p?.auto_rotate_period || !canRotate(p)) return { result: undefined };
        if (Date.parse(p.last_rotated) + p.auto_rotate_period * 1000 > now) return { result: undefined };
        const next = await rotate(p);
        rotated.push(n);
        return { policy: next, result: undefined };
      });
    } catch (e) {
      failed.push(`${n}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (failed.length) throw new Error(`auto-rotation failed for ${failed.length} key(s) (${rotated.length} rotated): ${failed.join('; ')}`);
  return rotated;
}
