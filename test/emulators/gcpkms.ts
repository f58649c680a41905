// A small Google Cloud KMS on 127.0.0.1 for testing the real @google-cloud/kms client
// over gRPC with TLS. It checks what Cloud KMS checks: every call carries a bearer JWT
// signed by the service account's key (verified with its public key, issuer and expiry),
// the resource exists, the key's purpose and algorithm fit the call, digest sizes; and it
// can be told to answer RESOURCE_EXHAUSTED or UNAVAILABLE.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { constants, createCipheriv, createDecipheriv, createPublicKey, createVerify, generateKeyPairSync, privateDecrypt, privateEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { digestInfo, pssEncode } from '../../src/keys/crypto';

type Alg = 'EC_SIGN_P256_SHA256' | 'EC_SIGN_P384_SHA384' | 'RSA_SIGN_PSS_2048_SHA256' | 'RSA_SIGN_PKCS1_2048_SHA256' | 'RSA_DECRYPT_OAEP_2048_SHA256' | 'GOOGLE_SYMMETRIC_ENCRYPTION';
interface Version { name: string; alg: Alg; priv?: KeyObject; secret?: Buffer }

export interface GcpKmsEmulator {
  endpoint: string;
  caPem: string;
  credentialsJson: string;
  project: string;
  location: string;
  keyRing: string;
  createKey(cryptoKey: string, alg: Alg): string;
  failNext(n: number, code?: grpc.status): void;
  calls: Array<{ method: string; authorized: boolean }>;
  close(): Promise<void>;
}

