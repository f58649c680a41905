// Key transport for imports into a cloud KMS. Both AWS (RSA_AES_KEY_WRAP_SHA_256) and
// Google (RSA_OAEP_3072_SHA256_AES_256 / _4096_) use the CKM_RSA_AES_KEY_WRAP scheme: a
// fresh AES-256 key is encrypted to the provider's wrapping public key with RSA-OAEP
// (SHA-256, MGF1-SHA-256), and the key material is wrapped with that AES key by AES key
// wrap with padding (RFC 5649). The result is the two concatenated.
import { constants, createCipheriv, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';

/** RFC 5649's alternative initial value. */
const KWP_IV = Buffer.from('A65959A6', 'hex');

/** RSA-OAEP with SHA-256 (and MGF1-SHA-256) to the wrapping key. */
export function rsaOaepSha256(wrappingKey: KeyObject | string, data: Buffer): Buffer {
  return publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, data);
}

/** AES-256 key wrap with padding (RFC 5649). */
export function aesKeyWrapPad(kek: Buffer, material: Buffer): Buffer {
  const c = createCipheriv('id-aes256-wrap-pad', kek, KWP_IV);
  return Buffer.concat([c.update(material), c.final()]);
}

/** CKM_RSA_AES_KEY_WRAP: a fresh AES-256 key under RSA-OAEP-SHA-256, then the material under that key (KWP). */
export function rsaAesKeyWrap(wrappingKey: KeyObject | string, material: Buffer): Buffer {
  const kek = randomBytes(32);
  try {
    return Buffer.concat([rsaOaepSha256(wrappingKey, kek), aesKeyWrapPad(kek, material)]);
  } finally {
    kek.fill(0);
  }
}
