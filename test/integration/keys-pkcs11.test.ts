// PKCS#11 managed keys on a real SoftHSM2 token made by scripts/softhsm-setup.sh.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createPublicKey } from 'node:crypto';
import { Pkcs11Key } from '../../src/keys/pkcs11';
import { exportPublicKey } from '../../src/keys';
import { parseKeyConfig } from '../../src/keys/config';
import { aesContract, ecdsaContract, eventLoopDuring, rsaContract } from '../support/key-contract';

const PIN = '4321-pin-secret';
let library = '';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-hsm-'));
const keys: Pkcs11Key[] = [];

async function open(name: string, extra: Record<string, unknown>): Promise<Pkcs11Key> {
  const p = parseKeyConfig('pkcs11', name, { library, token_label: 'vpt', pin: PIN, ...extra });
  const k = await Pkcs11Key.open(name, p.fields, p.common);
  keys.push(k);
  return k;
}

beforeAll(() => {
  const out = execFileSync('bash', [path.resolve(__dirname, '../../scripts/softhsm-setup.sh'), dir, 'vpt', '8765', PIN], { encoding: 'utf8' });
  process.env.SOFTHSM2_CONF = /SOFTHSM2_CONF=(.*)/.exec(out)![1];
  process.env.VAULT_PLUGIN_PKCS11_LIBRARIES = /VAULT_PLUGIN_PKCS11_LIBRARIES=(.*)/.exec(out)![1]; // the operator allows this module
  library = /library=(.*)/.exec(out)![1];
});
afterAll(async () => {
  for (const k of keys) await k.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('PKCS#11 (SoftHSM2)', () => {
  let ec: Pkcs11Key, ec384: Pkcs11Key, rsa: Pkcs11Key, aes: Pkcs11Key;
  beforeAll(async () => {
    ec = await open('ec', { key_label: 'ec-p256', allow_generate_key: true, curve: 'P256', max_parallel: 4 });
    ec384 = await open('ec384', { key_label: 'ec-p384', allow_generate_key: true, curve: 'P384' });
    rsa = await open('rsa', { key_label: 'rsa-2048', allow_generate_key: true, key_bits: 2048, mechanism: 'CKM_RSA_PKCS_PSS' });
    aes = await open('aes', { key_label: 'aes-256', allow_generate_key: true, key_bits: 256, mechanism: '0x1087' });
  });

  describe('EC P-256', () => ecdsaContract(() => ec));
  describe('EC P-384', () => ecdsaContract(() => ec384));
  // SoftHSM2 implements RSA-OAEP with SHA-1 only.
  describe('RSA 2048', () => rsaContract(() => rsa, { oaepHash: 'sha1' }));
  describe('AES-256-GCM', () => aesContract(() => aes));

  it('describes itself as hardware, with the key type read from the token', () => {
    expect(ec.describe()).toMatchObject({ backend: 'pkcs11', hardware: true, spec: { kind: 'ec', curve: 'P-256' } });
    expect(rsa.describe().spec).toEqual({ kind: 'rsa', bits: 2048 });
    expect(aes.describe().spec).toEqual({ kind: 'aes', bits: 256 });
  });

  it('finds an existing key again by label (a second config, no generation)', async () => {
    const again = await open('ec-again', { key_label: 'ec-p256' });
    expect((await again.publicKey()).export({ format: 'jwk' })).toEqual((await ec.publicKey()).export({ format: 'jwk' }));
  });

  it('finds keys by CKA_ID, and exports the public key as PEM and DER', async () => {
    const byId = await open('by-id', { key_id: '0xC0FFEE01', allow_generate_key: true, curve: 'P384' });
    const again = await open('by-id-2', { key_id: 'c0ffee01' });
    const pem = (await exportPublicKey(again, 'pem')) as string;
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(createPublicKey(pem).asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(((await exportPublicKey(byId, 'der')) as Buffer).equals(createPublicKey(pem).export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('random bytes come from the token', async () => {
    const r = await ec.random(32);
    expect(r.length).toBe(32);
    expect(r.equals(await ec.random(32))).toBe(false);
  });

  it('a missing key without allow_generate_key is a clear error naming key and backend', async () => {
    await expect(open('missing', { key_label: 'no-such-key' })).rejects.toThrow(/pkcs11 key "missing".*no key with label "no-such-key".*allow_generate_key/);
  });

  it('a wrong PIN fails without echoing either PIN', async () => {
    const p = parseKeyConfig('pkcs11', 'badpin', { library, token_label: 'vpt', pin: 'wrong-pin-9999', key_label: 'ec-p256' });
    const err = await Pkcs11Key.open('badpin', p.fields, p.common).catch((e) => e);
    expect(err.message).toMatch(/pkcs11 key "badpin".*(PIN|CKR_PIN_INCORRECT)/i);
    expect(err.message).not.toContain('wrong-pin-9999');
    expect(err.message).not.toContain(PIN);
  });

  it('an unknown token or library is a clear error', async () => {
    await expect(open('t', { token_label: 'nope', key_label: 'x' })).rejects.toThrow(/no token labelled "nope"/);
    const p = parseKeyConfig('pkcs11', 'lib', { library: '/nonexistent/lib.so', token_label: 'vpt', pin: PIN, key_label: 'x' });
    await expect(Pkcs11Key.open('lib', p.fields, p.common)).rejects.toThrow(
      /library "\/nonexistent\/lib.so" is not allowed by the operator setting PLUGIN_PKCS11_LIBRARIES/,
    );
  });

  it('a slot that is not a number is bad input (a 400), not a failure of the token', async () => {
    for (const slot of ['abc', '0xzz', '1.5', '-1']) {
      const err = await open('slot', { slot, key_label: 'ec-p256' }).catch((e: unknown) => e);
      expect(err, slot).toMatchObject({ name: 'KeyError', kind: 'invalid' });
      expect(String(err), slot).toMatch(/slot must be a slot id: decimal or 0x hex/);
    }
    const byId = await open('slot-ok', { slot: '0x0', key_label: 'ec-p256' }).catch((e: unknown) => e);
    expect(byId).not.toMatchObject({ kind: 'invalid' }); // well-formed: found, or not_found (SoftHSM2 numbers its slots itself)
  });

  it('runs up to max_parallel sessions at once, never more', async () => {
    let peak = 0;
    const probe = setInterval(() => {
      peak = Math.max(peak, (ec as unknown as { pool: { open: number } }).pool.open);
    }, 0);
    const sigs = await Promise.all(Array.from({ length: 64 }, (_, i) => ec.sign(Buffer.from(`m${i}`), { hash: 'sha256' })));
    clearInterval(probe);
    expect(sigs).toHaveLength(64);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThan(1);
  });

  it('recovers when the token drops every session (and with it the login)', async () => {
    const p = ec as unknown as { p: { C_CloseAllSessions(s: Buffer): void }; slot: Buffer };
    await ec.sign(Buffer.from('before'), { hash: 'sha256' });
    p.p.C_CloseAllSessions(p.slot);
    const sig = await ec.sign(Buffer.from('after'), { hash: 'sha256' });
    expect(await ec.verify(Buffer.from('after'), sig, { hash: 'sha256' })).toBe(true);
  });

  it("generating keys in the HSM does not stall the event loop (the token works on libuv's thread pool)", async () => {
    const { result, maxStallMs, elapsedMs } = await eventLoopDuring(() =>
      Promise.all([
        open('rsa4096-a', { key_label: 'rsa-4096-a', allow_generate_key: true, key_bits: 4096 }),
        open('rsa4096-b', { key_label: 'rsa-4096-b', allow_generate_key: true, key_bits: 4096 }),
      ]),
    );
    expect(result.map((k) => k.describe().spec)).toEqual([
      { kind: 'rsa', bits: 4096 },
      { kind: 'rsa', bits: 4096 },
    ]);
    expect(elapsedMs).toBeGreaterThan(200);
    expect(maxStallMs).toBeLessThan(elapsedMs / 4);
  }, 120_000);

  it('enforces usages', async () => {
    const v = await open('verify-only', { key_label: 'ec-p256', usages: 'verify' });
    await expect(v.sign(Buffer.from('x'), { hash: 'sha256' })).rejects.toThrow(/not allowed to sign/);
  });
});
