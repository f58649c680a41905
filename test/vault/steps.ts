// Steps the real-Vault suites share: the README's commands run through the `vault` CLI, and
// the checks an operator would make (openssl on certificates, PostgreSQL logins).
import { spawnSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { admin, type PgInfo } from '../support/db';
import { PLUGIN_NAME, type VaultClient } from '../support/vault';

/** `vault write -format=json <path> k=v...` (-f when there is no data); the response's data. */
export async function write(v: VaultClient, p: string, ...kv: string[]): Promise<any> {
  const r = await v.vault(['write', '-format=json', ...(kv.length ? [] : ['-f']), p, ...kv]);
  return typeof r === 'object' && r ? (r.data ?? r) : r;
}

/** `vault read -format=json <path>`: the whole response (data, lease_id, ...). */
export const read = (v: VaultClient, p: string): Promise<any> => v.vault(['read', '-format=json', p]);

export const b64 = (s: string) => Buffer.from(s).toString('base64');
export const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

export const enableTransit = (v: VaultClient, at = 'transit') => v.vault(['secrets', 'enable', `-path=${at}`, PLUGIN_NAME]);
export const enablePki = (v: VaultClient, at = 'pki') => v.vault(['secrets', 'enable', `-path=${at}`, '-options=engine=pki', PLUGIN_NAME]);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-vault-files-'));
process.once('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Write a file for openssl; returns its path. */
export function file(body: string | Buffer, name = randomBytes(6).toString('hex')): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, body);
  return f;
}

export function openssl(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** `openssl verify` of a leaf against a CA (optionally with a CRL); the combined output. */
export function verify(caPem: string, certPem: string, crlPem?: string): string {
  const args = ['verify', '-CAfile', file(caPem)];
  if (crlPem) args.push('-crl_check', '-CRLfile', file(crlPem));
  return openssl(...args, file(certPem)).out;
}

/** The certificate's notAfter in milliseconds since the epoch. */
export const notAfter = (pem: string) => new Date(new X509Certificate(pem).validTo).getTime();

/** Vault's colon-separated hex serial as openssl prints it. */
export const opensslSerial = (serial: string) => serial.replace(/:/g, '').toUpperCase();

/** Transit: an AES key with two versions, and ciphertexts under each; what later checks decrypt. */
export interface TransitState {
  key: string;
  plaintext: string;
  v1: string;
  v2: string;
}

export async function transitWork(v: VaultClient, at = 'transit', key = 'app'): Promise<TransitState> {
  await write(v, `${at}/keys/${key}`);
  const plaintext = b64(`real vault ${randomBytes(4).toString('hex')}`);
  const v1 = (await write(v, `${at}/encrypt/${key}`, `plaintext=${plaintext}`)).ciphertext;
  await write(v, `${at}/keys/${key}/rotate`);
  const v2 = (await write(v, `${at}/encrypt/${key}`, `plaintext=${plaintext}`)).ciphertext;
  return { key, plaintext, v1, v2 };
}

export async function decrypt(v: VaultClient, at: string, key: string, ciphertext: string): Promise<string> {
  const r = await write(v, `${at}/decrypt/${key}`, `ciphertext=${ciphertext}`);
  // A reply without plaintext is a failure to explain, not an undefined to compare.
  if (typeof r?.plaintext !== 'string') throw new Error(`decrypt at ${at}/decrypt/${key} answered no plaintext: ${JSON.stringify(r)}`);
  return r.plaintext;
}

/** PKI: a root CA and a role; what later checks issue against. */
export interface PkiState {
  caPem: string;
  role: string;
}

export async function pkiWork(v: VaultClient, at = 'pki', role = 'web'): Promise<PkiState> {
  const root = await write(v, `${at}/root/generate/internal`, 'common_name=Real Vault Test Root', 'ttl=720h');
  await write(v, `${at}/roles/${role}`, 'allowed_domains=example.test', 'allow_subdomains=true', 'max_ttl=72h');
  return { caPem: root.certificate, role };
}

export async function issue(v: VaultClient, at: string, role: string, cn: string, ...extra: string[]): Promise<any> {
  return write(v, `${at}/issue/${role}`, `common_name=${cn}`, ...extra);
}

/** A CREATEROLE (not superuser) login for one database/config, so rotate-root touches only it. */
export async function dbAdmin(pg: PgInfo, tag: string): Promise<PgInfo> {
  const user = `vt_${tag}_${randomBytes(4).toString('hex')}`;
  const password = 'A1-' + randomBytes(15).toString('base64url');
  await admin((c) => c.query(`CREATE ROLE "${user}" WITH LOGIN CREATEROLE PASSWORD '${password}'`), pg);
  return { ...pg, user, password };
}

/** `vault write database/config/<name>` for this admin, as the README shows. */
export async function dbConfig(v: VaultClient, name: string, adm: PgInfo, ...extra: string[]): Promise<void> {
  await write(
    v,
    `database/config/${name}`,
    `plugin_name=${PLUGIN_NAME}`,
    `connection_url=postgres://{{username}}:{{password}}@${adm.host}:${adm.port}/${adm.database}?sslmode=disable`,
    `username=${adm.user}`,
    `password=${adm.password}`,
    'password_authentication=scram-sha-256',
    'allowed_roles=*',
    ...extra,
  );
}

export const CREATION = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`;

export async function dbRole(v: VaultClient, role: string, config: string): Promise<void> {
  await write(v, `database/roles/${role}`, `db_name=${config}`, 'default_ttl=1h', 'max_ttl=24h', `creation_statements=${CREATION}`);
}

/** `vault read database/creds/<role>`: username, password and the lease. */
export async function creds(v: VaultClient, role: string): Promise<{ username: string; password: string; leaseId: string; ttl: number }> {
  const r = await read(v, `database/creds/${role}`);
  return { username: r.data.username, password: r.data.password, leaseId: r.lease_id, ttl: r.lease_duration };
}
