// AWS KMS import ("bring your own key"). Each Vault key version becomes one KMS key
// with Origin=EXTERNAL: CreateKey, GetParametersForImport, ImportKeyMaterial (AES keys
// wrapped with RSAES_OAEP_SHA_256, private keys with RSA_AES_KEY_WRAP_SHA_256, both to a
// 4096-bit wrapping key). The alias alias/hashicorp/<key>-<time> follows the latest
// version, as Vault Enterprise does (imported keys cannot rotate inside KMS).
// CreateKey is the one call that is not idempotent: it is sent once (no SDK retry), after
// the intent is stored, and a resumed distribution first looks for a key carrying the
// intent's description before creating another.
//
// Multi-Region keys (a key with replica_regions): every version's KMS key is created
// MultiRegion in the key_collection region and its material imported; replication
// (kms/<kms>/key/<key>/replicate, then every later sync) sends ReplicateKey for each region
// and imports the same material into each replica, as KMS requires for imported material.
// Aliases are regional: each replica region gets alias/hashicorp/<name> on its latest
// replica. ReplicateKey is sent once, after its intent is stored; a resumed replication
// first asks the primary key for the replica it may already have in that region. A replica
// region is reached at the configured endpoint, with the primary's region in the host name
// replaced by the replica's (a regional endpoint), or at the same URL if it names none.
import { setTimeout as sleep } from 'node:timers/promises';
import { createPublicKey } from 'node:crypto';
import type * as Kms from '@aws-sdk/client-kms';
import { keyFailure, isKeyError, sdkErrorName, type KeyErrorKind } from '../../../keys/errors';
import { awsKms } from '../../../keys/clients/aws';
import { keyFamily, type KeyType } from '../keys';
import { rsaAesKeyWrap, rsaOaepSha256 } from '../wrap';
import { secretsOf } from './config';
import type { Distribution, KmsConfig, Material, Save, Target, VersionRecord } from './types';

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
  if (/Validation|InvalidKeyUsage|UnsupportedOperation|KMSInvalidState|AlreadyExists|IncorrectKeyMaterial|InvalidImportToken|LimitExceeded|Disabled/.test(name))
    return 'invalid';
  return 'unavailable';
}

/** The endpoint for `region` when `primary`'s is `endpoint`: the region in its host name replaced, else the same URL. */
export function endpointFor(endpoint: string | undefined, primary: string, region: string): string | undefined {
  if (!endpoint || region === primary) return endpoint;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return endpoint;
  }
  if (!url.hostname.split('.').includes(primary)) return endpoint;
  url.hostname = url.hostname
    .split('.')
    .map((label) => (label === primary ? region : label))
    .join('.');
  return url.toString().replace(/\/$/, endpoint.endsWith('/') ? '/' : '');
}

/** How long a new replica may stay Creating (KMS: a few seconds). */
const REPLICA_SETTLE_MS = 30_000;

/** One region's clients: retried calls, and calls sent once. */
interface RegionClients {
  client: Kms.KMSClient;
  once: Kms.KMSClient;
}

/** Distributes keys into one AWS region's KMS (and, for multi-Region keys, their replica regions). */
export class AwsTarget implements Target {
  /** Clients of replica regions, made when first needed. */
  private readonly regional = new Map<string, RegionClients>();

  private constructor(
    private readonly cfg: KmsConfig,
    private readonly kms: typeof Kms,
    private readonly client: Kms.KMSClient,
    private readonly once: Kms.KMSClient,
    private readonly connect: (region: string) => RegionClients,
  ) {}

  static open(cfg: KmsConfig): AwsTarget {
    const cr = cfg.credentials;
    const endpoint = cfg.endpoint ?? cr.endpoint;
    // openTarget has checked the credentials (with a 400 on refusal); the client setup checks them again.
    const connect = (region: string) => {
      const { kms, client } = awsKms({
        backend: 'awskms',
        name: cfg.name,
        credentialField: 'credentials',
        region,
        endpoint: endpointFor(endpoint, cfg.key_collection, region),
        accessKey: cr.access_key,
        secretKey: cr.secret_key,
        sessionToken: cr.session_token,
      });
      return { kms, client: client(4), once: client(1) };
    };
    const primary = connect(cfg.key_collection);
    return new AwsTarget(cfg, primary.kms, primary.client, primary.once, connect);
  }

  /** The clients of one region: the primary's for key_collection. */
  private clients(region: string): RegionClients {
    if (region === this.cfg.key_collection) return { client: this.client, once: this.once };
    let c = this.regional.get(region);
    if (!c) {
      c = this.connect(region);
      this.regional.set(region, c);
    }
    return c;
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
            ...(d.replica_regions?.length ? { MultiRegion: true } : {}),
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
    if (meta.KeyState === 'PendingImport') await this.importMaterial(this.client, v.id, m, '');
    else if (meta.KeyState === 'PendingDeletion' || meta.KeyState === 'PendingReplicaDeletion')
      await this.call('cancel key deletion', new K.CancelKeyDeletionCommand({ KeyId: v.id }));
    v.state = 'imported';
    v.enabled = meta.KeyState !== 'Disabled' && meta.KeyState !== 'PendingDeletion' && meta.KeyState !== 'PendingReplicaDeletion';
    await save();
  }

