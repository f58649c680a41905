// Azure Key Vault import: each Vault version is imported (JWK, importKey) as a new version
// of one Key Vault key named <key>-<time>, with key_ops from the purposes and HSM or
// software protection. Versions are tagged with the distribution's nonce and the Vault
// version, so a resumed distribution whose earlier import reply was lost finds that
// version instead of importing a second one. Removal deletes the whole key (soft delete).
import { createPrivateKey } from 'node:crypto';
import type * as Akv from '@azure/keyvault-keys';
import { keyFailure, isKeyError, keyInvalid, sdkStatusCode } from '../../../keys/errors';
import { azureCall, azureCallOptions, azureErrorKind, azureKeyVault } from '../../../keys/clients/azure';
import type { KeyType } from '../keys';
import { secretsOf } from './config';
import { azureKeyName } from './names';
import type { Distribution, KmsConfig, Material, Purpose, Save, Target } from './types';

const KEY_OPS: Record<Purpose, string> = { encrypt: 'encrypt', decrypt: 'decrypt', sign: 'sign', verify: 'verify', wrap: 'wrapKey', unwrap: 'unwrapKey' };

/** A private key as the JWK Key Vault imports (binary fields; the SDK base64url-encodes them). */
function toJwk(m: Material, ops: string[]): Akv.JsonWebKey {
  const j = createPrivateKey({ key: m.bytes, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  const bin = (s?: string) => (s ? Buffer.from(s, 'base64url') : undefined);
  if (j.kty === 'RSA')
    return { kty: 'RSA', keyOps: ops, n: bin(j.n), e: bin(j.e), d: bin(j.d), p: bin(j.p), q: bin(j.q), dp: bin(j.dp), dq: bin(j.dq), qi: bin(j.qi) };
  return { kty: 'EC', keyOps: ops, crv: j.crv as Akv.KeyCurveName, x: bin(j.x), y: bin(j.y), d: bin(j.d) };
}

/** Distributes keys into one Azure key vault. */
export class AzureTarget implements Target {
  /** `importer` sends importKey once: a retried import whose first reply was lost would add a second version. */
  private constructor(
    private readonly cfg: KmsConfig,
    private readonly keys: Akv.KeyClient,
    private readonly importer: Akv.KeyClient,
    private readonly vaultUrl: string,
  ) {}

  static open(cfg: KmsConfig): AzureTarget {
    const cr = cfg.credentials;
    // openTarget has checked the credentials (with a 400 on refusal); the client setup checks them again.
    const vault = azureKeyVault({
      backend: 'azurekeyvault',
      name: cfg.name,
      credentialField: 'credentials',
      environment: cr.environment,
      tenantId: cr.tenant_id,
      clientId: cr.client_id,
      clientSecret: cr.client_secret,
      authorityHost: cfg.authority_host,
      vaultName: cfg.key_collection,
      vaultUrl: cfg.endpoint,
      endpointCa: cfg.endpoint_ca,
    });
    return new AzureTarget(cfg, vault.keyClient(), vault.keyClient(0), vault.vaultUrl.replace(/\/+$/, ''));
  }

  private call<T>(op: string, fn: (o: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
    return azureCall({ name: this.cfg.name, secrets: secretsOf(this.cfg), conflict: 'invalid' }, op, fn);
  }

  /** Throttling (429) means Key Vault did nothing, so only then is an import sent again: 4 attempts at most. */
  private async importOnce<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt >= 4 || sdkStatusCode(e) !== 429) throw e;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  /** The Key Vault key name: the one recorded in the container (never recomputed once chosen), else a new one. */
  private keyName(d: Distribution): string {
    const at = d.container?.lastIndexOf('/keys/') ?? -1;
    return at >= 0 ? decodeURIComponent(d.container!.slice(at + 6)) : azureKeyName(d);
  }

  async prepare(d: Distribution, _type: KeyType, save: Save): Promise<void> {
    if (d.container) return;
    // Nothing to create; record the key's URL before the first import so removal knows it.
    // A key of that name that this distribution did not import is someone else's: its
    // versions are never added to, nor deleted with, this distribution.
    const name = this.keyName(d);
    let existing: Akv.KeyVaultKey | undefined;
    try {
      existing = await this.call('get key', (o) => this.keys.getKey(name, o));
    } catch (e) {
      if (!(isKeyError(e) && e.kind === 'not_found')) throw e;
    }
    if (existing && existing.properties.tags?.['vault-keymgmt'] !== d.nonce)
      throw keyInvalid(`azurekeyvault "${this.cfg.name}": key ${name} already exists in the key vault and was not made by this distribution`);
    d.container = `${this.vaultUrl}/keys/${name}`;
    await save();
  }

  private async findVersion(d: Distribution, n: number): Promise<string | undefined> {
    try {
      for await (const p of this.keys.listPropertiesOfKeyVersions(this.keyName(d), azureCallOptions())) {
        if (p.tags?.['vault-keymgmt'] === d.nonce && p.tags['vault-keymgmt-version'] === String(n)) return p.id;
      }
    } catch (e) {
      const err = keyFailure('azurekeyvault', this.cfg.name, 'list versions', e, secretsOf(this.cfg), azureErrorKind(e, 'invalid'));
      if (err.kind === 'not_found') return undefined;
      throw err;
    }
    return undefined;
  }

  async importVersion(d: Distribution, n: number, m: Material, save: Save): Promise<void> {
    d.versions[n] ??= { state: 'pending' };
    const v = d.versions[n];
    if (!v.id && v.state === 'importing') {
      const found = await this.findVersion(d, n);
      if (found) {
        v.id = found;
        await save();
      }
    }
    if (!v.id) {
      v.state = 'importing';
      await save();
      const jwk = toJwk(
        m,
        d.purpose.map((p) => KEY_OPS[p]),
      );
      let made: Akv.KeyVaultKey;
      try {
        made = await this.importOnce(() =>
          this.call('import key', (o) =>
            this.importer.importKey(this.keyName(d), jwk, {
              ...o,
              hardwareProtected: d.protection === 'hsm',
              enabled: true,
              tags: { 'vault-keymgmt': d.nonce, 'vault-keymgmt-version': String(n) },
            }),
          ),
        );
      } catch (e) {
        // A refusal imported nothing; a timeout or 5xx may have: resume looks for the version first.
        if (isKeyError(e) && e.kind !== 'unavailable') {
          v.state = 'pending';
          await save();
        }
        throw e;
      }
      v.id = made.id!;
    }
    v.state = 'imported';
    v.enabled = true;
    await save();
  }

  async setEnabled(d: Distribution, n: number, enabled: boolean): Promise<void> {
    const id = d.versions[n]?.id;
    if (!id) return;
    await this.call(enabled ? 'enable version' : 'disable version', (o) =>
      this.keys.updateKeyProperties(this.keyName(d), id.split('/').pop()!, { ...o, enabled }),
    );
  }

  /** Key Vault uses the newest version; versions are imported oldest first. */
  async setCurrent(): Promise<void> {}

  async remove(d: Distribution, save: Save): Promise<void> {
    if (Object.values(d.versions).some((v) => v.id || v.state === 'importing')) {
      try {
        const poller = await this.call('delete key', (o) => this.keys.beginDeleteKey(this.keyName(d), { ...o, intervalInMs: 250 }));
        await this.call('delete key', () => poller.pollUntilDone());
      } catch (e) {
        if (!(isKeyError(e) && e.kind === 'not_found')) throw e;
      }
    }
    d.versions = {};
    await save();
  }

  async close(): Promise<void> {}
}
