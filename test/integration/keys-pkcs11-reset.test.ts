// A PKCS#11 token removed and re-initialised under an open key (own file: it
// re-initialises the module, which is process-wide).
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pkcs11Key } from '../../src/keys/pkcs11';
import { parseKeyConfig } from '../../src/keys/config';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-hsm-reset-'));
const out = execFileSync('bash', [path.resolve(__dirname, '../../scripts/softhsm-setup.sh'), dir, 'resettable', '1111', '9753'], { encoding: 'utf8' });
process.env.SOFTHSM2_CONF = /SOFTHSM2_CONF=(.*)/.exec(out)![1];
process.env.VAULT_PLUGIN_PKCS11_LIBRARIES = /VAULT_PLUGIN_PKCS11_LIBRARIES=(.*)/.exec(out)![1]; // the operator allows this module
const library = /library=(.*)/.exec(out)![1];
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const open = (name: string, extra: Record<string, unknown> = {}) => {
  const p = parseKeyConfig('pkcs11', name, { library, token_label: 'resettable', pin: '9753', key_label: 'signer', ...extra });
  return Pkcs11Key.open(name, p.fields, p.common);
};
const softhsm = (...args: string[]) => execFileSync('softhsm2-util', args, { env: process.env, stdio: 'pipe' });

describe('PKCS#11 token removed and re-initialised', () => {
  it('gives a clear error while the token is gone and recovers (re-initialise, re-login, find the key) when it is back', async () => {
    const creator = await open('creator', { allow_generate_key: true });
    await creator.close();
    const k = await open('k');
    const msg = Buffer.from('before');
    expect(await k.verify(msg, await k.sign(msg, { hash: 'sha256' }), { hash: 'sha256' })).toBe(true);

    softhsm('--delete-token', '--token', 'resettable');
    const err = await k.sign(Buffer.from('during'), { hash: 'sha256' }).catch((e) => e);
    expect(err.message).toMatch(/pkcs11 key "k": no token labelled "resettable"/);
    expect(err.message).not.toContain('9753');

    softhsm('--init-token', '--free', '--label', 'resettable', '--so-pin', '1111', '--pin', '9753');
    const restored = await open('restore', { allow_generate_key: true }); // the operator restores the key
    const sig = await k.sign(Buffer.from('after'), { hash: 'sha256' });
    expect(await restored.verify(Buffer.from('after'), sig, { hash: 'sha256' })).toBe(true);
    await restored.close();
    await k.close();
  });
});
