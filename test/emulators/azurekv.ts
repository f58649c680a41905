// A small Azure Key Vault + Azure AD on one HTTPS port of 127.0.0.1, for testing the real
// @azure/keyvault-keys and @azure/identity clients. It does what the services do: a
// request without a token gets Key Vault's 401 challenge naming the authority; the AD
// token endpoint checks tenant, client id, client secret and scope; key calls need a
// token it issued; keys have key_ops, algorithms must fit the key; unknown keys are
// 404 KeyNotFound; and it can answer 429 (with Retry-After) or 5xx on demand.
import * as https from 'node:https';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { derToRaw, digestInfo } from '../../src/keys/crypto';
import { pssEncode } from '../../src/keys/pss';

interface Key {
  name: string;
  version: string;
  kty: string;
  crv?: 'P-256' | 'P-384' | 'P-521';
  ops: string[];
  priv?: KeyObject;
  secret?: Buffer;
  enabled?: boolean;
  tags?: Record<string, string>;
  imported?: boolean;
}
/** A fault for requests whose "METHOD /path" starts with `route`: before it runs, or after it ran (the reply is lost). */
interface Fault {
  route: string;
  when: 'before' | 'after';
  n: number;
  status: number;
}

export interface AzureKvEmulator {
  base: string;
  vaultUrl: string;
  caPem: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  createKey(
    name: string,
    kty: 'EC' | 'EC-HSM' | 'RSA' | 'RSA-HSM' | 'oct-HSM',
    opts?: { crv?: 'P-256' | 'P-384' | 'P-521'; size?: number; ops?: string[] },
  ): Key;
  throttleNext(n: number): void;
  failNext(n: number, status?: number): void;
  faultOn(route: string, n: number, opts?: { when?: 'before' | 'after'; status?: number }): void;
  /** Every version of a key, oldest first; deleted keys. */
  versionsOf(name: string): Key[];
  deleted: Map<string, Key[]>;
  calls: string[];
  tokensIssued: number;
  close(): Promise<void>;
}

