// Property-based fuzzing of the managed-key inputs that reach the file system, the
// dynamic loader or a private key: PKCS#11 module paths, credential values (JSON or a
// path), configs without credentials, and software-key operations on arbitrary input.
// Whatever arrives, the answer is a value or a clear invalid-input KeyError (HTTP 400):
// never a load of a module off the operator's list, a read that blocks, a crash, or an
// error that echoes a credential.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseKeyConfig } from '../../src/keys/config';
import { isKeyError } from '../../src/keys/errors';
import { Pkcs11Key } from '../../src/keys/pkcs11';
import { GcpKmsKey } from '../../src/keys/gcpckms';
import { AwsKmsKey } from '../../src/keys/awskms';
import { SoftwareKey } from '../../src/keys/software';
import { operatorAllows } from '../../src/util/files';
import type { Hash, SignOptions } from '../../src/keys/types';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const SLOW_RUNS = Math.max(20, Math.floor(RUNS / 10)); // each run touches the file system or a worker

const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-fuzz-keys-')));
const allowed = path.join(dir, 'allowed');
const SETTINGS = ['VAULT_PLUGIN_PKCS11_LIBRARIES', 'VAULT_PLUGIN_CREDENTIAL_FILES', 'VAULT_PLUGIN_AMBIENT_CREDENTIALS'];
const saved = SETTINGS.map((k) => process.env[k]);
afterEach(() =>
  SETTINGS.forEach((k, i) => {
    if (saved[i] === undefined) delete process.env[k];
    else process.env[k] = saved[i];
  }),
);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  fs.mkdirSync(allowed);
  fs.writeFileSync(path.join(allowed, 'junk.so'), 'not a module');
  fs.writeFileSync(path.join(allowed, 'not-json'), 'plain text');
  fs.writeFileSync(path.join(allowed, 'partial.json'), '{"client_email":"a@b"}');
  fs.writeFileSync(path.join(allowed, 'big'), Buffer.alloc(2 * 1024 * 1024, 0x7b));
  fs.symlinkSync('/etc/passwd', path.join(allowed, 'escape'));
  fs.symlinkSync(path.join(dir, 'outside.json'), path.join(allowed, 'dangling'));
  fs.mkdirSync(path.join(allowed, 'sub'));
  execFileSync('mkfifo', [path.join(allowed, 'fifo')]);
});

/** Path-shaped strings around the allowed directory, plus anything at all. */
const pathLike = fc.oneof(
  fc
    .array(
      fc.constantFrom(
        '/',
        '..',
        '.',
        'allowed',
        'junk.so',
        'escape',
        'dangling',
        'fifo',
        'sub',
        'big',
        'not-json',
        'partial.json',
        'dev',
        'zero',
        'proc',
        'self',
        'fd',
        '1',
        '\0',
        ' ',
        'etc',
        'passwd',
        '//',
      ),
      { maxLength: 8 },
    )
    .map((parts) => parts.join('')),
  fc
    .array(fc.constantFrom('..', '.', 'junk.so', 'escape', 'dangling', 'fifo', 'sub', 'big', 'not-json', 'partial.json', 'missing', ''), { maxLength: 4 })
    .map((parts) => [allowed, ...parts].join('/')),
  fc.constantFrom('/dev/zero', '/dev/stdin', '/proc/self/fd/0', '/proc/self/fd/1', '/proc/self/mem', '/etc/passwd', dir, `${allowed}/`),
  fc.string({ maxLength: 40 }),
);

function expectInvalid(e: unknown): asserts e is Error {
  if (!isKeyError(e)) throw e;
  expect(e.kind).toBe('invalid');
  expect(e.message.length).toBeGreaterThan(10);
}

