// Closing a PKCS#11 key while calls are in flight (a managed-keys config deleted, rewritten
// or invalidated by Vault during a signature): the module is not finalized and unloaded
// under a call still running on libuv's thread pool, and the sessions those calls hold are
// closed when they come back, not left open on the token.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pkcs11Key } from '../../src/keys/pkcs11';
import { parseKeyConfig } from '../../src/keys/config';

const PIN = '2468-close-pin';
let library = '';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-hsm-close-'));
const keys: Pkcs11Key[] = [];

async function open(name: string, extra: Record<string, unknown>): Promise<Pkcs11Key> {
  const p = parseKeyConfig('pkcs11', name, { library, token_label: 'close', pin: PIN, key_label: 'ec', allow_generate_key: true, curve: 'P256', ...extra });
  const k = await Pkcs11Key.open(name, p.fields, p.common);
  keys.push(k);
  return k;
}

beforeAll(() => {
  const out = execFileSync('bash', [path.resolve(__dirname, '../../scripts/softhsm-setup.sh'), dir, 'close', '1357', PIN], { encoding: 'utf8' });
  process.env.SOFTHSM2_CONF = /SOFTHSM2_CONF=(.*)/.exec(out)![1];
  process.env.VAULT_PLUGIN_PKCS11_LIBRARIES = /VAULT_PLUGIN_PKCS11_LIBRARIES=(.*)/.exec(out)![1];
  library = /library=(.*)/.exec(out)![1];
});
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  for (const k of keys) await k.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The module's PKCS#11 object under a key, with its signatures counted while they run. */
function watch(k: Pkcs11Key) {
  const p = (k as unknown as { mod: { p: Record<string, (...a: unknown[]) => unknown> } }).mod.p;
  const state = { inFlight: 0, sessions: [] as unknown[], finalizedWhileSigning: [] as number[] };
  const sign = p.C_SignAsync.bind(p);
  vi.spyOn(p, 'C_SignAsync').mockImplementation(async (...a: unknown[]) => {
    state.inFlight++;
    state.sessions.push(a[0]);
    try {
      return await sign(...a);
    } finally {
      state.inFlight--;
    }
  });
  const finalize = p.C_Finalize.bind(p);
  vi.spyOn(p, 'C_Finalize').mockImplementation((...a: unknown[]) => {
    state.finalizedWhileSigning.push(state.inFlight);
    return finalize(...a);
  });
  const closeSession = vi.spyOn(p, 'C_CloseSession');
  return { state, closeSession };
}

describe('PKCS#11 key closed with calls in flight', () => {
  it('the last key on a module: the module is finalized only after the signatures in flight return', async () => {
    const k = await open('only', {});
    const { state } = watch(k);
    const signing = Promise.all(Array.from({ length: 4 }, () => k.sign(Buffer.from('m'), { hash: 'sha256' })));
    expect(state.inFlight).toBeGreaterThan(0);
    const closing = k.close();
    const sigs = await signing;
    await closing;
    expect(sigs.every((s) => s.length > 0)).toBe(true);
    expect(state.finalizedWhileSigning).toEqual([0]);
  });

  it('a key sharing its module: the sessions its calls held are closed when they return', async () => {
    const stays = await open('stays', { max_parallel: 2 });
    const goes = await open('goes', { max_parallel: 2 });
    const { state, closeSession } = watch(goes);
    const signing = Promise.all([goes.sign(Buffer.from('a'), { hash: 'sha256' }), goes.sign(Buffer.from('b'), { hash: 'sha256' })]);
    expect(state.inFlight).toBe(2);
    const closing = goes.close();
    await signing;
    await closing;
    const closed = closeSession.mock.calls.map((c) => c[0]);
    for (const s of state.sessions) expect(closed).toContainEqual(s);
    // The other key on the module is untouched.
    expect((await stays.sign(Buffer.from('m'), { hash: 'sha256' })).length).toBeGreaterThan(0);
  });

  it('a call that never returns (a hung HSM) does not hold close() for ever: the module stays loaded under it instead', async () => {
    const k = await open('hung', {});
    const p = (k as unknown as { mod: { p: Record<string, (...a: unknown[]) => unknown> } }).mod.p;
    vi.spyOn(p, 'C_SignAsync').mockImplementation(() => new Promise(() => undefined));
    const finalize = vi.spyOn(p, 'C_Finalize');
    const wait = vi.spyOn(Pkcs11Key, 'closeWaitMs', 'get').mockReturnValue(100);
    void k.sign(Buffer.from('m'), { hash: 'sha256' }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await k.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(wait).toHaveBeenCalled();
    expect(finalize).not.toHaveBeenCalled();
  });
});
