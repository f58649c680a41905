// export/<type>/<name>[/<version>], backup/<name>, restore[/<name>], keys/<name>/trim,
// cache-config, config/keys: the rest of a transit key's life, with Vault's API and rules (export only
// for exportable keys; backup only with exportable and allow_plaintext_backup).
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { getJson, putJson, type Storage } from '../../storage/storage';
import { UserError, type PathDef } from '../framework';
import { decodeBase64 } from './envelope';
import { chainPem } from './certificates';
import { ML_DSA_SETS } from './mldsa';
import { checkType } from './material';
import {
  HMAC_KEY_SIZES,
  KEY_TYPES,
  canDerive,
  canEncrypt,
  canSign,
  hasPublicKey,
  isSymmetric,
  privateKeyOf,
  publicKeyOf,
  type KeyVersion,
  type Policy,
} from './policy';
import type { Transit } from './context';

import { nameGroup, isName } from '../../schema';
const NAME = nameGroup();
const EXPORT_TYPES = ['encryption-key', 'signing-key', 'hmac-key', 'public-key', 'certificate-chain'] as const;
const CACHE_KEY = 'config/cache';
const CACHE_NOTE = 'the cache size is recorded for compatibility; this plugin caches keys as they are used, whatever the size';
const BACKUP_FORMAT = 'vault-plugin-ts/transit-backup/v1';

/** One version's key in Vault's export encoding. */
function exported(p: Policy, v: KeyVersion, type: (typeof EXPORT_TYPES)[number]): string {
  if (type === 'hmac-key') return v.hmac_key;
  if (type === 'certificate-chain') {
    const chain = chainPem(v);
    if (!chain) throw new UserError('selected key version does not have a certificate chain imported');
    return chain;
  }
  if (type === 'public-key') return publicKeyOf(p, v)!;
  // Symmetric keys as base64; an ML-DSA key as its 32-byte seed (FIPS 204's xi), base64.
  if (isSymmetric(p.type) || p.type === 'ml-dsa') return v.key!;
  // A version imported with its public key only has no private key to export: "", as Vault.
  if (!v.key) return '';
  const priv = privateKeyOf(v);
  // Ed25519 as Go holds it (seed || public key); EC as SEC 1 and RSA as PKCS#1 PEM, as Vault exports them.
  if (p.type === 'ed25519') {
    const seed = (priv.export({ type: 'pkcs8', format: 'der' }) as Buffer).subarray(-32);
    const pub = (createPublicKey(priv).export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32);
    return Buffer.concat([seed, pub]).toString('base64');
  }
  return priv.export({ type: p.type.startsWith('rsa-') ? 'pkcs1' : 'sec1', format: 'pem' }) as string;
}

function checkExportable(p: Policy, type: (typeof EXPORT_TYPES)[number]): void {
  if (p.type === 'managed_key') throw new UserError('managed keys cannot be exported: their material stays in the HSM/KMS');
  if (type === 'public-key') {
    if (!hasPublicKey(p.type)) throw new UserError(`public-key export is not supported for ${p.type} keys`);
    return;
  }
  // Current Vault: a chain set by keys/<name>/set-certificate is public, exportable or not.
  if (type === 'certificate-chain') {
    if (!canSign(p.type)) throw new UserError('certificate chain not supported for keys that do not support signing');
    return;
  }
  if (!p.exportable) throw new UserError('private key material is not exportable');
  if (type === 'encryption-key' && !canEncrypt(p.type)) throw new UserError('encryption key not supported by the key type');
  if (type === 'signing-key' && !canSign(p.type)) throw new UserError('signing key not supported by the key type');
}

const SYMMETRIC_BYTES: Partial<Record<string, number>> = { 'aes128-gcm96': 16, 'aes256-gcm96': 32, 'chacha20-poly1305': 32 };
const isInt = (v: unknown, min: number, max: number) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const optional = (v: unknown, type: 'boolean' | 'string') => v === undefined || typeof v === type;

