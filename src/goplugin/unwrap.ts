// The older TLS mode of backend plugins (Vault before 1.12, and later Vault for plugins
// that speak protocol 4 only): instead of AutoMTLS, Vault passes VAULT_UNWRAP_TOKEN, a
// response-wrapping token that is a JWT whose `addr` claim is Vault's API address. The
// plugin unwraps it (PUT <addr>/v1/sys/wrapping/unwrap, X-Vault-Token: <token>) and gets
// `ServerCert` (DER, base64) and `ServerKey` (SEC1 EC key DER, base64). Vault made that
// certificate self-signed and presents the very same one as the gRPC client: it is both
// our server identity and the only CA our clients (and broker peers) may chain to; its
// CN is the name Vault expects the server to present.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import * as https from 'node:https';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readBoundedFile } from '../util/files';

/** How the plugin reaches Vault's HTTP API: the settings Vault's own API client reads. */
export interface VaultApiSettings {
  /** PEM file of the CA(s) that signed Vault's HTTPS certificate (VAULT_CACERT / -ca-cert). */
  caCert?: string;
  /** Directory of PEM CA files (VAULT_CAPATH / -ca-path). */
  caPath?: string;
  /** PEM client certificate and key files, when Vault's listener requires them. */
  clientCert?: string;
  clientKey?: string;
  /** TLS server name to verify instead of the address's host (VAULT_TLS_SERVER_NAME). */
  serverName?: string;
  /** Do not verify Vault's HTTPS certificate (VAULT_SKIP_VERIFY / -tls-skip-verify). */
  skipVerify?: boolean;
}

/** What the wrapped response gives: our TLS identity and the CA every peer must chain to. */
export interface LegacyTls {
  certPem: string;
  keyPem: string;
  caPem: string;
  /** The certificate's CN: the server name Vault checks, and the one we check on broker peers. */
  serverName: string;
}

/** How long the unwrap call to Vault's API may take. */
export const UNWRAP_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_CA_FILES = 1000;

/** The `addr` claim of the wrapping JWT, checked to be an http(s) URL. The token is never echoed. */
export function vaultAddrFromToken(token: string): URL {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('VAULT_UNWRAP_TOKEN is not a JWT (Vault issues wrapping tokens for plugins as JWTs)');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw new Error('VAULT_UNWRAP_TOKEN has no readable claims');
  }
  const addr = (claims as { addr?: unknown } | null)?.addr;
  if (typeof addr !== 'string' || addr === '') throw new Error("VAULT_UNWRAP_TOKEN has no addr claim (Vault's api_addr)");
  let url: URL;
  try {
    url = new URL(addr);
  } catch {
    throw new Error(`the addr claim of VAULT_UNWRAP_TOKEN is not a URL: ${JSON.stringify(addr.slice(0, 100))}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
    throw new Error(`the addr claim of VAULT_UNWRAP_TOKEN is not an http(s) URL: ${JSON.stringify(addr.slice(0, 100))}`);
  }
  return url;
}

/** Every PEM certificate in the regular files directly inside `dir` (as Vault's CA path). */
async function readCaPath(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(dir)).sort().slice(0, MAX_CA_FILES);
  } catch {
    throw new Error('VAULT_CAPATH is not a readable directory');
  }
  const out: string[] = [];
  for (const n of names) {
    const text = await readBoundedFile(path.join(dir, n), 'a VAULT_CAPATH entry').then(
      (b) => b.toString('utf8'),
      () => '',
    );
    if (text.includes('-----BEGIN CERTIFICATE-----')) out.push(text);
  }
  if (!out.length) throw new Error('VAULT_CAPATH holds no PEM certificate');
  return out.join('\n');
}

async function httpsOptions(s: VaultApiSettings): Promise<https.RequestOptions> {
  const o: https.RequestOptions = { rejectUnauthorized: !s.skipVerify, minVersion: 'TLSv1.2' };
  const cas: string[] = [];
  if (s.caCert) cas.push((await readBoundedFile(s.caCert, 'VAULT_CACERT')).toString('utf8'));
  if (s.caPath) cas.push(await readCaPath(s.caPath));
  if (cas.length) o.ca = cas;
  if (Boolean(s.clientCert) !== Boolean(s.clientKey)) throw new Error('VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together');
  if (s.clientCert && s.clientKey) {
    o.cert = await readBoundedFile(s.clientCert, 'VAULT_CLIENT_CERT');
    o.key = await readBoundedFile(s.clientKey, 'VAULT_CLIENT_KEY');
  }
  if (s.serverName) o.servername = s.serverName;
  return o;
}

/** PUT <addr>/v1/sys/wrapping/unwrap with the token; the parsed JSON body of a 200, else a clear error. */
async function putUnwrap(addr: URL, token: string, settings: VaultApiSettings, timeoutMs: number): Promise<unknown> {
  const url = new URL(addr.href.replace(/\/+$/, '') + '/v1/sys/wrapping/unwrap');
  const tlsOpts = url.protocol === 'https:' ? await httpsOptions(settings) : {};
  const where = `${url.protocol}//${url.host}`;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (msg: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new Error(`cannot unwrap the TLS certificate from Vault at ${where}: ${msg}`));
    };
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, { method: 'PUT', headers: { 'X-Vault-Token': token, 'Content-Length': 0 }, agent: false, ...tlsOpts }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) fail('the response is too large');
        else chunks.push(c);
      });
      res.on('error', (e) => fail(e.message));
      res.on('end', () => {
        if (settled) return;
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        if (res.statusCode !== 200) {
          const errs = (body as { errors?: unknown } | undefined)?.errors;
          const detail = Array.isArray(errs) ? errs.map(String).join('; ') : text;
          fail(`HTTP ${res.statusCode}${detail ? `: ${detail.replaceAll(token, '[token]').slice(0, 300)}` : ''}`);
          return;
        }
        if (body === undefined) {
          fail('the response is not JSON');
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(body);
      });
    });
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    req.on('error', (e) => fail(e.message));
    req.end();
  });
}

