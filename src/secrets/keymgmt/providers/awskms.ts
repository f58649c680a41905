// AWS KMS import ("bring your own key"). Each Vault key version becomes one KMS key
// with Origin=EXTERNAL: CreateKey, GetParametersForImport, ImportKeyMaterial (AES keys
// wrapped with RSAES_OAEP_SHA_256, private keys with RSA_AES_KEY_WRAP_SHA_256, both to a
// 4096-bit wrapping key). The alias alias/hashicorp/<key>-<time> follows the latest
// version, as Vault Enterprise does (imported keys cannot rotate inside KMS).
// CreateKey is the one call that is not idempotent: it is sent once (no SDK retry), after
// the intent is stored, and a resumed distribution first looks for a key carrying the
// intent's description before creating another.
import { createPublicKey } from 'node:crypto';
import type * as Kms from '@aws-sdk/client-kms';
import { keyFailure, isKeyError, sdkErrorName, type KeyErrorKind } from '../../../keys/errors';
import { awsKms } from '../../../keys/clients/aws';
import { keyFamily, type KeyType } from '../keys';
import { rsaAesKeyWrap, rsaOaepSha256 } from '../wrap';
import { secretsOf } from './config';
import type { Distribution, KmsConfig, Material, Save, Target } from './types';

const KEY_SPEC: Record<KeyType, string> = {
  'aes256-gcm96': 'SYMMETRIC_DEFAULT',
  'rsa-2048': 'RSA_2048',
  'rsa-3072': 'RSA_3072',
  'rsa-4096': 'RSA_4096',
  'ecdsa-p256': 'ECC_NIST_P256',
  'ecdsa-p384': 'ECC_NIST_P384',
  'ecdsa-p521': 'ECC_NIST_P521',
};
/** Seven days: the shortest waiting period KMS allows before deleting a key. */
export const MIN_PENDING_WINDOW_DAYS = 7;

function kindOf(e: unknown): KeyErrorKind {
  const name = sdkErrorName(e);
  if (name === 'NotFoundException') return 'not_found';
  if (/AccessDenied|UnrecognizedClient|InvalidSignature|MissingAuthentication|ExpiredToken|InvalidClientTokenId/.test(name)) return 'denied';
  if (/Validation|InvalidKeyUsage|UnsupportedOperation|KMSInvalidState|AlreadyExists|IncorrectKeyMaterial|InvalidImportToken|LimitExceeded/.test(name))
    return 'invalid';
  return 'unavailable';
}

/** Distributes keys into one AWS region's KMS. */
export class AwsTarget implements Target {
  private constructor(
    private readonly cfg: KmsConfig,
    private readonly kms: typeof Kms,
    private readonly client: Kms.KMSClient,
    private readonly once: Kms.KMSClient,
  ) {}

  static open(cfg: KmsConfig): AwsTarget {
    const cr = cfg.credentials;
    // openTarget has checked the credentials (with a 400 on refusal); the client setup checks them again.
    const { kms, client } = awsKms({
      backend: 'awskms',
      name: cfg.name,
      credentialField: 'credentials',
      region: cfg.key_collection,
      endpoint: cfg.endpoint ?? cr.endpoint,
      accessKey: cr.access_key,
      secretKey: cr.secret_key,
      sessionToken: cr.session_token,
    });
    return new AwsTarget(cfg, kms, client(4), client(1));
  }

  private async call<T>(op: string, cmd: unknown, client = this.client): Promise<T> {
    try {
      return (await client.send(cmd as Parameters<Kms.KMSClient['send']>[0])) as T;
    } catch (e) {
      throw keyFailure('awskms', this.cfg.name, op, e, secretsOf(this.cfg), kindOf(e));
    }
  }

  private description(d: Distribution, n: number): string {
    return `vault-plugin-ts keymgmt ${d.kms}/${d.key} version ${n} (${d.nonce})`;
  }

