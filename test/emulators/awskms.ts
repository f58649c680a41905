// A small AWS KMS on 127.0.0.1 for testing the real @aws-sdk/client-kms over HTTP. It
// checks what KMS checks: a valid SigV4 signature from a known access key (recomputed,
// not just present), the key exists and is enabled, the key usage and the algorithm fit
// the key, digest sizes; and it can be told to throttle or fail with 5xx.
import * as http from 'node:http';
import { constants, createCipheriv, createDecipheriv, createHash, createPublicKey, generateKeyPairSync, privateDecrypt, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { pssEncode, digestInfo } from '../../src/keys/crypto';

type Spec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521' | 'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'SYMMETRIC_DEFAULT';
interface Key { id: string; arn: string; spec: Spec; usage: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT'; priv?: KeyObject; secret?: Buffer; enabled: boolean }

const SIGNING: Record<string, string[]> = {
  ECC_NIST_P256: ['ECDSA_SHA_256'], ECC_NIST_P384: ['ECDSA_SHA_384'], ECC_NIST_P521: ['ECDSA_SHA_512'],
  RSA: ['RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512', 'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512'],
};
const signingAlgs = (s: Spec) => (s.startsWith('RSA') ? SIGNING.RSA : SIGNING[s] ?? []);

class KmsError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) { super(message); }
}

export interface AwsKmsEmulator {
  url: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  createKey(spec: Spec, usage?: Key['usage'], alias?: string): Key;
  /** The next n requests get ThrottlingException (400) or a 5xx. */
  throttleNext(n: number): void;
  failNext(n: number, status?: number): void;
  /** Requests seen, by operation. */
  calls: string[];
  close(): Promise<void>;
}

