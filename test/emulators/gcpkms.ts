// A small Google Cloud KMS on 127.0.0.1 for testing the real @google-cloud/kms client
// over gRPC with TLS. It checks what Cloud KMS checks: every call carries a bearer JWT
// signed by the service account's key (verified with its public key, issuer and expiry),
// the resource exists, the key's purpose and algorithm fit the call, digest sizes; and it
// can be told to answer RESOURCE_EXHAUSTED or UNAVAILABLE.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createVerify,
  generateKeyPairSync,
  privateDecrypt,
  privateEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { digestInfo } from '../../src/keys/crypto';
import { pssEncode } from '../../src/keys/pss';

type Alg =
  | 'EC_SIGN_P256_SHA256'
  | 'EC_SIGN_P384_SHA384'
  | 'RSA_SIGN_PSS_2048_SHA256'
  | 'RSA_SIGN_PKCS1_2048_SHA256'
  | 'RSA_DECRYPT_OAEP_2048_SHA256'
  | 'GOOGLE_SYMMETRIC_ENCRYPTION';
type VersionState = 'ENABLED' | 'DISABLED' | 'DESTROY_SCHEDULED' | 'PENDING_IMPORT';
interface Version {
  name: string;
  alg: string;
  priv?: KeyObject;
  secret?: Buffer;
  state: VersionState;
  importJob?: string;
  protectionLevel: string;
}
interface CryptoKey {
  name: string;
  purpose: string;
  importOnly: boolean;
  labels: Record<string, string>;
  algorithm: string;
  protectionLevel: string;
  next: number;
}
interface ImportJob {
  name: string;
  importMethod: string;
  protectionLevel: string;
  wrapping: KeyObject;
}
interface Fault {
  method: string;
  when: 'before' | 'after';
  n: number;
  code: grpc.status;
}
const IMPORT_METHODS: Record<string, number> = { RSA_OAEP_3072_SHA256_AES_256: 3072, RSA_OAEP_4096_SHA256_AES_256: 4096 };

export interface GcpKmsEmulator {
  endpoint: string;
  caPem: string;
  credentialsJson: string;
  project: string;
  location: string;
  keyRing: string;
  createKey(cryptoKey: string, alg: Alg): string;
  failNext(n: number, code?: grpc.status): void;
  /** The next n calls of `method` fail with `code`: before it runs, or after it ran (the reply is lost). */
  faultOn(method: string, n: number, opts?: { when?: 'before' | 'after'; code?: grpc.status }): void;
  /** The next call of `method` waits, received, until the returned function is called (a call still in flight). */
  holdNext(method: string): { received: Promise<void>; release: () => void };
  cryptoKeys: Map<string, CryptoKey>;
  versions: Map<string, Version>;
  calls: Array<{ method: string; authorized: boolean }>;
  close(): Promise<void>;
}

function purposeOf(alg: string): string {
  return alg === 'GOOGLE_SYMMETRIC_ENCRYPTION' ? 'ENCRYPT_DECRYPT' : alg.includes('_DECRYPT_') ? 'ASYMMETRIC_DECRYPT' : 'ASYMMETRIC_SIGN';
}