  /** Keys whose description marks them as this intent's: the ones a lost CreateKey reply may have made. */
  private async findByDescription(desc: string): Promise<string[]> {
    const K = this.kms;
    const found: string[] = [];
    let marker: string | undefined;
    do {
      const page = await this.call<Kms.ListKeysCommandOutput>('list keys', new K.ListKeysCommand({ Limit: 1000, Marker: marker }));
      for (const k of page.Keys ?? []) {
        const m = (await this.call<Kms.DescribeKeyCommandOutput>('describe', new K.DescribeKeyCommand({ KeyId: k.KeyId! }))).KeyMetadata;
        if (m?.Description === desc && m.KeyState !== 'PendingDeletion') found.push(m.Arn ?? m.KeyId!);
      }
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    return found;
  }

  async prepare(): Promise<void> {}

  async importVersion(d: Distribution, n: number, m: Material, save: Save): Promise<void> {
    const K = this.kms;
    d.versions[n] ??= { state: 'pending' };
    const v = d.versions[n];
    const desc = this.description(d, n);
    if (!v.id && v.state === 'creating') {
      const [mine, ...extra] = await this.findByDescription(desc);
      for (const id of extra) await this.scheduleDeletion(id);
      if (mine) {
        v.id = mine;
        await save();
      }
    }
    if (!v.id) {
      v.state = 'creating';
      await save();
      let out: Kms.CreateKeyCommandOutput;
      try {
        out = await this.call(
          'create key',
          new K.CreateKeyCommand({
            Origin: 'EXTERNAL',
            KeySpec: KEY_SPEC[m.type] as Kms.KeySpec,
            KeyUsage: keyFamily(m.type) === 'ec' || d.purpose.includes('sign') || d.purpose.includes('verify') ? 'SIGN_VERIFY' : 'ENCRYPT_DECRYPT',
            Description: desc,
            Tags: [{ TagKey: 'vault-keymgmt', TagValue: `${d.kms}/${d.key}/v${n}` }],
          }),
          this.once,
        );
      } catch (e) {
        // A refusal created nothing; a timeout or 5xx may have: resume looks for it.
        if (isKeyError(e) && e.kind !== 'unavailable') {
          v.state = 'pending';
          await save();
        }
        throw e;
      }
      v.id = out.KeyMetadata!.Arn ?? out.KeyMetadata!.KeyId!;
      await save();
    }
    const meta = (await this.call<Kms.DescribeKeyCommandOutput>('describe', new K.DescribeKeyCommand({ KeyId: v.id }))).KeyMetadata!;
    if (meta.KeyState === 'PendingImport') {
      const symmetric = m.type === 'aes256-gcm96';
      const params = await this.call<Kms.GetParametersForImportCommandOutput>(
        'get parameters for import',
        new K.GetParametersForImportCommand({
          KeyId: v.id,
          WrappingAlgorithm: symmetric ? 'RSAES_OAEP_SHA_256' : 'RSA_AES_KEY_WRAP_SHA_256',
          WrappingKeySpec: 'RSA_4096',
        }),
      );
      const pub = createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' });
      const blob = symmetric ? rsaOaepSha256(pub, m.bytes) : rsaAesKeyWrap(pub, m.bytes);
      await this.call(
        'import key material',
        new K.ImportKeyMaterialCommand({
          KeyId: v.id,
          ImportToken: params.ImportToken,
          EncryptedKeyMaterial: blob,
          ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        }),
      );
    } else if (meta.KeyState === 'PendingDeletion') {
      await this.call('cancel key deletion', new K.CancelKeyDeletionCommand({ KeyId: v.id }));
    }
    v.state = 'imported';
    v.enabled = meta.KeyState !== 'Disabled';
    await save();
  }

  async setEnabled(d: Distribution, n: number, enabled: boolean): Promise<void> {
    const id = d.versions[n]?.id;
    if (!id) return;
    await this.call(
      enabled ? 'enable key' : 'disable key',
      enabled ? new this.kms.EnableKeyCommand({ KeyId: id }) : new this.kms.DisableKeyCommand({ KeyId: id }),
    );
  }

  async setCurrent(d: Distribution, n: number, _type: KeyType, save: Save): Promise<void> {
    const K = this.kms;
    const alias = `alias/hashicorp/${d.name}`;
    const target = d.versions[n]!.id!;
    if (!d.container) {
      d.container = alias;
      await save();
    }
    try {
      await this.call('create alias', new K.CreateAliasCommand({ AliasName: alias, TargetKeyId: target }));
    } catch (e) {
      if (sdkErrorName(e) !== 'AlreadyExistsException') throw e;
      await this.call('update alias', new K.UpdateAliasCommand({ AliasName: alias, TargetKeyId: target }));
    }
  }

  private async scheduleDeletion(id: string): Promise<void> {
    try {
      await this.call('schedule key deletion', new this.kms.ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: MIN_PENDING_WINDOW_DAYS }));
    } catch (e) {
      // Already gone, or already pending deletion: nothing left to do.
      if (isKeyError(e) && (e.kind === 'not_found' || sdkErrorName(e) === 'KMSInvalidStateException')) return;
      throw e;
    }
  }

  async remove(d: Distribution, save: Save): Promise<void> {
    if (d.container) {
      try {
        await this.call('delete alias', new this.kms.DeleteAliasCommand({ AliasName: d.container }));
      } catch (e) {
        if (!(isKeyError(e) && e.kind === 'not_found')) throw e;
      }
    }
    for (const [n, v] of Object.entries(d.versions)) {
      const ids = v.id ? [v.id] : v.state === 'creating' ? await this.findByDescription(this.description(d, Number(n))) : [];
      for (const id of ids) await this.scheduleDeletion(id);
      delete d.versions[n];
      await save();
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.once.destroy();
  }
}
