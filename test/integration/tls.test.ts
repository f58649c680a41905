// sslmode against a real PostgreSQL serving TLS, with libpq's meanings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqlDatabase } from '../../src/database/sql-database';
import { startPostgres, type PgServer } from '../support/postgres';
import { makeServerCerts, type TestPki } from '../support/certs';
import { admin, quietLog } from '../support/db';

let pg: PgServer;
let pki: TestPki;

beforeAll(async () => {
  pki = makeServerCerts({ dns: ['localhost'], ips: [] }); // deliberately not 127.0.0.1
  pg = await startPostgres({
    tls: { certPem: pki.certPem, keyPem: pki.keyPem, caPem: pki.caPem },
    // Database certdb additionally demands a client certificate from our CA.
    hba: ['hostssl certdb all 127.0.0.1/32 scram-sha-256 clientcert=verify-ca', 'host certdb all 127.0.0.1/32 reject'],
  });
  await admin((c) => c.query('CREATE DATABASE certdb'), { host: '127.0.0.1', port: pg.port, user: pg.user, password: pg.password, database: 'postgres' });
});
afterAll(async () => {
  await pg?.stop();
});

const cfg = (extra: Record<string, unknown>) => ({ host: 'localhost', port: pg.port, db: 'postgres', username: pg.user, password: pg.password, ...extra });

async function tlsInUse(extra: Record<string, unknown>): Promise<boolean> {
  const d = await SqlDatabase.open(cfg(extra), true, quietLog());
  try {
    const { username: u } = await d.newUser({
      displayName: 'tls',
      roleName: 'r',
      password: 'Pw-123456789',
      statements: [`CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`],
      credentialType: 0,
    });
    await d.deleteUser({ username: u, statements: [] });
    return (d as unknown as { useTls: boolean }).useTls;
  } finally {
    await d.close();
  }
}

describe('TLS to PostgreSQL', () => {
  it('verify-full with an inline CA and a matching host name connects over TLS', async () => {
    expect(await tlsInUse({ sslmode: 'verify-full', sslrootcert: pki.caPem })).toBe(true);
  });
  it('verify-full with the CA given as a file path works too', async () => {
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-ca-')), 'ca.pem');
    fs.writeFileSync(f, pki.caPem);
    expect(await tlsInUse({ sslmode: 'verify-full', sslrootcert: f })).toBe(true);
  });
  it('verify-full refuses a certificate from another CA', async () => {
    await expect(SqlDatabase.open(cfg({ sslmode: 'verify-full', sslrootcert: pki.otherCaPem }), true, quietLog())).rejects.toThrow(
      /cannot connect.*(certificate|self.signed|issuer)/i,
    );
  });
  it('verify-full refuses a host name the certificate does not name; verify-ca accepts it', async () => {
    await expect(SqlDatabase.open(cfg({ sslmode: 'verify-full', sslrootcert: pki.caPem, host: '127.0.0.1' }), true, quietLog())).rejects.toThrow(
      /cannot connect.*(altnames|not in the cert)/i,
    );
    expect(await tlsInUse({ sslmode: 'verify-ca', sslrootcert: pki.caPem, host: '127.0.0.1' })).toBe(true);
  });
  it('require encrypts without verifying; prefer picks TLS when offered; allow and disable start plaintext', async () => {
    expect(await tlsInUse({ sslmode: 'require' })).toBe(true);
    expect(await tlsInUse({ sslmode: 'prefer' })).toBe(true);
    expect(await tlsInUse({ sslmode: 'allow' })).toBe(false);
    expect(await tlsInUse({ sslmode: 'disable' })).toBe(false);
  });
  it('presents sslcert/sslkey (inline PEM or files) where the server demands a client certificate', async () => {
    await expect(SqlDatabase.open(cfg({ db: 'certdb', sslmode: 'verify-full', sslrootcert: pki.caPem }), true, quietLog())).rejects.toThrow(
      /cannot connect.*certificate/i,
    );
    expect(await tlsInUse({ db: 'certdb', sslmode: 'verify-full', sslrootcert: pki.caPem, sslcert: pki.clientCertPem, sslkey: pki.clientKeyPem })).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-cc-'));
    fs.writeFileSync(path.join(dir, 'c.pem'), pki.clientCertPem);
    fs.writeFileSync(path.join(dir, 'k.pem'), pki.clientKeyPem, { mode: 0o600 });
    expect(await tlsInUse({ db: 'certdb', sslmode: 'require', sslcert: path.join(dir, 'c.pem'), sslkey: path.join(dir, 'k.pem') })).toBe(true);
    // sslmode=allow falls back to TLS when the server refuses plaintext for this database
    expect(await tlsInUse({ db: 'certdb', sslmode: 'allow', sslcert: pki.clientCertPem, sslkey: pki.clientKeyPem })).toBe(true);
  });
  it("current Vault's tls_ca/tls_certificate/private_key connect; an inline sslkey is stored as private_key, which Vault hides on read", async () => {
    expect(await tlsInUse({ db: 'certdb', sslmode: 'verify-full', tls_ca: pki.caPem, tls_certificate: pki.clientCertPem, private_key: pki.clientKeyPem })).toBe(
      true,
    );
    const d = new SqlDatabase(quietLog());
    try {
      const given = cfg({ db: 'certdb', sslmode: 'verify-full', sslrootcert: pki.caPem, sslcert: pki.clientCertPem, sslkey: pki.clientKeyPem });
      const { config } = await d.initialize({ config: given, verifyConnection: true });
      expect(config.private_key).toBe(pki.clientKeyPem);
      // What `vault read database/config/<name>` shows: everything but password and private_key.
      const shown = Object.entries(config).filter(([k]) => k !== 'password' && k !== 'private_key');
      expect(JSON.stringify(shown)).not.toContain('PRIVATE KEY');
      // Vault sends the stored config back after a restart: it still connects with the key.
      expect(await tlsInUse(config)).toBe(true);
    } finally {
      await d.close();
    }
  });
  it('sslmode in connection_url is honoured', async () => {
    const url = `postgres://{{username}}:{{password}}@localhost:${pg.port}/postgres?sslmode=verify-full`;
    expect(await tlsInUse({ host: undefined, port: undefined, db: undefined, connection_url: url, sslrootcert: pki.caPem })).toBe(true);
  });
});
