// AWS KMS through @aws-sdk/client-kms. Signing always sends a digest (MessageType
// DIGEST), so messages of any size work and the message never leaves the plugin.
// Symmetric keys use KMS's own ciphertext, with AAD bound as encryption context.
import { createPublicKey, type KeyObject } from 'node:crypto';
import type * as Kms from '@aws-sdk/client-kms';
import { type KeyError, isKeyError, keyFailure, keyInvalid, keyUnsupported, type KeyErrorKind, requireUsage, sdkErrorName } from './errors';
import { digest, isSha2Sign, oaepEncrypt, verifyWith } from './crypto';
import { algorithmsFor } from './algorithms';
import { awsKms } from './clients/aws';
import type { BackendConfig, CommonConfig } from './config';
import { optionalString as str, type KeyBackend } from './backend';
import type { CryptOptions, KeyDescription, KeySpec, ManagedKey, SignOptions, Usage } from './types';
import { AWSKMS_FIELDS } from './awskms.fields';

const SPEC_OF: Record<string, KeySpec> = {
  ECC_NIST_P256: { kind: 'ec', curve: 'P-256' },
  ECC_NIST_P384: { kind: 'ec', curve: 'P-384' },
  ECC_NIST_P521: { kind: 'ec', curve: 'P-521' },
  RSA_2048: { kind: 'rsa', bits: 2048 },
  RSA_3072: { kind: 'rsa', bits: 3072 },
  RSA_4096: { kind: 'rsa', bits: 4096 },
  SYMMETRIC_DEFAULT: { kind: 'aes', bits: 256 },
};
const AAD_CONTEXT_KEY = 'vault-plugin-ts:aad';

function kindOf(e: unknown): KeyErrorKind {
  const name = sdkErrorName(e);
  if (name === 'NotFoundException') return 'not_found';
  if (/InvalidKeyUsage|Validation|InvalidCiphertext|IncorrectKey|UnsupportedOperation|Disabled|KMSInvalidState/.test(name)) return 'invalid';
  if (/AccessDenied|UnrecognizedClient|InvalidSignature|MissingAuthentication|ExpiredToken/.test(name)) return 'denied';
  return 'unavailable';
}

/** A key in AWS KMS (an asymmetric key, or a symmetric one used with KMS's own ciphertext). */
export class AwsKmsKey implements ManagedKey {
  private spec!: KeySpec;
  private keyId!: string;
  private pub?: KeyObject;

  private constructor(
    private readonly name: string,
    private readonly cfg: BackendConfig,
    private readonly common: CommonConfig,
    private readonly kms: typeof Kms,
    private readonly client: Kms.KMSClient,
  ) {}

  static async open(name: string, cfg: BackendConfig, common: CommonConfig): Promise<AwsKmsKey> {
    const { kms, client: makeClient } = awsKms({
      backend: 'awskms',
      name,
      credentialField: 'access_key/secret_key',
      region: String(cfg.region),
      endpoint: str(cfg.endpoint),
      accessKey: str(cfg.access_key),
      secretKey: str(cfg.secret_key),
    });
    const client = makeClient(4);
    const k = new AwsKmsKey(name, cfg, common, kms, client);
    try {
      await k.describe_();
    } catch (e) {
      client.destroy();
      throw e;
    }
    return k;
  }

  private fail(op: string, e: unknown): KeyError {
    if (isKeyError(e)) return e;
    return keyFailure('awskms', this.name, op, e, [this.cfg.secret_key as string].filter(Boolean), kindOf(e));
  }

  private async call<T>(op: string, cmd: unknown): Promise<T> {
    try {
      return (await this.client.send(cmd as Parameters<Kms.KMSClient['send']>[0])) as T;
    } catch (e) {
      throw this.fail(op, e);
    }
  }

  private async describe_(): Promise<void> {
    const K = this.kms;
    const ref = this.cfg.kms_key as string;
    let meta: Kms.KeyMetadata | undefined;
    try {
      meta = (await this.call<Kms.DescribeKeyCommandOutput>('describe', new K.DescribeKeyCommand({ KeyId: ref }))).KeyMetadata;
    } catch (e) {
      if (!(isKeyError(e) && e.kind === 'not_found' && this.common.allowGenerate)) throw e;
      if (!ref.startsWith('alias/')) throw keyInvalid(`awskms key "${this.name}": allow_generate_key needs kms_key to be an alias/... name for the new key`);
      const spec =
        this.cfg.key_type === 'EC'
          ? `ECC_NIST_${(this.cfg.curve as string) ?? 'P256'}`
          : this.cfg.key_type === 'RSA'
            ? `RSA_${(this.cfg.key_bits as number) ?? 2048}`
            : 'SYMMETRIC_DEFAULT';
      meta = (
        await this.call<Kms.CreateKeyCommandOutput>(
          'generate',
          new K.CreateKeyCommand({
            KeySpec: spec as Kms.KeySpec,
            KeyUsage: spec === 'SYMMETRIC_DEFAULT' ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY',
            Description: `vault-plugin-ts managed key ${this.name}`,
          }),
        )
      ).KeyMetadata;
      await this.call('generate', new K.CreateAliasCommand({ AliasName: ref, TargetKeyId: meta!.KeyId }));
    }
    const spec = SPEC_OF[meta?.KeySpec ?? ''];
    if (!spec) throw keyUnsupported(`awskms key "${this.name}": key spec ${meta?.KeySpec} is not supported`);
    this.spec = spec;
    this.keyId = meta!.Arn ?? meta!.KeyId!;
  }

