// PKI through SecretsBackend, every certificate checked by the openssl CLI.
import { pem } from '../../src/goplugin/der';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { dataOrError } from '../support/backend';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-pki-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, body: string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, body);
  return f;
};
const openssl = (...args: string[]) => spawnSync('openssl', args, { encoding: 'utf8' });

const mount = () => dataOrError('pki');
const must = async (m: ReturnType<typeof mount>, op: string, p: string, d?: Record<string, unknown>) => {
  const r = await m(op, p, d);
  if (r.error) throw new Error(`${op} ${p}: ${r.error}`);
  return r.data;
};

describe('PKI', () => {
  let pki: ReturnType<typeof mount>;
  let rootPem = '';
  beforeAll(async () => {
    pki = mount();
    rootPem = (
      await must(pki, 'update', 'root/generate/internal', {
        ttl: '87600h',
        common_name: 'Example Root CA',
        organization: 'Example',
        key_type: 'ec',
        key_bits: 384,
      })
    ).certificate;
    await must(pki, 'update', 'roles/web', { allowed_domains: 'example.com', allow_subdomains: true, max_ttl: '720h', allow_ip_sans: true, key_type: 'ec' });
  });

  it('generates a self-signed root that openssl accepts as a CA', () => {
    const f = write('root.pem', rootPem);
    expect(openssl('verify', '-CAfile', f, f).stdout).toMatch(/OK/);
    const c = new X509Certificate(rootPem);
    expect(c.ca).toBe(true);
    expect(c.subject).toContain('CN=Example Root CA');
    expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });

  it('issues a server/client certificate under a role; the returned key matches; openssl verifies the chain', async () => {
    const r = await must(pki, 'update', 'issue/web', { common_name: 'app.example.com', alt_names: 'api.example.com', ip_sans: '10.0.0.5', ttl: '24h' });
    const leaf = new X509Certificate(r.certificate);
    expect(leaf.checkPrivateKey(createPrivateKey(r.private_key))).toBe(true);
    expect(leaf.subjectAltName).toContain('DNS:app.example.com');
    expect(leaf.subjectAltName).toContain('DNS:api.example.com');
    expect(leaf.subjectAltName).toContain('IP Address:10.0.0.5');
    expect(r.serial_number).toMatch(/^([0-9a-f]{2}:){19}[0-9a-f]{2}$/);
    expect(openssl('verify', '-CAfile', write('r1.pem', rootPem), '-purpose', 'sslserver', write('leaf.pem', r.certificate)).stdout).toMatch(/OK/);
    expect(Math.abs(new Date(leaf.validTo).getTime() - Date.now() - 24 * 3600_000)).toBeLessThan(120_000);
    expect((await must(pki, 'read', `cert/${r.serial_number}`)).certificate).toBe(r.certificate);
    expect((await must(pki, 'list', 'certs/')).keys).toContain(r.serial_number);
  });

  it('the role decides which names, IPs and lifetimes are allowed', async () => {
    expect((await pki('update', 'issue/web', { common_name: 'evil.com' })).error).toMatch(/not allowed by this role/);
    expect((await pki('update', 'issue/web', { common_name: 'example.com' })).error).toMatch(/not allowed/); // bare domain off
    expect((await pki('update', 'issue/web', { common_name: 'a.example.com', alt_names: 'b.other.org' })).error).toMatch(/b.other.org/);
    expect((await pki('update', 'issue/web', { common_name: 'a b.example.com' })).error).toMatch(/control characters or spaces/);
    expect((await pki('update', 'issue/web', { common_name: 'a_b.example.com' })).error).toMatch(/not a valid hostname/);
    // Over the role's max_ttl: cut to it, as current Vault does (its warning: test/integration/secrets-binding.test.ts).
    const capped = await must(pki, 'update', 'issue/web', { common_name: 'a.example.com', ttl: '9999h' });
    expect(Math.abs(new Date(new X509Certificate(capped.certificate).validTo).getTime() - Date.now() - 720 * 3600_000)).toBeLessThan(120_000);
    await must(pki, 'update', 'roles/noip', { allowed_domains: 'example.com', allow_subdomains: true, allow_ip_sans: false });
    expect((await pki('update', 'issue/noip', { common_name: 'a.example.com', ip_sans: '1.2.3.4' })).error).toMatch(/IP SANs are not allowed/);
    expect((await pki('update', 'issue/nope', { common_name: 'a.example.com' })).error).toMatch(/unknown role/);
  });

  it('signs a CSR made by openssl, after checking its signature', async () => {
    const key = write('csr.key', '');
    fs.rmSync(key);
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=csr.example.com',
        '-keyout',
        key,
        '-out',
        path.join(tmp, 'req.csr'),
      ],
      { stdio: 'pipe' },
    );
    const csr = fs.readFileSync(path.join(tmp, 'req.csr'), 'utf8');
    const r = await must(pki, 'update', 'sign/web', { csr });
    expect(new X509Certificate(r.certificate).subject).toContain('CN=csr.example.com');
    expect(openssl('verify', '-CAfile', write('r2.pem', rootPem), write('signed.pem', r.certificate)).stdout).toMatch(/OK/);
    // Flip a byte inside the signature (the DER's last bytes): the CSR still parses, but must not verify.
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] ^= 0xff;
    const bad = pem(der, 'CERTIFICATE REQUEST');
    expect((await pki('update', 'sign/web', { csr: bad })).error).toMatch(/CSR signature does not verify/);
    expect((await pki('update', 'sign/web', { csr: 'garbage' })).error).toMatch(/not a valid PEM certificate request/);
  });

  it('revocation: the CRL (signed by the CA) lists the serial and openssl rejects the certificate', async () => {
    const r = await must(pki, 'update', 'issue/web', { common_name: 'revoked.example.com' });
    const rev = await must(pki, 'update', 'revoke', { serial_number: r.serial_number });
    expect(rev.revocation_time).toBeGreaterThan(0);
    const crlPem = (await must(pki, 'read', 'cert/crl')).certificate;
    const crlFile = write('crl.pem', crlPem);
    expect(openssl('crl', '-in', crlFile, '-CAfile', write('r3.pem', rootPem), '-noout').stderr).toMatch(/verify OK/);
    expect(openssl('crl', '-in', crlFile, '-noout', '-text').stdout.toLowerCase()).toContain(r.serial_number.replace(/:/g, ''));
    const v = openssl('verify', '-crl_check', '-CRLfile', crlFile, '-CAfile', write('r4.pem', rootPem), write('rev.pem', r.certificate));
    expect(v.stdout + v.stderr).toMatch(/certificate revoked/);
    const raw = await must(pki, 'read', 'crl');
    expect(raw.http_content_type).toBe('application/pkix-crl');
    expect(Buffer.from(raw.http_raw_body, 'base64')[0]).toBe(0x30);
    expect((await pki('update', 'revoke', { serial_number: 'zz' })).error).toMatch(/hex/);
    // Current Vault (1.12+): revoke takes the certificate itself instead of its serial; one of them, not both.
    const byCert = await must(pki, 'update', 'issue/web', { common_name: 'by-cert.example.com' });
    expect((await must(pki, 'update', 'revoke', { certificate: byCert.certificate })).revocation_time).toBeGreaterThan(0);
    expect((await must(pki, 'read', `cert/${byCert.serial_number}`)).revocation_time).toBeGreaterThan(0);
    expect((await pki('update', 'revoke', {})).error).toBe('The serial number or certificate to revoke must be provided.');
    expect((await pki('update', 'revoke', { serial_number: byCert.serial_number, certificate: byCert.certificate })).error).toMatch(/not both/);
    expect((await pki('update', 'revoke', { certificate: rootPem })).error).toBe("refusing to revoke an issuer's own certificate");
    expect((await must(pki, 'read', `cert/${r.serial_number}`)).revocation_time).toBe(rev.revocation_time);
    // Current Vault's certs/revoked lists it (and no certificate that is not revoked).
    const revoked: string[] = (await must(pki, 'list', 'certs/revoked')).keys;
    expect(revoked).toContain(r.serial_number);
    const live = await must(pki, 'update', 'issue/web', { common_name: 'live.example.com' });
    expect((await must(pki, 'list', 'certs/revoked')).keys).not.toContain(live.serial_number);
  });

  it('cert/<serial>/raw and /raw/pem, cert/ca/raw and /raw/pem: the certificate alone, as current Vault serves it', async () => {
    const r = await must(pki, 'update', 'issue/web', { common_name: 'raw.example.com' });
    const der = await must(pki, 'read', `cert/${r.serial_number}/raw`);
    expect(der.http_content_type).toBe('application/pkix-cert');
    expect(new X509Certificate(Buffer.from(der.http_raw_body, 'base64')).serialNumber.toLowerCase()).toBe(r.serial_number.replace(/:/g, ''));
    const pemOut = await must(pki, 'read', `cert/${r.serial_number.replace(/:/g, '-')}/raw/pem`);
    expect(pemOut.http_content_type).toBe('application/pem-certificate-chain');
    expect(Buffer.from(pemOut.http_raw_body, 'base64').toString()).toBe(r.certificate);
    expect(Buffer.from((await must(pki, 'read', 'cert/ca/raw/pem')).http_raw_body, 'base64').toString()).toBe(rootPem);
    expect(new X509Certificate(Buffer.from((await must(pki, 'read', 'cert/ca/raw')).http_raw_body, 'base64')).toString().trim()).toBe(rootPem.trim());
    const unknown = await pki('read', 'cert/01:02:03/raw'); // no certificate: no response (Vault's 404), not a 400
    expect(unknown.error).toBeUndefined();
    expect(unknown.data?.http_raw_body).toBeUndefined();
  });

  it('intermediate CA across two mounts: generate, sign-intermediate, set-signed, issue; openssl verifies the chain', async () => {
    const inter = mount();
    const { csr } = await must(inter, 'update', 'intermediate/generate/internal', { common_name: 'Example Intermediate' });
    const signed = await must(pki, 'update', 'root/sign-intermediate', { csr, ttl: '8760h' });
    expect((await inter('update', 'intermediate/set-signed', { certificate: rootPem })).error).toMatch(/not for any key of this mount/);
    await must(inter, 'update', 'intermediate/set-signed', { certificate: signed.certificate + rootPem });
    await must(inter, 'update', 'roles/svc', { allowed_domains: 'svc.internal', allow_subdomains: true });
    const leaf = await must(inter, 'update', 'issue/svc', { common_name: 'db.svc.internal' });
    expect(leaf.ca_chain).toHaveLength(2);
    const v = openssl('verify', '-CAfile', write('r5.pem', rootPem), '-untrusted', write('int.pem', signed.certificate), write('leaf2.pem', leaf.certificate));
    expect(v.stdout).toMatch(/OK/);
  });

  it('CockroachDB profile: node certificate (CN=node, all SANs, server+client) and client certificate (CN=<sql user>)', async () => {
    await must(pki, 'update', 'roles/crdb-node', { allow_any_name: true, enforce_hostnames: false, allow_ip_sans: true, server_flag: true, client_flag: true });
    await must(pki, 'update', 'roles/crdb-client', { allow_any_name: true, enforce_hostnames: false, server_flag: false, client_flag: true });
    const node = await must(pki, 'update', 'issue/crdb-node', {
      common_name: 'node',
      alt_names: 'localhost,node1.cluster.internal',
      ip_sans: '127.0.0.1',
      exclude_cn_from_sans: true,
    });
    const ca = write('crdb-ca.pem', rootPem);
    const nodeFile = write('node.crt', node.certificate);
    expect(new X509Certificate(node.certificate).subject).toMatch(/CN=node/);
    expect(new X509Certificate(node.certificate).subjectAltName).toBe('DNS:localhost, DNS:node1.cluster.internal, IP Address:127.0.0.1');
    expect(openssl('verify', '-CAfile', ca, '-purpose', 'sslserver', nodeFile).stdout).toMatch(/OK/);
    expect(openssl('verify', '-CAfile', ca, '-purpose', 'sslclient', nodeFile).stdout).toMatch(/OK/);
    const client = await must(pki, 'update', 'issue/crdb-client', { common_name: 'maxroach', exclude_cn_from_sans: true });
    const clientFile = write('client.maxroach.crt', client.certificate);
    expect(new X509Certificate(client.certificate).subject).toMatch(/CN=maxroach/);
    expect(openssl('verify', '-CAfile', ca, '-purpose', 'sslclient', clientFile).stdout).toMatch(/OK/);
    const asServer = openssl('verify', '-CAfile', ca, '-purpose', 'sslserver', clientFile);
    expect(asServer.stdout + asServer.stderr).toMatch(/unsuitable certificate purpose/);
  });

  it('exported roots return their key once', async () => {
    const other = mount();
    const r = await must(other, 'update', 'root/generate/exported', { ttl: '87600h', common_name: 'Exported Root', key_type: 'rsa', key_bits: 2048 });
    expect(new X509Certificate(r.certificate).checkPrivateKey(createPrivateKey(r.private_key))).toBe(true);
    expect((await must(other, 'read', 'ca/pem')).http_raw_body).toBe(Buffer.from(r.certificate).toString('base64'));
  });
});

