// encrypt/<name>, decrypt/<name>, rewrap/<name>, datakey/<plaintext|wrapped>/<name>
import { randomBytes } from 'node:crypto';
import { UserError, type PathDef, type Request } from '../framework';
import { b64, versionIn } from './envelope';
import { decrypt, encrypt, type Decrypted } from './cipher';
import { newPolicy } from './keys';
import { keysConfig } from './lifecycle';
import { KEY_TYPES } from './policy';
import { batch, optInt, type Transit } from './context';

import { nameGroup } from '../../schema';
const NAME = nameGroup();
// As Vault: decrypt, rewrap and datakey take a nonce and ignore it (only Vault 0.6.1's
// convergent keys used a caller's nonce; the nonce is read from the ciphertext). encrypt refuses one.
const IGNORED_NONCE = { type: 'string', description: 'Accepted for compatibility and ignored: nonces come from the ciphertext, or are generated.' } as const;
const common = {
  name: { type: 'string', description: 'Name of the key.' },
  context: { type: 'string', description: 'Base64 context for key derivation (derived keys only).' },
  associated_data: { type: 'string', description: 'Base64 associated data, authenticated but not encrypted (AEAD key types).' },
  key_version: { type: 'int', description: 'Key version to use (default: latest).' },
  batch_input: { type: 'array', description: 'List of items, each with the single-item fields; results come back in batch_results.' },
} as const;
// encrypt and decrypt only, as Vault: there a batch with a failed item is a 400 (rewrap
// answers 200 with per-item errors).
const partialFailure = {
  partial_failure_response_code: {
    type: 'int',
    description: 'The HTTP status when some batch items failed and others succeeded (default 400, as current Vault; every item failing is always a 400).',
  },
} as const;

/** The types encrypt/ may create on first use, as Vault's upsert. */
const UPSERT_TYPES = ['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305'];

const given = (v: unknown) => v !== undefined && v !== null && v !== '';

/**
 * Whether the request has a context, after Vault's check on encrypt and rewrap that every
 * batch item has one or none does (a 400 otherwise). An item without its own context takes
 * the top-level one, as batch() reads items.
 */
function contextInAllOrNone(r: Request): boolean {
  const top = r.data.get('context');
  const items = r.data.get('batch_input');
  if (!Array.isArray(items) || !items.length) return given(top);
  const has = items.map((i) =>
    given(i && typeof i === 'object' && given((i as Record<string, unknown>).context) ? (i as Record<string, unknown>).context : top),
  );
  if (has.some((h) => h !== has[0])) throw new UserError('context should be set either in all the request blocks or in none');
  return has[0];
}