export async function startAwsKms(): Promise<AwsKmsEmulator> {
  const region = 'us-east-1';
  const accessKeyId = 'AKIATESTEMULATOR0001';
  const secretAccessKey = randomBytes(30).toString('base64');
  const signer = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region, service: 'kms', sha256: Hash.bind(null, 'sha256') });
  const keys = new Map<string, Key>();
  const aliases = new Map<string, string>();
  let throttle = 0;
  let fail = 0;
  let failStatus = 500;
  const calls: string[] = [];

  const createKey = (spec: Spec, usage?: Key['usage'], alias?: string): Key => {
    const id = randomUUID();
    const k: Key = { id, arn: `arn:aws:kms:${region}:111122223333:key/${id}`, spec, usage: usage ?? (spec === 'SYMMETRIC_DEFAULT' ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY'), enabled: true };
    if (spec === 'SYMMETRIC_DEFAULT') k.secret = randomBytes(32);
    else if (spec.startsWith('ECC')) k.priv = generateKeyPairSync('ec', { namedCurve: { ECC_NIST_P256: 'P-256', ECC_NIST_P384: 'P-384', ECC_NIST_P521: 'P-521' }[spec as 'ECC_NIST_P256'] }).privateKey;
    else k.priv = generateKeyPairSync('rsa', { modulusLength: Number(spec.slice(4)) }).privateKey;
    keys.set(id, k);
    if (alias) aliases.set(alias, id);
    return k;
  };

  const find = (keyId: unknown): Key => {
    if (typeof keyId !== 'string' || !keyId) throw new KmsError('ValidationException', 'KeyId is required');
    const id = keyId.startsWith('alias/') ? aliases.get(keyId) : keyId.startsWith('arn:') ? keyId.split('/').pop() : keyId;
    const k = id && keys.get(id);
    if (!k) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
    if (!k.enabled) throw new KmsError('DisabledException', `${k.arn} is disabled.`);
    return k;
  };
  const b64 = (v: unknown, what: string) => {
    if (typeof v !== 'string') throw new KmsError('ValidationException', `${what} is required`);
    return Buffer.from(v, 'base64');
  };
  const meta = (k: Key) => ({
    KeyId: k.id, Arn: k.arn, KeySpec: k.spec, CustomerMasterKeySpec: k.spec, KeyUsage: k.usage, KeyState: 'Enabled', Enabled: true,
    ...(k.usage === 'SIGN_VERIFY' ? { SigningAlgorithms: signingAlgs(k.spec) } : { EncryptionAlgorithms: k.spec === 'SYMMETRIC_DEFAULT' ? ['SYMMETRIC_DEFAULT'] : ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] }),
  });
  const context = (c: unknown) => Buffer.from(JSON.stringify(Object.entries((c ?? {}) as Record<string, string>).sort()));

  const ops: Record<string, (b: Record<string, unknown>) => unknown> = {
    DescribeKey: (b) => ({ KeyMetadata: meta(find(b.KeyId)) }),
    CreateKey: (b) => ({ KeyMetadata: meta(createKey((b.KeySpec ?? 'SYMMETRIC_DEFAULT') as Spec, b.KeyUsage as Key['usage'])) }),
    CreateAlias: (b) => {
      const name = String(b.AliasName ?? '');
      if (!name.startsWith('alias/')) throw new KmsError('ValidationException', 'AliasName must start with alias/');
      if (aliases.has(name)) throw new KmsError('AlreadyExistsException', `An alias with the name ${name} already exists`);
      aliases.set(name, find(b.TargetKeyId).id);
      return {};
    },
    GetPublicKey: (b) => {
      const k = find(b.KeyId);
      if (!k.priv) throw new KmsError('UnsupportedOperationException', `${k.arn} key usage is ENCRYPT_DECRYPT which is not valid for GetPublicKey.`);
      return { ...meta(k), KeyId: k.arn, PublicKey: createPublicKey(k.priv).export({ type: 'spki', format: 'der' }).toString('base64') };
    },
    Sign: (b) => {
      const k = find(b.KeyId);
      if (k.usage !== 'SIGN_VERIFY') throw new KmsError('InvalidKeyUsageException', `${k.arn} key usage is ENCRYPT_DECRYPT which is not valid for Sign.`);
      const alg = String(b.SigningAlgorithm ?? '');
      if (!signingAlgs(k.spec).includes(alg)) throw new KmsError('InvalidKeyUsageException', `Algorithm ${alg} is incompatible with key spec ${k.spec}.`);
      const hash = ('sha' + alg.slice(-3)) as 'sha256' | 'sha384' | 'sha512';
      const msg = b64(b.Message, 'Message');
      let d: Buffer;
      if (b.MessageType === 'DIGEST') {
        if (msg.length !== { sha256: 32, sha384: 48, sha512: 64 }[hash]) throw new KmsError('ValidationException', 'Digest is invalid length for algorithm ' + alg);
        d = msg;
      } else {
        if (msg.length > 4096) throw new KmsError('ValidationException', 'Message must be at most 4096 bytes');
        d = createHash(hash).update(msg).digest();
      }
      let sig: Buffer;
      if (k.spec.startsWith('ECC')) {
        const { p256, p384, p521 } = require('@noble/curves/nist.js');
        const curve = { ECC_NIST_P256: p256, ECC_NIST_P384: p384, ECC_NIST_P521: p521 }[k.spec as 'ECC_NIST_P256'];
        sig = Buffer.from(curve.sign(d, Buffer.from(k.priv!.export({ format: 'jwk' }).d!, 'base64url'), { prehash: false, lowS: false, format: 'der' }));
      } else if (alg.includes('PSS')) {
        sig = require('node:crypto').privateEncrypt({ key: k.priv!, padding: constants.RSA_NO_PADDING }, pssEncode(d, hash, Number(k.spec.slice(4))));
      } else {
        sig = require('node:crypto').privateEncrypt({ key: k.priv!, padding: constants.RSA_PKCS1_PADDING }, digestInfo(hash, d));
      }
      return { KeyId: k.arn, Signature: sig.toString('base64'), SigningAlgorithm: alg };
    },
    Encrypt: (b) => {
      const k = find(b.KeyId);
      if (k.usage !== 'ENCRYPT_DECRYPT') throw new KmsError('InvalidKeyUsageException', `${k.arn} key usage is SIGN_VERIFY which is not valid for Encrypt.`);
      const pt = b64(b.Plaintext, 'Plaintext');
      if (pt.length > 4096) throw new KmsError('ValidationException', 'Plaintext must be at most 4096 bytes');
      if (!k.secret) throw new KmsError('ValidationException', 'use the public key for RSA encryption in this emulator');
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', k.secret, iv);
      c.setAAD(context(b.EncryptionContext));
      const body = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
      const idb = Buffer.from(k.id);
      return { KeyId: k.arn, CiphertextBlob: Buffer.concat([Buffer.from([idb.length]), idb, iv, body]).toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    },
    Decrypt: (b) => {
      const blob = b64(b.CiphertextBlob, 'CiphertextBlob');
      if (b.EncryptionAlgorithm && b.EncryptionAlgorithm !== 'SYMMETRIC_DEFAULT') {
        const k = find(b.KeyId);
        if (!k.priv || k.usage !== 'ENCRYPT_DECRYPT') throw new KmsError('InvalidKeyUsageException', `${k.arn} is not an encryption key`);
        try {
          return { KeyId: k.arn, Plaintext: privateDecrypt({ key: k.priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: String(b.EncryptionAlgorithm).endsWith('SHA_1') ? 'sha1' : 'sha256' }, blob).toString('base64') };
        } catch { throw new KmsError('InvalidCiphertextException', ''); }
      }
      const idLen = blob[0] ?? 0;
      const k = find(blob.subarray(1, 1 + idLen).toString() || 'missing');
      if (b.KeyId && find(b.KeyId).id !== k.id) throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
      const rest = blob.subarray(1 + idLen);
      try {
        const d = createDecipheriv('aes-256-gcm', k.secret!, rest.subarray(0, 12));
        d.setAAD(context(b.EncryptionContext));
        d.setAuthTag(rest.subarray(rest.length - 16));
        return { KeyId: k.arn, Plaintext: Buffer.concat([d.update(rest.subarray(12, rest.length - 16)), d.final()]).toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      } catch { throw new KmsError('InvalidCiphertextException', ''); }
    },
    GenerateRandom: (b) => {
      const n = Number(b.NumberOfBytes);
      if (!Number.isInteger(n) || n < 1 || n > 1024) throw new KmsError('ValidationException', 'NumberOfBytes must be 1-1024');
      return { Plaintext: randomBytes(n).toString('base64') };
    },
  };

  async function checkSignature(req: http.IncomingMessage, body: Buffer, port: number): Promise<void> {
    const auth = String(req.headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/kms\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    if (m[1] !== accessKeyId) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (m[3] !== region) throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${m[3]}'.`);
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const when = new Date(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
    if (Number.isNaN(when.getTime()) || Math.abs(when.getTime() - Date.now()) > 15 * 60_000) throw new KmsError('InvalidSignatureException', 'Signature expired');
    const signed = m[4].split(';');
    const headers: Record<string, string> = {};
    for (const h of signed) headers[h] = String(req.headers[h] ?? '');
    const copy = new HttpRequest({ method: req.method, protocol: 'http:', hostname: '127.0.0.1', port, path: req.url ?? '/', headers, body: body.toString() });
    const resigned = await signer.sign(copy, { signingDate: when, signableHeaders: new Set(signed) });
    const expect = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers.authorization))?.[1];
    if (expect !== m[5]) throw new KmsError('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const send = (status: number, obj: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        res.end(JSON.stringify(obj));
      };
      const op = String(req.headers['x-amz-target'] ?? '').replace(/^TrentService\./, '');
      calls.push(op);
      try {
        if (throttle > 0) { throttle--; throw new KmsError('ThrottlingException', 'Rate exceeded'); }
        if (fail > 0) { fail--; throw new KmsError('KMSInternalException', 'internal error', failStatus); }
        const body = Buffer.concat(chunks);
        await checkSignature(req, body, (server.address() as { port: number }).port);
        const fn = ops[op];
        if (!fn) throw new KmsError('UnknownOperationException', `unknown operation ${op}`);
        send(200, fn(JSON.parse(body.toString() || '{}')));
      } catch (e) {
        if (e instanceof KmsError) send(e.status, { __type: e.type, message: e.message });
        else send(500, { __type: 'KMSInternalException', message: (e as Error).message });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    region, accessKeyId, secretAccessKey, createKey, calls,
    throttleNext: (n) => { throttle = n; },
    failNext: (n, status = 500) => { fail = n; failStatus = status; },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
