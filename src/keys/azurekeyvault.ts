// Azure Key Vault (and Managed HSM) through @azure/keyvault-keys with a client-secret
// credential from @azure/identity. EC signatures come back as r||s and are returned as
// DER like every other backend; private-key operations run in the vault, public ones
// (verify, RSA encrypt) locally with the fetched public key.
import { createPublicKey, type KeyObject } from 'node:crypto';
import type * as Akv from '@azure/keyvault-keys';
import { isKeyError, keyInvalid, keyUnsupported, requireUsage } from './errors';
import { digest, isSha2Sign, oaepEncrypt, rawToDer, verifyWith } from './crypto';
import { MANAGED_CURVES, type ManagedCurve } from './curves';
import { algorithmsFor } from './algorithms';
import type { BackendConfig, CommonConfig } from './config';
import { optionalString as str, type KeyBackend } from './backend';
import { azureCall, azureKeyVault, type AzureKeyVault } from './clients/azure';
import type { CryptOptions, KeyDescription, KeySpec, ManagedKey, SignOptions, Usage } from './types';
import { AZUREKEYVAULT_FIELDS } from './azurekeyvault.fields';

/** A key in Azure Key Vault or Managed HSM (RSA, EC, or AES-GCM in a Managed HSM). */
export class AzureKeyVaultKey implements ManagedKey {
  private spec!: KeySpec;
  private pub?: KeyObject;
  private crypto!: Akv.CryptographyClient;

  private constructor(
    private readonly name: string,
    private readonly cfg: BackendConfig,
    private readonly common: CommonConfig,
    private readonly vault: AzureKeyVault,
    private readonly keys: Akv.KeyClient,
  ) {}

  static async open(name: string, cfg: BackendConfig, common: CommonConfig): Promise<AzureKeyVaultKey> {
    const vault = azureKeyVault({
      backend: 'azurekeyvault',
      name,
      credentialField: 'client_secret',
      environment: str(cfg.environment),
      tenantId: str(cfg.tenant_id),
      clientId: str(cfg.client_id),
      clientSecret: String(cfg.client_secret),
      authorityHost: str(cfg.authority_host),
      vaultName: String(cfg.vault_name),
      dnsSuffix: str(cfg.resource),
      vaultUrl: str(cfg.vault_url),
      endpointCa: str(cfg.endpoint_ca),
    });
    const k = new AzureKeyVaultKey(name, cfg, common, vault, vault.keyClient());
    await k.load();
    return k;
  }

