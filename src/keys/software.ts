// Software keys: Node crypto in this process. For development and tests only — the key
// material lives in process memory (and, when imported, in Vault's storage), so they
// describe themselves as hardware: false. Never the choice for production roots.
// Generation, signing and RSA decryption run off the event loop (libuv's thread pool, or
// rsa-offload's workers), so an RSA-4096 key created on one mount stalls no other request.
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPair,
  randomBytes,
  constants,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { keyInvalid, keyUnsupported, requireUsage } from './errors';
import { oaepEncrypt, signLocalAsync, verifyWith } from './crypto';
import { curveFacts } from './curves';
import { rsaPrivate } from './rsa-offload';
import { algorithmsFor } from './algorithms';
import type { KeyBackend } from './backend';
import { SOFTWARE_FIELDS } from './software.fields';
import type { CryptOptions, KeyDescription, KeySpec, ManagedKey, SignOptions, Usage } from './types';

const SPECS: Record<string, KeySpec> = {
  'ecdsa-p256': { kind: 'ec', curve: 'P-256' },
  'ecdsa-p384': { kind: 'ec', curve: 'P-384' },
  'ecdsa-p521': { kind: 'ec', curve: 'P-521' },
  'rsa-2048': { kind: 'rsa', bits: 2048 },
  'rsa-3072': { kind: 'rsa', bits: 3072 },
  'rsa-4096': { kind: 'rsa', bits: 4096 },
  ed25519: { kind: 'ed25519' },
  'aes256-gcm': { kind: 'aes', bits: 256 },
};

/** AES-256-GCM with a random 96-bit nonce: nonce || ciphertext || tag. */
export function aesGcmSeal(key: KeyObject | Buffer, plaintext: Buffer, aad?: Buffer): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]);
}

/** Open what aesGcmSeal sealed; a wrong key, tag or AAD is an `invalid` KeyError. */
export function aesGcmOpen(key: KeyObject | Buffer, sealed: Buffer, aad?: Buffer): Buffer {
  if (sealed.length < 28) throw keyInvalid('ciphertext too short');
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  if (aad) d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  } catch (e) {
    throw keyInvalid('decryption failed: ciphertext or associated data do not match the key', e);
  }
}

const generateOnThreadPool = promisify(generateKeyPair);

/**
 * A new private key, generated on the thread pool and imported from its PKCS#8 DER: a
 * KeyObject straight from Node 20's generator shares a lock with the finished job, whose
 * collection during a JWK export of the key (prehashed ECDSA reads `d` that way) hangs the
 * process (see test/unit/keygen-gc.test.ts).
 */
async function generatePrivateKey(spec: KeySpec): Promise<KeyObject> {
  const privateKeyEncoding = { type: 'pkcs8', format: 'der' } as const;
  const publicKeyEncoding = { type: 'spki', format: 'der' } as const;
  const options = spec.kind === 'ec' ? { namedCurve: spec.curve } : spec.kind === 'rsa' ? { modulusLength: spec.bits } : {};
  const { privateKey } = await generateOnThreadPool(spec.kind as 'ec', { ...options, privateKeyEncoding, publicKeyEncoding } as never);
  return createPrivateKey({ key: privateKey as unknown as Buffer, format: 'der', type: 'pkcs8' });
}

/** Is `k` a key of `spec`: AES-256 (32 bytes), or the same family, curve or modulus size? */
function fitsSpec(k: KeyObject, spec: KeySpec): boolean {
  if (spec.kind === 'aes') return k.type === 'secret' && k.symmetricKeySize === spec.bits / 8;
  const d = k.asymmetricKeyDetails;
  if (spec.kind === 'ed25519') return k.asymmetricKeyType === 'ed25519';
  if (spec.kind === 'rsa') return k.asymmetricKeyType === 'rsa' && d?.modulusLength === spec.bits;
  return k.asymmetricKeyType === 'ec' && d?.namedCurve === curveFacts(spec.curve).openssl;
}