export async function startGcpKms(tls: { certPem: string; keyPem: string; caPem: string }): Promise<GcpKmsEmulator> {
  const project = 'vpt-test', location = 'us-east1', keyRing = 'ring';
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = 'vault-plugin@vpt-test.iam.gserviceaccount.com';
  const versions = new Map<string, Version>();
  const primary = new Map<string, string>();
  const calls: GcpKmsEmulator['calls'] = [];
  let fail = 0;
  let failCode = grpc.status.UNAVAILABLE;

  const keyPath = (k: string) => `projects/${project}/locations/${location}/keyRings/${keyRing}/cryptoKeys/${k}`;
  const createKey = (cryptoKey: string, alg: Alg): string => {
    const v: Version = { name: `${keyPath(cryptoKey)}/cryptoKeyVersions/1`, alg };
    if (alg === 'GOOGLE_SYMMETRIC_ENCRYPTION') v.secret = randomBytes(32);
    else if (alg.startsWith('EC')) v.priv = generateKeyPairSync('ec', { namedCurve: alg.includes('P256') ? 'P-256' : 'P-384' }).privateKey;
    else v.priv = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    versions.set(v.name, v);
    primary.set(keyPath(cryptoKey), v.name);
    return v.name;
  };

  class Rpc extends Error { constructor(readonly code: grpc.status, msg: string) { super(msg); } }
  const version = (name: unknown) => {
    const v = versions.get(String(name)) ?? versions.get(primary.get(String(name)) ?? '');
    if (!v) throw new Rpc(grpc.status.NOT_FOUND, `${name} not found.`);
    return v;
  };

  /** Verify "authorization: Bearer <JWT>" signed (RS256) by the service account. */
  function authorize(md: grpc.Metadata): void {
    const h = String(md.get('authorization')[0] ?? '');
    const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(h);
    if (!m) throw new Rpc(grpc.status.UNAUTHENTICATED, 'Request is missing required authentication credential.');
    const ok = createVerify('RSA-SHA256').update(`${m[1]}.${m[2]}`).verify(sa.publicKey, Buffer.from(m[3], 'base64url'));
    const claims = JSON.parse(Buffer.from(m[2], 'base64url').toString());
    if (!ok || claims.iss !== email) throw new Rpc(grpc.status.UNAUTHENTICATED, 'Request had invalid authentication credentials.');
    if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) throw new Rpc(grpc.status.UNAUTHENTICATED, 'token expired');
  }

  const handlers: Record<string, (req: Record<string, any>) => unknown> = {
    GetCryptoKeyVersion: (r) => { const v = version(r.name); return { name: v.name, state: 'ENABLED', algorithm: v.alg, protectionLevel: 'HSM' }; },
    GetPublicKey: (r) => {
      const v = version(r.name);
      if (!v.priv) throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not an asymmetric key`);
      return { name: v.name, algorithm: v.alg, pem: createPublicKey(v.priv).export({ type: 'spki', format: 'pem' }), protectionLevel: 'HSM' };
    },
    AsymmetricSign: (r) => {
      const v = version(r.name);
      if (!v.alg.includes('_SIGN_')) throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} has purpose ${v.alg.includes('DECRYPT') ? 'ASYMMETRIC_DECRYPT' : 'ENCRYPT_DECRYPT'}, not ASYMMETRIC_SIGN`);
      const hash = v.alg.endsWith('SHA384') ? 'sha384' : 'sha256';
      const d: Buffer | undefined = r.digest?.[hash];
      if (!d || d.length !== (hash === 'sha256' ? 32 : 48)) throw new Rpc(grpc.status.INVALID_ARGUMENT, `The digest must be a ${hash.toUpperCase()} digest for algorithm ${v.alg}.`);
      let sig: Buffer;
      if (v.alg.startsWith('EC')) {
        const { p256, p384 } = require('@noble/curves/nist.js');
        sig = Buffer.from((hash === 'sha256' ? p256 : p384).sign(d, Buffer.from(v.priv!.export({ format: 'jwk' }).d!, 'base64url'), { prehash: false, lowS: false, format: 'der' }));
      } else if (v.alg.includes('PSS')) sig = privateEncrypt({ key: v.priv!, padding: constants.RSA_NO_PADDING }, pssEncode(d, hash, 2048));
      else sig = privateEncrypt({ key: v.priv!, padding: constants.RSA_PKCS1_PADDING }, digestInfo(hash, d));
      return { name: v.name, signature: sig };
    },
    AsymmetricDecrypt: (r) => {
      const v = version(r.name);
      if (!v.alg.includes('DECRYPT_OAEP')) throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not an ASYMMETRIC_DECRYPT key`);
      try { return { plaintext: privateDecrypt({ key: v.priv!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, r.ciphertext) }; }
      catch { throw new Rpc(grpc.status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.'); }
    },
    Encrypt: (r) => {
      const v = version(r.name);
      if (!v.secret) throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not an ENCRYPT_DECRYPT key`);
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', v.secret, iv);
      c.setAAD(r.additionalAuthenticatedData ?? Buffer.alloc(0));
      return { name: v.name, ciphertext: Buffer.concat([iv, c.update(r.plaintext ?? Buffer.alloc(0)), c.final(), c.getAuthTag()]) };
    },
    Decrypt: (r) => {
      const v = version(r.name);
      if (!v.secret) throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not an ENCRYPT_DECRYPT key`);
      const ct: Buffer = r.ciphertext ?? Buffer.alloc(0);
      try {
        const d = createDecipheriv('aes-256-gcm', v.secret, ct.subarray(0, 12));
        d.setAAD(r.additionalAuthenticatedData ?? Buffer.alloc(0));
        d.setAuthTag(ct.subarray(ct.length - 16));
        return { plaintext: Buffer.concat([d.update(ct.subarray(12, ct.length - 16)), d.final()]) };
      } catch { throw new Rpc(grpc.status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.'); }
    },
    GenerateRandomBytes: (r) => {
      if (!(r.lengthBytes > 0 && r.lengthBytes <= 1024)) throw new Rpc(grpc.status.INVALID_ARGUMENT, 'length_bytes must be 1-1024');
      return { data: randomBytes(r.lengthBytes) };
    },
    CreateCryptoKey: (r) => {
      const name = `${r.parent}/cryptoKeys/${r.cryptoKeyId}`;
      if (primary.has(name)) throw new Rpc(grpc.status.ALREADY_EXISTS, `${name} already exists`);
      if (r.parent !== `projects/${project}/locations/${location}/keyRings/${keyRing}`) throw new Rpc(grpc.status.NOT_FOUND, `${r.parent} not found.`);
      createKey(r.cryptoKeyId, r.cryptoKey?.versionTemplate?.algorithm ?? 'GOOGLE_SYMMETRIC_ENCRYPTION');
      return { name, purpose: r.cryptoKey?.purpose };
    },
  };

  const json = require('@google-cloud/kms/build/protos/protos.json');
  const pkg = grpc.loadPackageDefinition(protoLoader.fromJSON(json, { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true })) as any;
  const svc = pkg.google.cloud.kms.v1.KeyManagementService.service as grpc.ServiceDefinition;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(svc)) {
    impl[method] = (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      let authorized = false;
      try {
        if (fail > 0) { fail--; throw new Rpc(failCode, 'injected failure'); }
        authorize(call.metadata);
        authorized = true;
        const h = handlers[method];
        if (!h) throw new Rpc(grpc.status.UNIMPLEMENTED, `${method} is not implemented by the emulator`);
        cb(null, h(call.request));
      } catch (e) {
        cb({ code: e instanceof Rpc ? e.code : grpc.status.INTERNAL, details: (e as Error).message });
      } finally {
        calls.push({ method, authorized });
      }
    };
  }
  const server = new grpc.Server();
  server.addService(svc, impl);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0',
    grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.certPem) }], false),
    (e, p) => (e ? rej(e) : res(p))));
  return {
    endpoint: `localhost:${port}`, caPem: tls.caPem, project, location, keyRing, createKey, calls,
    credentialsJson: JSON.stringify({
      type: 'service_account', project_id: project, private_key_id: 'k1', client_email: email, client_id: '1',
      private_key: sa.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      // Never contacted: the client must use self-signed JWTs. Pointing here makes any attempt fail fast.
      token_uri: 'http://127.0.0.1:9/token',
    }),
    failNext: (n, code = grpc.status.UNAVAILABLE) => { fail = n; failCode = code; },
    close: () => new Promise((r) => server.tryShutdown(() => r())),
  };
}
