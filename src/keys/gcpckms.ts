// Google Cloud KMS through @google-cloud/kms (gRPC). Each key version has one algorithm
// (curve or size, padding and hash together), so a request that asks for another is
// refused here with the algorithm named. Calls are authenticated with self-signed
// service-account JWTs: no token endpoint is contacted.
import { createPublicKey, type KeyObject } from 'node:crypto';
import type * as Gcp from '@google-cloud/kms';
import { isKeyError, keyFailure, keyInvalid, keyUnsupported, type KeyErrorKind, requireUsage, sdkErrorCode } from './errors';
import { digest, oaepEncrypt, verifyWith } from './crypto';
import { AMBIENT_ENDPOINTS, ambientEndpointAllowed, readCredentialFile } from './operator';
import { gcpKms } from './clients/gcp';
import { parseServiceAccount, type ServiceAccount } from './clients/gcp-credentials';
import type { BackendConfig, CommonConfig } from './config';
import { optionalString as str, type KeyBackend } from './backend';
import type { CryptOptions, Hash, KeyDescription, KeySpec, ManagedKey, SignOptions, Usage } from './types';
import { GCPCKMS_FIELDS } from './gcpckms.fields';

interface AlgInfo {
  spec: KeySpec;
  hash?: Hash;
  padding?: 'pss' | 'pkcs1v15';
  purpose: 'sign' | 'decrypt' | 'symmetric';
}

/** What a CryptoKeyVersionAlgorithm name means (key spec, hash, padding, purpose), or undefined if unsupported. */
export function parseAlgorithm(alg: string): AlgInfo | undefined {
  if (alg === 'GOOGLE_SYMMETRIC_ENCRYPTION') return { spec: { kind: 'aes', bits: 256 }, purpose: 'symmetric' };
  if (alg === 'EC_SIGN_ED25519') return { spec: { kind: 'ed25519' }, purpose: 'sign' };
  let m = /^EC_SIGN_P(256|384)_SHA(256|384)$/.exec(alg);
  if (m) return { spec: { kind: 'ec', curve: `P-${m[1]}` as 'P-256' | 'P-384' }, hash: `sha${m[2]}` as Hash, purpose: 'sign' };
  m = /^RSA_SIGN_(PSS|PKCS1)_(\d+)_SHA(256|512)$/.exec(alg);
  if (m) return { spec: { kind: 'rsa', bits: Number(m[2]) }, hash: `sha${m[3]}` as Hash, padding: m[1] === 'PSS' ? 'pss' : 'pkcs1v15', purpose: 'sign' };
  m = /^RSA_DECRYPT_OAEP_(\d+)_SHA(1|256|512)$/.exec(alg);
  if (m) return { spec: { kind: 'rsa', bits: Number(m[1]) }, hash: (m[2] === '1' ? 'sha1' : `sha${m[2]}`) as Hash, purpose: 'decrypt' };
  return undefined;
}

const GRPC_INVALID_ARGUMENT = 3;

function kindOf(e: unknown): KeyErrorKind {
  const code = sdkErrorCode(e);
  if (code === 5) return 'not_found';
  if (code === GRPC_INVALID_ARGUMENT || code === 9 || code === 11) return 'invalid';
  if (code === 7 || code === 16) return 'denied';
  return 'unavailable';
}

/**
 * `credentials` holds the service-account JSON itself, or the path of a file the operator
 * allows. A file's account is the operator's, not the config writer's: the JWTs it signs are
 * bearer tokens for Cloud KMS, so, as ambient credentials, they go to a configured endpoint
 * only when the operator lists that endpoint (PLUGIN_AMBIENT_ENDPOINTS).
 */
async function serviceAccount(name: string, credentials: string, endpoint: string | undefined): Promise<ServiceAccount> {
  const raw = credentials.trim();
  if (raw.startsWith('{')) return parseServiceAccount(raw, 'credentials');
  const text = await readCredentialFile('credentials', raw);
  if (endpoint && !ambientEndpointAllowed(endpoint))
    throw keyInvalid(
      `gcpckms key "${name}": credentials from a file the operator allows are not sent to a configured endpoint unless the operator lists that endpoint in VAULT_${AMBIENT_ENDPOINTS} (requests signed with that service account would go to whoever runs it); give the service-account JSON itself instead`,
    );
  return parseServiceAccount(text.toString('utf8'), 'credentials');
}

