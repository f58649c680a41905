// EMSA-PSS (RFC 8017 9.1) over a digest: what a raw RSA private operation signs when a PSS
// signature must be made of a digest (prehashed transit input, keys that sign digests), and
// how such a signature is checked. Node's sign/verify take a message, never a digest.
import { createHash, randomBytes } from 'node:crypto';
import { DIGEST_BYTES } from './digests';

/** A PSS salt length as Vault names them: auto (the longest the key allows when signing, any when verifying), hash (the digest's length), or bytes. */
export type SaltLength = 'auto' | 'hash' | number;

function mgf1(hash: string, seed: Buffer, len: number): Buffer {
  const parts: Buffer[] = [];
  for (let c = 0, got = 0; got < len; c++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(c);
    parts.push(createHash(hash).update(seed).update(counter).digest());
    got += DIGEST_BYTES[hash];
  }
  return Buffer.concat(parts).subarray(0, len);
}

/** EMSA-PSS-ENCODE (RFC 8017 9.1.1) of a digest, as a block the modulus' length (for a raw private operation). */
export function pssEncode(mHash: Buffer, hash: string, modBits: number, salt: SaltLength = 'hash'): Buffer {
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = DIGEST_BYTES[hash];
  const sLen = salt === 'auto' ? emLen - hLen - 2 : salt === 'hash' ? hLen : salt;
  const s = randomBytes(sLen);
  const H = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(s).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - sLen - hLen - 2), Buffer.from([1]), s]);
  const mask = mgf1(hash, H, db.length);
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
  db[0] &= 0xff >> (8 * emLen - emBits);
  return Buffer.concat([Buffer.alloc(Math.ceil(modBits / 8) - emLen), db, H, Buffer.from([0xbc])]);
}

/** EMSA-PSS-VERIFY (RFC 8017 9.1.2) of the block a raw public operation gives: the salt of the given length, or of any length for auto. */
export function pssVerify(mHash: Buffer, block: Buffer, hash: string, modBits: number, salt: SaltLength = 'auto'): boolean {
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = DIGEST_BYTES[hash];
  const em = block.subarray(block.length - emLen);
  if (block.subarray(0, block.length - emLen).some((x) => x !== 0)) return false;
  if (emLen < hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const H = em.subarray(emLen - hLen - 1, emLen - 1);
  if (db[0] & ~(0xff >> (8 * emLen - emBits)) & 0xff) return false;
  const mask = mgf1(hash, H, db.length);
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
  db[0] &= 0xff >> (8 * emLen - emBits);
  const one = db.indexOf(1);
  if (one < 0 || db.subarray(0, one).some((x) => x !== 0)) return false;
  const s = db.subarray(one + 1);
  if (salt !== 'auto' && s.length !== (salt === 'hash' ? hLen : salt)) return false;
  return createHash(hash).update(Buffer.alloc(8)).update(mHash).update(s).digest().equals(H);
}