  /** Every call gets a deadline (the Azure pipeline has none by default), retries included. */
  private call<T>(op: string, fn: (o: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
    return azureCall({ name: this.name, secrets: [String(this.cfg.client_secret)] }, op, fn);
  }

  private async load(): Promise<void> {
    const keyName = String(this.cfg.key_name);
    let key: Akv.KeyVaultKey;
    try {
      key = await this.call('describe', (o) => this.keys.getKey(keyName, o));
    } catch (e) {
      if (!(isKeyError(e) && e.kind === 'not_found' && this.common.allowGenerate)) throw e;
      const kty = (this.cfg.key_type as string) ?? 'EC-HSM';
      key = await this.call('generate', (o) =>
        this.keys.createKey(keyName, kty, kty.startsWith('RSA') ? { keySize: (this.cfg.key_bits as number) ?? 2048, ...o } : { curve: 'P-256', ...o }),
      );
    }
    const jwk = key.key!;
    const kty = String(jwk.kty);
    if (kty.startsWith('EC')) {
      const crv = String(jwk.crv) as ManagedCurve;
      if (!MANAGED_CURVES.includes(crv)) throw keyUnsupported(`azurekeyvault key "${this.name}": curve ${crv} is not supported`);
      this.spec = { kind: 'ec', curve: crv };
      this.pub = createPublicKey({
        format: 'jwk',
        key: { kty: 'EC', crv, x: Buffer.from(jwk.x!).toString('base64url'), y: Buffer.from(jwk.y!).toString('base64url') },
      });
    } else if (kty.startsWith('RSA')) {
      this.spec = { kind: 'rsa', bits: jwk.n!.length * 8 };
      this.pub = createPublicKey({
        format: 'jwk',
        key: { kty: 'RSA', n: Buffer.from(jwk.n!).toString('base64url'), e: Buffer.from(jwk.e!).toString('base64url') },
      });
    } else if (kty === 'oct-HSM' || kty === 'oct') {
      this.spec = { kind: 'aes', bits: 256 };
    } else throw keyUnsupported(`azurekeyvault key "${this.name}": key type ${kty} is not supported`);
    this.crypto = new this.vault.akv.CryptographyClient(key, this.vault.credential, this.vault.clientOptions());
  }

  describe(): KeyDescription {
    return { backend: 'azurekeyvault', name: this.name, spec: this.spec, usages: this.common.usages, algorithms: algorithmsFor(this.spec), hardware: true };
  }

  private need(u: Usage): void {
    requireUsage('azurekeyvault', this.name, this.common.usages, u);
  }

  async publicKey(): Promise<KeyObject> {
    if (!this.pub) throw keyUnsupported(`azurekeyvault key "${this.name}" is symmetric: it has no public key`);
    return this.pub;
  }

  async sign(data: Buffer, opts: SignOptions): Promise<Buffer> {
    this.need('sign');
    if (!isSha2Sign(opts.hash)) throw keyUnsupported(`azurekeyvault key "${this.name}" signs with sha256, sha384 or sha512 only, not ${opts.hash}`);
    const bits = opts.hash.slice(3);
    if (this.spec.kind === 'ec') {
      const alg = `ES${bits}`;
      const r = await this.call('sign', (o) => this.crypto.sign(alg as Akv.SignatureAlgorithm, digest(data, opts), o));
      return rawToDer(Buffer.from(r.result));
    }
    if (this.spec.kind !== 'rsa') throw keyUnsupported(`azurekeyvault key "${this.name}" (${this.spec.kind}) does not sign`);
    const alg = `${opts.padding === 'pkcs1v15' ? 'RS' : 'PS'}${bits}`;
    const r = await this.call('sign', (o) => this.crypto.sign(alg as Akv.SignatureAlgorithm, digest(data, opts), o));
    return Buffer.from(r.result);
  }

  async verify(data: Buffer, signature: Buffer, opts: SignOptions): Promise<boolean> {
    this.need('verify');
    return verifyWith(await this.publicKey(), this.spec, data, signature, opts);
  }

  async encrypt(plaintext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('encrypt');
    if (this.spec.kind === 'rsa') return oaepEncrypt(this.pub!, plaintext, opts.oaepHash ?? 'sha256', `azurekeyvault key "${this.name}"`);
    if (this.spec.kind !== 'aes') throw keyUnsupported(`azurekeyvault key "${this.name}" (${this.spec.kind}) does not encrypt`);
    const r = await this.call('encrypt', (o) => this.crypto.encrypt({ algorithm: 'A256GCM', plaintext, additionalAuthenticatedData: opts.aad }, o));
    return Buffer.concat([Buffer.from(r.iv!), Buffer.from(r.result), Buffer.from(r.authenticationTag!)]);
  }

  async decrypt(ciphertext: Buffer, opts: CryptOptions = {}): Promise<Buffer> {
    this.need('decrypt');
    try {
      if (this.spec.kind === 'rsa') {
        const algorithm = opts.oaepHash === 'sha1' ? 'RSA-OAEP' : 'RSA-OAEP-256';
        return Buffer.from((await this.call('decrypt', (o) => this.crypto.decrypt({ algorithm, ciphertext }, o))).result);
      }
      if (this.spec.kind !== 'aes') throw keyUnsupported(`azurekeyvault key "${this.name}" (${this.spec.kind}) does not decrypt`);
      if (ciphertext.length < 28) throw keyInvalid('ciphertext too short');
      const r = await this.call('decrypt', (o) =>
        this.crypto.decrypt(
          {
            algorithm: 'A256GCM',
            iv: ciphertext.subarray(0, 12),
            ciphertext: ciphertext.subarray(12, ciphertext.length - 16),
            authenticationTag: ciphertext.subarray(ciphertext.length - 16),
            additionalAuthenticatedData: opts.aad,
          },
          o,
        ),
      );
      return Buffer.from(r.result);
    } catch (e) {
      if (isKeyError(e) && e.kind === 'invalid')
        throw keyInvalid(`decryption failed: ciphertext or associated data do not match azurekeyvault key "${this.name}"`, e);
      throw e;
    }
  }

  async random(bytes: number): Promise<Buffer> {
    this.need('random');
    return Buffer.from(await this.call('random', (o) => this.keys.getRandomBytes(bytes, o)));
  }

  async close(): Promise<void> {}
}

/** Azure Key Vault managed keys; this module (and its SDK) is loaded only when such a key is opened. */
export const backend: KeyBackend = { type: 'azurekeyvault', fields: AZUREKEYVAULT_FIELDS, open: (p) => AzureKeyVaultKey.open(p.name, p.fields, p.common) };
