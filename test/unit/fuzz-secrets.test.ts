// Property-based fuzzing of the input classes the adversarial review found (transit and
// PKI): durations, base64 and vault:v<N>: envelopes, deep request data, batch items, CSR
// keys and certificate names. Every answer must be a value or a clear 400 — never an
// internal error, a throw outside the reply path, or a non-finite number reaching crypto.
import { describe, expect, it } from 'vitest';
import { asciiDnsName } from '../../src/secrets/pki/names';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SecretsBackend } from '../../src/secrets/backend';
import { x509 } from '../../src/secrets/pki/ca';
import { toReply } from '../../src/secrets/plugin';
import { MAX_DURATION_SECONDS, UserError, parseDuration } from '../../src/secrets/framework';
import { MemoryStorage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const quiet = createLogger({ level: 'error', sink: () => undefined });

/** The request's answer: data, nothing, or a 400 user error (whose reply serialises). */
async function answer(be: SecretsBackend, op: string, p: string, data: Record<string, unknown>): Promise<{ data?: Record<string, unknown>; error?: string }> {
  try {
    const res = await be.handle(op as never, p, data, { displayName: '', mountPoint: '' });
    toReply(res); // the reply must serialise
    return { data: res?.data };
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    if (e.status !== 404 && e.status !== 405) expect(e.status).toBe(400);
    const rep = toReply(undefined, e) as { response?: { data: string } };
    return { error: rep.response ? JSON.parse(rep.response.data).error : e.message };
  }
}

const durationish = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.bigInt().map(String),
  fc.constantFrom('Infinity', '-Infinity', 'NaN', '1e400s', '1e308', '-1', '-1h', '2562047h', '2562048h', '2160h0m0s', '1h30m', '.5s', '5.h', '1d', '0', ''),
  fc.array(fc.constantFrom('1', '9', '0', '.', 'h', 'm', 's', 'ms', 'us', 'µs', 'ns', 'd', '-', '+', 'e', ' '), { maxLength: 12 }).map((a) => a.join('')),
  fc.string({ maxLength: 12 }),
);

