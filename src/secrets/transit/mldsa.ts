// ML-DSA (FIPS 204) post-quantum signatures for transit's ml-dsa keys, with
// @noble/post-quantum. A version stores only its 32-byte seed; the key pair is derived
// from it (deterministic keygen, FIPS 204 ML-DSA.KeyGen_internal) and kept in a small cache,
// since deriving costs about as much as signing.
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';

/** The FIPS 204 parameter sets an ml-dsa key may use (ML-DSA-44, -65, -87). */
export const ML_DSA_SETS = ['44', '65', '87'] as const;
/** One of ML_DSA_SETS. */
export type MlDsaSet = (typeof ML_DSA_SETS)[number];

const ALGORITHMS = { '44': ml_dsa44, '65': ml_dsa65, '87': ml_dsa87 } as const;

const pairs = new Map<string, { publicKey: Uint8Array; secretKey: Uint8Array }>();
function pair(set: MlDsaSet, seed: string) {
  const id = `${set}:${seed}`;
  let k = pairs.get(id);
  if (!k) {
    k = ALGORITHMS[set].keygen(Buffer.from(seed, 'base64'));
    if (pairs.size >= 256) pairs.delete(pairs.keys().next().value!);
    pairs.set(id, k);
  }
  return k;
}

/** Drop the key pairs derived from `seed` (a deleted key, trimmed versions). */
export function forgetSeed(seed: string): void {
  for (const set of ML_DSA_SETS) pairs.delete(`${set}:${seed}`);
}

/** Whether a key pair derived from `seed` is held (for tests). */
export const holdsSeed = (seed: string): boolean => ML_DSA_SETS.some((set) => pairs.has(`${set}:${seed}`));

/** FIPS 204's encoded public key (1312, 1952 or 2592 bytes). */
export const mldsaPublicKey = (set: MlDsaSet, seed: string): Uint8Array => pair(set, seed).publicKey;

/**
 * Pure ML-DSA over the message with an empty context string, hedged (fresh randomness
 * mixed in, FIPS 204's default): two signatures of one message differ, both verify.
 */
export const mldsaSign = (set: MlDsaSet, seed: string, message: Buffer): Buffer => Buffer.from(ALGORITHMS[set].sign(message, pair(set, seed).secretKey));

/** A signature of the wrong length or form is simply invalid. */
export function mldsaVerify(set: MlDsaSet, publicKey: Uint8Array, message: Buffer, signature: Buffer): boolean {
  try {
    return ALGORITHMS[set].verify(signature, message, publicKey);
  } catch {
    return false;
  }
}