describe('fuzz: managed-key inputs', () => {
  it('PKCS#11 library paths: nothing off PLUGIN_PKCS11_LIBRARIES is ever handed to the loader', async () => {
    process.env.VAULT_PLUGIN_PKCS11_LIBRARIES = `${allowed}/`;
    await fc.assert(
      fc.asyncProperty(pathLike, async (library) => {
        let cfg: ReturnType<typeof parseKeyConfig>;
        try {
          cfg = parseKeyConfig('pkcs11', 'f', { library, pin: '1234', token_label: 't', key_label: 'k' });
        } catch (e) {
          expectInvalid(e); // e.g. an empty library
          return;
        }
        const err = await Pkcs11Key.open('f', cfg.fields, cfg.common).then(
          () => undefined,
          (e) => e,
        );
        expectInvalid(err);
        // Only a path inside the list reaches dlopen (and, not being a module, fails there).
        if (/cannot load PKCS#11 library/.test(err.message)) {
          expect(operatorAllows(library, `${allowed}/`)).toBe(true);
          // A FIFO would block dlopen: what reached the loader is not one. (The path's text may
          // still name the FIFO: allowed/fifo/../big resolves, as the loader resolves it, to a regular file.)
          expect(fs.statSync(fs.realpathSync(library)).isFIFO()).toBe(false);
        } else {
          expect(err.message).toMatch(/PLUGIN_PKCS11_LIBRARIES/);
        }
      }),
      { numRuns: SLOW_RUNS },
    );
  }, 120_000);

  it('Google Cloud credentials (JSON or a path): a clear error that never echoes the value, and never a blocking read', async () => {
    process.env.VAULT_PLUGIN_CREDENTIAL_FILES = `${allowed}/:/dev/:/proc/`;
    const jsonish = fc.oneof(
      fc.json({ maxDepth: 2 }),
      fc.string({ maxLength: 60 }).map((s) => `{${s}`),
      fc.constantFrom('{}', '{"client_email":1,"private_key":[]}', 'null', '[]', '{"private_key":"x"}'),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(pathLike, jsonish), fc.boolean(), async (credentials, unset) => {
        if (unset) delete process.env.VAULT_PLUGIN_CREDENTIAL_FILES;
        else process.env.VAULT_PLUGIN_CREDENTIAL_FILES = `${allowed}/:/dev/:/proc/`;
        let cfg: ReturnType<typeof parseKeyConfig>;
        try {
          cfg = parseKeyConfig('gcpckms', 'f', { credentials, project: 'p', region: 'r', key_ring: 'k', crypto_key: 'c' });
        } catch (e) {
          expectInvalid(e);
          return;
        }
        const err = await GcpKmsKey.open('f', cfg.fields, cfg.common).then(
          () => undefined,
          (e) => e,
        );
        expectInvalid(err);
        const value = String(cfg.fields.credentials ?? '').trim();
        // An empty value is no credentials at all: the ambient-credentials refusal.
        expect(err.message).toMatch(cfg.fields.credentials === undefined ? /PLUGIN_AMBIENT_CREDENTIALS/ : /^credentials: /);
        if (value.length >= 12) expect(err.message).not.toContain(value);
      }),
      { numRuns: SLOW_RUNS },
    );
  }, 120_000);

  it('configs without credentials: refused unless PLUGIN_AMBIENT_CREDENTIALS is exactly "true"', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('TRUE', 'True', '1', 'yes', 'true ', 'false')), { nil: undefined }),
        fc.boolean(),
        async (setting, aws) => {
          fc.pre(setting !== 'true' && setting !== '');
          if (setting === undefined) delete process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS;
          else process.env.VAULT_PLUGIN_AMBIENT_CREDENTIALS = setting;
          const err = aws
            ? await (async () => {
                const c = parseKeyConfig('awskms', 'f', { kms_key: 'alias/x', endpoint: 'http://127.0.0.1:1' });
                return AwsKmsKey.open('f', c.fields, c.common);
              })().then(
                () => undefined,
                (e) => e,
              )
            : await (async () => {
                const c = parseKeyConfig('gcpckms', 'f', { project: 'p', region: 'r', key_ring: 'k', crypto_key: 'c', endpoint: '127.0.0.1:1' });
                return GcpKmsKey.open('f', c.fields, c.common);
              })().then(
                () => undefined,
                (e) => e,
              );
          expectInvalid(err);
          expect(err.message).toMatch(/PLUGIN_AMBIENT_CREDENTIALS=true/);
        },
      ),
      { numRuns: Math.min(RUNS, 300) },
    );
  }, 120_000);

  describe('software keys off the event loop: arbitrary input to sign, verify and decrypt', () => {
    const keys: Record<string, SoftwareKey> = {};
    beforeAll(async () => {
      for (const t of ['rsa-2048', 'ecdsa-p256', 'ed25519', 'aes256-gcm']) keys[t] = await SoftwareKey.create('f', t, ['sign', 'verify', 'encrypt', 'decrypt']);
    }, 60_000);
    const opts = fc.record({
      hash: fc.constantFrom<Hash>('sha256', 'sha384', 'sha512'),
      padding: fc.constantFrom<'pss' | 'pkcs1v15' | undefined>('pss', 'pkcs1v15', undefined),
      prehashed: fc.boolean(),
    });

    it('sign and verify: a signature that verifies, or a clear error', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('rsa-2048', 'ecdsa-p256', 'ed25519', 'aes256-gcm'), fc.uint8Array({ maxLength: 80 }), opts, async (t, data, o) => {
          const k = keys[t];
          let sig: Buffer;
          try {
            sig = await k.sign(Buffer.from(data), o as SignOptions);
          } catch (e) {
            expectInvalid(e);
            return;
          }
          expect(await k.verify(Buffer.from(data), sig, o as SignOptions)).toBe(true);
          expect(await k.verify(Buffer.from(data), Buffer.concat([sig, Buffer.from([1])]), o as SignOptions)).toBe(false);
        }),
        { numRuns: SLOW_RUNS * 2 },
      );
    }, 120_000);

    it('decrypt of arbitrary bytes: a clear error (or, for AES, only what was sealed)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('rsa-2048', 'aes256-gcm'),
          fc.uint8Array({ maxLength: 300 }),
          fc.constantFrom<'sha1' | Hash | undefined>('sha1', 'sha256', 'sha512', undefined),
          async (t, ct, oaepHash) => {
            const err = await keys[t].decrypt(Buffer.from(ct), { oaepHash }).then(
              () => undefined,
              (e) => e,
            );
            expectInvalid(err);
            expect(err.message).toMatch(/decryption failed|too short/);
          },
        ),
        { numRuns: SLOW_RUNS * 2 },
      );
    }, 120_000);
  });
});
