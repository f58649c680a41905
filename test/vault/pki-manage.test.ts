// Current Vault's PKI management paths through the real Vault CLI: keys/generate and
// keys/import, issuers/generate/root, tidy with tidy-status and tidy-cancel, config/auto-tidy
// run by Vault's own periodic (rollback) call, revoke-with-key and issuer/<ref>/revoke. Vault
// 1.8 (the binary here) has none of these in its own PKI, so they follow current Vault's
// documented API; keys and certificates are checked with openssl.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevVault, vaultBin, waitFor, type VaultNode } from '../support/vault';
import { enablePki, file, openssl, opensslSerial, read, verify, write } from './steps';

describe.skipIf(!vaultBin())("PKI management paths through the real Vault CLI (current Vault's API)", { timeout: 180_000 }, () => {
  let v: VaultNode;
  beforeAll(async () => {
    v = await startDevVault();
    await v.registerPlugin();
    await enablePki(v);
    await v.vault(['secrets', 'tune', '-max-lease-ttl=87600h', 'pki']);
  });
  afterAll(async () => {
    await v?.destroy();
  });

  it('keys/generate and keys/import make keys; issuers/generate/root uses one (key_ref) without replacing the default', async () => {
    const first = await write(v, 'pki/issuers/generate/root/internal', 'common_name=First Root', 'key_type=ec', 'issuer_name=first', 'ttl=87600h');
    expect((await read(v, 'pki/config/issuers')).data.default).toBe(first.issuer_id);

    const gen = await write(v, 'pki/keys/generate/internal', 'key_type=ec', 'key_bits=384', 'key_name=gen');
    expect(gen).toMatchObject({ key_name: 'gen', key_type: 'ec' });
    expect(gen.private_key).toBeUndefined();
    const exp = await write(v, 'pki/keys/generate/exported', 'key_type=rsa', 'key_bits=2048', 'key_name=exp');
    expect(openssl('rsa', '-in', file(exp.private_key), '-check', '-noout').out).toMatch(/RSA key ok/);

    const keyPem = openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256').out;
    const keyFile = file(keyPem);
    const imp = await write(v, 'pki/keys/import', `pem_bundle=@${keyFile}`, 'key_name=imp');
    expect(imp).toMatchObject({ key_name: 'imp', key_type: 'ec' });
    const again = await v.vault(['write', '-format=json', 'pki/keys/import', `pem_bundle=@${keyFile}`]);
    expect(again.data.key_id).toBe(imp.key_id);
    expect(again.warnings).toEqual(['Key already imported, use key/ endpoint to update name.']);
    await expect(v.vault(['write', 'pki/keys/import', 'pem_bundle=not a key'])).rejects.toThrow(/too short/);
    await expect(v.vault(['write', 'pki/keys/generate/internal', 'key_type=ec', 'key_bits=7'])).rejects.toThrow(/key_bits for ec keys must be/);
    const keys = await v.vault(['list', '-format=json', 'pki/keys']);
    expect([...keys].sort()).toEqual([first.key_id, gen.key_id, exp.key_id, imp.key_id].sort());

    // A root on the imported key: its public key is the one imported (openssl), and it is not the default.
    const second = await write(v, 'pki/issuers/generate/root/existing', 'common_name=Second Root', 'key_ref=imp', 'issuer_name=second', 'ttl=8760h');
    expect(second.key_id).toBe(imp.key_id);
    expect(openssl('x509', '-in', file(second.certificate), '-noout', '-pubkey').out).toBe(openssl('pkey', '-in', keyFile, '-pubout').out);
    expect(verify(second.certificate, second.certificate)).toMatch(/: OK/);
    expect((await read(v, 'pki/config/issuers')).data.default).toBe(first.issuer_id);
    const onExported = await write(v, 'pki/issuers/generate/root/existing', 'common_name=Third Root', 'key_ref=exp', 'ttl=8760h');
    expect(openssl('x509', '-in', file(onExported.certificate), '-noout', '-pubkey').out).toBe(openssl('pkey', '-in', file(exp.private_key), '-pubout').out);
    const csr = await write(v, 'pki/issuers/generate/intermediate/existing', 'common_name=Inter on gen', 'key_ref=gen');
    expect(csr.key_id).toBe(gen.key_id);
    expect(openssl('req', '-in', file(csr.csr), '-noout', '-text').out).toMatch(/NIST CURVE: P-384/);
  });

  it('tidy answers 202 and tidy-status tells what it removed; tidy-cancel with nothing running warns', async () => {
    await write(v, 'pki/roles/short', 'allow_any_name=true', 'key_type=ec', 'ttl=1s', 'issuer_ref=first');
    const gone = await write(v, 'pki/issue/short', 'common_name=gone.example.com', 'ttl=1s');
    expect((await read(v, 'pki/tidy-status')).data.state).toBe('Inactive');
    await new Promise((r) => setTimeout(r, 2200));
    const res = await v.http('POST', 'pki/tidy', { body: { tidy_cert_store: true, safety_buffer: '1s' } });
    expect(res.status).toBe(202);
    const s = (await read(v, 'pki/tidy-status')).data;
    expect(s).toMatchObject({ state: 'Finished', tidy_cert_store: true, safety_buffer: 1, cert_store_deleted_count: 1, error: null });
    await expect(v.vault(['read', `pki/cert/${gone.serial_number}`])).rejects.toThrow();
    const cancel = await v.vault(['write', '-format=json', '-f', 'pki/tidy-cancel']);
    expect(cancel.warnings).toEqual(['Tidy operation cannot be cancelled as none is currently running.']);
    await expect(v.vault(['write', 'pki/tidy', 'tidy_cert_store=true', 'safety_buffer=0'])).rejects.toThrow(/safety_buffer must be greater than zero/);
  });

  it("config/auto-tidy: Vault's own periodic (rollback) call runs the tidy once interval_duration has passed", async () => {
    const gone = await write(v, 'pki/issue/short', 'common_name=auto.example.com', 'ttl=1s');
    await new Promise((r) => setTimeout(r, 2200)); // expired past the safety buffer before the first auto-tidy can run
    const before = (await read(v, 'pki/tidy-status')).data.time_started;
    const cfg = await write(v, 'pki/config/auto-tidy', 'enabled=true', 'tidy_cert_store=true', 'interval_duration=1s', 'safety_buffer=1s');
    expect(cfg).toMatchObject({ enabled: true, interval_duration: 1, tidy_cert_store: true, safety_buffer: 1, pause_duration: '0s' });
    expect((await read(v, 'pki/config/auto-tidy')).data).toMatchObject({ enabled: true, interval_duration: 1 });
    // Vault's rollback manager calls every mount about once a minute; no request here starts a tidy.
    const s = await waitFor(
      'an auto-tidy started by Vault',
      async () => {
        const d = (await read(v, 'pki/tidy-status')).data;
        return d.time_started !== before && d.state === 'Finished' ? d : undefined;
      },
      100_000,
      1000,
    );
    expect(s).toMatchObject({ tidy_cert_store: true, safety_buffer: 1, cert_store_deleted_count: 1 });
    await expect(v.vault(['read', `pki/cert/${gone.serial_number}`])).rejects.toThrow();
    await write(v, 'pki/config/auto-tidy', 'enabled=false');
  });

  it("revoke-with-key revokes with the certificate's key; issuer/<ref>/revoke puts an intermediate on its parent's CRL", async () => {
    await write(v, 'pki/roles/web', 'allow_any_name=true', 'key_type=ec', 'issuer_ref=first', 'max_ttl=24h');
    const a = await write(v, 'pki/issue/web', 'common_name=a.example.com', 'ttl=1h');
    const b = await write(v, 'pki/issue/web', 'common_name=b.example.com', 'ttl=1h');
    await expect(v.vault(['write', 'pki/revoke-with-key', `serial_number=${a.serial_number}`, `private_key=@${file(b.private_key)}`])).rejects.toThrow(
      /provided private key does not match certificate's public key/,
    );
    const r = await write(v, 'pki/revoke-with-key', `serial_number=${a.serial_number}`, `private_key=@${file(a.private_key)}`);
    expect(r.revocation_time).toBeGreaterThan(0);
    const crl = (await v.http('GET', 'pki/crl/pem', { token: null })).text;
    expect(verify(a.issuing_ca, a.certificate, crl)).toMatch(/certificate revoked/);
    expect(verify(b.issuing_ca, b.certificate, crl)).toMatch(/: OK/);
    expect(openssl('crl', '-in', file(crl), '-noout', '-text').out).toContain(opensslSerial(a.serial_number));
    // revoke by the certificate itself (current Vault 1.12+), not its serial.
    expect((await write(v, 'pki/revoke', `certificate=@${file(b.certificate)}`)).revocation_time).toBeGreaterThan(0);
    expect(verify(b.issuing_ca, b.certificate, (await v.http('GET', 'pki/crl/pem', { token: null })).text)).toMatch(/certificate revoked/);

    const g = await write(v, 'pki/intermediate/generate/internal', 'common_name=Child', 'key_type=ec');
    const signed = await write(v, 'pki/issuer/first/sign-intermediate', `csr=@${file(g.csr)}`, 'ttl=8760h');
    await write(v, 'pki/intermediate/set-signed', `certificate=@${file(signed.certificate)}`, 'issuer_name=child');
    const rev = await write(v, 'pki/issuer/child/revoke');
    expect(rev).toMatchObject({ issuer_name: 'child', revoked: true });
    expect(rev.usage).not.toMatch(/issuing-certificates/);
    // With a token: Vault 1.8 has no "+" in unauthenticated paths (issuer/+/crl/pem is public in current Vault).
    const parentCrl = (await v.http('GET', 'pki/issuer/first/crl/pem')).text;
    expect(verify(a.issuing_ca, signed.certificate, parentCrl)).toMatch(/certificate revoked/);
    await write(v, 'pki/roles/child', 'allow_any_name=true', 'key_type=ec', 'issuer_ref=child');
    await expect(v.vault(['write', 'pki/issue/child', 'common_name=x.example.com'])).rejects.toThrow(/not allowed issuing-certificates/);
  });
});