/** A restored version's material is what its type uses (parsed, as on first use): else the key would fail every request. */
function versionFits(p: Policy, v: KeyVersion): boolean {
  if (typeof v.hmac_key !== 'string' || !decodeBase64(v.hmac_key)?.length) return false;
  if (
    v.certificate_chain !== undefined &&
    !(Array.isArray(v.certificate_chain) && v.certificate_chain.every((c) => typeof c === 'string' && decodeBase64(c)?.length))
  )
    return false;
  const want = SYMMETRIC_BYTES[p.type];
  if (want !== undefined) return typeof v.key === 'string' && decodeBase64(v.key)?.length === want;
  if (p.type === 'hmac') return typeof v.key === 'string' && isInt(decodeBase64(v.key)?.length, HMAC_KEY_SIZES.min, HMAC_KEY_SIZES.max);
  if (p.type === 'managed_key') return v.key === undefined;
  if (p.type === 'ml-dsa') return typeof v.key === 'string' && decodeBase64(v.key)?.length === 32;
  if (!optional(v.key, 'string') || !optional(v.public_key, 'string') || (v.key === undefined && v.public_key === undefined)) return false;
  // A derived ed25519 key derives from the private key: a public key alone serves nothing.
  if (p.derived && v.key === undefined) return false;
  try {
    const k = v.key !== undefined ? createPrivateKey(v.key) : createPublicKey(v.public_key!);
    if (p.type === 'x25519') return k.asymmetricKeyType === 'x25519';
    checkType(p.type, k);
    return true;
  } catch {
    return false;
  }
}

/** A restored policy must look like one this plugin wrote: anything else is a 400. */
function checkBackup(x: unknown): Policy {
  const p = (x as { format?: string; policy?: Policy })?.policy;
  const ok =
    (x as { format?: string })?.format === BACKUP_FORMAT &&
    p &&
    typeof p === 'object' &&
    (KEY_TYPES as readonly string[]).includes(p.type) &&
    Number.isInteger(p.latest_version) &&
    p.latest_version >= 1 &&
    (p.type === 'ml-dsa') === (ML_DSA_SETS as readonly string[]).includes(p.parameter_set ?? '') &&
    // An ML-DSA version is its 32-byte seed: anything else would fail on first use.
    (p.type !== 'ml-dsa' || Object.values(p.versions ?? {}).every((v) => typeof v?.key === 'string' && decodeBase64(v.key)?.length === 32)) &&
    p.versions &&
    typeof p.versions === 'object' &&
    Object.entries(p.versions).every(([n, v]) => /^[1-9][0-9]*$/.test(n) && Number(n) <= p.latest_version && typeof v?.hmac_key === 'string') &&
    // The floors and flags every request reads, and each version's material, as this plugin writes them.
    p.versions[String(p.latest_version)] !== undefined &&
    isInt(p.min_decryption_version, 1, p.latest_version) &&
    isInt(p.min_encryption_version, 0, p.latest_version) &&
    (p.min_available_version === undefined || isInt(p.min_available_version, 0, p.min_decryption_version)) &&
    (p.auto_rotate_period === undefined || isInt(p.auto_rotate_period, 0, Number.MAX_SAFE_INTEGER)) &&
    (['derived', 'convergent_encryption', 'exportable', 'deletion_allowed', 'allow_plaintext_backup', 'imported_key'] as const).every((f) =>
      optional(p[f], 'boolean'),
    ) &&
    (!p.derived || canDerive(p.type)) &&
    (!p.convergent_encryption || (p.derived && isSymmetric(p.type))) &&
    (p.type === 'managed_key') === (typeof p.managed_key_name === 'string' && isName(p.managed_key_name)) &&
    Object.values(p.versions).every((v) => versionFits(p, v));
  if (!ok) throw new UserError('invalid backup: not a transit key backup made by this plugin');
  return p;
}

