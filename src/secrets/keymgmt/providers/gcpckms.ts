// Google Cloud KMS import. One crypto key per distribution (import-only, created without
// a first version, labelled with the distribution's nonce), one crypto key version per
// Vault version, imported through an import job with RSA_OAEP_3072_SHA256_AES_256 (a
// fresh AES-256 key under RSA-OAEP-SHA-256, the material under AES-KWP). Every creating
// call is safe to repeat: the crypto key and import job have ids we choose (ALREADY_EXISTS
// means a lost reply, checked by label), and before importing again a resumed
// distribution looks for a version made by one of the import jobs it recorded.
import { setTimeout as sleep } from 'node:timers/promises';
import type * as Gcp from '@google-cloud/kms';
import { keyFailure, isKeyError, keyInvalid, sdkErrorCode, type KeyErrorKind } from '../../../keys/errors';
import { gcpKms, type ServiceAccount } from '../../../keys/clients/gcp';
import { keyFamily, type KeyType } from '../keys';
import { rsaAesKeyWrap } from '../wrap';
import { secretsOf } from './config';
import { gcpCryptoKeyId } from './names';
import type { Distribution, KmsConfig, Material, Save, Target } from './types';

const IMPORT_METHOD = 'RSA_OAEP_3072_SHA256_AES_256';
const CODE = { NOT_FOUND: 5, ALREADY_EXISTS: 6, FAILED_PRECONDITION: 9 } as const;

function kindOf(e: unknown): KeyErrorKind {
  const code = sdkErrorCode(e);
  if (code === 5) return 'not_found';
  if (code === 3 || code === 6 || code === 9 || code === 11) return 'invalid';
  if (code === 7 || code === 16) return 'denied';
  return 'unavailable';
}

