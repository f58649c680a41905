// Version reporting: Vault 1.12+ asks each plugin for its version over logical.PluginVersion
// (and refuses a `-version=` registration that does not match); operators read it from
// `--version` and from the plugin's first log line.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateIdentity } from '../../src/goplugin/autotls';
import { pem } from '../../src/goplugin/der';
import { createLogger } from '../../src/goplugin/log';
import { clientCtor } from '../support/grpc-clients';
import { serve } from '../../src/goplugin/server';
import type { LaunchEnv, Role } from '../../src/goplugin/env';
import { call, launchPlugin, type LaunchedPlugin } from '../support/host';

const root = path.resolve(__dirname, '..', '..');
const exe = path.join(root, 'dist', 'vault-plugin-ts');
const pkgVersion = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
const log = createLogger({ level: 'error', sink: () => undefined });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('logical.PluginVersion over gRPC (in-process runtime, real mTLS)', () => {
  for (const role of ['database', 'backend'] as Role[]) {
    it(`${role} role answers Version with "v" + package.json version`, async () => {
      const host = await generateIdentity();
      const env: LaunchEnv = {
        role,
        clientVersions: role === 'database' ? [5, 6] : [4, 5],
        minPort: 20000,
        maxPort: 30000,
        clientCertPem: host.certPem,
        metadataMode: false,
      };
      let line = '';
      const plugin = await serve({
        env,
        log,
        versions: { 5: () => undefined },
        writeHandshake: (l) => {
          line = l;
        },
        exit: () => undefined,
        parentPollMs: 60_000,
      });
      cleanups.push(() => plugin.shutdown('test end'));
      const serverPem = pem(Buffer.from(line.split('|')[5], 'base64'), 'CERTIFICATE');
      const Ctor = clientCtor('logical.PluginVersion');
      const c = new Ctor(`127.0.0.1:${plugin.port}`, grpc.credentials.createSsl(Buffer.from(serverPem), Buffer.from(host.keyPem), Buffer.from(host.certPem)), {
        'grpc.ssl_target_name_override': 'localhost',
      });
      cleanups.push(() => grpc.Client.prototype.close.call(c));
      expect(await call(c, 'Version', {})).toEqual({ plugin_version: `v${pkgVersion}` });
    });
  }
});

describe('the built executable', () => {
  it('--version: "v" + package.json version, the commit built, the embedded Node; the same on every run', () => {
    const run = () => execFileSync(exe, ['--version'], { encoding: 'utf8', env: {} });
    const out = run();
    const m = /^vault-plugin-ts (v\S+) \(commit ([0-9a-f]{40})(-dirty)?, node (v\d+\.\d+\.\d+)\)\n$/.exec(out);
    expect(m, out).not.toBeNull();
    expect(m![1]).toBe(`v${pkgVersion}`);
    // A commit of this repository (not necessarily HEAD: dist/ may predate the last commit).
    expect(() => execFileSync('git', ['cat-file', '-e', `${m![2]}^{commit}`], { cwd: root, stdio: 'ignore' })).not.toThrow();
    expect(m![4]).toBe(process.version);
    expect(run()).toBe(out);
  });

  const launched: LaunchedPlugin[] = [];
  afterEach(async () => {
    for (const p of launched.splice(0)) await p.kill();
  });
  for (const role of ['database', 'backend'] as Role[]) {
    it(`${role} role: first log line says version and role at info; Version over gRPC matches --version`, async () => {
      const p = await launchPlugin(exe, role);
      launched.push(p);
      // stderr and stdout are separate pipes: the log line may be read after the handshake.
      for (let i = 0; i < 100 && !p.stderr().includes('\n'); i++) await new Promise((r) => setTimeout(r, 20));
      const first = JSON.parse(p.stderr().split('\n')[0]) as Record<string, unknown>;
      const versionLine = execFileSync(exe, ['--version'], { encoding: 'utf8', env: {} });
      expect(first).toMatchObject({ '@level': 'info', '@message': 'vault-plugin-ts starting', version: `v${pkgVersion}`, role });
      expect(versionLine).toContain(`commit ${first.commit as string},`);
      expect(await call(p.client('logical.PluginVersion'), 'Version', {})).toEqual({ plugin_version: `v${pkgVersion}` });
    });
  }
});