/** encrypt/<name>, decrypt/<name>, rewrap/<name> and datakey/<plaintext|wrapped>/<name>. */
export function cryptPaths(t: Transit): PathDef[] {
  const input = (d: { get(k: string): unknown }) => ({
    context: b64(d.get('context'), 'context', false),
    aad: b64(d.get('associated_data'), 'associated_data', false),
    version: optInt(d.get('key_version')),
  });
  return [
    {
      pattern: `encrypt/${NAME}`,
      fields: {
        ...common,
        ...partialFailure,
        plaintext: { type: 'string', description: 'Base64 plaintext.' },
        type: {
          type: 'string',
          default: 'aes256-gcm96',
          description: 'Key type if the key is created by this request (upsert): aes128-gcm96, aes256-gcm96 or chacha20-poly1305.',
        },
        convergent_encryption: { type: 'bool', description: 'For a key created by this request (needs a context).' },
        derived: {
          type: 'bool',
          description: 'For a key created by this request (needs a context; a context alone already makes the new key derived, as Vault).',
        },
        nonce: { type: 'string', description: 'Not accepted: nonces are always generated (or derived, for convergent keys).' },
      },
      synopsis: 'Encrypt with a named key; creates an aes256-gcm96 key on first use when the caller may create it.',
      description: 'Returns vault:v<N>:<base64> ciphertexts. AEAD types bind associated_data; derived keys need a context.',
      existence: async (r) => (await t.policies.get(r.data.str('name'))) !== undefined,
      operations: {
        update: async (r) => {
          if (r.data.has('nonce')) throw new UserError('nonce may not be provided: it is generated (or derived for convergent keys)');
          const contextSet = contextInAllOrNone(r);
          let p = await t.policies.get(r.data.str('name'));
          // config/keys disable_upsert (current Vault): a missing key is not created, just not found.
          if (!p && r.operation === 'create' && !(await keysConfig(r.storage)).disable_upsert) {
            // Upsert, as Vault: every check is made before the key is created, so a refused
            // request leaves no key behind. A context makes the new key derived.
            const type = r.data.str('type');
            if (!UPSERT_TYPES.includes(type))
              throw new UserError(
                (KEY_TYPES as readonly string[]).includes(type) ? `key type ${type} not supported for this operation` : `unknown key type ${type.slice(0, 40)}`,
              );
            const convergent = r.data.bool('convergent_encryption');
            if (convergent && !contextSet) throw new UserError('convergent encryption requires derivation to be enabled, so context is required');
            // derived=true is this plugin's addition (Vault's encrypt has no such field): without a
            // context it would make a key this very request cannot use.
            if (r.data.bool('derived') && !contextSet) throw new UserError('a derived key needs a context: give context with the request that creates it');
            p = await t.policies.update(r.data.str('name'), async (existing) => {
              if (existing) return { result: existing };
              const fresh = await newPolicy(r.data.str('name'), type, { derived: contextSet, convergent });
              return { policy: fresh, result: fresh };
            });
          }
          if (!p) throw new UserError(`encryption key not found: ${r.data.str('name')}`);
          const pol = p;
          const answer = (ct: string) => ({ ciphertext: ct, key_version: versionIn(ct) });
          return batch(r, (d) => {
            // Vault: a missing plaintext is an error; an empty one ("") encrypts the empty string.
            if (d.get('plaintext') === undefined || d.get('plaintext') === null) throw new UserError('missing plaintext to encrypt');
            const ct = encrypt(pol, { plaintext: b64(d.get('plaintext'), 'plaintext', false), ...input(d) }, t.managedFor(pol));
            return typeof ct === 'string' ? answer(ct) : ct.then(answer);
          });
        },
      },
    },
    {
      pattern: `decrypt/${NAME}`,
      fields: { ...common, ...partialFailure, ciphertext: { type: 'string', description: 'A vault:v<N>: ciphertext.' }, nonce: IGNORED_NONCE },
      synopsis: 'Decrypt a ciphertext made by this key.',
      description: 'Fails with 400 if the ciphertext, context or associated_data do not match, or the version is below min_decryption_version.',
      operations: {
        update: async (r) => {
          const p = await t.policies.require(r.data.str('name'));
          const answer = ({ plaintext }: Decrypted) => ({ plaintext: plaintext.toString('base64') });
          return batch(r, (d) => {
            const out = decrypt(p, d.get('ciphertext'), input(d), t.managedFor(p));
            return out instanceof Promise ? out.then(answer) : answer(out);
          });
        },
      },
    },
    {
      pattern: `rewrap/${NAME}`,
      fields: {
        ...common,
        ciphertext: { type: 'string', description: 'A vault:v<N>: ciphertext to re-encrypt with the latest (or key_version) version.' },
        nonce: IGNORED_NONCE,
      },
      synopsis: 'Re-encrypt a ciphertext with the latest key version, without revealing the plaintext.',
      description: 'After a rotation, rewrap moves stored ciphertexts forward so old versions can be retired.',
      operations: {
        update: async (r) => {
          contextInAllOrNone(r);
          const p = await t.policies.require(r.data.str('name'));
          return batch(r, async (d) => {
            const i = input(d);
            const { plaintext } = await decrypt(p, d.get('ciphertext'), { context: i.context, aad: i.aad }, t.managedFor(p));
            const ct = await encrypt(p, { plaintext, ...i }, t.managedFor(p));
            return { ciphertext: ct, key_version: versionIn(ct) };
          });
        },
      },
    },
    {
      pattern: `datakey/(?<plaintext>plaintext|wrapped)/${NAME}`,
      fields: {
        ...common,
        plaintext: { type: 'string', description: '"plaintext" also returns the key in the clear; "wrapped" returns only its ciphertext.' },
        bits: { type: 'int', default: 256, description: 'Key size: 128, 256 or 512.' },
        nonce: IGNORED_NONCE,
      },
      synopsis: 'Generate a data key: random bytes returned encrypted under the named key (and, for plaintext, in the clear).',
      description: 'For envelope encryption: encrypt data locally with the plaintext key, store the ciphertext next to it.',
      operations: {
        update: async (r) => {
          const bits = r.data.int('bits');
          if (![128, 256, 512].includes(bits)) throw new UserError('bits must be 128, 256 or 512');
          const p = await t.policies.require(r.data.str('name'));
          const key = randomBytes(bits / 8);
          const ct = await encrypt(p, { plaintext: key, ...input({ get: (k) => r.data.get(k) }) }, t.managedFor(p));
          return {
            data: { ciphertext: ct, key_version: versionIn(ct), ...(r.data.str('plaintext') === 'plaintext' ? { plaintext: key.toString('base64') } : {}) },
          };
        },
      },
    },
  ];
}