  /** GetParametersForImport and ImportKeyMaterial into one key (`where`: the replica region, for messages). */
  private async importMaterial(client: Kms.KMSClient, id: string, m: Material, where: string): Promise<void> {
    const K = this.kms;
    const symmetric = m.type === 'aes256-gcm96';
    const params = await this.call<Kms.GetParametersForImportCommandOutput>(
      `get parameters for import${where}`,
      new K.GetParametersForImportCommand({
        KeyId: id,
        WrappingAlgorithm: symmetric ? 'RSAES_OAEP_SHA_256' : 'RSA_AES_KEY_WRAP_SHA_256',
        WrappingKeySpec: 'RSA_4096',
      }),
      client,
    );
    const pub = createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' });
    const blob = symmetric ? rsaOaepSha256(pub, m.bytes) : rsaAesKeyWrap(pub, m.bytes);
    await this.call(
      `import key material${where}`,
      new K.ImportKeyMaterialCommand({
        KeyId: id,
        ImportToken: params.ImportToken,
        EncryptedKeyMaterial: blob,
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      }),
      client,
    );
  }

  /** The replica the multi-Region primary key `primary` has in `region`, if any (the primary knows its replicas). */
  private async replicaOf(primary: string, region: string): Promise<string | undefined> {
    const meta = (await this.call<Kms.DescribeKeyCommandOutput>('describe', new this.kms.DescribeKeyCommand({ KeyId: primary }))).KeyMetadata;
    return meta?.MultiRegionConfiguration?.ReplicaKeys?.find((r) => r.Region === region)?.Arn;
  }

  /** A new replica's metadata once it is no longer Creating (KMS takes a few seconds; it may not be visible at first). */
  private async settled(region: string, id: string): Promise<Kms.KeyMetadata> {
    const deadline = Date.now() + REPLICA_SETTLE_MS;
    for (;;) {
      try {
        const meta = (
          await this.call<Kms.DescribeKeyCommandOutput>(`describe (${region})`, new this.kms.DescribeKeyCommand({ KeyId: id }), this.clients(region).client)
        ).KeyMetadata!;
        if (meta.KeyState !== 'Creating') return meta;
      } catch (e) {
        if (!(isKeyError(e) && e.kind === 'not_found')) throw e;
      }
      if (Date.now() >= deadline)
        throw keyFailure(
          'awskms',
          this.cfg.name,
          `replicate key to ${region}`,
          new Error(`the replica is still being created after ${REPLICA_SETTLE_MS / 1000}s`),
          [],
        );
      await sleep(200);
    }
  }

  async replicate(d: Distribution, n: number, m: Material, save: Save): Promise<void> {
    const v = d.versions[n];
    if (!v?.id || v.state !== 'imported') return;
    // Every region is tried: one that refuses or fails holds back none of the others.
    let failed: { e: unknown } | undefined;
    for (const region of d.replica_regions ?? []) {
      try {
        await this.replicateTo(d, n, v as VersionRecord & { id: string }, region, m, save);
      } catch (e) {
        failed ??= { e };
      }
    }
    if (failed) throw failed.e;
  }

  /** Version n's replica in one region: ReplicateKey (once, after its intent is stored), then the material. */
  private async replicateTo(d: Distribution, n: number, v: VersionRecord & { id: string }, region: string, m: Material, save: Save): Promise<void> {
    const K = this.kms;
    v.replicas ??= {};
    v.replicas[region] ??= { state: 'pending' };
    const r = v.replicas[region];
    if (r.state === 'imported') return;
    if (!r.id) {
      // A ReplicateKey whose reply was lost (or a stop right after it) left a replica: adopt it.
      r.id = await this.replicaOf(v.id, region);
      if (r.id) await save();
    }
    if (!r.id) {
      r.state = 'creating';
      await save();
      try {
        const out = await this.call<Kms.ReplicateKeyCommandOutput>(
          `replicate key to ${region}`,
          new K.ReplicateKeyCommand({
            KeyId: v.id,
            ReplicaRegion: region,
            Description: this.description(d, n),
            Tags: [{ TagKey: 'vault-keymgmt', TagValue: `${d.kms}/${d.key}/v${n}` }],
          }),
          this.once,
        );
        r.id = out.ReplicaKeyMetadata!.Arn!;
      } catch (e) {
        if (sdkErrorName(e) === 'AlreadyExistsException') r.id = await this.replicaOf(v.id, region);
        if (!r.id) {
          // A refusal created nothing; a timeout or 5xx may have: resume asks the primary first.
          if (isKeyError(e) && e.kind !== 'unavailable') {
            r.state = 'pending';
            await save();
          }
          throw e;
        }
      }
    }
    r.state = 'importing';
    await save();
    const { client } = this.clients(region);
    const meta = await this.settled(region, r.id);
    if (meta.KeyState === 'PendingImport') await this.importMaterial(client, r.id, m, ` (${region})`);
    else if (meta.KeyState === 'PendingDeletion') await this.call(`cancel key deletion (${region})`, new K.CancelKeyDeletionCommand({ KeyId: r.id }), client);
    const enabled = meta.KeyState === 'PendingImport' || meta.KeyState === 'Enabled';
    // A replica follows its version: disabled below min_enabled_version.
    if (enabled !== (v.enabled ?? true)) await this.setOne(r.id, v.enabled ?? true, client, ` (${region})`);
    r.state = 'imported';
    r.enabled = v.enabled ?? true;
    await save();
  }