/** A key version in Google Cloud KMS, with the one algorithm the version fixes. */
export class GcpKmsKey implements ManagedKey {
  private info!: AlgInfo;
  private pub?: KeyObject;
  private constructor(
    private readonly name: string,
    private readonly cfg: BackendConfig,
    private readonly common: CommonConfig,
    private readonly client: Gcp.KeyManagementServiceClient,
    private readonly callOpts: object,
  ) {}

  static async open(name: string, cfg: BackendConfig, common: CommonConfig): Promise<GcpKmsKey> {
    const credentials = str(cfg.credentials);
    const { client, callOptions } = gcpKms({
      backend: 'gcpckms',
      name,
      credentialField: 'credentials',
      serviceAccount: credentials ? await serviceAccount(name, credentials, str(cfg.endpoint)) : undefined,
      projectId: str(cfg.project),
      endpoint: str(cfg.endpoint),
      endpointCa: str(cfg.endpoint_ca),
    });
    const k = new GcpKmsKey(name, cfg, common, client, callOptions('idempotent'));
    try {
      await k.load();
    } catch (e) {
      await client.close();
      throw e;
    }
    return k;
  }

  private get keyPath(): string {
    const c = this.cfg;
    return `projects/${c.project}/locations/${c.region}/keyRings/${c.key_ring}/cryptoKeys/${c.crypto_key}`;
  }
  private get versionPath(): string {
    return `${this.keyPath}/cryptoKeyVersions/${String(this.cfg.crypto_key_version)}`;
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isKeyError(e)) throw e;
      throw keyFailure('gcpckms', this.name, op, e, [], kindOf(e));
    }
  }

  private async load(): Promise<void> {
    let alg: string;
    try {
      const [v] = await this.call('describe', () => this.client.getCryptoKeyVersion({ name: this.versionPath }, this.callOpts));
      alg = String(v.algorithm);
    } catch (e) {
      if (!(isKeyError(e) && e.kind === 'not_found' && this.common.allowGenerate)) throw e;
      alg = (this.cfg.algorithm as string) ?? 'GOOGLE_SYMMETRIC_ENCRYPTION';
      const info = parseAlgorithm(alg);
      if (!info) throw keyInvalid(`algorithm ${alg} is not supported`);
      const purpose = { sign: 'ASYMMETRIC_SIGN', decrypt: 'ASYMMETRIC_DECRYPT', symmetric: 'ENCRYPT_DECRYPT' }[info.purpose];
      await this.call('generate', () =>
        this.client.createCryptoKey(
          {
            parent: this.keyPath.replace(/\/cryptoKeys\/[^/]+$/, ''),
            cryptoKeyId: String(this.cfg.crypto_key),
            cryptoKey: { purpose: purpose as never, versionTemplate: { algorithm: alg as never, protectionLevel: 'HSM' } },
          },
          this.callOpts,
        ),
      );
    }
    const info = parseAlgorithm(alg);
    if (!info) throw keyUnsupported(`gcpckms key "${this.name}": algorithm ${alg} is not supported`);
    this.info = info;
  }

  describe(): KeyDescription {
    const a = this.info;
    const algorithms =
      a.purpose === 'symmetric'
        ? ['aes-gcm']
        : a.spec.kind === 'ed25519'
          ? ['ed25519']
          : a.purpose === 'decrypt'
            ? [`rsa-oaep-${a.hash}`]
            : [a.spec.kind === 'ec' ? `ecdsa-${a.hash}` : `rsa-${a.padding === 'pss' ? 'pss' : 'pkcs1v15'}-${a.hash}`];
    return { backend: 'gcpckms', name: this.name, spec: a.spec, usages: this.common.usages, algorithms, hardware: true };
  }

  private need(u: Usage): void {
    requireUsage('gcpckms', this.name, this.common.usages, u);
  }

  async publicKey(): Promise<KeyObject> {
    if (this.info.purpose === 'symmetric') throw keyUnsupported(`gcpckms key "${this.name}" is symmetric: it has no public key`);
    if (!this.pub) {
      const [pk] = await this.call('get public key', () => this.client.getPublicKey({ name: this.versionPath }, this.callOpts));
      this.pub = createPublicKey(String(pk.pem));
    }
    return this.pub;
  }

  private checkSign(opts: SignOptions): void {
    const a = this.info;
    if (a.purpose !== 'sign')
      throw keyUnsupported(`gcpckms key "${this.name}" does not sign (its algorithm is for ${a.purpose === 'decrypt' ? 'decryption' : 'encryption'})`);
    if (a.spec.kind !== 'ed25519' && a.hash !== opts.hash) throw keyInvalid(`gcpckms key "${this.name}" signs with ${a.hash} only, not ${opts.hash}`);
    if (a.spec.kind === 'rsa' && (opts.padding ?? 'pss') !== a.padding) throw keyInvalid(`gcpckms key "${this.name}" signs with ${a.padding} padding only`);
  }

  async sign(data: Buffer, opts: SignOptions): Promise<Buffer> {
    this.need('sign');
    this.checkSign(opts);
    const req = this.info.spec.kind === 'ed25519' ? { name: this.versionPath, data } : { name: this.versionPath, digest: { [opts.hash]: digest(data, opts) } };
    const [res] = await this.call('sign', () => this.client.asymmetricSign(req as never, this.callOpts));
    return Buffer.from(res.signature as Uint8Array);
  }

  async verify(data: Buffer, signature: Buffer, opts: SignOptions): Promise<boolean> {
    this.need('verify');
    this.checkSign(opts);
    return verifyWith(await this.publicKey(), this.info.spec, data, signature, { ...opts, padding: this.info.padding });
  }

  async encrypt(plaintext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('encrypt');
    if (this.info.purpose === 'decrypt') {
      return oaepEncrypt(await this.publicKey(), plaintext, this.info.hash!, `gcpckms key "${this.name}"`);
    }
    if (this.info.purpose !== 'symmetric') throw keyUnsupported(`gcpckms key "${this.name}" does not encrypt`);
    const [res] = await this.call('encrypt', () =>
      this.client.encrypt({ name: this.keyPath, plaintext, additionalAuthenticatedData: opts.aad }, this.callOpts),
    );
    return Buffer.from(res.ciphertext as Uint8Array);
  }

  async decrypt(ciphertext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('decrypt');
    try {
      if (this.info.purpose === 'decrypt') {
        if (opts.oaepHash && opts.oaepHash !== this.info.hash) throw keyInvalid(`gcpckms key "${this.name}" uses OAEP with ${this.info.hash}`);
        const [res] = await this.call('decrypt', () => this.client.asymmetricDecrypt({ name: this.versionPath, ciphertext }, this.callOpts));
        return Buffer.from(res.plaintext as Uint8Array);
      }
      if (this.info.purpose !== 'symmetric') throw keyUnsupported(`gcpckms key "${this.name}" does not decrypt`);
      const [res] = await this.call('decrypt', () =>
        this.client.decrypt({ name: this.keyPath, ciphertext, additionalAuthenticatedData: opts.aad }, this.callOpts),
      );
      return Buffer.from(res.plaintext as Uint8Array);
    } catch (e) {
      // INVALID_ARGUMENT to a decrypt: the ciphertext (or its AAD) is not this key's.
      if (isKeyError(e) && sdkErrorCode(e) === GRPC_INVALID_ARGUMENT)
        throw keyInvalid(`decryption failed: ciphertext or associated data do not match gcpckms key "${this.name}"`, e);
      throw e;
    }
  }

  async random(bytes: number): Promise<Buffer> {
    this.need('random');
    const [res] = await this.call('random', () =>
      this.client.generateRandomBytes(
        { location: `projects/${this.cfg.project}/locations/${this.cfg.region}`, lengthBytes: bytes, protectionLevel: 'HSM' },
        this.callOpts,
      ),
    );
    return Buffer.from(res.data as Uint8Array);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Google Cloud KMS managed keys; this module (and its SDK) is loaded only when such a key is opened. */
export const backend: KeyBackend = { type: 'gcpckms', fields: GCPCKMS_FIELDS, open: (p) => GcpKmsKey.open(p.name, p.fields, p.common) };
