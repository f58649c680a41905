// The secrets role in a real Vault 1.8 dev server, in both TLS modes, through the README's
// commands: transit and PKI mounts, path-help, plugin reload, a plugin killed by hand, and
// the mount's max lease TTL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { PLUGIN_NAME, TLS_MODES, listeningSockets, pluginProcesses, startDevVault, vaultBin, type VaultNode } from '../support/vault';
import {
  b64,
  decrypt,
  enablePki,
  enableTransit,
  issue,
  notAfter,
  openssl,
  opensslSerial,
  file,
  pkiWork,
  transitWork,
  unb64,
  verify,
  write,
  type PkiState,
  type TransitState,
} from './steps';

// Both TLS modes on the default HTTP/2 layer (our own, src/goplugin/h2/), and the legacy mode
// once more on the node:http2 fallback (VAULT_PLUGIN_TS_HTTP2=node, given in the catalog's env).
const VARIANTS: Array<{ mode: (typeof TLS_MODES)[number]; env: Record<string, string>; label: string }> = [
  ...TLS_MODES.map((mode) => ({ mode, env: {}, label: `${mode} TLS` })),
  { mode: 'legacy', env: { VAULT_PLUGIN_TS_HTTP2: 'node' }, label: 'legacy TLS, VAULT_PLUGIN_TS_HTTP2=node' },
];

