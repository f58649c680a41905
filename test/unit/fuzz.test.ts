// Property-based fuzzing of every input surface: whatever arrives, the answer is a value
// or a clear user error (InvalidArgument / HTTP 400) — never a crash, a TypeError or an
// unhandled rejection.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { UsernameTemplate } from '../../src/database/template';
import { splitStatements, renderStatement } from '../../src/database/statements';
import { parseConfig } from '../../src/database/config';
import { resolveTarget } from '../../src/database/connection';
import { PluginError } from '../../src/database/errors';
import { parseKeyConfig } from '../../src/keys/config';
import { KeyError } from '../../src/keys/errors';
import { SecretsBackend } from '../../src/secrets/backend';
import { toReply } from '../../src/secrets/plugin';
import { UserError } from '../../src/secrets/framework';
import { MemoryStorage } from '../../src/storage/storage';
import { createLogger } from '../../src/goplugin/log';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const quiet = createLogger({ level: 'error', sink: () => undefined });

/** Run fn; it may return or throw a clear invalid-argument error, nothing else. */
function onlyClearErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof PluginError) {
      expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e.message.length).toBeGreaterThan(5);
      return;
    }
    if (e instanceof KeyError) {
      expect(e.kind).toBe('invalid');
      return;
    }
    throw e;
  }
}

// Template-ish strings: mostly template syntax, so the parser's deep paths are reached.
const templateToken = fc.oneof(
  fc.constantFrom(
    '{{',
    '}}',
    '{{-',
    '-}}',
    '{{if ',
    '{{else}}',
    '{{else if ',
    '{{with ',
    '{{end}}',
    '{{/*',
    '*/}}',
    '$x',
    '$',
    ':=',
    '=',
    'eq',
    'and',
    'len',
    'print',
    'slice',
    'true',
    '"%05d"',
    '"2006.999"',
    '|',
    '(',
    ')',
    '"',
    '`',
    ' ',
    '.DisplayName',
    '.RoleName',
    '.Other',
    'random',
    'truncate',
    'truncate_sha256',
    'printf',
    'uppercase',
    'lowercase',
    'replace',
    'sha256',
    'base64',
    'unix_time',
    'unix_time_millis',
    'timestamp',
    'uuid',
    '"%s-%d"',
    '8',
    '-3',
    '99999',
    '0',
    'x',
  ),
  fc.string({ maxLength: 4 }),
);
const sqlToken = fc.oneof(
  fc.constantFrom(
    ';',
    "'",
    '"',
    '$$',
    '$tag$',
    "E'",
    '--',
    '/*',
    '*/',
    '\n',
    ' ',
    'BEGIN',
    'ATOMIC',
    'END',
    'CASE',
    'DO',
    '{{name}}',
    '{{password}}',
    '{{expiration}}',
    '{{username}}',
    'CREATE ROLE',
    '\\',
    'x',
  ),
  fc.string({ maxLength: 3 }),
);
const anyJson = fc.anything({
  maxDepth: 2,
  withBigInt: false,
  withDate: false,
  withMap: false,
  withSet: false,
  withTypedArray: false,
  withBoxedValues: false,
  withNullPrototype: false,
});

