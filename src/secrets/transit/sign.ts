// sign/<name>[/<hash>], verify/<name>[/<hash>], hmac/<name>[/<algorithm>]
import { UserError, type PathDef } from '../framework';
import { b64, versionIn } from './envelope';
import { hmac, parseSaltLength, sign, verify, verifyHmac } from './signature';
import { batch, optInt, type Transit } from './context';

import { nameGroup } from '../../schema';
const NAME = nameGroup();
// sha1 as Vault (sign, verify and hmac take it; 1.8 and current Vault alike).
const HASHES = ['sha1', 'sha2-224', 'sha2-256', 'sha2-384', 'sha2-512', 'sha3-224', 'sha3-256', 'sha3-384', 'sha3-512', 'none'] as const;
const signFields = {
  name: { type: 'string', description: 'Name of the key.' },
  urlalgorithm: { type: 'string', description: 'Hash algorithm in the path (overrides hash_algorithm).' },
  input: { type: 'string', description: 'Base64 input (a digest when prehashed).' },
  hash_algorithm: {
    type: 'string',
    default: 'sha2-256',
    allowed: HASHES,
    description:
      'Hash for signing: sha1, sha2-* or sha3-* (managed keys: as their backend allows; cloud KMSes sha2-256/384/512); none signs a prehashed input with pkcs1v15 only. ed25519: sha2-512 with prehashed=true is Ed25519ph, sha2-512 alone a 400, others ignored; ignored for ml-dsa (it signs the message itself).',
  },
  algorithm: { type: 'string', allowed: HASHES, description: 'Alias of hash_algorithm (older API).' },
  prehashed: {
    type: 'bool',
    default: false,
    description: 'input is already the digest (ed25519: with hash_algorithm=sha2-512, Ed25519ph over the 64-byte SHA-512 digest).',
  },
  signature_algorithm: { type: 'string', default: 'pss', allowed: ['pss', 'pkcs1v15'], description: 'RSA padding.' },
  salt_length: {
    type: 'string',
    default: 'auto',
    description: 'RSA-PSS salt: auto (as long as the key allows when signing, any length when verifying), hash (the digest length), or a number of bytes.',
  },
  marshaling_algorithm: {
    type: 'string',
    default: 'asn1',
    allowed: ['asn1', 'jws'],
    description: 'asn1: standard base64 (ECDSA as ASN.1 DER); jws: unpadded base64url for every key type (ECDSA as r||s).',
  },
  key_version: { type: 'int', description: 'Key version to sign with (default: latest).' },
  context: { type: 'string', description: 'Base64 context: required by derived (ed25519) keys, which sign with the key derived for it.' },
  signature_context: {
    type: 'string',
    description:
      'ed25519 keys: base64 RFC 8032 context (at most 255 bytes) of an Ed25519ctx signature, or of an Ed25519ph one with prehashed=true. Ignored by other key types.',
  },
  batch_input: { type: 'array', description: 'List of items with input (and signature/hmac for verify); results in batch_results.' },
} as const;

/** sign/<name>[/<hash>], verify/<name>[/<hash>] and hmac/<name>[/<algorithm>]. */
export function signPaths(t: Transit): PathDef[] {
  const opts = (r: { data: { str(k: string): string; has(k: string): boolean; bool(k: string): boolean } }, d: { get(k: string): unknown }) => ({
    // As Vault: a request without input signs (or verifies) the empty string; a batch item without one is an error.
    input: b64(d.get('input'), 'input', r.data.has('batch_input')),
    // As Vault: the path's algorithm, else hash_algorithm, else the deprecated algorithm, else sha2-256.
    hash: r.data.str('urlalgorithm') || (r.data.has('hash_algorithm') || !r.data.has('algorithm') ? r.data.str('hash_algorithm') : r.data.str('algorithm')),
    prehashed: Boolean(d.get('prehashed') ?? r.data.bool('prehashed')),
    padding: r.data.str('signature_algorithm') as 'pss' | 'pkcs1v15',
    marshaling: r.data.str('marshaling_algorithm') as 'asn1' | 'jws',
    version: optInt(d.get('key_version')),
    context: b64(d.get('context'), 'context', false),
    signatureContext: b64(d.get('signature_context'), 'signature_context', false),
    saltLength: parseSaltLength(r.data.str('salt_length')),
  });
  const hashSeg = `(?:/(?<urlalgorithm>${HASHES.join('|')}))?`;
  return [
    {
      pattern: `sign/${NAME}${hashSeg}`,
      fields: signFields,
      synopsis: 'Sign input with a named asymmetric key (or managed key).',
      description:
        'Returns vault:v<N>:<signature>. ECDSA (P-256/384/521, secp256k1 low-S): ASN.1 by default, or jws. RSA: pss (default) or pkcs1v15. Ed25519 and ML-DSA (FIPS 204, pure, hedged) sign the message.',
      operations: {
        update: async (r) => {
          const p = await t.policies.require(r.data.str('name'));
          return batch(r, async (d) => {
            const o = opts(r, d);
            const { signature, publicKey } = await sign(p, o, t.managedFor(p));
            // Derived ed25519 keys, as Vault: the public key for the context, named public_key in a
            // single answer and publickey in batch_results (Vault's two spellings).
            const pk = publicKey ? { [r.data.has('batch_input') ? 'publickey' : 'public_key']: publicKey } : {};
            return { signature, key_version: versionIn(signature), ...pk };
          });
        },
      },
    },
    {
      pattern: `verify/${NAME}${hashSeg}`,
      fields: {
        ...signFields,
        signature: { type: 'string', description: 'A vault:v<N>: signature.' },
        hmac: { type: 'string', description: 'A vault:v<N>: HMAC (instead of signature).' },
      },
      synopsis: 'Verify a signature or an HMAC made by a named key.',
      description: 'Returns valid: true or false; a malformed signature is a 400.',
      operations: {
        update: async (r) => {
          const p = await t.policies.require(r.data.str('name'));
          return batch(r, async (d) => {
            const o = opts(r, d);
            if (d.get('hmac') !== undefined && d.get('hmac') !== null) {
              return { valid: verifyHmac(p, o.input, o.hash === 'none' ? 'sha2-256' : o.hash, d.get('hmac')) };
            }
            if (d.get('signature') === undefined || d.get('signature') === null) throw new UserError('missing signature or hmac to verify');
            return { valid: await verify(p, o, d.get('signature'), t.managedFor(p)) };
          });
        },
      },
    },
    {
      pattern: `hmac/${NAME}${hashSeg}`,
      fields: {
        name: signFields.name,
        urlalgorithm: signFields.urlalgorithm,
        input: signFields.input,
        key_version: signFields.key_version,
        batch_input: signFields.batch_input,
        algorithm: { type: 'string', default: 'sha2-256', allowed: HASHES.filter((h) => h !== 'none'), description: 'Hash for the HMAC.' },
      },
      synopsis: "HMAC input with a named key's HMAC key.",
      description: 'Every key version has its own HMAC key; returns vault:v<N>:<base64>.',
      operations: {
        update: async (r) => {
          const p = await t.policies.require(r.data.str('name'));
          const alg = r.data.str('urlalgorithm') || r.data.str('algorithm');
          return batch(r, async (d) => {
            const mac = hmac(p, b64(d.get('input'), 'input', true, 'missing input for HMAC'), alg, optInt(d.get('key_version')));
            return { hmac: mac };
          });
        },
      },
    },
  ];
}