/** export/<type>/<name>[/<version>], backup/<name>, restore[/<name>], keys/<name>/trim, cache-config and config/keys. */
export function lifecyclePaths(t: Transit): PathDef[] {
  return [
    {
      pattern: `export/(?<type>${EXPORT_TYPES.join('|')})/${NAME}(?:/(?<version>latest|[0-9]+))?`,
      fields: {
        type: { type: 'string', description: 'encryption-key, signing-key, hmac-key, public-key or certificate-chain.' },
        name: { type: 'string', description: 'Name of the key.' },
        version: { type: 'string', description: 'A version, or latest (default: every available version).' },
      },
      synopsis: "Export a key's material (only for keys created with exportable=true; public keys always).",
      description:
        'Symmetric and HMAC keys as base64; ECDSA as SEC 1 PEM; RSA as PKCS#1 PEM; Ed25519 as base64 of seed and public key; ML-DSA as base64 of its seed. X25519 private keys are never exported (public-key only).',
      operations: {
        read: async (r) => {
          const p = await t.policies.get(r.data.str('name'));
          if (!p) return undefined;
          const type = r.data.str('type') as (typeof EXPORT_TYPES)[number];
          checkExportable(p, type);
          const want = r.data.str('version');
          const n = want === 'latest' ? p.latest_version : want ? Number(want) : 0;
          // As Vault: versions below min_decryption_version are archived, out of reach of export
          // (asking for one is a 400; exporting all leaves them out).
          if (want && n < p.min_decryption_version) throw new UserError('version for export is below minimum decryption version');
          if (want && (n > p.latest_version || !p.versions[String(n)])) throw new UserError('version does not exist or cannot be found');
          const keys: Record<string, string> = {};
          for (const [k, v] of Object.entries(p.versions)) if (n ? Number(k) === n : Number(k) >= p.min_decryption_version) keys[k] = exported(p, v, type);
          return { data: { name: p.name, type: p.type, keys } };
        },
      },
    },
    {
      pattern: `backup/${NAME}`,
      fields: { name: { type: 'string', description: 'Name of the key.' } },
      synopsis: 'Back up a key with all its versions, in plaintext (keys with exportable and allow_plaintext_backup only).',
      description: 'The backup restores with restore/; it holds the key material unencrypted.',
      operations: {
        read: async (r) =>
          t.policies.update(r.data.str('name'), async (p) => {
            if (!p) throw new UserError(`encryption key not found: ${r.data.str('name')}`);
            if (!p.exportable) throw new UserError('exporting is disallowed on the policy');
            if (!p.allow_plaintext_backup) throw new UserError('plaintext backup is disallowed on the policy');
            // As Vault, the key remembers its last backup (and the backup carries that record).
            const policy = { ...p, backup_info: { time: new Date().toISOString(), version: p.latest_version } };
            return { policy, result: { data: { backup: Buffer.from(JSON.stringify({ format: BACKUP_FORMAT, policy })).toString('base64') } } };
          }),
      },
    },
    {
      pattern: `restore(?:/${NAME})?`,
      fields: {
        name: { type: 'string', description: 'Name for the restored key (default: its name in the backup).' },
        backup: { type: 'string', required: true, description: 'A backup from backup/<name>.' },
        force: { type: 'bool', default: false, description: 'Replace an existing key of that name.' },
      },
      synopsis: 'Restore a key from a backup.',
      description: 'Refused if the key exists, unless force=true.',
      operations: {
        update: async (r) => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.from(r.data.str('backup'), 'base64').toString('utf8'));
          } catch {
            throw new UserError('invalid backup: not base64 JSON');
          }
          const p = checkBackup(parsed);
          const name = r.data.str('name') || p.name;
          if (!isName(String(name))) throw new UserError('invalid key name in backup');
          await t.policies.update(name, async (existing) => {
            if (existing && !r.data.bool('force')) throw new UserError(`key "${name}" already exists`);
            return { policy: { ...p, name, restore_info: { time: new Date().toISOString(), version: p.latest_version } }, result: undefined };
          });
          return undefined;
        },
      },
    },
    {
      pattern: `keys/${NAME}/trim`,
      fields: {
        name: { type: 'string', description: 'Name of the key.' },
        min_available_version: { type: 'int', description: 'Delete the versions below this one, for good.' },
      },
      synopsis: 'Delete old key versions permanently.',
      description: 'Allowed up to min_encryption_version and min_decryption_version (both must be set); never backwards.',
      operations: {
        update: async (r) =>
          t.policies.update(r.data.str('name'), async (p) => {
            if (!p) throw new UserError(`encryption key not found: ${r.data.str('name')}`);
            if (!r.data.has('min_available_version')) throw new UserError('missing min_available_version');
            const m = r.data.int('min_available_version');
            const cur = p.min_available_version ?? 0;
            if (m < cur) throw new UserError('minimum available version cannot be decremented');
            if (p.min_encryption_version === 0) throw new UserError('minimum available version cannot be set when minimum encryption version is not set');
            if (m > p.min_encryption_version) throw new UserError('minimum available version cannot be greater than minimum encryption version');
            if (m > p.min_decryption_version) throw new UserError('minimum available version cannot be greater than minimum decryption version');
            if (m <= 0) throw new UserError('minimum available version should be positive');
            const versions = Object.fromEntries(Object.entries(p.versions).filter(([n]) => Number(n) >= m));
            return { policy: { ...p, versions, min_available_version: m }, result: undefined };
          }),
      },
    },
    {
      pattern: 'cache-config',
      fields: { size: { type: 'int', default: 0, description: 'Accepted for compatibility: 0 (unbounded) or at least 10. Keys are cached as used.' } },
      synopsis: 'Read or set the key cache size.',
      description: 'This plugin caches parsed keys as they are used; the size is stored and reported.',
      operations: {
        read: async (r) => ({ data: { size: (await getJson<{ size: number }>(r.storage, CACHE_KEY))?.size ?? 0 }, warnings: [CACHE_NOTE] }),
        update: async (r) => {
          const size = r.data.int('size');
          if (size !== 0 && size < 10) throw new UserError('size must be 0 or a value greater or equal to 10');
          await putJson(r.storage, CACHE_KEY, { size });
          return { warnings: [CACHE_NOTE] };
        },
      },
    },
    {
      // Current Vault's (1.13+) mount-wide key settings; Vault 1.8's transit has no such path.
      pattern: 'config/keys',
      fields: {
        disable_upsert: { type: 'bool', description: 'Refuse to create keys on first use by encrypt/ (the key must be made with keys/<name> first).' },
      },
      synopsis: 'Read or set what applies to every key of the mount.',
      description:
        "disable_upsert: encrypt/ on a key that does not exist is a 400 instead of creating it. A write sets every field (an absent one to false), as Vault's.",
      operations: {
        read: async (r) => ({ data: await keysConfig(r.storage) }),
        update: async (r) => {
          const cfg: KeysConfig = { disable_upsert: r.data.bool('disable_upsert') };
          if ((await keysConfig(r.storage)).disable_upsert !== cfg.disable_upsert) await putJson(r.storage, KEYS_CONFIG_KEY, cfg);
          return { data: cfg };
        },
      },
    },
  ];
}

const KEYS_CONFIG_KEY = 'config/keys';
/** The mount's config/keys. */
export type KeysConfig = { disable_upsert: boolean };
/** The mount's config/keys as stored, with Vault's defaults for what is not. */
export async function keysConfig(storage: Storage): Promise<KeysConfig> {
  const stored = await getJson<Partial<KeysConfig>>(storage, KEYS_CONFIG_KEY);
  return { disable_upsert: stored?.disable_upsert === true };
}
