// Every place that generates keys refuses unsafe sizes.
import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { SecretsBackend } from '../../src/secrets/backend';
import { MemoryStorage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';
import { generateIdentity } from '../../src/goplugin/autotls';
import { parseKeyConfig } from '../../src/keys/config';
import { KEY_TYPES } from '../../src/secrets/transit/policy';

const quiet = createLogger({ level: 'error', sink: () => undefined });
const handle = (be: SecretsBackend, p: string, d: Record<string, unknown>) => be.handle('update', p, d, { displayName: '', mountPoint: '' });

describe('safe key sizes', () => {
  it('AutoMTLS identity: ECDSA P-521', async () => {
    const c = new X509Certificate((await generateIdentity()).certPem);
    expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp521r1');
  });
  it('transit offers no weak key types', () => {
    for (const t of KEY_TYPES) expect(t).not.toMatch(/rsa-(512|1024)|des|md5|sha1/);
  });
  it('PKI refuses RSA below 2048 bits and unknown curves, for CAs and roles', async () => {
    const pki = new SecretsBackend(new MemoryStorage(), quiet, 'pki');
    await expect(handle(pki, 'root/generate/internal', { ttl: '87600h', common_name: 'x', key_type: 'rsa', key_bits: 1024 })).rejects.toThrow(
      /2048, 3072 or 4096/,
    );
    await expect(handle(pki, 'root/generate/internal', { ttl: '87600h', common_name: 'x', key_type: 'ec', key_bits: 192 })).rejects.toThrow(/256, 384 or 521/);
    await handle(pki, 'root/generate/internal', { ttl: '87600h', common_name: 'x' });
    // A weak role cannot even be written (Vault validates key_bits when the role is written).
    await expect(handle(pki, 'roles/weak', { allow_any_name: true, key_type: 'rsa', key_bits: 1024 })).rejects.toThrow(/2048, 3072, 4096 or 8192/);
    await handle(pki, 'roles/big', { allow_any_name: true, key_type: 'rsa', key_bits: 8192 }); // sign/ minimum only
    await expect(handle(pki, 'issue/big', { common_name: 'a' })).rejects.toThrow(/2048, 3072 or 4096/);
  });
  it('software managed keys come in safe sizes only', () => {
    expect(() => parseKeyConfig('software', 'k', { key_type: 'rsa-1024' })).toThrow(/must be one of/);
  });
});