export async function startGcpKms(tls: { certPem: string; keyPem: string; caPem: string }): Promise<GcpKmsEmulator> {
  const project = 'vpt-test',
    location = 'us-east1',
    keyRing = 'ring';
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = 'vault-plugin@vpt-test.iam.gserviceaccount.com';
  const versions = new Map<string, Version>();
  const primary = new Map<string, string>();
  const cryptoKeys = new Map<string, CryptoKey>();
  const importJobs = new Map<string, ImportJob>();
  const wrappingKeys = new Map<number, KeyObject>();
  const faults: Fault[] = [];
  const holds: Array<{ method: string; arrived: () => void; gate: Promise<void> }> = [];
  const ring = `projects/${project}/locations/${location}/keyRings/${keyRing}`;
  const calls: GcpKmsEmulator['calls'] = [];
  let fail = 0;
  let failCode = grpc.status.UNAVAILABLE;

  const keyPath = (k: string) => `projects/${project}/locations/${location}/keyRings/${keyRing}/cryptoKeys/${k}`;
  const createKey = (cryptoKey: string, alg: Alg): string => {
    cryptoKeys.set(keyPath(cryptoKey), {
      name: keyPath(cryptoKey),
      purpose: purposeOf(alg),
      importOnly: false,
      labels: {},
      algorithm: alg,
      protectionLevel: 'HSM',
      next: 2,
    });
    const v: Version = { name: `${keyPath(cryptoKey)}/cryptoKeyVersions/1`, alg, state: 'ENABLED', protectionLevel: 'HSM' };
    if (alg === 'GOOGLE_SYMMETRIC_ENCRYPTION') v.secret = randomBytes(32);
    else if (alg.startsWith('EC')) v.priv = generateKeyPairSync('ec', { namedCurve: alg.includes('P256') ? 'P-256' : 'P-384' }).privateKey;
    else v.priv = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    versions.set(v.name, v);
    primary.set(keyPath(cryptoKey), v.name);
    return v.name;
  };

  class Rpc extends Error {
    constructor(
      readonly code: grpc.status,
      msg: string,
    ) {
      super(msg);
    }
  }
  /** Any version, whatever its state (management calls). */
  const lookupVersion = (name: unknown) => {
    const v = versions.get(String(name)) ?? versions.get(primary.get(String(name)) ?? '');
    if (!v) throw new Rpc(grpc.status.NOT_FOUND, `${name} not found.`);
    return v;
  };
  /** A version usable for cryptography. */
  const version = (name: unknown) => {
    const v = lookupVersion(name);
    if (v.state !== 'ENABLED') throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not enabled, current state is: ${v.state}.`);
    return v;
  };
  const versionView = (v: Version) => ({
    name: v.name,
    state: v.state,
    algorithm: v.alg,
    protectionLevel: v.protectionLevel,
    ...(v.importJob ? { importJob: v.importJob } : {}),
  });
  const keyView = (k: CryptoKey) => ({
    name: k.name,
    purpose: k.purpose,
    importOnly: k.importOnly,
    labels: k.labels,
    versionTemplate: { algorithm: k.algorithm, protectionLevel: k.protectionLevel },
    ...(primary.has(k.name) ? { primary: versionView(versions.get(primary.get(k.name)!)!) } : {}),
  });
  const jobView = (j: ImportJob) => ({
    name: j.name,
    importMethod: j.importMethod,
    protectionLevel: j.protectionLevel,
    state: 'ACTIVE',
    publicKey: { pem: createPublicKey(j.wrapping).export({ type: 'spki', format: 'pem' }) },
  });

  /** Unwrap RSA_OAEP_*_SHA256_AES_256 material the way Cloud KMS does, and check it fits the algorithm. */
  function unwrapImport(job: ImportJob, alg: string, blob: Buffer): { secret?: Buffer; priv?: KeyObject } {
    const modBytes = IMPORT_METHODS[job.importMethod] / 8;
    let material: Buffer;
    try {
      const kek = privateDecrypt({ key: job.wrapping, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, blob.subarray(0, modBytes));
      const d = createDecipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
      material = Buffer.concat([d.update(blob.subarray(modBytes)), d.final()]);
    } catch {
      throw new Rpc(grpc.status.INVALID_ARGUMENT, "The wrapped key material could not be unwrapped with the import job's key.");
    }
    if (alg === 'GOOGLE_SYMMETRIC_ENCRYPTION') {
      if (material.length !== 32) throw new Rpc(grpc.status.INVALID_ARGUMENT, 'GOOGLE_SYMMETRIC_ENCRYPTION key material must be 32 bytes.');
      return { secret: material };
    }
    let priv: KeyObject;
    try {
      priv = createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
    } catch {
      throw new Rpc(grpc.status.INVALID_ARGUMENT, 'Key material is not a PKCS#8 private key.');
    }
    const d = priv.asymmetricKeyDetails!;
    const rsa = /^RSA_(?:SIGN_(?:PSS|PKCS1)|DECRYPT_OAEP)_(\d+)_/.exec(alg);
    const fits = rsa
      ? priv.asymmetricKeyType === 'rsa' && d.modulusLength === Number(rsa[1])
      : priv.asymmetricKeyType === 'ec' && d.namedCurve === (alg.includes('P256') ? 'prime256v1' : 'secp384r1');
    if (!fits) throw new Rpc(grpc.status.INVALID_ARGUMENT, `The key material does not match algorithm ${alg}.`);
    return { priv };
  }

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
    GetCryptoKeyVersion: (r) => versionView(lookupVersion(r.name)),
    GetPublicKey: (r) => {
      const v = version(r.name);
      if (!v.priv) throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not an asymmetric key`);
      return { name: v.name, algorithm: v.alg, pem: createPublicKey(v.priv).export({ type: 'spki', format: 'pem' }), protectionLevel: 'HSM' };
    },
    AsymmetricSign: (r) => {
      const v = version(r.name);
      if (!v.alg.includes('_SIGN_'))
        throw new Rpc(
          grpc.status.FAILED_PRECONDITION,
          `${v.name} has purpose ${v.alg.includes('DECRYPT') ? 'ASYMMETRIC_DECRYPT' : 'ENCRYPT_DECRYPT'}, not ASYMMETRIC_SIGN`,
        );
      const hash = v.alg.endsWith('SHA384') ? 'sha384' : v.alg.endsWith('SHA512') ? 'sha512' : 'sha256';
      const d: Buffer | undefined = r.digest?.[hash];
      if (!d || d.length !== ({ sha256: 32, sha384: 48, sha512: 64 } as const)[hash])
        throw new Rpc(grpc.status.INVALID_ARGUMENT, `The digest must be a ${hash.toUpperCase()} digest for algorithm ${v.alg}.`);
      let sig: Buffer;
      if (v.alg.startsWith('EC')) {
        const { p256, p384 } = require('@noble/curves/nist.js');
        sig = Buffer.from(
          (hash === 'sha256' ? p256 : p384).sign(d, Buffer.from(v.priv!.export({ format: 'jwk' }).d!, 'base64url'), {
            prehash: false,
            lowS: false,
            format: 'der',
          }),
        );
      } else if (v.alg.includes('PSS'))
        sig = privateEncrypt({ key: v.priv!, padding: constants.RSA_NO_PADDING }, pssEncode(d, hash, v.priv!.asymmetricKeyDetails!.modulusLength!));
      else sig = privateEncrypt({ key: v.priv!, padding: constants.RSA_PKCS1_PADDING }, digestInfo(hash, d));
      return { name: v.name, signature: sig };
    },
    AsymmetricDecrypt: (r) => {
      const v = version(r.name);
      if (!v.alg.includes('DECRYPT_OAEP')) throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not an ASYMMETRIC_DECRYPT key`);
      try {
        return { plaintext: privateDecrypt({ key: v.priv!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, r.ciphertext) };
      } catch {
        throw new Rpc(grpc.status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.');
      }
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
      } catch {
        throw new Rpc(grpc.status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.');
      }
    },
    GenerateRandomBytes: (r) => {
      if (!(r.lengthBytes > 0 && r.lengthBytes <= 1024)) throw new Rpc(grpc.status.INVALID_ARGUMENT, 'length_bytes must be 1-1024');
      return { data: randomBytes(r.lengthBytes) };
    },
    CreateCryptoKey: (r) => {
      const name = `${r.parent}/cryptoKeys/${r.cryptoKeyId}`;
      if (cryptoKeys.has(name)) throw new Rpc(grpc.status.ALREADY_EXISTS, `${name} already exists`);
      if (r.parent !== ring) throw new Rpc(grpc.status.NOT_FOUND, `${r.parent} not found.`);
      if (!/^[a-zA-Z0-9_-]{1,63}$/.test(r.cryptoKeyId ?? '')) throw new Rpc(grpc.status.INVALID_ARGUMENT, 'crypto_key_id must match [a-zA-Z0-9_-]{1,63}');
      const alg = r.cryptoKey?.versionTemplate?.algorithm ?? 'GOOGLE_SYMMETRIC_ENCRYPTION';
      if (r.cryptoKey?.purpose && r.cryptoKey.purpose !== purposeOf(alg))
        throw new Rpc(grpc.status.INVALID_ARGUMENT, `algorithm ${alg} is not valid for purpose ${r.cryptoKey.purpose}`);
      if (r.skipInitialVersionCreation) {
        const k: CryptoKey = {
          name,
          purpose: purposeOf(alg),
          importOnly: !!r.cryptoKey?.importOnly,
          labels: r.cryptoKey?.labels ?? {},
          algorithm: alg,
          protectionLevel: r.cryptoKey?.versionTemplate?.protectionLevel ?? 'SOFTWARE',
          next: 1,
        };
        cryptoKeys.set(name, k);
        return keyView(k);
      }
      createKey(r.cryptoKeyId, alg);
      return keyView(cryptoKeys.get(name)!);
    },
    GetCryptoKey: (r) => {
      const k = cryptoKeys.get(r.name);
      if (!k) throw new Rpc(grpc.status.NOT_FOUND, `${r.name} not found.`);
      return keyView(k);
    },
    CreateImportJob: (r) => {
      if (r.parent !== ring) throw new Rpc(grpc.status.NOT_FOUND, `${r.parent} not found.`);
      const name = `${r.parent}/importJobs/${r.importJobId}`;
      if (importJobs.has(name)) throw new Rpc(grpc.status.ALREADY_EXISTS, `${name} already exists`);
      const bits = IMPORT_METHODS[r.importJob?.importMethod];
      if (!bits) throw new Rpc(grpc.status.INVALID_ARGUMENT, `import_method ${r.importJob?.importMethod} is not supported`);
      // Cloud KMS makes a key pair per job; one per size here keeps tests fast.
      const wrapping = wrappingKeys.get(bits) ?? generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
      wrappingKeys.set(bits, wrapping);
      const job: ImportJob = { name, importMethod: r.importJob.importMethod, protectionLevel: r.importJob.protectionLevel ?? 'SOFTWARE', wrapping };
      importJobs.set(name, job);
      return jobView(job);
    },
    GetImportJob: (r) => {
      const j = importJobs.get(r.name);
      if (!j) throw new Rpc(grpc.status.NOT_FOUND, `${r.name} not found.`);
      return jobView(j);
    },
    ImportCryptoKeyVersion: (r) => {
      const k = cryptoKeys.get(r.parent);
      if (!k) throw new Rpc(grpc.status.NOT_FOUND, `${r.parent} not found.`);
      const job = importJobs.get(r.importJob);
      if (!job) throw new Rpc(grpc.status.NOT_FOUND, `${r.importJob} not found.`);
      if (job.protectionLevel !== k.protectionLevel)
        throw new Rpc(
          grpc.status.FAILED_PRECONDITION,
          `import job protection level ${job.protectionLevel} does not match the crypto key's ${k.protectionLevel}`,
        );
      if (purposeOf(r.algorithm) !== k.purpose) throw new Rpc(grpc.status.INVALID_ARGUMENT, `algorithm ${r.algorithm} is not valid for purpose ${k.purpose}`);
      if (!r.rsaAesWrappedKey) throw new Rpc(grpc.status.INVALID_ARGUMENT, 'rsa_aes_wrapped_key is required for this import method');
      const material = unwrapImport(job, r.algorithm, r.rsaAesWrappedKey);
      const v: Version = {
        name: `${k.name}/cryptoKeyVersions/${k.next++}`,
        alg: r.algorithm,
        state: 'ENABLED',
        importJob: job.name,
        protectionLevel: k.protectionLevel,
        ...material,
      };
      versions.set(v.name, v);
      // Like Cloud KMS: the first version of a symmetric key becomes primary.
      if (k.purpose === 'ENCRYPT_DECRYPT' && !primary.has(k.name)) primary.set(k.name, v.name);
      return versionView(v);
    },
    ListCryptoKeyVersions: (r) => {
      const list = [...versions.values()].filter((v) => v.name.startsWith(`${r.parent}/cryptoKeyVersions/`));
      return { cryptoKeyVersions: list.map(versionView), totalSize: list.length, nextPageToken: '' };
    },
    UpdateCryptoKeyVersion: (r) => {
      const v = lookupVersion(r.cryptoKeyVersion?.name);
      if (!(r.updateMask?.paths ?? []).includes('state')) throw new Rpc(grpc.status.INVALID_ARGUMENT, 'update_mask must name state');
      const want = r.cryptoKeyVersion.state;
      if (want !== 'ENABLED' && want !== 'DISABLED') throw new Rpc(grpc.status.INVALID_ARGUMENT, `state ${want} cannot be set`);
      if (v.state !== 'ENABLED' && v.state !== 'DISABLED') throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is ${v.state}`);
      v.state = want;
      return versionView(v);
    },
    UpdateCryptoKeyPrimaryVersion: (r) => {
      const k = cryptoKeys.get(r.name);
      if (!k) throw new Rpc(grpc.status.NOT_FOUND, `${r.name} not found.`);
      if (k.purpose !== 'ENCRYPT_DECRYPT') throw new Rpc(grpc.status.FAILED_PRECONDITION, `${k.name} has no primary version (purpose ${k.purpose})`);
      const v = lookupVersion(`${k.name}/cryptoKeyVersions/${r.cryptoKeyVersionId}`);
      if (v.state !== 'ENABLED') throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is not enabled`);
      primary.set(k.name, v.name);
      return keyView(k);
    },
    DestroyCryptoKeyVersion: (r) => {
      const v = lookupVersion(r.name);
      if (v.state === 'DESTROY_SCHEDULED') throw new Rpc(grpc.status.FAILED_PRECONDITION, `${v.name} is already scheduled for destruction`);
      v.state = 'DESTROY_SCHEDULED';
      return versionView(v);
    },
  };

  const json = require('@google-cloud/kms/build/protos/protos.json');
  const pkg = grpc.loadPackageDefinition(protoLoader.fromJSON(json, { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: true })) as any;
  const svc = pkg.google.cloud.kms.v1.KeyManagementService.service as grpc.ServiceDefinition;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(svc)) {
    impl[method] = (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      const hold = holds.findIndex((h) => h.method === method);
      if (hold < 0) return answer(method, call, cb);
      const [h] = holds.splice(hold, 1);
      h.arrived();
      void h.gate.then(() => answer(method, call, cb));
    };
  }
  function answer(method: string, call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>): void {
    let authorized = false;
    try {
      if (fail > 0) {
        fail--;
        throw new Rpc(failCode, 'injected failure');
      }
      const fault = (when: Fault['when']) => {
        const f = faults.find((x) => x.method === method && x.when === when && x.n > 0);
        if (f) {
          f.n--;
          throw new Rpc(f.code, `injected failure ${when} ${method}`);
        }
      };
      fault('before');
      authorize(call.metadata);
      authorized = true;
      const h = handlers[method];
      if (!h) throw new Rpc(grpc.status.UNIMPLEMENTED, `${method} is not implemented by the emulator`);
      const out = h(call.request);
      fault('after');
      cb(null, out);
    } catch (e) {
      cb({ code: e instanceof Rpc ? e.code : grpc.status.INTERNAL, details: (e as Error).message });
    } finally {
      calls.push({ method, authorized });
    }
  }
  const server = new grpc.Server();
  server.addService(svc, impl);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.certPem) }], false),
      (e, p) => (e ? rej(e) : res(p)),
    ),
  );
  return {
    endpoint: `localhost:${port}`,
    caPem: tls.caPem,
    project,
    location,
    keyRing,
    createKey,
    calls,
    holdNext: (method) => {
      let arrived!: () => void;
      let release!: () => void;
      const received = new Promise<void>((r) => (arrived = r));
      holds.push({ method, arrived, gate: new Promise<void>((r) => (release = r)) });
      return { received, release };
    },
    credentialsJson: JSON.stringify({
      type: 'service_account',
      project_id: project,
      private_key_id: 'k1',
      client_email: email,
      client_id: '1',
      private_key: sa.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      // Never contacted: the client must use self-signed JWTs. Pointing here makes any attempt fail fast.
      token_uri: 'http://127.0.0.1:9/token',
    }),
    failNext: (n, code = grpc.status.UNAVAILABLE) => {
      fail = n;
      failCode = code;
    },
    faultOn: (method, n, o = {}) => {
      faults.push({ method, n, when: o.when ?? 'before', code: o.code ?? grpc.status.UNAVAILABLE });
    },
    cryptoKeys,
    versions,
    close: () => new Promise((r) => server.tryShutdown(() => r())),
  };
}