  describe(): KeyDescription {
    return { backend: 'awskms', name: this.name, spec: this.spec, usages: this.common.usages, algorithms: algorithmsFor(this.spec), hardware: true };
  }

  private need(u: Usage): void {
    requireUsage('awskms', this.name, this.common.usages, u);
  }

  async publicKey(): Promise<KeyObject> {
    if (this.spec.kind === 'aes') throw keyUnsupported(`awskms key "${this.name}" is symmetric: it has no public key`);
    if (!this.pub) {
      const out = await this.call<Kms.GetPublicKeyCommandOutput>('get public key', new this.kms.GetPublicKeyCommand({ KeyId: this.keyId }));
      this.pub = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' });
    }
    return this.pub;
  }

  async sign(data: Buffer, opts: SignOptions): Promise<Buffer> {
    this.need('sign');
    if (!isSha2Sign(opts.hash)) throw keyUnsupported(`awskms key "${this.name}" signs with sha256, sha384 or sha512 only, not ${opts.hash}`);
    const bits = opts.hash.slice(3);
    let alg: string;
    if (this.spec.kind === 'ec') alg = `ECDSA_SHA_${bits}`;
    else if (this.spec.kind === 'rsa') alg = opts.padding === 'pkcs1v15' ? `RSASSA_PKCS1_V1_5_SHA_${bits}` : `RSASSA_PSS_SHA_${bits}`;
    else throw keyUnsupported(`awskms key "${this.name}" (${this.spec.kind}) does not sign`);
    const out = await this.call<Kms.SignCommandOutput>(
      'sign',
      new this.kms.SignCommand({ KeyId: this.keyId, Message: digest(data, opts), MessageType: 'DIGEST', SigningAlgorithm: alg as Kms.SigningAlgorithmSpec }),
    );
    return Buffer.from(out.Signature!);
  }

  async verify(data: Buffer, signature: Buffer, opts: SignOptions): Promise<boolean> {
    this.need('verify');
    return verifyWith(await this.publicKey(), this.spec, data, signature, opts);
  }

  private context(aad?: Buffer): Record<string, string> | undefined {
    return aad?.length ? { [AAD_CONTEXT_KEY]: aad.toString('base64') } : undefined;
  }

  async encrypt(plaintext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('encrypt');
    if (this.spec.kind === 'rsa') return oaepEncrypt(await this.publicKey(), plaintext, opts.oaepHash ?? 'sha256', `awskms key "${this.name}"`);
    if (this.spec.kind !== 'aes') throw keyUnsupported(`awskms key "${this.name}" (${this.spec.kind}) does not encrypt`);
    const out = await this.call<Kms.EncryptCommandOutput>(
      'encrypt',
      new this.kms.EncryptCommand({ KeyId: this.keyId, Plaintext: plaintext, EncryptionContext: this.context(opts.aad) }),
    );
    return Buffer.from(out.CiphertextBlob!);
  }

  async decrypt(ciphertext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('decrypt');
    try {
      const alg = this.spec.kind === 'rsa' ? (opts.oaepHash === 'sha1' ? 'RSAES_OAEP_SHA_1' : 'RSAES_OAEP_SHA_256') : 'SYMMETRIC_DEFAULT';
      const out = await this.call<Kms.DecryptCommandOutput>(
        'decrypt',
        new this.kms.DecryptCommand({
          KeyId: this.keyId,
          CiphertextBlob: ciphertext,
          EncryptionAlgorithm: alg,
          EncryptionContext: this.spec.kind === 'aes' ? this.context(opts.aad) : undefined,
        }),
      );
      return Buffer.from(out.Plaintext!);
    } catch (e) {
      if (isKeyError(e) && e.kind === 'invalid') throw keyInvalid(`decryption failed: ciphertext or associated data do not match awskms key "${this.name}"`, e);
      throw e;
    }
  }

  async random(bytes: number): Promise<Buffer> {
    this.need('random');
    const out = await this.call<Kms.GenerateRandomCommandOutput>('random', new this.kms.GenerateRandomCommand({ NumberOfBytes: bytes }));
    return Buffer.from(out.Plaintext!);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** AWS KMS managed keys; this module (and its SDK) is loaded only when such a key is opened. */
export const backend: KeyBackend = { type: 'awskms', fields: AWSKMS_FIELDS, open: (p) => AwsKmsKey.open(p.name, p.fields, p.common) };
