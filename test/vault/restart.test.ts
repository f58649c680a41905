// A non-dev Vault on file storage, restarted mid-way (init, unseal with one key share, stop,
// start on the same data, unseal): the plugin's state lives only in Vault's storage, so the
// keys and the CA survive and old ciphertexts decrypt. Both TLS modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TLS_MODES, startFileVault, vaultBin, type FileVault } from '../support/vault';
import { decrypt, enablePki, enableTransit, issue, pkiWork, transitWork, verify, write, type PkiState, type TransitState } from './steps';

for (const mode of TLS_MODES) {
  describe.skipIf(!vaultBin())(`a file-storage Vault restarted (${mode} TLS)`, { timeout: 90_000 }, () => {
    let fv: FileVault;
    let transit: TransitState;
    let pki: PkiState;
    let firstSerial = '';

    beforeAll(async () => {
      fv = await startFileVault({ mode });
    });
    afterAll(async () => {
      await fv?.stop();
    });

    it('before: transit key with two versions, a root CA, an issued certificate', async () => {
      const v = fv.node;
      await v.registerPlugin();
      await enableTransit(v);
      await enablePki(v);
      transit = await transitWork(v);
      pki = await pkiWork(v);
      const leaf = await issue(v, 'pki', pki.role, 'before.example.test', 'ttl=1h');
      expect(verify(pki.caPem, leaf.certificate)).toMatch(/: OK/);
      firstSerial = leaf.serial_number;
      expect(v.plugins().length).toBeGreaterThanOrEqual(2);
    });

    it('after a stop and start on the same data: same keys, same CA, old ciphertexts decrypt', async () => {
      const v = fv.node;
      const oldPids = v.plugins().map((p) => p.pid);
      await fv.restart();
      expect(v.plugins().some((p) => oldPids.includes(p.pid))).toBe(false);
      expect(await decrypt(v, 'transit', transit.key, transit.v1)).toBe(transit.plaintext);
      expect(await decrypt(v, 'transit', transit.key, transit.v2)).toBe(transit.plaintext);
      expect((await write(v, `transit/encrypt/${transit.key}`, `plaintext=${transit.plaintext}`)).ciphertext).toMatch(/^vault:v2:/);
      const ca = await v.http('GET', 'pki/ca/pem');
      expect(ca.text.trim()).toBe(pki.caPem.trim());
      const leaf = await issue(v, 'pki', pki.role, 'after.example.test', 'ttl=1h');
      expect(verify(pki.caPem, leaf.certificate)).toMatch(/: OK/);
      const stored = await v.vault(['read', '-format=json', `pki/cert/${firstSerial}`]);
      expect(stored.data.certificate).toMatch(/BEGIN CERTIFICATE/);
    });
  });
}
