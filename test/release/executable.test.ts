// What each plugin launch costs is partly the executable itself: Vault hashes the whole file
// before every launch and each process maps it. These check the build's savings stay in
// place, and that the CPU pool's setting is checked at start.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensurePluginBuilt, PLUGIN_EXE } from '../support/vault';
import type * as grpc from '@grpc/grpc-js';
import { launchPlugin } from '../support/host';

const dist = path.dirname(PLUGIN_EXE);
ensurePluginBuilt();

/**
 * MiB of V8 new space in `exe` after a burst of short-lived allocations and a moment idle.
 * The burst runs as a --require preload (the executable honours NODE_OPTIONS, as Node's
 * SEA does by default), so it sees the heap the executable starts with.
 */
function youngAfterBurst(exe: string, args: string[]): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-heap-'));
  const script = path.join(dir, 'burst.cjs');
  fs.writeFileSync(
    script,
    `const v8 = require('node:v8');
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20000) keep = []; }
    keep = null;
    // V8 frees a scavenge's spare pages on a background thread: what stays is what an idle plugin keeps.
    setTimeout(() => process.stderr.write('new_space=' + v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576 + '\\n'), 300);`,
  );
  try {
    const r = spawnSync(exe, args, { encoding: 'utf8', env: { NODE_OPTIONS: `--require ${script}` }, timeout: 30_000 });
    const m = /new_space=([\d.]+)/.exec(r.stderr);
    if (!m) throw new Error(`no measurement from ${exe}: ${r.stderr}`);
    return Number(m[1]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the single executable', () => {
  it('main bundle is ASCII, so V8 keeps its 2 MB source at one byte per character', () => {
    const js = fs.readFileSync(path.join(dist, 'main.js'));
    const firstNonAscii = js.findIndex((b) => b > 0x7f);
    expect(firstNonAscii, firstNonAscii >= 0 ? js.subarray(Math.max(0, firstNonAscii - 40), firstNonAscii + 10).toString('latin1') : '').toBe(-1);
  });

  it('carries the cloud SDK bundles brotli-compressed; the wasm every database process loads stays raw', () => {
    const cfg = JSON.parse(fs.readFileSync(path.join(dist, 'sea-config.json'), 'utf8')) as { assets: Record<string, string> };
    const names = Object.keys(cfg.assets);
    expect(names).toContain('libpg-query.wasm');
    expect(names.some((n) => /^keys-awskms\.js\.br$/.test(n))).toBe(true);
    expect(names.filter((n) => n.endsWith('.js'))).toEqual([]);
  });

  it('main bundle holds no @grpc/grpc-js: neither role loads it at start (our own gRPC server and client serve both)', () => {
    const meta = JSON.parse(fs.readFileSync(path.join(dist, 'metafile.json'), 'utf8')) as { metafiles: Record<string, { inputs: Record<string, unknown> }> };
    const inputs = Object.keys(meta.metafiles['main.js'].inputs);
    expect(inputs).toContain('src/goplugin/grpc-server.ts');
    expect(inputs.filter((i) => i.includes('node_modules/@grpc/grpc-js/'))).toEqual([]);
  });

  it("YugabyteDB's smart driver logs through the plugin's log: its own logger (winston: stdout and ./app.log in Vault's working directory) is not in the bundle", () => {
    const meta = JSON.parse(fs.readFileSync(path.join(dist, 'metafile.json'), 'utf8')) as { metafiles: Record<string, { inputs: Record<string, unknown> }> };
    const inputs = Object.keys(meta.metafiles['main.js'].inputs);
    expect(inputs).toContain('node_modules/@yugabytedb/pg/lib/client.js');
    expect(inputs).toContain('src/database/connection/yb-driver-log.ts');
    expect(inputs.filter((i) => i.includes('node_modules/winston/') || i === 'node_modules/@yugabytedb/pg/lib/logger.js')).toEqual([]);
    expect(fs.readFileSync(path.join(dist, 'main.js'), 'utf8')).not.toContain('app.log');
  });

  it("neither role loads Node's HTTP/2 module on the default layer; VAULT_PLUGIN_TS_HTTP2=node does", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-mods-'));
    const script = path.join(dir, 'mods.cjs');
    // After the handshake and a call: which of Node's modules the serving process has loaded.
    fs.writeFileSync(
      script,
      `setTimeout(() => process.stderr.write('http2-loaded=' + process.moduleLoadList.includes('NativeModule http2') + '\\n'), 1500).unref();`,
    );
    try {
      for (const [role, layer, loaded] of [
        ['database', undefined, false],
        ['backend', undefined, false],
        ['backend', 'node', true],
      ] as const) {
        const p = await launchPlugin(PLUGIN_EXE, role, { env: { NODE_OPTIONS: `--require ${script}`, ...(layer ? { VAULT_PLUGIN_TS_HTTP2: layer } : {}) } });
        try {
          const health = p.client<grpc.Client>('grpc.health.v1.Health');
          await new Promise((res, rej) =>
            (health as unknown as { Check: (r: object, cb: (e: Error | null) => void) => void }).Check({ service: 'plugin' }, (e) =>
              e ? rej(e) : res(undefined),
            ),
          );
          for (let i = 0; i < 50 && !p.stderr().includes('http2-loaded='); i++) await new Promise((r) => setTimeout(r, 100));
          expect([role, layer, /http2-loaded=(\w+)/.exec(p.stderr())?.[1]]).toEqual([role, layer, String(loaded)]);
        } finally {
          await p.kill();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps V8's young generation at its initial size through an allocation burst", () => {
    // Without the cap V8 grows new space to 32-64 MiB under a burst and an idle plugin keeps
    // it. A growth factor set at run time (what the plugin did before) did not hold on Node 24
    // (10 MiB seen), so the cap is a start-up flag in the SEA config's execArgv.
    const cfg = JSON.parse(fs.readFileSync(path.join(dist, 'sea-config.json'), 'utf8')) as { execArgv?: string[] };
    expect(cfg.execArgv).toContain('--max-semi-space-size=1');
    expect(youngAfterBurst(process.execPath, ['-e', ''])).toBeGreaterThanOrEqual(16); // the same Node uncapped: it grows
    expect(youngAfterBurst(PLUGIN_EXE, ['--version'])).toBeLessThanOrEqual(4);
  });

  it("has no symbol table (Node's ~12 MiB of symbols are stripped)", () => {
    const sections = execFileSync('readelf', ['-SW', PLUGIN_EXE], { encoding: 'utf8' });
    expect(sections).not.toMatch(/\s\.symtab\s/);
    expect(sections).toMatch(/\s\.dynsym\s/); // what native addons link against stays
  });

  it('refuses a bad VAULT_PLUGIN_TS_WORKERS at start with a clear message, before the handshake', async () => {
    await expect(launchPlugin(PLUGIN_EXE, 'database', { env: { VAULT_PLUGIN_TS_WORKERS: 'lots' } })).rejects.toThrow(
      /exited \(1\) before the handshake[\s\S]*VAULT_PLUGIN_TS_WORKERS must be a whole number from 1 to 256, got "lots"/,
    );
  });
});