describe('PKI with the root key in an HSM (SoftHSM2 managed key)', () => {
  it('issues certificates signed in the HSM; openssl verifies them and the CRL', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-pki-hsm-'));
    const out = execFileSync('bash', [path.resolve(__dirname, '../../scripts/softhsm-setup.sh'), dir, 'pki-root', '1111', '2468'], { encoding: 'utf8' });
    process.env.SOFTHSM2_CONF = /SOFTHSM2_CONF=(.*)/.exec(out)![1];
    process.env.VAULT_PLUGIN_PKCS11_LIBRARIES = /VAULT_PLUGIN_PKCS11_LIBRARIES=(.*)/.exec(out)![1]; // the operator allows this module
    const library = /library=(.*)/.exec(out)![1];
    const m = mount();
    await must(m, 'update', 'managed-keys/pkcs11/root-key', {
      library,
      token_label: 'pki-root',
      pin: '2468',
      key_label: 'root',
      allow_generate_key: true,
      curve: 'P384',
      usages: 'sign,verify',
    });
    const root = await must(m, 'update', 'root/generate/kms', { common_name: 'HSM Root', managed_key_name: 'root-key', ttl: '87600h' });
    expect(root.private_key).toBeUndefined();
    await must(m, 'update', 'roles/r', { allowed_domains: 'hsm.test', allow_subdomains: true });
    const leaf = await must(m, 'update', 'issue/r', { common_name: 'a.hsm.test' });
    const ca = write('hsm-root.pem', root.certificate);
    expect(openssl('verify', '-CAfile', ca, write('hsm-leaf.pem', leaf.certificate)).stdout).toMatch(/OK/);
    await must(m, 'update', 'revoke', { serial_number: leaf.serial_number });
    expect(openssl('crl', '-in', write('hsm-crl.pem', (await must(m, 'read', 'cert/crl')).certificate), '-CAfile', ca, '-noout').stderr).toMatch(/verify OK/);
    // root/sign-self-issued with the key in the HSM (its key type known without exporting the key).
    const otherKey = write('other.key', execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout'], { encoding: 'utf8' }));
    const other = execFileSync(
      'openssl',
      ['req', '-x509', '-new', '-key', otherKey, '-subj', '/CN=Other Root', '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE'],
      { encoding: 'utf8' },
    );
    const cross = await must(m, 'update', 'root/sign-self-issued', { certificate: other, require_matching_certificate_algorithms: true });
    expect(openssl('verify', '-partial_chain', '-CAfile', ca, write('hsm-cross.pem', cross.certificate)).stdout).toMatch(/OK/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

// --- findings of the adversarial review (PKI part) -----------------------------------------

/** A CSR made by openssl for CN=<cn> with a key of this kind. */
function opensslCsr(kind: string, cn = 'csr.example.com'): string {
  const out = path.join(tmp, `k-${kind.replace(/\W/g, '_')}-${Math.random().toString(36).slice(2)}.csr`);
  let newkey: string[];
  if (kind.startsWith('rsa:') || kind === 'ed25519') newkey = ['-newkey', kind];
  else if (kind === 'dsa') {
    const params = path.join(tmp, 'dsa-params.pem');
    if (!fs.existsSync(params)) execFileSync('openssl', ['dsaparam', '-out', params, '1024'], { stdio: 'pipe' });
    newkey = ['-newkey', `dsa:${params}`];
  } else newkey = ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${kind}`];
  execFileSync('openssl', ['req', '-new', ...newkey, '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${out}.key`, '-out', out], { stdio: 'pipe' });
  return fs.readFileSync(out, 'utf8');
}

describe("PKI: CSR keys must fit the role (Vault's key_type / key_bits rules)", () => {
  let pki: ReturnType<typeof mount>;
  let rootPem = '';
  beforeAll(async () => {
    pki = mount();
    rootPem = (await must(pki, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Key Rules Root' })).certificate;
    const common = { allowed_domains: 'example.com', allow_subdomains: true };
    await must(pki, 'update', 'roles/rsa', { ...common, key_type: 'rsa' });
    await must(pki, 'update', 'roles/rsa3072', { ...common, key_type: 'rsa', key_bits: 3072 });
    await must(pki, 'update', 'roles/ec', { ...common, key_type: 'ec' });
    await must(pki, 'update', 'roles/ed', { ...common, key_type: 'ed25519' });
    await must(pki, 'update', 'roles/any', { ...common, key_type: 'any' });
  }, 120_000);
  const sign = (role: string, kind: string) => pki('update', `sign/${role}`, { csr: opensslCsr(kind) });
  const keyUsage = (pemCert: string) =>
    /X509v3 Key Usage: critical\n\s*(.*)/.exec(openssl('x509', '-noout', '-text', '-in', write(`ku-${Math.random()}.pem`, pemCert)).stdout)?.[1];

  it('RSA below 2048 bits is refused under every role', async () => {
    expect((await sign('rsa', 'rsa:512')).error).toMatch(/2048-bit/);
    expect((await sign('any', 'rsa:1024')).error).toMatch(/2048/);
    expect((await sign('rsa3072', 'rsa:2048')).error).toMatch(/role requires a minimum of a 3072-bit key, but CSR's key is 2048 bits/);
    const ok = await sign('rsa', 'rsa:2048');
    expect(ok.error).toBeUndefined();
    // The role's key_usage (Vault's default DigitalSignature, KeyAgreement, KeyEncipherment).
    expect(keyUsage(ok.data.certificate)).toBe('Digital Signature, Key Encipherment, Key Agreement');
  });
  it("the key type must be the role's (ec, rsa, ed25519), unless the role says any", async () => {
    expect((await sign('rsa', 'prime256v1')).error).toMatch(/role requires keys of type rsa/);
    expect((await sign('ec', 'ed25519')).error).toMatch(/role requires keys of type ec/);
    expect((await sign('ed', 'rsa:2048')).error).toMatch(/role requires keys of type ed25519/);
    expect((await sign('ec', 'secp224r1')).error).toMatch(/role requires a minimum of a 256-bit key, but CSR's key is 224 bits/);
    for (const [role, kind] of [
      ['ec', 'secp384r1'],
      ['any', 'secp224r1'],
      ['any', 'prime256v1'],
      ['any', 'rsa:2048'],
    ]) {
      const r = await sign(role, kind);
      expect(r.error, `${role} ${kind}`).toBeUndefined();
      expect(openssl('verify', '-CAfile', write('kr.pem', rootPem), write(`kr-${kind}.pem`, r.data.certificate)).stdout).toMatch(/OK/);
    }
  });
  it('Ed25519 leaves get a digitalSignature-only key usage (never keyEncipherment)', async () => {
    for (const role of ['ed', 'any']) {
      const r = await sign(role, 'ed25519');
      expect(r.error).toBeUndefined();
      expect(new X509Certificate(r.data.certificate).publicKey.asymmetricKeyType).toBe('ed25519');
      expect(keyUsage(r.data.certificate)).toBe('Digital Signature');
      expect(openssl('verify', '-CAfile', write('ed-root.pem', rootPem), write('ed-leaf.pem', r.data.certificate)).stdout).toMatch(/OK/);
    }
  });
  it('unsupported keys (secp256k1, P-192, DSA) are a 400 with a message, not a 500', async () => {
    for (const kind of ['secp256k1', 'prime192v1', 'dsa']) {
      const r = await sign('any', kind);
      expect(r.error, kind).toMatch(/^(?!\d+: internal).*(unsupported|not supported)/i);
    }
  });
  it('roles: key_type and key_bits are validated when written; issue refuses key_type any', async () => {
    expect((await pki('update', 'roles/bad', { key_type: 'dsa' })).error).toMatch(/key_type: must be one of/);
    expect((await pki('update', 'roles/bad', { key_type: 'ec', key_bits: 300 })).error).toMatch(/key_bits/);
    expect((await pki('update', 'roles/bad', { key_type: 'rsa', key_bits: 1024 })).error).toMatch(/key_bits/);
    expect((await must(pki, 'read', 'roles/ec')).key_bits).toBe(256);
    expect((await must(pki, 'read', 'roles/rsa')).key_bits).toBe(2048);
    expect((await pki('update', 'issue/any', { common_name: 'a.example.com' })).error).toMatch(/key_type "any" .*only for signing/);
  });
  it('issue under ed25519 and P-224 roles', async () => {
    const ed = await must(pki, 'update', 'issue/ed', { common_name: 'ed.example.com' });
    expect(ed.private_key_type).toBe('ed25519');
    expect(new X509Certificate(ed.certificate).checkPrivateKey(createPrivateKey(ed.private_key))).toBe(true);
    await must(pki, 'update', 'roles/ec224', { allowed_domains: 'example.com', allow_subdomains: true, key_type: 'ec', key_bits: 224 });
    const p224 = await must(pki, 'update', 'issue/ec224', { common_name: 'p224.example.com' });
    expect(new X509Certificate(p224.certificate).publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp224r1');
    expect(openssl('verify', '-CAfile', write('p224-root.pem', rootPem), write('p224.pem', p224.certificate)).stdout).toMatch(/OK/);
  });
  it('issued EC and Ed25519 keys: SEC 1 by default (PEM and DER), PKCS#8 when asked; Ed25519 always PKCS#8', async () => {
    const ec = await must(pki, 'update', 'issue/ec', { common_name: 'k.example.com' });
    expect(ec.private_key_type).toBe('ec');
    expect(ec.private_key).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    expect(new X509Certificate(ec.certificate).checkPrivateKey(createPrivateKey(ec.private_key))).toBe(true);
    const ecDer = await must(pki, 'update', 'issue/ec', { common_name: 'k.example.com', format: 'der' });
    const leaf = new X509Certificate(Buffer.from(ecDer.certificate, 'base64'));
    expect(leaf.checkPrivateKey(createPrivateKey({ key: Buffer.from(ecDer.private_key, 'base64'), format: 'der', type: 'sec1' }))).toBe(true);
    const ec8 = await must(pki, 'update', 'issue/ec', { common_name: 'k.example.com', private_key_format: 'pkcs8', format: 'pem_bundle' });
    expect(ec8.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(ec8.certificate.startsWith(ec8.private_key.trim())).toBe(true);
    const ed = await must(pki, 'update', 'issue/ed', { common_name: 'k.example.com', private_key_format: 'der' });
    expect(ed.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });
});

describe('PKI: durations are finite and bounded; certificates never outlive their CA', () => {
  it('ttl 1e308, Infinity, -1, huge strings are 400s; a long valid ttl meets the CA check', async () => {
    const pki = mount();
    for (const ttl of [1e308, -1, '1e400s', `${'9'.repeat(400)}s`, 'Infinity']) {
      expect((await pki('update', 'root/generate/internal', { common_name: 'R', ttl })).error, String(ttl)).toMatch(/^ttl: /);
    }
    await must(pki, 'update', 'root/generate/internal', { common_name: 'Duration Root', ttl: '87600h' });
    await must(pki, 'update', 'roles/r', { allowed_domains: 'example.com', allow_subdomains: true });
    for (const ttl of [1e308, -1, `${'9'.repeat(40)}`, '2562048h']) {
      expect((await pki('update', 'issue/r', { common_name: 'a.example.com', ttl })).error, String(ttl)).toMatch(/^ttl: /);
    }
    expect((await pki('update', 'issue/r', { common_name: 'a.example.com', ttl: '2562047h' })).error).toMatch(/would end after the issuing CA/);
    expect((await pki('update', 'roles/r2', { ttl: 1e308 })).error).toMatch(/^ttl: /);
    expect((await pki('update', 'roles/r2', { max_ttl: '1e400s' })).error).toMatch(/^max_ttl: /);
  });
});

describe("PKI: names (Vault's allowed_domains / subdomain / glob / wildcard / localhost rules)", () => {
  let pki: ReturnType<typeof mount>;
  beforeAll(async () => {
    pki = mount();
    await must(pki, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Names Root' });
    await must(pki, 'update', 'roles/loose', { allowed_domains: 'example.com', allow_subdomains: true, enforce_hostnames: false });
    await must(pki, 'update', 'roles/strict', { allowed_domains: 'example.com', allow_subdomains: true });
    await must(pki, 'update', 'roles/nowild', { allowed_domains: 'example.com', allow_subdomains: true, allow_wildcard_certificates: false });
    await must(pki, 'update', 'roles/anyname', { allow_any_name: true, enforce_hostnames: false, allow_wildcard_certificates: false });
    await must(pki, 'update', 'roles/glob', { allowed_domains: 'svc-*.example.com', allow_glob_domains: true, allow_localhost: false });
    await must(pki, 'update', 'roles/noglob', { allowed_domains: 'svc-*.example.com', allow_localhost: false });
    await must(pki, 'update', 'roles/bare', { allowed_domains: 'example.com', allow_bare_domains: true });
  }, 60_000);
  const issue = (role: string, cn: string, alt?: string) => pki('update', `issue/${role}`, { common_name: cn, ...(alt ? { alt_names: alt } : {}) });

  it('with enforce_hostnames=false, NUL, "/" and spaces do not pass the suffix check', async () => {
    for (const n of ['evil.com\0.example.com', 'evil.com/.example.com', 'evil.com .example.com', 'evil.com\t.example.com']) {
      expect((await issue('loose', n)).error, JSON.stringify(n)).toMatch(/not allowed|control characters or spaces/);
      expect((await issue('loose', 'ok.example.com', n)).error, JSON.stringify(n)).toMatch(/not allowed|control characters or spaces/);
    }
    expect((await issue('loose', 'under_score.example.com')).error).toBeUndefined(); // not a hostname, but a DNS name under the domain
    expect((await issue('strict', 'under_score.example.com')).error).toMatch(/not a valid hostname/);
  });
  it('control characters are refused even with allow_any_name; spaces only in a free-text CN (allow_any_name, enforce_hostnames=false)', async () => {
    for (const n of ['max\nroach', 'max\u0000', '\u007f', 'max\u2028roach', 'max\u200broach'])
      expect((await issue('anyname', n)).error, JSON.stringify(n)).toMatch(/control characters or spaces/);
    expect((await issue('anyname', 'maxroach')).error).toBeUndefined();
    // As Vault: a client certificate's CN may be a person's name; it is not copied into the DNS SANs.
    for (const cn of ['Jane Doe', 'Ünïcødé Name']) {
      const r = await must(pki, 'update', 'issue/anyname', { common_name: cn });
      const cert = new X509Certificate(r.certificate);
      expect(cert.subject).toBe(`CN=${cn}`);
      expect(cert.subjectAltName).toBeUndefined();
    }
    // Never in a SAN, and never under a role that checks hostnames or domains.
    expect((await issue('anyname', 'ok', 'max roach')).error).toMatch(/control characters or spaces/);
    expect((await issue('strict', 'max roach.example.com')).error).toMatch(/control characters or spaces/);
    expect((await issue('loose', 'max roach.example.com')).error).toMatch(/control characters or spaces/);
  });
  it('internationalised names are checked and issued in their ASCII (xn--) form, as Vault converts them', async () => {
    const r = await must(pki, 'update', 'issue/strict', { common_name: 'bücher.example.com', alt_names: 'straße.example.com' });
    const cert = new X509Certificate(r.certificate);
    expect(cert.subject).toBe('CN=bücher.example.com');
    expect(cert.subjectAltName).toBe('DNS:xn--bcher-kva.example.com, DNS:xn--strae-oqa.example.com');
    expect((await issue('strict', 'bücher.example.org')).error).toMatch(/not allowed/);
    expect((await issue('strict', 'b\u00fccher..example.com')).error).toMatch(/not a valid hostname|not allowed/);
  });
  it('wildcards: allowed by allow_wildcard_certificates (default true), well-formed, leftmost label only', async () => {
    expect((await issue('strict', '*.example.com')).error).toBeUndefined();
    expect((await issue('strict', '*.a.example.com')).error).toBeUndefined();
    for (const n of ['*.*.example.com', 'a.*.example.com', '**.example.com', '*'])
      expect((await issue('strict', n)).error, n).toMatch(/not allowed|not a valid hostname/);
    expect((await issue('nowild', '*.example.com')).error).toMatch(/not allowed/);
    expect((await issue('anyname', '*.example.com')).error).toMatch(/not allowed/);
    expect((await issue('bare', '*.example.com')).error).toMatch(/not allowed/);
  });
  it('glob patterns in allowed_domains only with allow_glob_domains', async () => {
    expect((await issue('glob', 'svc-db.example.com')).error).toBeUndefined();
    expect((await issue('glob', 'svc-a.evil.com.example.com')).error).toBeUndefined(); // "*" spans labels, as Vault's glob does
    expect((await issue('glob', 'db.example.com')).error).toMatch(/not allowed/);
    expect((await issue('noglob', 'svc-db.example.com')).error).toMatch(/not allowed/);
  });
  it('bare domains and localhost', async () => {
    expect((await issue('bare', 'example.com')).error).toBeUndefined();
    expect((await issue('bare', 'a.example.com')).error).toMatch(/not allowed/);
    expect((await issue('strict', 'localhost')).error).toBeUndefined();
    expect((await issue('glob', 'localhost')).error).toMatch(/not allowed/);
  });
});

describe("PKI: drop-in compatibility with Vault's PKI API", () => {
  let pki: ReturnType<typeof mount>;
  let rootPem = '';
  const text = (pemCert: string) => openssl('x509', '-noout', '-text', '-in', write(`c-${Math.random()}.pem`, pemCert)).stdout;
  // cert-manager's CSR: an empty subject, the names only in the SAN extension.
  const cmCsr = (sans: string) => {
    const key = write(`cm-${Math.random()}.key`, '');
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    return execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/', '-addext', `subjectAltName=${sans}`], { encoding: 'utf8' });
  };
  beforeAll(async () => {
    pki = mount();
    const before = await pki('read', 'ca/pem');
    expect(before.data).toMatchObject({ http_status_code: 204, http_content_type: 'application/pkix-cert' });
    rootPem = (await must(pki, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Compat Root' })).certificate;
    await must(pki, 'update', 'roles/cm', { allowed_domains: 'example.com', allow_subdomains: true, max_ttl: '72h', require_cn: false, key_type: 'any' });
    await must(pki, 'update', 'roles/strict', { allowed_domains: 'example.com', allow_subdomains: true, max_ttl: '72h', key_type: 'any' });
  }, 60_000);

  it("cert-manager: a CSR without CN, SANs only, ttl over max_ttl, exclude_cn_from_sans: signed with the CSR's SANs, cut to max_ttl", async () => {
    const r = await pki('update', 'sign/cm', { csr: cmCsr('DNS:svc.example.com,DNS:svc2.example.com'), ttl: '2160h0m0s', exclude_cn_from_sans: true });
    expect(r.error).toBeUndefined();
    const c = new X509Certificate(r.data.certificate);
    expect(c.subjectAltName).toBe('DNS:svc.example.com, DNS:svc2.example.com');
    expect(c.subject ?? '').toBe('');
    const hours = (Date.parse(c.validTo) - Date.now()) / 3600_000;
    expect(hours).toBeGreaterThan(71.9);
    expect(hours).toBeLessThanOrEqual(72);
    expect(text(r.data.certificate)).toMatch(/X509v3 Subject Alternative Name: critical/);
    expect(openssl('verify', '-CAfile', write('cm-root.pem', rootPem), write('cm.pem', r.data.certificate)).stdout).toMatch(/OK/);
    // The CSR's SANs are checked against the role like any other name.
    expect((await pki('update', 'sign/cm', { csr: cmCsr('DNS:svc.evil.org') })).error).toMatch(/not allowed by this role/);
  });
  it("require_cn (default true) refuses a CN-less request with Vault's message; use_csr_sans=false takes alt_names instead", async () => {
    expect((await pki('update', 'sign/strict', { csr: cmCsr('DNS:svc.example.com') })).error).toMatch(
      /the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false/,
    );
    await must(pki, 'update', 'roles/nocsrsans', {
      allowed_domains: 'example.com',
      allow_subdomains: true,
      key_type: 'any',
      require_cn: false,
      use_csr_sans: false,
    });
    const r = await must(pki, 'update', 'sign/nocsrsans', { csr: cmCsr('DNS:svc.example.com'), alt_names: 'other.example.com' });
    expect(new X509Certificate(r.certificate).subjectAltName).toBe('DNS:other.example.com');
  });
  it("roles read back with Vault's fields and defaults (key_type rsa, 2048 bits, key usages, CSR handling)", async () => {
    await must(pki, 'update', 'roles/plain', { allowed_domains: 'example.com', allow_subdomains: true });
    const r = await must(pki, 'read', 'roles/plain');
    expect(r).toMatchObject({
      key_type: 'rsa',
      key_bits: 2048,
      key_usage: ['DigitalSignature', 'KeyAgreement', 'KeyEncipherment'],
      ext_key_usage: [],
      ext_key_usage_oids: [],
      use_csr_common_name: true,
      use_csr_sans: true,
      require_cn: true,
      no_store: false,
      generate_lease: false,
      allowed_uri_sans: [],
      code_signing_flag: false,
      email_protection_flag: false,
      basic_constraints_valid_for_non_ca: false,
      not_before_duration: 30,
    });
    expect((await pki('update', 'roles/bad', { key_usage: 'Fly' })).error).toMatch(/key_usage: unknown key usage "Fly"/);
    const leaf = await must(pki, 'update', 'issue/plain', { common_name: 'a.example.com' });
    expect(new X509Certificate(leaf.certificate).publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const t = text(leaf.certificate);
    expect(t).not.toMatch(/Basic Constraints/);
    expect(t).toMatch(/X509v3 Key Usage: critical\n\s*Digital Signature, Key Encipherment, Key Agreement/);
  });
  it('key_usage, ext_key_usage, code_signing_flag and basic_constraints_valid_for_non_ca shape the leaf', async () => {
    await must(pki, 'update', 'roles/shaped', {
      allow_any_name: true,
      key_type: 'ec',
      key_usage: 'DigitalSignature,ContentCommitment',
      ext_key_usage: 'TimeStamping',
      server_flag: false,
      client_flag: false,
      code_signing_flag: true,
      basic_constraints_valid_for_non_ca: true,
      country: 'NL',
    });
    const t = text((await must(pki, 'update', 'issue/shaped', { common_name: 'x' })).certificate);
    expect(t).toMatch(/X509v3 Key Usage: critical\n\s*Digital Signature, Non Repudiation\n/);
    expect(t).toMatch(/X509v3 Extended Key Usage: \n\s*Code Signing, Time Stamping\n/);
    expect(t).toMatch(/CA:FALSE/);
    expect(t).toMatch(/Subject: C\s*=\s*NL, CN\s*=\s*x\n/);
  });
  it('config/urls: read/write; issued certificates carry AIA and CRL distribution points', async () => {
    expect((await pki('update', 'config/urls', { issuing_certificates: 'not a url' })).error).toMatch(/issuing_certificates: invalid URL/);
    await must(pki, 'update', 'config/urls', {
      issuing_certificates: 'http://127.0.0.1:8200/v1/pki/ca',
      crl_distribution_points: 'http://127.0.0.1:8200/v1/pki/crl',
    });
    expect(await must(pki, 'read', 'config/urls')).toEqual({
      issuing_certificates: ['http://127.0.0.1:8200/v1/pki/ca'],
      crl_distribution_points: ['http://127.0.0.1:8200/v1/pki/crl'],
      ocsp_servers: [],
    });
    const t = text((await must(pki, 'update', 'issue/plain', { common_name: 'u.example.com' })).certificate);
    expect(t).toMatch(/CA Issuers - URI:http:\/\/127.0.0.1:8200\/v1\/pki\/ca/);
    expect(t).toMatch(/CRL Distribution Points:[\s\S]*URI:http:\/\/127.0.0.1:8200\/v1\/pki\/crl/);
    await must(pki, 'update', 'config/urls', { issuing_certificates: [], crl_distribution_points: [] });
    // Cleared URLs apply at once (the mount's cache of config/urls is dropped on the write).
    expect(text((await must(pki, 'update', 'issue/plain', { common_name: 'v.example.com' })).certificate)).not.toMatch(
      /Authority Information Access|CRL Distribution/,
    );
  });
  it('issue formats: der, pem_bundle; private_key_format pkcs8, else PKCS#1/SEC 1 as Vault', async () => {
    const pemR = await must(pki, 'update', 'issue/plain', { common_name: 'f.example.com' });
    expect(pemR.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const p8 = await must(pki, 'update', 'issue/plain', { common_name: 'f.example.com', private_key_format: 'pkcs8' });
    expect(p8.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const der = await must(pki, 'update', 'issue/plain', { common_name: 'f.example.com', format: 'der' });
    const c = new X509Certificate(Buffer.from(der.certificate, 'base64'));
    expect(c.checkPrivateKey(createPrivateKey({ key: Buffer.from(der.private_key, 'base64'), format: 'der', type: 'pkcs1' }))).toBe(true);
    expect(new X509Certificate(Buffer.from(der.issuing_ca, 'base64')).subject).toBe('CN=Compat Root');
    const bundle = await must(pki, 'update', 'issue/plain', { common_name: 'f.example.com', format: 'pem_bundle' });
    expect(bundle.certificate.match(/-----BEGIN [A-Z ]+-----/g)).toEqual([
      '-----BEGIN RSA PRIVATE KEY-----',
      '-----BEGIN CERTIFICATE-----',
      '-----BEGIN CERTIFICATE-----',
    ]);
    expect((await pki('update', 'issue/plain', { common_name: 'f.example.com', format: 'xml' })).error).toMatch(/format: must be one of/);
  });
  it("uri_sans: each must match the role's allowed_uri_sans (glob); CSR URI SANs too", async () => {
    await must(pki, 'update', 'roles/spiffe', {
      allowed_domains: 'example.com',
      allow_subdomains: true,
      key_type: 'ec',
      allowed_uri_sans: 'spiffe://example.org/ns/*',
    });
    const r = await must(pki, 'update', 'issue/spiffe', { common_name: 's.example.com', uri_sans: 'spiffe://example.org/ns/a/sa/b' });
    expect(new X509Certificate(r.certificate).subjectAltName).toContain('URI:spiffe://example.org/ns/a/sa/b');
    expect((await pki('update', 'issue/spiffe', { common_name: 's.example.com', uri_sans: 'spiffe://evil.org/x' })).error).toMatch(
      /URI Subject Alternative Name "spiffe:\/\/evil.org\/x" is not allowed by this role/,
    );
    expect((await pki('update', 'issue/plain', { common_name: 's.example.com', uri_sans: 'spiffe://example.org/ns/a' })).error).toMatch(
      /not allowed by this role/,
    );
    await must(pki, 'update', 'roles/spiffe-cm', {
      allowed_domains: 'example.com',
      allow_subdomains: true,
      key_type: 'any',
      require_cn: false,
      allowed_uri_sans: 'spiffe://example.org/*',
    });
    const s = await must(pki, 'update', 'sign/spiffe-cm', { csr: cmCsr('DNS:a.example.com,URI:spiffe://example.org/w') });
    expect(new X509Certificate(s.certificate).subjectAltName).toBe('DNS:a.example.com, URI:spiffe://example.org/w');
  });
  it('no_store: the certificate is issued but not kept (not listed)', async () => {
    await must(pki, 'update', 'roles/nostore', { allowed_domains: 'example.com', allow_subdomains: true, key_type: 'ec', no_store: true });
    const r = await must(pki, 'update', 'issue/nostore', { common_name: 'n.example.com' });
    const keys: string[] = (await must(pki, 'list', 'certs/')).keys;
    expect(keys).not.toContain(r.serial_number);
    expect(keys.length).toBeGreaterThan(0);
  });
  it('the root is CertSign+CRLSign and names itself as its authority (AKI); ca_chain is raw PEM; cert/ca has revocation_time', async () => {
    const t = text(rootPem);
    expect(t).toMatch(/X509v3 Key Usage: critical\n\s*Certificate Sign, CRL Sign\n/);
    expect(t).toMatch(/X509v3 Authority Key Identifier/);
    const chain = await must(pki, 'read', 'ca_chain');
    expect(chain.http_content_type).toBe('application/pem-certificate-chain');
    expect(Buffer.from(chain.http_raw_body, 'base64').toString()).toBe(rootPem);
    expect(await must(pki, 'read', 'cert/ca')).toEqual({ certificate: rootPem, revocation_time: 0 });
  });
  it('crl/rotate, config/crl (expiry sets nextUpdate), tidy (202), sign-verbatim', async () => {
    expect(await must(pki, 'read', 'crl/rotate')).toEqual({ success: true });
    await must(pki, 'update', 'config/crl', { expiry: '48h' });
    expect(await must(pki, 'read', 'config/crl')).toEqual({ expiry: '48h0m0s', disable: false, ocsp_disable: false, ocsp_expiry: '12h' });
    // A field left out keeps its value, as in Vault.
    await must(pki, 'update', 'config/crl', { disable: true });
    expect(await must(pki, 'read', 'config/crl')).toEqual({ expiry: '48h0m0s', disable: true, ocsp_disable: false, ocsp_expiry: '12h' });
    await must(pki, 'update', 'config/crl', { expiry: '47h' });
    expect(await must(pki, 'read', 'config/crl')).toEqual({ expiry: '47h0m0s', disable: true, ocsp_disable: false, ocsp_expiry: '12h' });
    await must(pki, 'update', 'config/crl', { expiry: '48h', disable: false });
    const crl = await must(pki, 'read', 'cert/crl');
    const next = /Next Update: (.*)/.exec(openssl('crl', '-noout', '-text', '-in', write('c.crl', crl.certificate)).stdout)![1];
    expect(Math.round((Date.parse(next) - Date.now()) / 3600_000)).toBe(48);
    const tidy = await must(pki, 'update', 'tidy', { tidy_cert_store: true, safety_buffer: '1s' });
    expect(tidy.http_status_code).toBe(202);
    const v = await must(pki, 'update', 'sign-verbatim', { csr: cmCsr('DNS:anything.test,IP:10.1.2.3') });
    expect(new X509Certificate(v.certificate).subjectAltName).toBe('DNS:anything.test, IP Address:10.1.2.3');
  });
});
