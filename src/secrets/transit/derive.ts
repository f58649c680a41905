// derive-key/<name>: X25519 key agreement, in the shape of OpenBao's transit ECDH
// (base_key_name, peer_public_key, derived_key_type, key_derivation_algorithm=ecdh). The
// shared secret never leaves the plugin: it becomes a new named symmetric key of this
// mount, which then encrypts and decrypts like any other. Neither private key is returned.
import { createPublicKey, diffieHellman, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { UserError, type PathDef } from '../framework';
import { b64, decodeBase64 } from './envelope';
import { canAgree, parsed, versionOf, type Policy } from './policy';
import { describePolicy } from './keys';
import { optInt, type Transit } from './context';

import { nameGroup } from '../../schema';
const NAME = nameGroup();
const DERIVED_TYPES = { 'aes128-gcm96': 16, 'aes256-gcm96': 32, 'chacha20-poly1305': 32 } as const;
/** HKDF's salt: names this use, so the output differs from any other HKDF over the same secret. */
const HKDF_SALT = Buffer.from('vault-plugin-ts transit derive-key x25519');
// The X25519 SubjectPublicKeyInfo header (RFC 8410); a raw 32-byte key follows it.
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

/** The peer's X25519 public key: SPKI PEM, or the raw 32 bytes in base64 (as key reads show it). */
function peerKey(value: unknown): KeyObject {
  if (typeof value !== 'string' || !value.trim()) throw new UserError('peer public key not provided');
  let key: KeyObject | undefined;
  try {
    if (value.includes('-----BEGIN')) key = createPublicKey(value);
    else {
      const raw = decodeBase64(value);
      if (raw?.length === 32) key = createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' });
    }
  } catch {
    /* reported below */
  }
  if (key?.asymmetricKeyType !== 'x25519') throw new UserError('peer_public_key must be an X25519 public key: SPKI PEM, or 32 bytes in standard base64');
  return key;
}

/**
 * The symmetric key both parties derive: HKDF-SHA256 over the X25519 shared secret (RFC
 * 7748 advises against using it raw), with HKDF_SALT and the caller's context as info.
 */
export function agree(base: Policy, version: number | undefined, peer: unknown, context: Buffer, bytes: number): Buffer {
  if (!canAgree(base.type)) throw new UserError(`base key type ${base.type} does not support key agreement`);
  const { v } = versionOf(base, version, 'encrypt');
  const publicKey = peerKey(peer);
  // A low-order peer point gives the all-zero secret (RFC 7748 section 6.1), which OpenSSL
  // refuses to return; refuse it either way.
  let secret: Buffer | undefined;
  try {
    secret = diffieHellman({ privateKey: parsed(v.key!).priv, publicKey });
  } catch {
    /* below */
  }
  if (!secret || secret.every((x) => x === 0)) throw new UserError('peer_public_key is a low-order point: no shared secret');
  return Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, context, bytes));
}

/** derive-key/<name>. */
export function derivePaths(t: Transit): PathDef[] {
  return [
    {
      pattern: `derive-key/${NAME}`,
      fields: {
        name: { type: 'string', description: 'Name of the new key holding the derived secret.' },
        base_key_name: { type: 'string', required: true, description: "This mount's x25519 key: our private half of the agreement." },
        base_key_version: { type: 'int', description: 'Version of the base key (default: latest; not below its min_encryption_version).' },
        peer_public_key: { type: 'string', required: true, description: "The other party's X25519 public key: SPKI PEM, or 32 bytes in standard base64." },
        key_derivation_algorithm: { type: 'string', default: 'ecdh', allowed: ['ecdh'], description: 'Only ecdh (X25519 here).' },
        derived_key_type: { type: 'string', default: 'aes256-gcm96', allowed: Object.keys(DERIVED_TYPES), description: 'Type of the new key.' },
        context: { type: 'string', description: 'Base64 HKDF info both parties agree on (default: empty); different contexts give independent keys.' },
      },
      synopsis: "Derive a new named key from an X25519 key agreement with a peer's public key.",
      description:
        'Both parties compute X25519(own private key, other\'s public key), then HKDF-SHA256 (salt "vault-plugin-ts transit derive-key x25519", info = context). The result is stored as a new, non-exportable key of derived_key_type; it is never returned and never rotates. Refused if the name exists.',
      operations: {
        update: async (r) => {
          const name = r.data.str('name');
          const type = r.data.str('derived_key_type') as keyof typeof DERIVED_TYPES;
          const base = await t.policies.get(r.data.str('base_key_name'));
          if (!base) throw new UserError('specified base key not found');
          const key = agree(
            base,
            optInt(r.data.get('base_key_version')),
            r.data.get('peer_public_key'),
            b64(r.data.get('context'), 'context', false),
            DERIVED_TYPES[type],
          );
          return t.policies.update(name, async (existing) => {
            if (existing) throw new UserError(`key "${name}" already exists`);
            const now = new Date().toISOString();
            const policy: Policy = {
              name,
              type,
              versions: { 1: { creation_time: now, key: key.toString('base64'), hmac_key: randomBytes(32).toString('base64') } },
              latest_version: 1,
              min_decryption_version: 1,
              min_encryption_version: 0,
              derived: false,
              convergent_encryption: false,
              exportable: false,
              deletion_allowed: false,
              auto_rotate_period: 0,
              last_rotated: now,
              imported_key: true,
            };
            return { policy, result: { data: describePolicy(policy) } };
          });
        },
      },
    },
  ];
}