for (const { mode, env, label } of VARIANTS) {
  describe.skipIf(!vaultBin())(`secrets role in a real Vault (${label})`, { timeout: 90_000 }, () => {
    let v: VaultNode;
    let transit: TransitState;
    let pki: PkiState;

    beforeAll(async () => {
      v = await startDevVault({ mode });
    });
    afterAll(async () => {
      await v?.destroy();
    });

    it('registers by sha256 and mounts transit and PKI from the README commands', async () => {
      const sha = await v.registerPlugin(env);
      const entry = await v.vault(['read', '-format=json', `sys/plugins/catalog/secret/${PLUGIN_NAME}`]);
      expect(entry.data.sha256).toBe(sha);
      await enableTransit(v).catch((e) => {
        throw new Error(`${e.message}\n${v.logs(30)}`);
      });
      await enablePki(v);
      const mounts = await v.vault(['secrets', 'list', '-format=json']);
      expect(mounts['transit/'].type).toBe(PLUGIN_NAME);
      expect(mounts['pki/'].options).toEqual({ engine: 'pki' });
    });

    it("listens on a unix socket, as Vault's own Go plugins do, and on no TCP port", async () => {
      // Vault 1.8 starts a mount's serving process on its first request.
      await v.vault(['write', '-format=json', '-f', 'transit/keys/socket-probe']);
      await v.vault(['read', '-format=json', 'pki/config/urls']);
      const procs = pluginProcesses(v.pluginDir);
      expect(procs.length).toBe(2);
      for (const p of procs) {
        const { unix, tcp } = listeningSockets(p.pid);
        expect(tcp).toEqual([]);
        expect(unix.length).toBeGreaterThan(0);
        for (const path of unix) expect(path).toMatch(/^\/tmp\/plugin[0-9a-f]{12}$/);
      }
    });

    it('transit: create, encrypt/decrypt, rotate, rewrap', async () => {
      transit = await transitWork(v);
      expect(transit.v1).toMatch(/^vault:v1:/);
      expect(transit.v2).toMatch(/^vault:v2:/);
      expect(await decrypt(v, 'transit', 'app', transit.v1)).toBe(transit.plaintext);
      expect(await decrypt(v, 'transit', 'app', transit.v2)).toBe(transit.plaintext);
      const rewrapped = (await write(v, 'transit/rewrap/app', `ciphertext=${transit.v1}`)).ciphertext;
      expect(rewrapped).toMatch(/^vault:v2:/);
      expect(await decrypt(v, 'transit', 'app', rewrapped)).toBe(transit.plaintext);
      const key = await v.vault(['read', '-format=json', 'transit/keys/app']);
      expect(key.data.latest_version).toBe(2);
      expect(Object.keys(key.data.keys)).toEqual(['1', '2']);
      // A bad ciphertext is Vault's 400 with a message, not a 500.
      await expect(write(v, 'transit/decrypt/app', 'ciphertext=vault:v1:AAAA')).rejects.toThrow(/Code: 400/);
    });

    it('transit: a 4 MiB plaintext through Vault and back, and 40 requests at once (flow control, many streams)', async () => {
      const big = Buffer.alloc(4 << 20);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
      const enc = await v.http('PUT', 'transit/encrypt/app', { body: { plaintext: big.toString('base64') }, timeoutMs: 60_000 });
      expect(enc.status).toBe(200);
      const ct = enc.json().data.ciphertext;
      const dec = await v.http('PUT', 'transit/decrypt/app', { body: { ciphertext: ct }, timeoutMs: 60_000 });
      expect(dec.status).toBe(200);
      expect(Buffer.from(dec.json().data.plaintext, 'base64').equals(big)).toBe(true);
      const many = await Promise.all(Array.from({ length: 40 }, (_, i) => v.http('PUT', 'transit/encrypt/app', { body: { plaintext: b64(`item ${i}`) } })));
      expect(many.map((r) => r.status)).toEqual(many.map(() => 200));
      if (env.VAULT_PLUGIN_TS_HTTP2) {
        // The catalog's env reached the plugin process: this variant really ran node:http2.
        const procs = pluginProcesses(v.pluginDir);
        expect(procs.length).toBeGreaterThan(0);
        for (const p of procs) expect(fs.readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0')).toContain('VAULT_PLUGIN_TS_HTTP2=node');
      }
    });

    it('transit: sign/verify, hmac, datakey', async () => {
      for (const type of ['ecdsa-p256', 'ed25519']) {
        await write(v, `transit/keys/s-${type}`, `type=${type}`);
        const input = b64(`signed by ${type}`);
        const sig = (await write(v, `transit/sign/s-${type}`, `input=${input}`)).signature;
        expect(sig).toMatch(/^vault:v1:/);
        expect((await write(v, `transit/verify/s-${type}`, `input=${input}`, `signature=${sig}`)).valid).toBe(true);
        expect((await write(v, `transit/verify/s-${type}`, `input=${b64('tampered')}`, `signature=${sig}`)).valid).toBe(false);
      }
      const input = b64('mac me');
      const hmac = (await write(v, 'transit/hmac/app', `input=${input}`)).hmac;
      expect(hmac).toMatch(/^vault:v2:/);
      expect((await write(v, 'transit/verify/app', `input=${input}`, `hmac=${hmac}`)).valid).toBe(true);
      expect((await write(v, 'transit/verify/app', `input=${b64('other')}`, `hmac=${hmac}`)).valid).toBe(false);
      const dk = await write(v, 'transit/datakey/plaintext/app');
      expect(Buffer.from(dk.plaintext, 'base64')).toHaveLength(32);
      expect(await decrypt(v, 'transit', 'app', dk.ciphertext)).toBe(dk.plaintext);
      const wrapped = await write(v, 'transit/datakey/wrapped/app');
      expect(wrapped.plaintext).toBeUndefined();
      expect(Buffer.from(await decrypt(v, 'transit', 'app', wrapped.ciphertext), 'base64')).toHaveLength(32);
    });

    it("transit config/keys disable_upsert (current Vault's): encrypt on a missing key is a 400 through Vault, and creates nothing", async () => {
      expect(await write(v, 'transit/config/keys', 'disable_upsert=true')).toEqual({ disable_upsert: true });
      expect((await v.vault(['read', '-format=json', 'transit/config/keys'])).data).toEqual({ disable_upsert: true });
      await expect(write(v, 'transit/encrypt/typo-key', `plaintext=${b64('x')}`)).rejects.toThrow(/Code: 400[\s\S]*encryption key not found: typo-key/);
      await expect(v.vault(['read', '-format=json', 'transit/keys/typo-key'])).rejects.toThrow(/No value found/);
      expect((await write(v, 'transit/encrypt/app', `plaintext=${b64('x')}`)).ciphertext).toMatch(/^vault:v2:/);
      expect(await write(v, 'transit/config/keys', 'disable_upsert=false')).toEqual({ disable_upsert: false });
    });

    it("transit keys/<name>/csr and set-certificate (current Vault's): the CLI makes a CSR, openssl signs it, the chain is stored and exported", async () => {
      await write(v, 'transit/keys/tls-id', 'type=ecdsa-p256');
      const csr = (await write(v, 'transit/keys/tls-id/csr')).csr as string;
      expect(openssl('req', '-in', file(csr), '-noout', '-verify').out).toMatch(/verify OK/);
      const caKey = file('', 'ca-key.pem');
      const caPem = file('', 'ca.pem');
      expect(
        openssl(
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          caKey,
          '-out',
          caPem,
          '-subj',
          '/CN=transit test CA',
          '-days',
          '1',
        ).status,
      ).toBe(0);
      const leafPem = file('', 'leaf.pem');
      expect(openssl('x509', '-req', '-in', file(csr), '-CA', caPem, '-CAkey', caKey, '-CAcreateserial', '-days', '1', '-out', leafPem).status).toBe(0);
      const chain = file(fs.readFileSync(leafPem, 'utf8') + fs.readFileSync(caPem, 'utf8'), 'chain.pem');
      expect((await write(v, 'transit/keys/tls-id/set-certificate', `certificate_chain=@${chain}`))['certificate-chain']).toContain('BEGIN CERTIFICATE');
      const exported = (await v.vault(['read', '-format=json', 'transit/export/certificate-chain/tls-id/1'])).data.keys['1'] as string;
      expect(exported.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
      expect(openssl('verify', '-CAfile', caPem, file(exported.split(/(?<=-----END CERTIFICATE-----)\n/)[0])).out).toMatch(/: OK/);
      await expect(write(v, 'transit/keys/tls-id/set-certificate', `certificate_chain=@${caPem}`)).rejects.toThrow(/Code: 400[\s\S]*not a leaf certificate/);
    });

    it('transit beyond Vault: ecdsa-secp256k1 (openssl verifies), ml-dsa 44/65/87, x25519 derive-key; refusals are 400s', async () => {
      const input = b64('signed beyond Vault');
      await write(v, 'transit/keys/k1', 'type=ecdsa-secp256k1');
      const k1 = await v.vault(['read', '-format=json', 'transit/keys/k1']);
      expect(k1.data.keys['1'].name).toBe('secp256k1');
      const sig = (await write(v, 'transit/sign/k1', `input=${input}`)).signature;
      expect((await write(v, 'transit/verify/k1', `input=${input}`, `signature=${sig}`)).valid).toBe(true);
      expect((await write(v, 'transit/verify/k1', `input=${b64('tampered')}`, `signature=${sig}`)).valid).toBe(false);
      const verified = openssl(
        'dgst',
        '-sha256',
        '-verify',
        file(k1.data.keys['1'].public_key),
        '-signature',
        file(Buffer.from(sig.split(':')[2], 'base64')),
        file('signed beyond Vault'),
      );
      expect(verified.out).toMatch(/Verified OK/);
      const jws = (await write(v, 'transit/sign/k1', `input=${input}`, 'marshaling_algorithm=jws')).signature;
      expect((await write(v, 'transit/verify/k1', `input=${input}`, `signature=${jws}`, 'marshaling_algorithm=jws')).valid).toBe(true);
      await expect(write(v, 'transit/encrypt/k1', `plaintext=${input}`)).rejects.toThrow(/Code: 400/);

      const { ml_dsa44, ml_dsa65, ml_dsa87 } = await import('@noble/post-quantum/ml-dsa.js');
      for (const [set, lib] of [
        ['44', ml_dsa44],
        ['65', ml_dsa65],
        ['87', ml_dsa87],
      ] as const) {
        await write(v, `transit/keys/pq${set}`, 'type=ml-dsa', `parameter_set=${set}`);
        const key = await v.vault(['read', '-format=json', `transit/keys/pq${set}`]);
        expect(key.data).toMatchObject({ type: 'ml-dsa', parameter_set: set });
        const s = (await write(v, `transit/sign/pq${set}`, `input=${input}`)).signature;
        expect(
          lib.verify(Buffer.from(s.split(':')[2], 'base64'), Buffer.from('signed beyond Vault'), Buffer.from(key.data.keys['1'].public_key, 'base64')),
        ).toBe(true);
        expect((await write(v, `transit/verify/pq${set}`, `input=${input}`, `signature=${s}`)).valid).toBe(true);
        expect((await write(v, `transit/verify/pq${set}`, `input=${b64('tampered')}`, `signature=${s}`)).valid).toBe(false);
      }
      await expect(write(v, 'transit/keys/pqx', 'type=ml-dsa')).rejects.toThrow(/Code: 400[\s\S]*invalid parameter set/);

      await write(v, 'transit/keys/xa', 'type=x25519');
      await write(v, 'transit/keys/xb', 'type=x25519');
      const pub = async (n: string) => (await v.vault(['read', '-format=json', `transit/keys/${n}`])).data.keys['1'].public_key;
      await write(v, 'transit/derive-key/ab', 'base_key_name=xa', `peer_public_key=${await pub('xb')}`);
      await write(v, 'transit/derive-key/ba', 'base_key_name=xb', `peer_public_key=${await pub('xa')}`);
      const ct = (await write(v, 'transit/encrypt/ab', `plaintext=${input}`)).ciphertext;
      expect(await decrypt(v, 'transit', 'ba', ct)).toBe(input);
      await expect(write(v, 'transit/sign/xa', `input=${input}`)).rejects.toThrow(/Code: 400[\s\S]*does not support signing/);
      await expect(write(v, 'transit/derive-key/bad', 'base_key_name=k1', `peer_public_key=${await pub('xb')}`)).rejects.toThrow(
        /Code: 400[\s\S]*does not support key agreement/,
      );
    });

    it('vault path-help transit/encrypt/x describes the path and its fields', async () => {
      const help: string = await v.vault(['path-help', 'transit/encrypt/x']);
      expect(help).toMatch(/Request:\s+encrypt\/x/);
      expect(help).toMatch(/plaintext/);
      expect(help).toMatch(/context/);
    });

    it('PKI: root, role, issue (openssl verify), revoke, CRL', async () => {
      pki = await pkiWork(v);
      expect(openssl('verify', '-CAfile', file(pki.caPem), file(pki.caPem)).out).toMatch(/OK/);
      const leaf = await issue(v, 'pki', pki.role, 'a.example.test', 'ttl=1h');
      expect(verify(pki.caPem, leaf.certificate)).toMatch(/: OK/);
      expect(leaf.issuing_ca.trim()).toBe(pki.caPem.trim());
      expect(leaf.private_key).toMatch(/PRIVATE KEY/);
      await expect(issue(v, 'pki', pki.role, 'a.other.test')).rejects.toThrow(/Code: 400/);

      const revoked = await write(v, 'pki/revoke', `serial_number=${leaf.serial_number}`);
      expect(revoked.revocation_time).toBeGreaterThan(0);
      const der = await v.http('GET', 'pki/crl');
      expect(der.status).toBe(200);
      expect(openssl('crl', '-inform', 'DER', '-noout', '-text', '-in', file(der.body)).out).toContain(opensslSerial(leaf.serial_number));
      const crlPem = await v.http('GET', 'pki/crl/pem');
      expect(crlPem.text).toMatch(/-----BEGIN X509 CRL-----/);
      expect(verify(pki.caPem, leaf.certificate, crlPem.text)).toMatch(/certificate revoked/);
    });

    it('PKI: ca/pem and crl are readable without a token, as curl reads them', async () => {
      const ca = await v.http('GET', 'pki/ca/pem', { token: null });
      expect(ca.status, ca.text).toBe(200);
      expect(ca.text.trim()).toBe(pki.caPem.trim());
      const crl = await v.http('GET', 'pki/crl', { token: null });
      expect(crl.status, crl.text).toBe(200);
      expect(openssl('crl', '-inform', 'DER', '-noout', '-in', file(crl.body)).status).toBe(0);
    });

    it('vault plugin reload -plugin=vault-plugin-ts: new processes, same keys and CA', async () => {
      const before = v.plugins().map((p) => p.pid);
      expect(before.length).toBeGreaterThan(0);
      const r: string = await v.vault(['plugin', 'reload', `-plugin=${PLUGIN_NAME}`]);
      expect(r).toMatch(/Success/);
      await v.waitGone(before);
      expect(await decrypt(v, 'transit', 'app', transit.v1)).toBe(transit.plaintext);
      const leaf = await issue(v, 'pki', pki.role, 'b.example.test', 'ttl=1h');
      expect(verify(pki.caPem, leaf.certificate)).toMatch(/: OK/);
      expect(v.plugins().some((p) => before.includes(p.pid))).toBe(false);
    });

    it('a plugin process killed by hand: the next request works and nothing is lost', async () => {
      // Make sure both mounts run a process, then kill every one of them by pid.
      await decrypt(v, 'transit', 'app', transit.v2);
      await v.http('GET', 'pki/ca/pem');
      const killed = v.killPlugins('SIGKILL');
      expect(killed.length).toBeGreaterThanOrEqual(2);
      await v.waitGone(killed);
      expect(await decrypt(v, 'transit', 'app', transit.v1)).toBe(transit.plaintext);
      expect(unb64(await decrypt(v, 'transit', 'app', transit.v2))).toMatch(/^real vault /);
      const ca = await v.http('GET', 'pki/ca/pem');
      expect(ca.text.trim()).toBe(pki.caPem.trim());
      const leaf = await issue(v, 'pki', pki.role, 'c.example.test', 'ttl=1h');
      expect(verify(pki.caPem, leaf.certificate)).toMatch(/: OK/);
    });

    it('the mount max lease TTL caps a PKI issue (secrets tune -max-lease-ttl=1h, ttl=5h)', async () => {
      // A role without max_ttl, so the mount's max lease TTL (from Vault's SystemView) is the cap.
      await write(v, 'pki/roles/capped', 'allowed_domains=example.test', 'allow_subdomains=true');
      await v.vault(['secrets', 'tune', '-max-lease-ttl=1h', 'pki']);
      const tuned = await v.vault(['read', '-format=json', 'sys/mounts/pki/tune']);
      expect(tuned.data.max_lease_ttl).toBe(3600);
      const t0 = Date.now();
      const leaf = await issue(v, 'pki', 'capped', 'd.example.test', 'ttl=5h');
      const life = notAfter(leaf.certificate) - t0;
      expect(life).toBeGreaterThan(3600_000 - 120_000);
      expect(life).toBeLessThanOrEqual(3600_000 + 60_000);
    });
  });
}