export async function startAzureKv(tls: { certPem: string; keyPem: string; caPem: string }): Promise<AzureKvEmulator> {
  const tenantId = randomUUID(),
    clientId = randomUUID(),
    clientSecret = 'azs~' + randomBytes(20).toString('base64url');
  const tokens = new Set<string>();
  const keys = new Map<string, Key>();
  /** Every version of each key, oldest first; `keys` holds the current (newest) one. */
  const history = new Map<string, Key[]>();
  const deleted = new Map<string, Key[]>();
  const faults: Fault[] = [];
  const calls: string[] = [];
  let throttle = 0,
    fail = 0,
    failStatus = 500;
  const state = { tokensIssued: 0 };
  let base = '';

  const createKey: AzureKvEmulator['createKey'] = (name, kty, o = {}) => {
    const k: Key = {
      name,
      version: randomBytes(16).toString('hex'),
      kty,
      ops:
        o.ops ??
        (kty.startsWith('EC')
          ? ['sign', 'verify']
          : kty === 'oct-HSM'
            ? ['encrypt', 'decrypt']
            : ['sign', 'verify', 'encrypt', 'decrypt', 'wrapKey', 'unwrapKey']),
    };
    if (kty.startsWith('EC')) {
      k.crv = o.crv ?? 'P-256';
      k.priv = generateKeyPairSync('ec', { namedCurve: k.crv }).privateKey;
    } else if (kty.startsWith('RSA')) k.priv = generateKeyPairSync('rsa', { modulusLength: o.size ?? 2048 }).privateKey;
    else k.secret = randomBytes(32);
    keys.set(name, k);
    history.set(name, [...(history.get(name) ?? []), k]);
    return k;
  };
  /** importKey: a new version from a private JWK, as Key Vault does (base64url fields, Hsm flag, key_ops). */
  const importKey = (name: string, body: Record<string, any>): Key => {
    const jwk = body.key ?? {};
    const kty = String(jwk.kty ?? '').replace(/-HSM$/, '');
    if (kty !== 'RSA' && kty !== 'EC') throw new Http(400, 'BadParameter', `Key type ${jwk.kty} cannot be imported into a vault (RSA and EC only).`);
    if (!jwk.d) throw new Http(400, 'BadParameter', 'The key to import must include its private part.');
    let priv: KeyObject;
    try {
      priv = createPrivateKey({
        format: 'jwk',
        key: Object.fromEntries(
          Object.entries(jwk)
            .filter(([f]) => ['kty', 'n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'crv', 'x', 'y'].includes(f))
            .map(([f, v]) => [f, f === 'kty' ? kty : v]),
        ) as never,
      });
    } catch {
      throw new Http(400, 'BadParameter', 'The JSON Web Key is not a valid private key.');
    }
    const ops: string[] = jwk.key_ops ?? ['sign', 'verify', 'encrypt', 'decrypt', 'wrapKey', 'unwrapKey'];
    if (kty === 'EC' && ops.some((o) => o !== 'sign' && o !== 'verify')) throw new Http(400, 'BadParameter', 'EC keys support only sign and verify.');
    if (kty === 'RSA' && (priv.asymmetricKeyDetails!.modulusLength ?? 0) < 2048) throw new Http(400, 'BadParameter', 'RSA keys must be at least 2048 bits.');
    const k: Key = {
      name,
      version: randomBytes(16).toString('hex'),
      kty: body.Hsm ? `${kty}-HSM` : kty,
      ops,
      priv,
      enabled: body.attributes?.enabled ?? true,
      tags: body.tags,
      imported: true,
    };
    if (kty === 'EC') k.crv = jwk.crv;
    keys.set(name, k);
    history.set(name, [...(history.get(name) ?? []), k]);
    return k;
  };
  const bundle = (k: Key) => {
    const jwk: Record<string, unknown> = { kid: `${base}/keys/${k.name}/${k.version}`, kty: k.kty, key_ops: k.ops };
    if (k.priv)
      Object.assign(
        jwk,
        Object.fromEntries(Object.entries(createPublicKey(k.priv).export({ format: 'jwk' })).filter(([f]) => ['crv', 'x', 'y', 'n', 'e'].includes(f))),
      );
    return {
      key: jwk,
      attributes: { enabled: k.enabled ?? true, created: Math.floor(Date.now() / 1000), recoveryLevel: 'Recoverable' },
      ...(k.tags ? { tags: k.tags } : {}),
    };
  };
  class Http extends Error {
    constructor(
      readonly status: number,
      readonly code: string,
      msg: string,
    ) {
      super(msg);
    }
  }
  const b64u = (v: unknown) => {
    if (typeof v !== 'string') throw new Http(400, 'BadParameter', 'value is required');
    return Buffer.from(v, 'base64url');
  };

  function keyOp(k: Key, op: string, body: Record<string, unknown>): unknown {
    if (k.enabled === false) throw new Http(403, 'Forbidden', `Operation ${op} is not allowed on a disabled key.`);
    if (!k.ops.includes(op)) throw new Http(403, 'Forbidden', `Operation ${op} is not permitted on this key.`);
    const alg = String(body.alg ?? '');
    const kid = `${base}/keys/${k.name}/${k.version}`;
    if (op === 'sign') {
      const d = b64u(body.value);
      if (k.crv) {
        const want = { 'P-256': ['ES256', 32], 'P-384': ['ES384', 48], 'P-521': ['ES512', 64] }[k.crv] as [string, number];
        if (alg !== want[0]) throw new Http(400, 'BadParameter', `Algorithm ${alg} is not valid for a ${k.crv} key.`);
        if (d.length !== want[1]) throw new Http(400, 'BadParameter', 'Invalid digest length.');
        const curve = { 'P-256': p256, 'P-384': p384, 'P-521': p521 }[k.crv];
        const der = Buffer.from(curve.sign(d, Buffer.from(k.priv!.export({ format: 'jwk' }).d!, 'base64url'), { prehash: false, lowS: false, format: 'der' }));
        return { kid, value: derToRaw(der, k.crv === 'P-521' ? 66 : k.crv === 'P-384' ? 48 : 32).toString('base64url') };
      }
      const m = /^(PS|RS)(256|384|512)$/.exec(alg);
      if (!m || !k.priv) throw new Http(400, 'BadParameter', `Algorithm ${alg} is not valid for this key.`);
      const hash = `sha${m[2]}` as 'sha256';
      const bits = createPublicKey(k.priv).asymmetricKeyDetails?.modulusLength ?? 2048;
      const sig =
        m[1] === 'PS'
          ? require('node:crypto').privateEncrypt({ key: k.priv, padding: constants.RSA_NO_PADDING }, pssEncode(d, hash, bits))
          : require('node:crypto').privateEncrypt({ key: k.priv, padding: constants.RSA_PKCS1_PADDING }, digestInfo(hash, d));
      return { kid, value: sig.toString('base64url') };
    }
    if (op === 'decrypt' || op === 'encrypt') {
      const v = b64u(body.value);
      if (k.secret) {
        if (alg !== 'A256GCM') throw new Http(400, 'BadParameter', `Algorithm ${alg} is not valid for this key.`);
        const aad = body.aad ? b64u(body.aad) : Buffer.alloc(0);
        if (op === 'encrypt') {
          const iv = randomBytes(12);
          const c = createCipheriv('aes-256-gcm', k.secret, iv);
          c.setAAD(aad);
          const ct = Buffer.concat([c.update(v), c.final()]);
          return { kid, value: ct.toString('base64url'), iv: iv.toString('base64url'), tag: c.getAuthTag().toString('base64url'), aad: body.aad };
        }
        try {
          const d = createDecipheriv('aes-256-gcm', k.secret, b64u(body.iv));
          d.setAAD(aad);
          d.setAuthTag(b64u(body.tag));
          return { kid, value: Buffer.concat([d.update(v), d.final()]).toString('base64url') };
        } catch {
          throw new Http(400, 'BadParameter', 'Decryption failed.');
        }
      }
      if (op === 'encrypt') throw new Http(400, 'BadParameter', 'use the public key');
      if (alg !== 'RSA-OAEP' && alg !== 'RSA-OAEP-256') throw new Http(400, 'BadParameter', `Algorithm ${alg} is not valid for this key.`);
      try {
        return {
          kid,
          value: privateDecrypt({ key: k.priv!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' }, v).toString(
            'base64url',
          ),
        };
      } catch {
        throw new Http(400, 'BadParameter', 'Decryption failed.');
      }
    }
    throw new Http(400, 'BadParameter', `unsupported operation ${op}`);
  }

  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', base);
      const send = (status: number, obj: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-ms-request-id': randomUUID(), ...headers });
        res.end(JSON.stringify(obj));
      };
      const body = Buffer.concat(chunks).toString();
      const p = url.pathname;
      calls.push(`${req.method} ${p}`);
      try {
        // --- Azure AD ---
        if (p === `/${tenantId}/v2.0/.well-known/openid-configuration` || p === `/${tenantId}/.well-known/openid-configuration`) {
          return send(200, {
            token_endpoint: `${base}/${tenantId}/oauth2/v2.0/token`,
            issuer: `${base}/${tenantId}/v2.0`,
            authorization_endpoint: `${base}/${tenantId}/oauth2/v2.0/authorize`,
            end_session_endpoint: `${base}/${tenantId}/oauth2/v2.0/logout`,
            jwks_uri: `${base}/${tenantId}/discovery/v2.0/keys`,
            response_types_supported: ['code', 'id_token', 'token'],
          });
        }
        if (p === `/${tenantId}/oauth2/v2.0/token` && req.method === 'POST') {
          const f = new URLSearchParams(body);
          if (f.get('grant_type') !== 'client_credentials') return send(400, { error: 'unsupported_grant_type' });
          if (f.get('client_id') !== clientId)
            return send(400, {
              error: 'unauthorized_client',
              error_description: `AADSTS700016: Application with identifier '${f.get('client_id')}' was not found.`,
            });
          if (f.get('client_secret') !== clientSecret)
            return send(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
          if (f.get('scope') !== 'https://vault.azure.net/.default')
            return send(400, { error: 'invalid_scope', error_description: `AADSTS70011: invalid scope ${f.get('scope')}` });
          const t = randomBytes(24).toString('base64url');
          tokens.add(t);
          state.tokensIssued++;
          return send(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: t });
        }
        if (p.startsWith('/common/discovery/instance')) {
          return send(200, { tenant_discovery_endpoint: `${base}/${tenantId}/v2.0/.well-known/openid-configuration`, 'api-version': '1.1', metadata: [] });
        }
        // --- Key Vault ---
        const auth = String(req.headers.authorization ?? '');
        if (!auth.startsWith('Bearer ') || !tokens.has(auth.slice(7))) {
          return send(
            401,
            { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
            { 'www-authenticate': `Bearer authorization="${base}/${tenantId}", resource="https://vault.azure.net"` },
          );
        }
        if (!url.searchParams.get('api-version')) throw new Http(400, 'MissingApiVersionParameter', 'api-version is required');
        if (throttle > 0) {
          throttle--;
          return send(429, { error: { code: 'Throttled', message: 'Rate limit exceeded' } }, { 'retry-after': '0' });
        }
        if (fail > 0) {
          fail--;
          throw new Http(failStatus, 'InternalServerError', 'injected failure');
        }
        const fault = (when: Fault['when']) => {
          const f = faults.find((x) => `${req.method} ${p}`.startsWith(x.route) && x.when === when && x.n > 0);
          if (f) {
            f.n--;
            throw new Http(f.status, 'ServiceUnavailable', `injected failure ${when} ${req.method} ${p}`);
          }
        };
        fault('before');
        const json = body ? JSON.parse(body) : {};
        const dm = /^\/deletedkeys\/([^/]+)$/.exec(p);
        if (dm && req.method === 'GET') {
          const gone = deleted.get(dm[1]);
          if (!gone) throw new Http(404, 'KeyNotFound', `A deleted key with (name/id) ${dm[1]} was not found in this key vault.`);
          return send(200, { ...bundle(gone[gone.length - 1]), recoveryId: `${base}/deletedkeys/${dm[1]}`, deletedDate: Math.floor(Date.now() / 1000) });
        }
        if (p === '/rng' && req.method === 'POST') return send(200, { value: randomBytes(Number(json.count)).toString('base64url') });
        const m = /^\/keys\/([^/]+)(?:\/([^/]*))?(?:\/([a-z]+))?$/.exec(p);
        if (!m) throw new Http(404, 'NotFound', `no route ${p}`);
        const [, name, version, op] = m;
        if ((req.method === 'PUT' && !version) || version === 'create') {
          // Key Vault's rule for key names.
          if (!/^[0-9a-zA-Z-]{1,127}$/.test(name))
            throw new Http(400, 'BadParameter', `Invalid key name ${name.slice(0, 40)}: 1-127 letters, digits and dashes.`);
        }
        if (version === 'create' && req.method === 'POST') {
          const k = createKey(name, json.kty, { crv: json.crv, size: json.key_size, ops: json.key_ops });
          return send(200, bundle(k));
        }
        if (req.method === 'PUT' && !version) {
          const made = bundle(importKey(name, json));
          fault('after');
          return send(200, made);
        }
        const all = history.get(name) ?? [];
        if (version === 'versions' && req.method === 'GET' && !op) {
          if (!all.length) throw new Http(404, 'KeyNotFound', `A key with (name/id) ${name} was not found in this key vault.`);
          return send(200, {
            value: all.map((v) => {
              const b = bundle(v);
              return { kid: b.key.kid, attributes: b.attributes, ...(v.tags ? { tags: v.tags } : {}) };
            }),
            nextLink: null,
          });
        }
        if (req.method === 'DELETE' && !version) {
          if (!all.length) throw new Http(404, 'KeyNotFound', `A key with (name/id) ${name} was not found in this key vault.`);
          keys.delete(name);
          history.delete(name);
          deleted.set(name, all);
          return send(200, { ...bundle(all[all.length - 1]), recoveryId: `${base}/deletedkeys/${name}`, deletedDate: Math.floor(Date.now() / 1000) });
        }
        const k = version ? all.find((v) => v.version === version) : keys.get(name);
        if (!k) throw new Http(404, 'KeyNotFound', `A key with (name/id) ${name} was not found in this key vault.`);
        if (req.method === 'GET' && !op) return send(200, bundle(k));
        if (req.method === 'PATCH' && version && !op) {
          if (typeof json.attributes?.enabled === 'boolean') k.enabled = json.attributes.enabled;
          if (json.tags) k.tags = json.tags;
          return send(200, bundle(k));
        }
        if (req.method === 'POST' && op) return send(200, keyOp(k, op, json));
        throw new Http(405, 'MethodNotAllowed', 'method not allowed');
      } catch (e) {
        if (e instanceof Http) return send(e.status, { error: { code: e.code, message: e.message } });
        return send(500, { error: { code: 'InternalServerError', message: (e as Error).message } });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://localhost:${(server.address() as { port: number }).port}`;
  return {
    base,
    vaultUrl: base,
    caPem: tls.caPem,
    tenantId,
    clientId,
    clientSecret,
    createKey,
    calls,
    get tokensIssued() {
      return state.tokensIssued;
    },
    throttleNext: (n) => {
      throttle = n;
    },
    failNext: (n, status = 500) => {
      fail = n;
      failStatus = status;
    },
    faultOn: (route, n, o = {}) => {
      faults.push({ route, n, when: o.when ?? 'before', status: o.status ?? 503 });
    },
    versionsOf: (name) => history.get(name) ?? [],
    deleted,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
