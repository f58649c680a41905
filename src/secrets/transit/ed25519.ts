// Ed25519's RFC 8032 variants for ed25519 keys, as current Vault Enterprise offers them on
// sign/ and verify/ (Vault 1.8, and Vault CE today, sign PureEdDSA only):
//  - Ed25519ph: prehashed=true with hash_algorithm=sha2-512; the input is the message's
//    SHA-512 digest (64 bytes), signed under dom2(1, signature_context).
//  - Ed25519ctx: a non-empty signature_context without prehashing; dom2(0, context).
//  - PureEdDSA otherwise (Node's crypto, signature.ts), hash_algorithm being ignored except
//    sha2-512, which Vault keeps for Ed25519ph and refuses without prehashed=true.
// The variants are @noble/curves' EdDSA over edwards25519, the hash SHA-512 from Node.
import { createHash, type KeyObject } from 'node:crypto';
import { eddsa } from '@noble/curves/abstract/edwards.js';
import { ed25519, ed25519ctx } from '@noble/curves/ed25519.js';
import { UserError } from '../framework';

/** Which RFC 8032 instance signs: PureEdDSA, Ed25519ctx or Ed25519ph, with its context. */
export type Ed25519Mode = { kind: 'pure' } | { kind: 'ctx'; context: Uint8Array } | { kind: 'ph'; context: Uint8Array };

/** RFC 8032's bound on a context (one length byte in dom2). */
const MAX_CONTEXT = 255;
const SHA512_BYTES = 64;
const PURE: Ed25519Mode = { kind: 'pure' };

/**
 * The instance a request asks for, from prehashed, hash_algorithm, signature_context and the
 * input; combinations Vault refuses are 400s.
 */
export function ed25519Mode(o: { prehashed: boolean; hash: string; input: Buffer; signatureContext?: Buffer }): Ed25519Mode {
  const context = o.signatureContext ?? Buffer.alloc(0);
  if (context.length > MAX_CONTEXT) throw new UserError(`signature_context must be at most ${MAX_CONTEXT} bytes, got ${context.length}`);
  if (o.prehashed) {
    if (o.hash !== 'sha2-512')
      throw new UserError('prehashed=true with an ed25519 key is Ed25519ph, which requires hash_algorithm=sha2-512 (the input being the SHA-512 digest)');
    if (o.input.length !== SHA512_BYTES)
      throw new UserError(`Ed25519ph input must be the ${SHA512_BYTES}-byte SHA-512 digest of the message, got ${o.input.length} bytes`);
    return { kind: 'ph', context };
  }
  if (o.hash === 'sha2-512') throw new UserError('hash_algorithm=sha2-512 requires prehashed=true for ed25519 keys (Ed25519ph)');
  return context.length ? { kind: 'ctx', context } : PURE;
}

/** dom2(phflag, context) || data (RFC 8032 section 2). */
function dom2(data: Uint8Array, context: Uint8Array, phflag: boolean): Uint8Array {
  const prefix = Buffer.from('SigEd25519 no Ed25519 collisions', 'latin1');
  return Buffer.concat([prefix, Buffer.from([phflag ? 1 : 0, context.length]), context, data]);
}

const sha512 = (m: Uint8Array): Uint8Array => createHash('sha512').update(m).digest();
/** Ed25519's scalar clamping (RFC 8032 5.1.5). */
function clamp(b: Uint8Array): Uint8Array {
  b[0] &= 248;
  b[31] &= 127;
  b[31] |= 64;
  return b;
}

// Ed25519ph over a digest the caller computed: noble's ed25519ph hashes the message itself,
// so this instance takes PH(M) as given (an identity prehash), dom2 with phflag 1.
const ed25519phDigest = eddsa(ed25519.Point, sha512, { adjustScalarBytes: clamp, domain: dom2, prehash: (d: Uint8Array) => d });

/** RFC 8032's verification (not ZIP 215's), as Go's crypto/ed25519, which Vault uses. */
const STRICT = { zip215: false } as const;

const seedOf = (priv: KeyObject) => Buffer.from(priv.export({ format: 'jwk' }).d as string, 'base64url');
const pointOf = (pub: KeyObject) => Buffer.from(pub.export({ format: 'jwk' }).x as string, 'base64url');

/** An Ed25519ctx or Ed25519ph signature (64 bytes). */
export function signEd25519Variant(priv: KeyObject, mode: Exclude<Ed25519Mode, { kind: 'pure' }>, input: Buffer): Buffer {
  const seed = seedOf(priv);
  const sig = mode.kind === 'ph' ? ed25519phDigest.sign(input, seed, { context: mode.context }) : ed25519ctx.sign(input, seed, { context: mode.context });
  return Buffer.from(sig);
}

/** Checks an Ed25519ctx or Ed25519ph signature; a malformed one is simply invalid. */
export function verifyEd25519Variant(pub: KeyObject, mode: Exclude<Ed25519Mode, { kind: 'pure' }>, input: Buffer, sig: Buffer): boolean {
  const opts = { ...STRICT, context: mode.context };
  try {
    return mode.kind === 'ph' ? ed25519phDigest.verify(sig, input, pointOf(pub), opts) : ed25519ctx.verify(sig, input, pointOf(pub), opts);
  } catch {
    return false;
  }
}
