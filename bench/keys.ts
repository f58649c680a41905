// bench/keys: ECDSA P-256 sign and AES-256-GCM encrypt operations per second through
// each managed-key backend, side by side with raw Node crypto on the same machine (the
// ceiling). Cloud backends run against the local emulators in test/emulators (real SDKs,
// real HTTP/gRPC, TLS where the service uses it), so their numbers measure the SDK and
// protocol cost on loopback, not a cloud round trip. Run: npx tsx bench/keys.ts
import { createCipheriv, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openFromConfig, type ManagedKey } from '../src/keys';
import { startAwsKms } from '../test/emulators/awskms';
import { startGcpKms } from '../test/emulators/gcpkms';
import { startAzureKv } from '../test/emulators/azurekv';
import { makeServerCerts } from '../test/support/certs';

const MS = Number(process.env.BENCH_MS ?? 2000);
const INFLIGHT = 8;

async function rate(op: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 20; i++) await op(); // warm-up
  let n = 0;
  const end = Date.now() + MS;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (Date.now() < end) {
        await op();
        n++;
      }
    }),
  );
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const msg = randomBytes(64);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const aesKey = randomBytes(32);
  const rawSign = await rate(() => sign('sha256', msg, ec));
  const rawEnc = await rate(() => {
    const c = createCipheriv('aes-256-gcm', aesKey, randomBytes(12));
    return Buffer.concat([c.update(msg), c.final(), c.getAuthTag()]);
  });

  const pki = makeServerCerts({ dns: ['localhost'], ips: [] });
  const tls = { certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem };
  const [aws, gcp, az] = await Promise.all([startAwsKms(), startGcpKms(tls), startAzureKv(tls)]);
  const hsmDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-bench-hsm-'));
  const out = execFileSync('bash', [path.resolve(__dirname, '../scripts/softhsm-setup.sh'), hsmDir, 'bench', '1111', '2222'], { encoding: 'utf8' });
  process.env.SOFTHSM2_CONF = /SOFTHSM2_CONF=(.*)/.exec(out)![1];
  const library = /library=(.*)/.exec(out)![1];
  process.env.VAULT_PLUGIN_PKCS11_LIBRARIES = library; // the operator allows this module
  gcp.createKey('ec', 'EC_SIGN_P256_SHA256');
  gcp.createKey('sym', 'GOOGLE_SYMMETRIC_ENCRYPTION');
  az.createKey('ec', 'EC-HSM', { crv: 'P-256' });
  az.createKey('sym', 'oct-HSM');
  const awsBase = { access_key: aws.accessKeyId, secret_key: aws.secretAccessKey, endpoint: aws.url };
  const gcpBase = {
    credentials: gcp.credentialsJson,
    project: gcp.project,
    region: gcp.location,
    key_ring: gcp.keyRing,
    endpoint: gcp.endpoint,
    endpoint_ca: gcp.caPem,
  };
  const azBase = {
    tenant_id: az.tenantId,
    client_id: az.clientId,
    client_secret: az.clientSecret,
    vault_name: 'v',
    vault_url: az.vaultUrl,
    authority_host: az.base,
    endpoint_ca: az.caPem,
  };
  const hsmBase = { library, token_label: 'bench', pin: '2222', allow_generate_key: true, max_parallel: 4 };
  const backends: Array<[string, () => Promise<ManagedKey>, () => Promise<ManagedKey>]> = [
    ['software', () => openFromConfig('software', 's', { key_type: 'ecdsa-p256' }), () => openFromConfig('software', 'a', { key_type: 'aes256-gcm' })],
    [
      'pkcs11 (SoftHSM2, max_parallel 4)',
      () => openFromConfig('pkcs11', 'h', { ...hsmBase, key_label: 'ec', curve: 'P256' }),
      () => openFromConfig('pkcs11', 'ha', { ...hsmBase, key_label: 'aes', key_bits: 256 }),
    ],
    [
      'awskms (emulator, HTTP+SigV4)',
      () => openFromConfig('awskms', 'w', { ...awsBase, kms_key: aws.createKey('ECC_NIST_P256').id }),
      () => openFromConfig('awskms', 'wa', { ...awsBase, kms_key: aws.createKey('SYMMETRIC_DEFAULT').id }),
    ],
    [
      'gcpckms (emulator, gRPC+TLS+JWT)',
      () => openFromConfig('gcpckms', 'g', { ...gcpBase, crypto_key: 'ec' }),
      () => openFromConfig('gcpckms', 'ga', { ...gcpBase, crypto_key: 'sym' }),
    ],
    [
      'azurekeyvault (emulator, HTTPS+AD)',
      () => openFromConfig('azurekeyvault', 'z', { ...azBase, key_name: 'ec' }),
      () => openFromConfig('azurekeyvault', 'za', { ...azBase, key_name: 'sym' }),
    ],
  ];
  console.log(`# bench/keys ${new Date().toISOString().slice(0, 10)}: ${MS / 1000}s per cell, ${INFLIGHT} operations in flight, 64-byte messages`);
  console.log('| backend | ECDSA P-256 sign/s | vs raw Node | AES-256-GCM encrypt/s | vs raw Node |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(`| raw Node crypto (ceiling) | ${rawSign.toFixed(0)} | 1.00 | ${rawEnc.toFixed(0)} | 1.00 |`);
  for (const [label, openSign, openEnc] of backends) {
    const s = await openSign();
    const e = await openEnc();
    const rs = await rate(() => s.sign(msg, { hash: 'sha256' }));
    const re = await rate(() => e.encrypt(msg, { aad: msg.subarray(0, 8) }));
    console.log(`| ${label} | ${rs.toFixed(0)} | ${(rs / rawSign).toFixed(3)} | ${re.toFixed(0)} | ${(re / rawEnc).toFixed(4)} |`);
    await s.close();
    await e.close();
  }
  await Promise.all([aws.close(), gcp.close(), az.close()]);
  fs.rmSync(hsmDir, { recursive: true, force: true });
  process.exit(0);
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
