// What RSA signatures over a digest need to know of each hash: its size, and (PKCS#1 v1.5)
// the DER DigestInfo written before the digest (RFC 8017 9.2; NIST's hash OIDs
// 2.16.840.1.101.3.4.2.{4,1,2,3} for SHA-2 and .{7,8,9,10} for SHA-3, OIW's 1.3.14.3.2.26
// for SHA-1, which transit still signs with, as Vault). By Node's hash names.

/** Digest sizes in bytes. */
export const DIGEST_BYTES: Readonly<Record<string, number>> = {
  sha1: 20,
  sha224: 28,
  sha256: 32,
  sha384: 48,
  sha512: 64,
  'sha3-224': 28,
  'sha3-256': 32,
  'sha3-384': 48,
  'sha3-512': 64,
};

const NIST_HASH_ARC: Readonly<Record<string, number>> = {
  sha224: 4,
  sha256: 1,
  sha384: 2,
  sha512: 3,
  'sha3-224': 7,
  'sha3-256': 8,
  'sha3-384': 9,
  'sha3-512': 10,
};

const prefix = (arc: number, size: number) =>
  Buffer.from([0x30, 0x11 + size, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, arc, 0x05, 0x00, 0x04, size]);
const DIGEST_INFO: Readonly<Record<string, Buffer>> = {
  ...Object.fromEntries(Object.entries(NIST_HASH_ARC).map(([h, arc]) => [h, prefix(arc, DIGEST_BYTES[h])])),
  sha1: Buffer.from([0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14]),
};

/** DER DigestInfo and the digest: what PKCS#1 v1.5 signs (and what CKM_RSA_PKCS expects ready-made). */
export const digestInfo = (hash: string, d: Buffer): Buffer => Buffer.concat([DIGEST_INFO[hash], d]);