function decodeDer(v: unknown, what: string): Buffer {
  if (typeof v !== 'string' || v === '') throw new Error(`the unwrapped response has no ${what}`);
  // Vault sends Go []byte, i.e. standard base64 of DER; tolerate PEM as well.
  if (v.includes('-----BEGIN')) return Buffer.from(v);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v)) throw new Error(`the unwrapped ${what} is not base64`);
  return Buffer.from(v, 'base64');
}

/** The TLS identity inside the wrapped response's data. */
export function legacyTlsFromResponse(body: unknown): LegacyTls {
  const data = (body as { data?: Record<string, unknown> } | null)?.data;
  if (!data || typeof data !== 'object') throw new Error('the unwrapped response has no data');
  const certBytes = decodeDer(data.ServerCert, 'ServerCert');
  const keyBytes = decodeDer(data.ServerKey, 'ServerKey');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certBytes);
  } catch {
    throw new Error('the unwrapped ServerCert is not a certificate');
  }
  let keyPem: string;
  try {
    const isPem = keyBytes.includes('-----BEGIN');
    const key = isPem ? createPrivateKey(keyBytes) : createPrivateKey({ key: keyBytes, format: 'der', type: 'sec1' });
    if (!cert.checkPrivateKey(key)) throw new Error('mismatch');
    keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  } catch {
    throw new Error('the unwrapped ServerKey is not the private key of ServerCert');
  }
  const certPem = cert.toString();
  // Vault's clients chain to ServerCert itself; a CACert field, where a Vault sends one, is honoured.
  const caPem = data.CACert ? new X509Certificate(decodeDer(data.CACert, 'CACert')).toString() : certPem;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  return { certPem, keyPem, caPem, serverName: cn || 'localhost' };
}

/** Unwrap VAULT_UNWRAP_TOKEN through Vault's API (bounded by timeoutMs) and return our TLS identity. */
export async function unwrapLegacyTls(token: string, settings: VaultApiSettings = {}, timeoutMs = UNWRAP_TIMEOUT_MS): Promise<LegacyTls> {
  const addr = vaultAddrFromToken(token);
  const body = await putUnwrap(addr, token, settings, timeoutMs);
  try {
    return legacyTlsFromResponse(body);
  } catch (e) {
    throw new Error(`Vault at ${addr.protocol}//${addr.host} answered the unwrap without a usable TLS identity: ${(e as Error).message}`, { cause: e });
  }
}
