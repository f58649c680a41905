// encrypt/<name>, decrypt/<name>, rewrap/<name>, datakey/<plaintext|wrapped>/<name>
import { randomBytes } from 'node:crypto';
import { UserError, type PathDef } from '../framework';
import { b64, versionIn } from './envelope';
import { decrypt, encrypt, type Decrypted } from './cipher';
import { newPolicy } from './keys';
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
  partial_failure_response_code: {
    type: 'int',
    description: 'The HTTP status when some batch items failed and others succeeded (default 400, as current Vault; every item failing is always a 400).',
  },
} as const;

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
        plaintext: { type: 'string', description: 'Base64 plaintext.' },
        type: { type: 'string', default: 'aes256-gcm96', description: 'Key type if the key is created by this request (upsert).' },
        convergent_encryption: { type: 'bool', description: 'For a key created by this request.' },
        derived: { type: 'bool', description: 'For a key created by this request.' },
        nonce: { type: 'string', description: 'Not accepted: nonces are always generated (or derived, for convergent keys).' },
      },
      synopsis: 'Encrypt with a named key; creates an aes256-gcm96 key on first use when the caller may create it.',
      description: 'Returns vault:v<N>:<base64> ciphertexts. AEAD types bind associated_data; derived keys need a context.',
      existence: async (r) => (await t.policies.get(r.data.str('name'))) !== undefined,
      operations: {
        update: async (r) => {
          if (r.data.has('nonce')) throw new UserError('nonce may not be provided: it is generated (or derived for convergent keys)');
          let p = await t.policies.get(r.data.str('name'));
          if (!p && r.operation === 'create') {
            const derived = r.data.bool('derived') || r.data.bool('convergent_encryption');
            p = await t.policies.update(r.data.str('name'), async (existing) => {
              if (existing) return { result: existing };
              const fresh = await newPolicy(r.data.str('name'), r.data.str('type'), { derived, convergent: r.data.bool('convergent_encryption') });
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
      fields: { ...common, ciphertext: { type: 'string', description: 'A vault:v<N>: ciphertext.' }, nonce: IGNORED_NONCE },
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