/** The Cloud KMS algorithm and purpose a Vault key type and purposes are imported as. */
export function gcpAlgorithm(type: KeyType, purpose: readonly string[]): { algorithm: string; purpose: string } {
  const fam = keyFamily(type);
  if (fam === 'aes') return { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', purpose: 'ENCRYPT_DECRYPT' };
  if (fam === 'ec') return { algorithm: type === 'ecdsa-p256' ? 'EC_SIGN_P256_SHA256' : 'EC_SIGN_P384_SHA384', purpose: 'ASYMMETRIC_SIGN' };
  const bits = type.slice(4);
  return purpose.includes('sign') || purpose.includes('verify')
    ? { algorithm: `RSA_SIGN_PSS_${bits}_SHA256`, purpose: 'ASYMMETRIC_SIGN' }
    : { algorithm: `RSA_DECRYPT_OAEP_${bits}_SHA256`, purpose: 'ASYMMETRIC_DECRYPT' };
}

/** Distributes keys into one Cloud KMS key ring. */
export class GcpTarget implements Target {
  private constructor(
    private readonly cfg: KmsConfig,
    private readonly client: Gcp.KeyManagementServiceClient,
    private readonly opts: object,
    private readonly onceOpts: object,
  ) {}

  /** `sa`: the service-account key, or undefined for application default credentials (allowed by the operator). */
  static async open(cfg: KmsConfig, sa: ServiceAccount | undefined): Promise<GcpTarget> {
    // openTarget has checked the credentials (with a 400 on refusal); the client setup checks them again.
    const { client, callOptions } = gcpKms({
      backend: 'gcpckms',
      name: cfg.name,
      credentialField: 'credentials',
      serviceAccount: sa,
      endpoint: cfg.endpoint,
      endpointCa: cfg.endpoint_ca,
    });
    // An import is not idempotent: retried only when the service said it did nothing.
    return new GcpTarget(cfg, client, callOptions('idempotent'), callOptions('once'));
  }

  private async call<T>(op: string, fn: () => Promise<[T, ...unknown[]]>): Promise<T> {
    try {
      return (await fn())[0];
    } catch (e) {
      throw keyFailure('gcpckms', this.cfg.name, op, e, secretsOf(this.cfg), kindOf(e));
    }
  }

  async prepare(d: Distribution, type: KeyType, save: Save): Promise<void> {
    if (d.container) return;
    const id = gcpCryptoKeyId(d);
    const name = `${this.cfg.key_collection}/cryptoKeys/${id}`;
    const { algorithm, purpose } = gcpAlgorithm(type, d.purpose);
    try {
      await this.call('create crypto key', () =>
        this.client.createCryptoKey(
          {
            parent: this.cfg.key_collection,
            cryptoKeyId: id,
            skipInitialVersionCreation: true,
            cryptoKey: {
              purpose: purpose as never,
              importOnly: true,
              labels: { 'vault-keymgmt': d.nonce },
              versionTemplate: { algorithm: algorithm as never, protectionLevel: d.protection === 'hsm' ? 'HSM' : 'SOFTWARE' },
            },
          },
          this.opts,
        ),
      );
    } catch (e) {
      if (sdkErrorCode(e) !== CODE.ALREADY_EXISTS) throw e;
      const existing = await this.call('get crypto key', () => this.client.getCryptoKey({ name }, this.opts));
      if (existing.labels?.['vault-keymgmt'] !== d.nonce)
        throw keyInvalid(`gcpckms "${this.cfg.name}": crypto key ${id} already exists and was not made by this distribution`);
    }
    d.container = name;
    await save();
  }

  /** The version (if any) that one of these import jobs put in the crypto key. */
  private async versionFromJobs(d: Distribution, jobs: string[]): Promise<string | undefined> {
    const versions = await this.call('list versions', () => this.client.listCryptoKeyVersions({ parent: d.container! }, { ...this.opts, autoPaginate: true }));
    return versions.find((v) => v.importJob && jobs.includes(v.importJob) && v.state !== 'DESTROYED' && v.state !== 'DESTROY_SCHEDULED')?.name ?? undefined;
  }

  private async activeJob(name: string): Promise<string> {
    for (let i = 0; i < 120; i++) {
      const job = await this.call('get import job', () => this.client.getImportJob({ name }, this.opts));
      if (job.state === 'ACTIVE' && job.publicKey?.pem) return job.publicKey.pem;
      if (job.state === 'EXPIRED') throw keyInvalid(`gcpckms "${this.cfg.name}": import job ${name} expired`);
      await sleep(500);
    }
    throw keyFailure('gcpckms', this.cfg.name, 'import job', new Error('the import job did not become active in 60s'), []);
  }

  async importVersion(d: Distribution, n: number, m: Material, save: Save): Promise<void> {
    d.versions[n] ??= { state: 'pending' };
    const v = d.versions[n];
    v.jobs ??= [];
    if (!v.id && v.jobs.length) {
      const found = await this.versionFromJobs(d, v.jobs);
      if (found) {
        v.id = found;
        await save();
      }
    }
    if (!v.id) {
      const jobId = `vkm-${d.nonce.slice(0, 16)}-v${n}-${v.jobs.length + 1}`;
      const job = `${this.cfg.key_collection}/importJobs/${jobId}`;
      v.jobs.push(job);
      v.state = 'importing';
      await save();
      try {
        await this.call('create import job', () =>
          this.client.createImportJob(
            {
              parent: this.cfg.key_collection,
              importJobId: jobId,
              importJob: { importMethod: IMPORT_METHOD as never, protectionLevel: d.protection === 'hsm' ? 'HSM' : 'SOFTWARE' },
            },
            this.opts,
          ),
        );
      } catch (e) {
        if (sdkErrorCode(e) !== CODE.ALREADY_EXISTS) throw e;
      }
      const pem = await this.activeJob(job);
      const { algorithm } = gcpAlgorithm(m.type, d.purpose);
      const made = await this.call('import crypto key version', () =>
        this.client.importCryptoKeyVersion(
          {
            parent: d.container!,
            algorithm: algorithm as never,
            importJob: job,
            rsaAesWrappedKey: rsaAesKeyWrap(pem, m.bytes),
          },
          this.onceOpts,
        ),
      );
      v.id = made.name!;
      await save();
    }
    for (let i = 0; ; i++) {
      const ver = await this.call('get version', () => this.client.getCryptoKeyVersion({ name: v.id! }, this.opts));
      if (ver.state === 'IMPORT_FAILED')
        throw keyInvalid(`gcpckms "${this.cfg.name}": import of version ${n} failed: ${String(ver.importFailureReason ?? 'no reason given').slice(0, 200)}`);
      if (ver.state !== 'PENDING_IMPORT') {
        v.enabled = ver.state === 'ENABLED';
        break;
      }
      if (i >= 120) throw keyFailure('gcpckms', this.cfg.name, 'import', new Error('the version is still pending import after 60s'), []);
      await sleep(500);
    }
    v.state = 'imported';
    await save();
  }

  async setEnabled(d: Distribution, n: number, enabled: boolean): Promise<void> {
    const id = d.versions[n]?.id;
    if (!id) return;
    await this.call(enabled ? 'enable version' : 'disable version', () =>
      this.client.updateCryptoKeyVersion(
        {
          cryptoKeyVersion: { name: id, state: enabled ? 'ENABLED' : 'DISABLED' },
          updateMask: { paths: ['state'] },
        },
        this.opts,
      ),
    );
  }

  async setCurrent(d: Distribution, n: number, type: KeyType): Promise<void> {
    // Only symmetric keys have a primary version; asymmetric versions are named explicitly.
    if (keyFamily(type) !== 'aes') return;
    const id = d.versions[n]!.id!;
    await this.call('set primary version', () =>
      this.client.updateCryptoKeyPrimaryVersion({ name: d.container!, cryptoKeyVersionId: id.split('/').pop()! }, this.opts),
    );
  }

  async remove(d: Distribution, save: Save): Promise<void> {
    for (const [n, v] of Object.entries(d.versions)) {
      const id = v.id ?? (d.container && v.jobs?.length ? await this.versionFromJobs(d, v.jobs) : undefined);
      if (id) {
        try {
          await this.call('destroy version', () => this.client.destroyCryptoKeyVersion({ name: id }, this.opts));
        } catch (e) {
          // Already destroyed (or scheduled): FAILED_PRECONDITION; gone: NOT_FOUND.
          const code = sdkErrorCode(e);
          if (!(isKeyError(e) && (code === CODE.FAILED_PRECONDITION || code === CODE.NOT_FOUND))) throw e;
        }
      }
      delete d.versions[n];
      await save();
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