describe('fuzz: durations', () => {
  it('every duration is a whole, finite, bounded number of seconds, or a 400 naming the field', () => {
    fc.assert(
      fc.property(durationish, (v) => {
        try {
          const s = parseDuration(v, 'ttl');
          expect(Number.isSafeInteger(s) && s >= 0 && s <= MAX_DURATION_SECONDS).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(UserError);
          expect((e as UserError).status).toBe(400);
          expect((e as Error).message).toMatch(/^ttl: /);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: transit decoding and batches', () => {
  const b64ish = fc.oneof(
    fc.base64String({ maxLength: 24 }),
    fc.base64String({ maxLength: 24 }).map((s) => s.replace(/=+$/, '')),
    fc.base64String({ maxLength: 24 }).chain((s) => fc.constantFrom(`${s}=`, `${s}A`, s.replace(/\+/g, '-').replace(/\//g, '_'), `${s}\n`, ` ${s}`)),
    fc.string({ maxLength: 16 }),
  );
  const envelope = fc
    .tuple(fc.constantFrom('vault:v1:', 'vault:v01:', 'vault:v+1:', 'vault:v0:', 'vault:v:', 'vault:v99999999999:', 'vault:v1', ''), b64ish)
    .map(([p, s]) => p + s);

  it('decrypt/verify/hmac with any envelope and any base64: a value or a clear 400', async () => {
    const be = new SecretsBackend(new MemoryStorage(), quiet);
    await answer(be, 'create', 'keys/a', { type: 'aes256-gcm96' });
    await answer(be, 'create', 'keys/c', { type: 'aes256-gcm96', derived: true, convergent_encryption: true });
    await answer(be, 'create', 'keys/e', { type: 'ecdsa-p256' });
    await answer(be, 'create', 'keys/k1', { type: 'ecdsa-secp256k1' });
    await answer(be, 'create', 'keys/pq', { type: 'ml-dsa', parameter_set: '44' });
    await answer(be, 'create', 'keys/x', { type: 'x25519' });
    const paths = fc.constantFrom(
      'decrypt/a',
      'decrypt/c',
      'encrypt/a',
      'encrypt/c',
      'rewrap/a',
      'verify/e',
      'verify/a',
      'sign/e',
      'hmac/a',
      'hash',
      'sign/k1',
      'verify/k1',
      'sign/pq',
      'verify/pq',
      'sign/x',
      'encrypt/pq',
      'decrypt/x',
      'derive-key/d',
    );
    const fields = fc.record(
      {
        plaintext: b64ish,
        ciphertext: envelope,
        signature: envelope,
        hmac: envelope,
        input: b64ish,
        context: b64ish,
        associated_data: b64ish,
        base_key_name: fc.constantFrom('x', 'pq', 'a', 'nope'),
        peer_public_key: fc.oneof(
          b64ish,
          fc.constantFrom('-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA\n-----END PUBLIC KEY-----', Buffer.alloc(32).toString('base64')),
        ),
        marshaling_algorithm: fc.constantFrom('asn1', 'jws'),
        prehashed: fc.constantFrom(true, false, 'true', 'false', 'x'),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(paths, fields, fc.boolean(), async (p, f, asBatch) => {
        await answer(be, 'update', p, asBatch ? { batch_input: [f, { ...f, key_version: 1e308 }] } : f);
      }),
      { numRuns: Math.floor(RUNS / 2) },
    );
  });

  it('batch items of any shape and any nesting depth: a value or a clear 400, and the reply serialises', async () => {
    const be = new SecretsBackend(new MemoryStorage(), quiet);
    await answer(be, 'create', 'keys/a', { type: 'aes256-gcm96' });
    const deep = fc.integer({ min: 0, max: 20_000 }).map((d) => {
      let v: unknown = 1;
      for (let i = 0; i < d; i++) v = i % 2 ? [v] : { r: v };
      return v;
    });
    const item = fc.oneof(
      fc.anything({ maxDepth: 3 }),
      fc.record(
        { plaintext: fc.base64String({ maxLength: 8 }), reference: deep, key_version: fc.oneof(fc.double(), fc.string({ maxLength: 4 })) },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 4 }), async (items) => {
        await answer(be, 'update', 'encrypt/a', { batch_input: items });
      }),
      { numRuns: Math.floor(RUNS / 8) },
    );
  });
});

describe('fuzz: PKI names, durations and CSR keys', () => {
  const nameish = fc.oneof(
    fc
      .array(fc.constantFrom('a', 'example', 'com', '.', '*', '-', '_', '@', '/', ' ', '\0', '\n', '\t', '\u200b', 'é', 'localhost', 'svc-', 'xn--'), {
        minLength: 1,
        maxLength: 10,
      })
      .map((a) => a.join('')),
    fc.string({ maxLength: 20 }),
  );
  it('issue with any names, flags and ttl: a value or a clear 400; an issued name never has control characters, nor spaces outside a free-text CN', async () => {
    const be = new SecretsBackend(new MemoryStorage(), quiet, 'pki');
    await answer(be, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Fuzz Root' });
    // Valid values are weighted in so that a good share of runs issue a certificate whose
    // names can be checked (uniform junk almost never gets past the role).
    const sometimesJunk = <T>(good: fc.Arbitrary<T>, junk: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: junk });
    const ttlish = sometimesJunk<unknown>(fc.constantFrom<unknown>(0, '', '1h', '90m', 3600), durationish);
    const name = sometimesJunk(
      fc.constantFrom('a.example.com', 'example.com', 'svc-a.example.com', 'localhost', '*.example.com', 'ops@example.com', ' b.example.com '),
      nameish,
    );
    const flags = fc.record(
      {
        allowed_domains: fc.constantFrom('example.com', 'svc-*.example.com', 'example.com,localhost', ''),
        allow_subdomains: fc.boolean(),
        allow_bare_domains: fc.boolean(),
        allow_glob_domains: fc.boolean(),
        allow_any_name: fc.boolean(),
        allow_localhost: fc.boolean(),
        enforce_hostnames: fc.boolean(),
        allow_wildcard_certificates: fc.boolean(),
        key_type: fc.constantFrom('ec', 'ec', 'ed25519', 'any'),
        key_bits: sometimesJunk(fc.constantFrom(0, 256), fc.constantFrom(224, 2048, 300)),
        ttl: ttlish,
      },
      { requiredKeys: [] },
    );
    let issuedCount = 0;
    const runs = Math.floor(RUNS / 10);
    await fc.assert(
      fc.asyncProperty(flags, name, fc.array(name, { maxLength: 2 }), ttlish, async (role, cn, alt, ttl) => {
        const written = await answer(be, 'update', 'roles/r', role);
        if (written.error) return;
        const r = await answer(be, 'update', 'issue/r', { common_name: cn, alt_names: alt, ttl });
        if (!r.data) return;
        issuedCount++;
        // The names in the certificate, not the request: blank alt_names entries are
        // dropped and the others trimmed (as Vault's comma-string parsing does).
        const X = x509();
        const cert = new X.X509Certificate(r.data.certificate as string);
        const sans = (cert.getExtension(X.SubjectAlternativeNameExtension)?.names.toJSON() ?? []).map((n) => n.value);
        // No control characters anywhere; spaces only in a free-text CN (allow_any_name without enforce_hostnames, as Vault).
        for (const n of sans) expect(n).not.toMatch(/[\p{Cc}\p{Cf}\p{Z}]/u);
        const freeText = role.allow_any_name === true && role.enforce_hostnames === false;
        for (const n of cert.subjectName.getField('CN')) expect(n).not.toMatch(freeText ? /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u : /[\p{Cc}\p{Cf}\p{Z}]/u);
        // Internationalised names are issued in their ASCII (xn--) form.
        for (const n of alt.map((a) => a.trim()).filter(Boolean)) expect(sans).toContain(asciiDnsName(n) ?? n);
      }),
      { numRuns: runs },
    );
    expect(issuedCount).toBeGreaterThan(runs / 40); // ~12% issue; near 0 would make the checks above vacuous
  });

  it('sign with CSRs of every key kind openssl makes, under every role key_type: a certificate or a clear 400', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-fuzz-csr-'));
    const csrs: string[] = [];
    const params = path.join(tmp, 'dsa.pem');
    execFileSync('openssl', ['dsaparam', '-out', params, '1024'], { stdio: 'pipe' });
    for (const [i, newkey] of [
      ['rsa:1024'],
      ['rsa:2048'],
      ['ed25519'],
      [`dsa:${params}`],
      ...['secp224r1', 'prime256v1', 'secp256k1', 'prime192v1', 'secp384r1'].map((c) => ['ec', '-pkeyopt', `ec_paramgen_curve:${c}`]),
    ].entries()) {
      const out = path.join(tmp, `${i}.csr`);
      execFileSync('openssl', ['req', '-new', '-newkey', ...newkey, '-nodes', '-subj', '/CN=a.example.com', '-keyout', `${out}.key`, '-out', out], {
        stdio: 'pipe',
      });
      csrs.push(fs.readFileSync(out, 'utf8'));
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    const be = new SecretsBackend(new MemoryStorage(), quiet, 'pki');
    await answer(be, 'update', 'root/generate/internal', { ttl: '87600h', common_name: 'Fuzz Root' });
    const mangle = fc.oneof(
      fc.constant((s: string) => s),
      fc.integer({ min: 40, max: 400 }).map((i) => (s: string) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...csrs),
        fc.constantFrom('ec', 'rsa', 'ed25519', 'any'),
        fc.constantFrom(0, 224, 256, 384, 2048, 3072),
        mangle,
        async (csr, keyType, bits, m) => {
          const w = await answer(be, 'update', 'roles/s', { allowed_domains: 'example.com', allow_subdomains: true, key_type: keyType, key_bits: bits });
          if (w.error) return;
          await answer(be, 'update', 'sign/s', { csr: m(csr) });
          await answer(be, 'update', 'root/sign-intermediate', { csr: m(csr), ttl: '1h' });
        },
      ),
      { numRuns: Math.floor(RUNS / 20) },
    );
  }, 120_000);
});