describe('fuzz: database inputs', () => {
  it('username templates: parse and render, or a clear error', () => {
    fc.assert(
      fc.property(fc.array(templateToken, { maxLength: 20 }), fc.string(), fc.string(), (toks, dn, rn) => {
        onlyClearErrors(() => UsernameTemplate.parse(toks.join('')).render({ DisplayName: dn, RoleName: rn }));
      }),
      { numRuns: RUNS },
    );
  });

  it('statement splitting never loses or invents text outside separators', () => {
    fc.assert(
      fc.property(fc.array(sqlToken, { maxLength: 30 }), (toks) => {
        const sql = toks.join('');
        const parts = splitStatements(sql);
        for (const p of parts) expect(sql).toContain(p.trim().slice(0, 20));
      }),
      { numRuns: RUNS },
    );
  });

  it('rendering with hostile values: output or a clear error; quoted values never add statements', () => {
    fc.assert(
      fc.property(fc.array(sqlToken, { maxLength: 20 }), fc.string(), fc.string(), (toks, name, password) => {
        const stmt = toks.join('');
        onlyClearErrors(() => {
          const before = splitStatements(stmt).length;
          const out = renderStatement(stmt, { name, username: name, password, expiration: '2030-01-01 00:00:00+0000' });
          // A value may never change how the statement splits.
          expect(splitStatements(out).length).toBe(before);
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('connection config: any JSON object parses or fails with InvalidArgument', () => {
    const keys = fc.constantFrom(
      'connection_url',
      'host',
      'port',
      'db',
      'username',
      'password',
      'sslmode',
      'sslrootcert',
      'max_open_connections',
      'max_idle_connections',
      'max_connection_lifetime',
      'username_template',
      'password_authentication',
      'disable_escaping',
      'load_balance',
      'connect_timeout',
      'other',
    );
    fc.assert(
      fc.property(
        fc.dictionary(keys, fc.oneof(anyJson, fc.string(), fc.integer(), fc.constantFrom('postgres://{{username}}:{{password}}@h/db', '1m', 'verify-full'))),
        (raw) => {
          onlyClearErrors(() => resolveTarget(parseConfig(raw).config));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: managed-key configuration', () => {
  it('any type and fields: parsed or a clear invalid error', () => {
    const type = fc.constantFrom('pkcs11', 'awskms', 'gcpckms', 'azurekeyvault', 'software', 'nope', '');
    const keys = fc.constantFrom(
      'library',
      'slot',
      'token_label',
      'pin',
      'key_label',
      'key_id',
      'max_parallel',
      'kms_key',
      'region',
      'usages',
      'allow_generate_key',
      'key_type',
      'credentials',
      'project',
      'tenant_id',
      'client_secret',
      'key_bits',
      'curve',
      'bogus',
    );
    fc.assert(
      fc.property(type, fc.string({ maxLength: 10 }), fc.dictionary(keys, fc.oneof(anyJson, fc.string())), (t, name, raw) => {
        onlyClearErrors(() => parseKeyConfig(t, name, raw));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: secrets engine requests', () => {
  const paths = fc.constantFrom(
    'keys/k',
    'keys/k/config',
    'keys/k/rotate',
    'encrypt/k',
    'decrypt/k',
    'rewrap/k',
    'datakey/plaintext/k',
    'sign/k',
    'verify/k',
    'hmac/k',
    'random',
    'random/8',
    'hash',
    'hash/sha2-512',
    'keys/',
    'managed-keys/software/m',
    'managed-keys/software/m/test/sign',
    'no/such',
    '',
  );
  const fields = fc.constantFrom(
    'plaintext',
    'ciphertext',
    'input',
    'signature',
    'hmac',
    'context',
    'associated_data',
    'key_version',
    'batch_input',
    'type',
    'derived',
    'convergent_encryption',
    'hash_algorithm',
    'prehashed',
    'marshaling_algorithm',
    'signature_algorithm',
    'bits',
    'bytes',
    'format',
    'min_decryption_version',
    'deletion_allowed',
    'auto_rotate_period',
    'managed_key_name',
    'key_type',
    'usages',
  );
  const values = fc.oneof(
    anyJson,
    fc.base64String({ maxLength: 40 }),
    fc.constantFrom('vault:v1:AAAA', 'vault:v99:', 'aes256-gcm96', 'ecdsa-p256', 'rsa-2048', 'jws', 'sha2-512', 'managed_key'),
  );

  async function prepared(engine: 'transit' | 'pki') {
    const be = new SecretsBackend(new MemoryStorage(), quiet, engine);
    const h = (op: string, p: string, d: object) => be.handle(op as never, p, d as Record<string, unknown>, { displayName: '', mountPoint: '' });
    if (engine === 'transit') {
      await h('create', 'keys/k', { type: 'ecdsa-p256' });
      await h('create', 'keys/a', { type: 'aes256-gcm96' });
    } else {
      await h('update', 'root/generate/internal', { ttl: '87600h', common_name: 'Fuzz Root' });
      await h('update', 'roles/r', { allowed_domains: 'example.com', allow_subdomains: true });
    }
    return be;
  }

  it('transit: every request answers with data, nothing, or a user error (never an internal one)', async () => {
    const be = await prepared('transit');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('read', 'create', 'update', 'delete', 'list'),
        paths,
        fc.dictionary(fields, values, { maxKeys: 5 }),
        async (op, path, data) => {
          try {
            await be.handle(op as never, path, data, { displayName: '', mountPoint: '' });
          } catch (e) {
            if (!(e instanceof UserError)) throw e;
            expect(toReply(undefined, e).err?.['err_type' as never] ?? 0).not.toBe(2);
          }
        },
      ),
      { numRuns: Math.floor(RUNS / 2) },
    );
  });

  it('PKI: every request answers with data, nothing, or a user error', async () => {
    const be = await prepared('pki');
    const pkiPaths = fc.constantFrom(
      'issue/r',
      'sign/r',
      'roles/r',
      'revoke',
      'cert/ab:cd',
      'crl',
      'ca_chain',
      'root/sign-intermediate',
      'intermediate/set-signed',
      'certs/',
      // Current Vault's management paths (keys/generate, keys/import, issuers/generate, tidy, revoke-with-key, issuer revoke).
      'keys/generate/internal',
      'keys/generate/kms',
      'keys/import',
      'issuers/generate/root/existing',
      'issuers/generate/intermediate/internal',
      'revoke-with-key',
      'issuer/default/revoke',
      'tidy',
      'tidy-status',
      'tidy-cancel',
      'config/auto-tidy',
    );
    const pkiFields = fc.constantFrom(
      'common_name',
      'alt_names',
      'ip_sans',
      'ttl',
      'csr',
      'serial_number',
      'certificate',
      'allowed_domains',
      'allow_any_name',
      'key_type',
      'key_bits',
      'max_ttl',
      'private_key',
      'pem_bundle',
      'key_name',
      'key_ref',
      'issuer_name',
      'managed_key_name',
      'safety_buffer',
      'tidy_cert_store',
      'tidy_revoked_cert_issuer_associations',
      'enabled',
      'interval_duration',
    );
    const pkiValues = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('a.example.com', '1.2.3.4', '9999h', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----', 'rsa', '521'),
      anyJson,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('read', 'update', 'list', 'delete'),
        pkiPaths,
        fc.dictionary(pkiFields, pkiValues, { maxKeys: 4 }),
        async (op, path, data) => {
          try {
            await be.handle(op as never, path, data, { displayName: '', mountPoint: '' });
          } catch (e) {
            if (!(e instanceof UserError)) throw e;
          }
        },
      ),
      { numRuns: Math.floor(RUNS / 4) },
    );
  });
});