/** A key held in this process's memory (see the top of this file: development and tests only). */
export class SoftwareKey implements ManagedKey {
  private constructor(
    private readonly name: string,
    private readonly spec: KeySpec,
    private readonly priv: KeyObject,
    private readonly usages: Usage[],
  ) {}

  /** Import `privatePem` (PKCS#8 PEM; base64 for AES), or generate a key of `keyType` off the event loop. */
  static async create(name: string, keyType: string, usages: Usage[], privatePem?: string): Promise<SoftwareKey> {
    const spec = SPECS[keyType];
    if (!spec) throw keyInvalid(`unknown software key_type ${keyType}`);
    let priv: KeyObject;
    if (privatePem) {
      try {
        priv = spec.kind === 'aes' ? createSecretKey(Buffer.from(privatePem, 'base64')) : createPrivateKey(privatePem);
      } catch (e) {
        throw keyInvalid('private_key is not a valid PEM private key', e);
      }
      // The key must be of key_type: another would fail (or sign as something else) on every use.
      if (!fitsSpec(priv, spec)) throw keyInvalid(`private_key is not a ${keyType} key`);
    } else if (spec.kind === 'aes') priv = createSecretKey(randomBytes(32));
    else priv = await generatePrivateKey(spec);
    return new SoftwareKey(name, spec, priv, usages);
  }

  /** PKCS#8 PEM (or base64 for AES) so the key survives a restart when stored by the caller. */
  exportPrivate(): string {
    return this.spec.kind === 'aes' ? this.priv.export().toString('base64') : (this.priv.export({ type: 'pkcs8', format: 'pem' }) as string);
  }

  describe(): KeyDescription {
    return { backend: 'software', name: this.name, spec: this.spec, usages: this.usages, algorithms: algorithmsFor(this.spec), hardware: false };
  }

  private need(u: Usage): void {
    requireUsage('software', this.name, this.usages, u);
  }

  async publicKey(): Promise<KeyObject> {
    if (this.spec.kind === 'aes') throw keyUnsupported(`software key "${this.name}" is symmetric: it has no public key`);
    return createPublicKey(this.priv);
  }

  async sign(data: Buffer, opts: SignOptions): Promise<Buffer> {
    this.need('sign');
    return signLocalAsync(this.priv, this.spec, data, opts);
  }

  async verify(data: Buffer, signature: Buffer, opts: SignOptions): Promise<boolean> {
    this.need('verify');
    return verifyWith(await this.publicKey(), this.spec, data, signature, opts);
  }

  async encrypt(plaintext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('encrypt');
    if (this.spec.kind === 'aes') return aesGcmSeal(this.priv, plaintext, opts.aad);
    if (this.spec.kind === 'rsa') return oaepEncrypt(createPublicKey(this.priv), plaintext, opts.oaepHash ?? 'sha256', `software key "${this.name}"`);
    throw keyUnsupported(`software key "${this.name}" (${this.spec.kind}) does not encrypt`);
  }

  async decrypt(ciphertext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('decrypt');
    if (this.spec.kind === 'aes') return aesGcmOpen(this.priv, ciphertext, opts.aad);
    if (this.spec.kind === 'rsa') {
      try {
        return await rsaPrivate('decrypt', this.priv, constants.RSA_PKCS1_OAEP_PADDING, ciphertext, opts.oaepHash ?? 'sha256');
      } catch (e) {
        throw keyInvalid('decryption failed: ciphertext does not match the key', e);
      }
    }
    throw keyUnsupported(`software key "${this.name}" (${this.spec.kind}) does not decrypt`);
  }

  async random(bytes: number): Promise<Buffer> {
    this.need('random');
    return randomBytes(bytes);
  }

  async close(): Promise<void> {}
}

/** Software keys: generated or imported here; a generated key's material is stored with its config. */
export const backend: KeyBackend = {
  type: 'software',
  fields: SOFTWARE_FIELDS,
  open: (p) =>
    SoftwareKey.create(p.name, String(p.fields.key_type), p.common.usages, typeof p.fields.private_key === 'string' ? p.fields.private_key : undefined),
  fieldsToStore: (key): Record<string, string> => (key instanceof SoftwareKey ? { private_key: key.exportPrivate() } : {}),
};