  private async setOne(id: string, enabled: boolean, client: Kms.KMSClient, where = ''): Promise<void> {
    await this.call(
      `${enabled ? 'enable key' : 'disable key'}${where}`,
      enabled ? new this.kms.EnableKeyCommand({ KeyId: id }) : new this.kms.DisableKeyCommand({ KeyId: id }),
      client,
    );
  }

  async setEnabled(d: Distribution, n: number, enabled: boolean): Promise<void> {
    const v = d.versions[n];
    if (!v?.id) return;
    await this.setOne(v.id, enabled, this.client);
    for (const [region, r] of Object.entries(v.replicas ?? {})) {
      if (r.state !== 'imported' || !r.id) continue;
      await this.setOne(r.id, enabled, this.clients(region).client, ` (${region})`);
      r.enabled = enabled;
    }
  }

  /** Point `alias` at `target` in one region: create it, or move it. */
  private async pointAlias(alias: string, target: string, client: Kms.KMSClient, where = ''): Promise<void> {
    const K = this.kms;
    try {
      await this.call(`create alias${where}`, new K.CreateAliasCommand({ AliasName: alias, TargetKeyId: target }), client);
    } catch (e) {
      if (sdkErrorName(e) !== 'AlreadyExistsException') throw e;
      await this.call(`update alias${where}`, new K.UpdateAliasCommand({ AliasName: alias, TargetKeyId: target }), client);
    }
  }

  async setCurrent(d: Distribution, n: number, _type: KeyType, save: Save): Promise<void> {
    const alias = `alias/hashicorp/${d.name}`;
    const v = d.versions[n]!;
    if (!d.container) {
      d.container = alias;
      await save();
    }
    await this.pointAlias(alias, v.id!, this.client);
    for (const [region, r] of Object.entries(v.replicas ?? {}))
      if (r.state === 'imported' && r.id) await this.pointAlias(alias, r.id, this.clients(region).client, ` (${region})`);
  }

  private async scheduleDeletion(id: string, client = this.client, where = ''): Promise<void> {
    try {
      await this.call(
        `schedule key deletion${where}`,
        new this.kms.ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: MIN_PENDING_WINDOW_DAYS }),
        client,
      );
    } catch (e) {
      // Already gone, or already pending deletion: nothing left to do.
      if (isKeyError(e) && (e.kind === 'not_found' || sdkErrorName(e) === 'KMSInvalidStateException')) return;
      throw e;
    }
  }

  private async deleteAlias(alias: string, client: Kms.KMSClient, where = ''): Promise<void> {
    try {
      await this.call(`delete alias${where}`, new this.kms.DeleteAliasCommand({ AliasName: alias }), client);
    } catch (e) {
      if (!(isKeyError(e) && e.kind === 'not_found')) throw e;
    }
  }

  async remove(d: Distribution, save: Save): Promise<void> {
    // Replica regions first: KMS deletes a multi-Region primary key only after its replicas.
    const replicaRegions = new Set(
      Object.values(d.versions)
        .flatMap((v) => Object.entries(v.replicas ?? {}).filter(([, r]) => r.id || r.state === 'creating'))
        .map(([region]) => region),
    );
    if (d.container) {
      for (const region of replicaRegions) await this.deleteAlias(d.container, this.clients(region).client, ` (${region})`);
      await this.deleteAlias(d.container, this.client);
    }
    for (const [n, v] of Object.entries(d.versions)) {
      for (const [region, r] of Object.entries(v.replicas ?? {})) {
        const id = r.id ?? (r.state === 'creating' && v.id ? await this.replicaOf(v.id, region) : undefined);
        if (id) await this.scheduleDeletion(id, this.clients(region).client, ` (${region})`);
        delete v.replicas![region];
        await save();
      }
      const ids = v.id ? [v.id] : v.state === 'creating' ? await this.findByDescription(this.description(d, Number(n))) : [];
      for (const id of ids) await this.scheduleDeletion(id);
      delete d.versions[n];
      await save();
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.once.destroy();
    for (const c of this.regional.values()) {
      c.client.destroy();
      c.once.destroy();
    }
  }
}
