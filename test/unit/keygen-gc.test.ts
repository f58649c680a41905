// Node 20's key generation hands back KeyObjects that share a lock with the generation job's
// own copy of the key; when V8 collects the finished job while that lock is held by an
// export of the same key (e.g. a JWK export allocating its strings), the job's destructor
// waits for the lock on the one JavaScript thread: the process hangs for good (seen as a
// PKI plugin that stopped answering Vault; gdb: ExportJWK → GC → ~KeyGenJob → mutex).
// V8's --gc-interval makes a collection land inside such an export every time, so each
// key-making path is run here in a child process under it, with a deadline. The PKI leaf
// keys hung this way every time before they were generated as DER; the software keys and
// the AutoMTLS identity (generated on the thread pool) could not be made to hang, and are
// kept here as a guard since they follow the same rule: no KeyObjects from the generator.
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function runUnderGcPressure(code: string): Promise<{ code: number | null; out: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--gc-interval=20', '--import', 'tsx', '-e', code],
      { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        resolve({ code: child.exitCode, out: stdout + stderr, timedOut: Boolean(err && (err as NodeJS.ErrnoException & { killed?: boolean }).killed) });
      },
    );
  });
}

describe('key generation cannot deadlock the event loop under GC (Node 20 KeyGenJob lock)', () => {
  it('PKI leaf keys (EC P-256 on the loop, P-384 on the pool, Ed25519) and their SPKI/PEM output', async () => {
    const r = await runUnderGcPressure(`
      const { generateLeafKey } = require('./src/secrets/pki/keys.ts');
      const { formatIssued } = require('./src/secrets/pki/issue-options.ts');
      (async () => {
        for (const [t, b, n] of [['ec', 256, 3000], ['ed25519', 0, 3000], ['ec', 384, 300]]) {
          for (let i = 0; i < n; i++) {
            const g = await generateLeafKey(t, b, 'der');
            if (!g.spki.length || !g.privateKeyDer.length) throw new Error('empty key');
          }
        }
        console.log('ok');
      })().catch((e) => { console.error(e); process.exit(1); });`);
    expect(r.timedOut, r.out).toBe(false);
    expect(r.out.trim()).toBe('ok');
  }, 90_000);

  it('software managed keys (prehashed ECDSA) and the AutoMTLS identity', async () => {
    const r = await runUnderGcPressure(`
      const { SoftwareKey } = require('./src/keys/software.ts');
      const { generateIdentity } = require('./src/goplugin/autotls.ts');
      (async () => {
        const digest = require('node:crypto').createHash('sha256').update('m').digest();
        for (let i = 0; i < 300; i++) {
          const k = await SoftwareKey.create('k', 'ecdsa-p256', ['sign']);
          // A prehashed ECDSA signature reads the private scalar through a JWK export.
          await k.sign(digest, { hash: 'sha256', prehashed: true });
          k.exportPrivate();
          if (i % 30 === 0) await generateIdentity();
        }
        console.log('ok');
      })().catch((e) => { console.error(e); process.exit(1); });`);
    expect(r.timedOut, r.out).toBe(false);
    expect(r.out.trim()).toBe('ok');
  }, 90_000);
});
