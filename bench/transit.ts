// bench/transit: transit encrypt (aes256-gcm96) and sign (ecdsa-p256) operations per
// second through the plugin's real gRPC path — the built executable, mTLS, Storage served
// back over the broker as Vault does — single requests and batch_input of 100, side by
// side with the same operations in raw Node crypto (the ceiling). Run: npx tsx bench/transit.ts
import * as path from 'node:path';
import { createCipheriv, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { launchPlugin, call, mountBackend } from '../test/support/host';
import { MemoryStorage } from '../src/storage/storage';

const MS = Number(process.env.BENCH_MS ?? 3000);
const INFLIGHT = 8;

async function rate(opsPerCall: number, op: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 10; i++) await op();
  let n = 0;
  const end = Date.now() + MS;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (Date.now() < end) {
        await op();
        n += opsPerCall;
      }
    }),
  );
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const plugin = await launchPlugin(path.resolve(__dirname, '..', 'dist', 'vault-plugin-ts'), 'backend');
  const m = await mountBackend(plugin, new MemoryStorage());
  const req = async (op: string, p: string, data: object) => {
    const r = await call<{ response?: { data?: string }; err?: { err_msg: string } }>(
      m.backend,
      'HandleRequest',
      { request: { operation: op, path: p, data: JSON.stringify(data) } },
      m.md,
    );
    if (r.err?.err_msg) throw new Error(r.err.err_msg);
    const d = JSON.parse(r.response?.data || '{}');
    if (d.error) throw new Error(d.error);
    return d;
  };
  await req('create', 'keys/enc', { type: 'aes256-gcm96' });
  await req('create', 'keys/sig', { type: 'ecdsa-p256' });
  const plaintext = randomBytes(64).toString('base64');
  const batch = Array.from({ length: 100 }, () => ({ plaintext }));
  const sbatch = Array.from({ length: 100 }, () => ({ input: plaintext }));

  const aes = randomBytes(32);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const msg = Buffer.from(plaintext, 'base64');
  const rawEnc = await rate(1, () => {
    const c = createCipheriv('aes-256-gcm', aes, randomBytes(12));
    return Buffer.concat([c.update(msg), c.final(), c.getAuthTag()]);
  });
  const rawSign = await rate(1, () => sign('sha256', msg, ec));
  const encOne = await rate(1, () => req('update', 'encrypt/enc', { plaintext }));
  const encBatch = await rate(100, () => req('update', 'encrypt/enc', { batch_input: batch }));
  const signOne = await rate(1, () => req('update', 'sign/sig', { input: plaintext }));
  const signBatch = await rate(100, () => req('update', 'sign/sig', { batch_input: sbatch }));

  console.log(`# bench/transit ${new Date().toISOString().slice(0, 10)}: ${MS / 1000}s per cell, ${INFLIGHT} requests in flight, 64-byte inputs`);
  console.log('| operation | raw Node ops/s | plugin, single ops/s | single/raw | plugin, batch of 100 ops/s | batch/raw |');
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(
    `| encrypt aes256-gcm96 | ${rawEnc.toFixed(0)} | ${encOne.toFixed(0)} | ${(encOne / rawEnc).toFixed(3)} | ${encBatch.toFixed(0)} | ${(encBatch / rawEnc).toFixed(3)} |`,
  );
  console.log(
    `| sign ecdsa-p256 | ${rawSign.toFixed(0)} | ${signOne.toFixed(0)} | ${(signOne / rawSign).toFixed(3)} | ${signBatch.toFixed(0)} | ${(signBatch / rawSign).toFixed(3)} |`,
  );
  m.close();
  await plugin.kill();
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
