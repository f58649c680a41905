// A small AWS KMS on 127.0.0.1 for testing the real @aws-sdk/client-kms over HTTP. It
// checks what KMS checks: a valid SigV4 signature from a known access key (recomputed,
// not just present), the key exists and is enabled, the key usage and the algorithm fit
// the key, digest sizes; and it can be told to throttle or fail with 5xx. One endpoint
// serves every region: a request's region is its signature's credential scope (as a
// regional endpoint's is), and each region has its own keys and aliases. Multi-Region
// keys (CreateKey MultiRegion, ReplicateKey) share their id and, with imported material,
// KMS's rule that every key of the group takes the same material.
import * as http from 'node:http';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
  randomUUID,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { digestInfo } from '../../src/keys/crypto';
import { pssEncode } from '../../src/keys/pss';

type Spec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521' | 'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'SYMMETRIC_DEFAULT';
type KeyState = 'Creating' | 'Enabled' | 'Disabled' | 'PendingImport' | 'PendingDeletion' | 'PendingReplicaDeletion';
interface Key {
  id: string;
  arn: string;
  region: string;
  spec: Spec;
  usage: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT';
  priv?: KeyObject;
  secret?: Buffer;
  enabled: boolean;
  state: KeyState;
  origin: 'AWS_KMS' | 'EXTERNAL';
  description: string;
  tags: Array<{ TagKey: string; TagValue: string }>;
  /** The outstanding import parameters (GetParametersForImport), as KMS keeps them. */
  importParams?: { token: Buffer; wrapping: KeyObject; algorithm: string; validTo: number };
  /** Multi-Region keys: PRIMARY or REPLICA, and the group (primary and replicas) it belongs to. */
  multiRegion?: 'PRIMARY' | 'REPLICA';
  group?: MrkGroup;
  /** A new replica is Creating until this time (ms). */
  creatingUntil?: number;
}
/** The keys of one multi-Region key, by region, and the material imported into any of them. */
interface MrkGroup {
  primary: string;
  members: Map<string, Key>;
  material?: Buffer;
}
/** A fault for one operation (in one region, or any): before it runs (nothing done), or after it ran (the reply is lost). */
interface Fault {
  op: string;
  region?: string;
  when: 'before' | 'after';
  n: number;
  status: number;
  type: string;
}
const WRAPPING_ALGORITHMS = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256'];
const CURVE_OF: Record<string, string> = { ECC_NIST_P256: 'prime256v1', ECC_NIST_P384: 'secp384r1', ECC_NIST_P521: 'secp521r1' };

const SIGNING: Record<string, string[]> = {
  ECC_NIST_P256: ['ECDSA_SHA_256'],
  ECC_NIST_P384: ['ECDSA_SHA_384'],
  ECC_NIST_P521: ['ECDSA_SHA_512'],
  RSA: [
    'RSASSA_PSS_SHA_256',
    'RSASSA_PSS_SHA_384',
    'RSASSA_PSS_SHA_512',
    'RSASSA_PKCS1_V1_5_SHA_256',
    'RSASSA_PKCS1_V1_5_SHA_384',
    'RSASSA_PKCS1_V1_5_SHA_512',
  ],
};
const signingAlgs = (s: Spec) => (s.startsWith('RSA') ? SIGNING.RSA : (SIGNING[s] ?? []));

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface AwsKmsEmulator {
  url: string;
  /** The default region (createKey's, aliasTarget's). */
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  createKey(spec: Spec, usage?: Key['usage'], alias?: string): Key;
  /** The next n requests get ThrottlingException (400) or a 5xx. */
  throttleNext(n: number): void;
  failNext(n: number, status?: number): void;
  /** The next n calls of `op` (in `region`, or any) fail: `before` it runs, or `after` it ran (the caller never learns it succeeded). */
  faultOn(op: string, n: number, opts?: { when?: 'before' | 'after'; status?: number; type?: string; region?: string }): void;
  /** The next call of `op` waits, received, until the returned function is called (a call still in flight). */
  holdNext(op: string): { received: Promise<void>; release: () => void };
  /** A region not enabled for the account: its endpoint refuses the credentials, and nothing replicates into it. */
  disableRegion(region: string, disabled?: boolean): void;
  /** Every key of every region, for tests to inspect what reached "KMS". */
  allKeys(): Key[];
  aliasTarget(alias: string, region?: string): string | undefined;
  /** Requests seen, by operation. */
  calls: string[];
  /** Requests seen, by operation and region. */
  requests: Array<{ op: string; region: string }>;
  close(): Promise<void>;
}

export async function startAwsKms(): Promise<AwsKmsEmulator> {
  const region = 'us-east-1';
  const accessKeyId = 'AKIATESTEMULATOR0001';
  const secretAccessKey = randomBytes(30).toString('base64');
  const signers = new Map<string, SignatureV4>();
  const signerFor = (r: string) => {
    let s = signers.get(r);
    if (!s) {
      s = new SignatureV4({ credentials: { accessKeyId, secretAccessKey }, region: r, service: 'kms', sha256: Hash.bind(null, 'sha256') });
      signers.set(r, s);
    }
    return s;
  };
  /** Each region's keys (by id) and aliases (name → key id). */
  const regions = new Map<string, { keys: Map<string, Key>; aliases: Map<string, string> }>();
  const regionState = (r: string) => {
    let st = regions.get(r);
    if (!st) {
      st = { keys: new Map(), aliases: new Map() };
      regions.set(r, st);
    }
    return st;
  };
  const disabledRegions = new Set<string>();
  /** The region of the request being handled (its signature's scope). */
  let current = region;
  let throttle = 0;
  let fail = 0;
  let failStatus = 500;
  const calls: string[] = [];
  const requests: Array<{ op: string; region: string }> = [];
  const faults: Fault[] = [];
  const holds: Array<{ op: string; arrived: () => void; gate: Promise<void> }> = [];
  const wrappingKeys = new Map<number, KeyObject>();

  const createKey = (
    spec: Spec,
    usage?: Key['usage'],
    alias?: string,
    external = false,
    description = '',
    tags: Key['tags'] = [],
    multiRegion = false,
    r = region,
  ): Key => {
    const id = multiRegion ? `mrk-${randomBytes(16).toString('hex')}` : randomUUID();
    const k: Key = {
      id,
      region: r,
      arn: `arn:aws:kms:${r}:111122223333:key/${id}`,
      spec,
      usage: usage ?? (spec === 'SYMMETRIC_DEFAULT' ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY'),
      enabled: true,
      state: external ? 'PendingImport' : 'Enabled',
      origin: external ? 'EXTERNAL' : 'AWS_KMS',
      description,
      tags,
    };
    if (external) {
      /* material comes from ImportKeyMaterial */
    } else if (spec === 'SYMMETRIC_DEFAULT') k.secret = randomBytes(32);
    else if (spec.startsWith('ECC'))
      k.priv = generateKeyPairSync('ec', {
        namedCurve: { ECC_NIST_P256: 'P-256', ECC_NIST_P384: 'P-384', ECC_NIST_P521: 'P-521' }[spec as 'ECC_NIST_P256'],
      }).privateKey;
    else k.priv = generateKeyPairSync('rsa', { modulusLength: Number(spec.slice(4)) }).privateKey;
    if (multiRegion) {
      k.multiRegion = 'PRIMARY';
      k.group = { primary: r, members: new Map([[r, k]]) };
      if (!external) k.group.material = k.secret ?? (k.priv!.export({ type: 'pkcs8', format: 'der' }) as Buffer);
    }
    const st = regionState(r);
    st.keys.set(id, k);
    if (alias) st.aliases.set(alias, id);
    return k;
  };

  /** Any key of the request's region, whatever its state (management calls). */
  const lookup = (keyId: unknown): Key => {
    if (typeof keyId !== 'string' || !keyId) throw new KmsError('ValidationException', 'KeyId is required');
    const st = regionState(current);
    // An ARN names its region: a key of another region is not found here.
    if (keyId.startsWith('arn:') && keyId.split(':')[3] !== current) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
    const id = keyId.startsWith('alias/') ? st.aliases.get(keyId) : keyId.startsWith('arn:') ? keyId.split('/').pop() : keyId;
    const k = id && st.keys.get(id);
    if (!k) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
    if (k.state === 'Creating' && Date.now() >= (k.creatingUntil ?? 0)) k.state = k.origin === 'EXTERNAL' && !k.secret && !k.priv ? 'PendingImport' : 'Enabled';
    return k;
  };
  /** A key usable for cryptography: enabled, with material. */
  const find = (keyId: unknown): Key => {
    const k = lookup(keyId);
    if (!k.enabled || k.state === 'Disabled') throw new KmsError('DisabledException', `${k.arn} is disabled.`);
    if (k.state !== 'Enabled') throw new KmsError('KMSInvalidStateException', `${k.arn} is ${k.state}.`);
    return k;
  };
  const aliasName = (v: unknown) => {
    const name = String(v ?? '');
    if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(name) || name.startsWith('alias/aws/')) throw new KmsError('ValidationException', `invalid alias name ${name}`);
    return name;
  };

  /** Unwrap what ImportKeyMaterial got, the way KMS does, and check it fits the key spec. */
  function unwrapMaterial(k: Key, blob: Buffer): Buffer {
    const p = k.importParams!;
    const hash = p.algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
    const modBytes = (createPublicKey(p.wrapping).asymmetricKeyDetails!.modulusLength! + 7) >> 3;
    let material: Buffer;
    try {
      if (p.algorithm.startsWith('RSAES_OAEP')) material = privateDecrypt({ key: p.wrapping, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, blob);
      else {
        const kek = privateDecrypt({ key: p.wrapping, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, blob.subarray(0, modBytes));
        const d = createDecipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
        material = Buffer.concat([d.update(blob.subarray(modBytes)), d.final()]);
      }
    } catch {
      throw new KmsError('InvalidCiphertextException', 'The encrypted key material could not be unwrapped with the import parameters.');
    }
    if (k.spec === 'SYMMETRIC_DEFAULT') {
      if (material.length !== 32) throw new KmsError('IncorrectKeyMaterialException', 'Symmetric key material must be 256 bits.');
      return material;
    }
    if (p.algorithm.startsWith('RSAES_OAEP'))
      throw new KmsError('ValidationException', `${p.algorithm} cannot wrap asymmetric key material; use RSA_AES_KEY_WRAP_SHA_*`);
    let priv: KeyObject;
    try {
      priv = createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
    } catch {
      throw new KmsError('IncorrectKeyMaterialException', 'Key material is not a PKCS#8 private key.');
    }
    const det = priv.asymmetricKeyDetails!;
    const fits = k.spec.startsWith('RSA')
      ? priv.asymmetricKeyType === 'rsa' && det.modulusLength === Number(k.spec.slice(4))
      : priv.asymmetricKeyType === 'ec' && det.namedCurve === CURVE_OF[k.spec];
    if (!fits) throw new KmsError('IncorrectKeyMaterialException', `The key material does not match key spec ${k.spec}.`);
    return material;
  }
  const b64 = (v: unknown, what: string) => {
    if (typeof v !== 'string') throw new KmsError('ValidationException', `${what} is required`);
    return Buffer.from(v, 'base64');
  };
  const arnOf = (k: Key) => ({ Arn: k.arn, Region: k.region });
  const meta = (k: Key) => ({
    KeyId: k.id,
    Arn: k.arn,
    KeySpec: k.spec,
    CustomerMasterKeySpec: k.spec,
    KeyUsage: k.usage,
    KeyState: k.state,
    Enabled: k.state === 'Enabled',
    Origin: k.origin,
    Description: k.description,
    MultiRegion: !!k.multiRegion,
    ...(k.group
      ? {
          MultiRegionConfiguration: {
            MultiRegionKeyType: k.multiRegion,
            PrimaryKey: arnOf(k.group.members.get(k.group.primary)!),
            ReplicaKeys: [...k.group.members.values()].filter((x) => x.multiRegion === 'REPLICA').map(arnOf),
          },
        }
      : {}),
    ...(k.origin === 'EXTERNAL' ? { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' } : {}),
    ...(k.usage === 'SIGN_VERIFY'
      ? { SigningAlgorithms: signingAlgs(k.spec) }
      : { EncryptionAlgorithms: k.spec === 'SYMMETRIC_DEFAULT' ? ['SYMMETRIC_DEFAULT'] : ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] }),
  });
  const context = (c: unknown) => Buffer.from(JSON.stringify(Object.entries((c ?? {}) as Record<string, string>).sort()));

  const ops: Record<string, (b: Record<string, unknown>) => unknown> = {
    DescribeKey: (b) => ({ KeyMetadata: meta(lookup(b.KeyId)) }),
    CreateKey: (b) => {
      const spec = (b.KeySpec ?? 'SYMMETRIC_DEFAULT') as Spec;
      if (!['SYMMETRIC_DEFAULT', 'RSA_2048', 'RSA_3072', 'RSA_4096', 'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521'].includes(spec))
        throw new KmsError('ValidationException', `KeySpec ${spec} is not supported`);
      const usage = (b.KeyUsage ?? 'ENCRYPT_DECRYPT') as Key['usage'];
      if ((spec === 'SYMMETRIC_DEFAULT' && usage !== 'ENCRYPT_DECRYPT') || (spec.startsWith('ECC') && usage !== 'SIGN_VERIFY'))
        throw new KmsError('ValidationException', `KeyUsage ${usage} is not compatible with KeySpec ${spec}`);
      if (b.Origin !== undefined && b.Origin !== 'AWS_KMS' && b.Origin !== 'EXTERNAL')
        throw new KmsError('ValidationException', `Origin ${b.Origin} is not supported`);
      if (b.MultiRegion !== undefined && typeof b.MultiRegion !== 'boolean') throw new KmsError('ValidationException', 'MultiRegion must be a boolean');
      return {
        KeyMetadata: meta(
          createKey(
            spec,
            usage,
            undefined,
            b.Origin === 'EXTERNAL',
            String(b.Description ?? ''),
            (b.Tags ?? []) as Key['tags'],
            b.MultiRegion === true,
            current,
          ),
        ),
      };
    },
    ReplicateKey: (b) => {
      const k = lookup(b.KeyId);
      if (k.multiRegion !== 'PRIMARY') throw new KmsError('UnsupportedOperationException', `${k.arn} is not a multi-Region primary key.`);
      if (k.state === 'PendingDeletion' || k.state === 'PendingReplicaDeletion') throw new KmsError('KMSInvalidStateException', `${k.arn} is ${k.state}.`);
      const to = String(b.ReplicaRegion ?? '');
      if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(to)) throw new KmsError('ValidationException', `ReplicaRegion ${to.slice(0, 30)} is not a valid region`);
      if (to === k.region) throw new KmsError('ValidationException', `ReplicaRegion ${to} is the primary key's region`);
      if (disabledRegions.has(to)) throw new KmsError('UnsupportedOperationException', `Region ${to} is not enabled for this account.`);
      if (k.group!.members.has(to)) throw new KmsError('AlreadyExistsException', `A replica of ${k.id} already exists in ${to}.`);
      const replica: Key = {
        id: k.id,
        region: to,
        arn: `arn:aws:kms:${to}:111122223333:key/${k.id}`,
        spec: k.spec,
        usage: k.usage,
        enabled: true,
        state: 'Creating',
        creatingUntil: Date.now() + 60,
        origin: k.origin,
        description: b.Description === undefined ? k.description : String(b.Description),
        tags: (b.Tags ?? []) as Key['tags'],
        multiRegion: 'REPLICA',
        group: k.group,
      };
      // A replica of a key KMS made gets its material now; imported material is imported into each replica.
      if (k.origin !== 'EXTERNAL') {
        replica.secret = k.secret;
        replica.priv = k.priv;
      }
      k.group!.members.set(to, replica);
      regionState(to).keys.set(replica.id, replica);
      return { ReplicaKeyMetadata: meta(replica), ReplicaTags: replica.tags };
    },
    ListKeys: (b) => {
      const all = [...regionState(current).keys.values()];
      const start = b.Marker ? Number(b.Marker) : 0;
      const limit = Math.min(Number(b.Limit ?? 100), 1000);
      const page = all.slice(start, start + limit);
      const more = start + limit < all.length;
      return { Keys: page.map((k) => ({ KeyId: k.id, KeyArn: k.arn })), Truncated: more, ...(more ? { NextMarker: String(start + limit) } : {}) };
    },
    GetParametersForImport: (b) => {
      const k = lookup(b.KeyId);
      if (k.origin !== 'EXTERNAL') throw new KmsError('UnsupportedOperationException', `${k.arn} origin is AWS_KMS which is not valid for this operation.`);
      if (k.state !== 'PendingImport' && k.state !== 'Enabled' && k.state !== 'Disabled')
        throw new KmsError('KMSInvalidStateException', `${k.arn} is ${k.state}.`);
      const algorithm = String(b.WrappingAlgorithm ?? '');
      if (!WRAPPING_ALGORITHMS.includes(algorithm)) throw new KmsError('ValidationException', `WrappingAlgorithm ${algorithm} is not supported`);
      const bits = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 }[String(b.WrappingKeySpec)];
      if (!bits) throw new KmsError('ValidationException', `WrappingKeySpec ${b.WrappingKeySpec} is not supported`);
      // KMS makes a new wrapping key pair per call; one per size here keeps tests fast.
      const wrapping = wrappingKeys.get(bits) ?? generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
      wrappingKeys.set(bits, wrapping);
      const validTo = Math.floor(Date.now() / 1000) + 86400;
      k.importParams = { token: randomBytes(64), wrapping, algorithm, validTo };
      return {
        KeyId: k.arn,
        ImportToken: k.importParams.token.toString('base64'),
        PublicKey: createPublicKey(wrapping).export({ type: 'spki', format: 'der' }).toString('base64'),
        ParametersValidTo: validTo,
      };
    },
    ImportKeyMaterial: (b) => {
      const k = lookup(b.KeyId);
      if (k.origin !== 'EXTERNAL') throw new KmsError('UnsupportedOperationException', `${k.arn} origin is AWS_KMS which is not valid for this operation.`);
      if (k.state === 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${k.arn} is pending deletion.`);
      const token = b64(b.ImportToken, 'ImportToken');
      const p = k.importParams;
      if (!p || p.token.length !== token.length || !timingSafeEqual(p.token, token) || p.validTo * 1000 < Date.now())
        throw new KmsError('InvalidImportTokenException', 'The import token is invalid or expired for this key.');
      if (b.ExpirationModel === 'KEY_MATERIAL_EXPIRES' && !b.ValidTo)
        throw new KmsError('ValidationException', 'ValidTo is required when key material expires');
      const material = unwrapMaterial(k, b64(b.EncryptedKeyMaterial, 'EncryptedKeyMaterial'));
      const had = k.secret ?? (k.priv?.export({ type: 'pkcs8', format: 'der' }) as Buffer | undefined);
      if (had && !had.equals(material))
        throw new KmsError('IncorrectKeyMaterialException', 'The key material is not the material previously imported into this key.');
      if (k.group?.material && !k.group.material.equals(material))
        throw new KmsError('IncorrectKeyMaterialException', 'The key material is not the material of the other keys of this multi-Region key.');
      if (k.group) k.group.material = material;
      if (k.spec === 'SYMMETRIC_DEFAULT') k.secret = material;
      else k.priv = createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
      if (k.state === 'PendingImport') k.state = 'Enabled';
      return {};
    },
    EnableKey: (b) => {
      const k = lookup(b.KeyId);
      if (!['Enabled', 'Disabled'].includes(k.state)) throw new KmsError('KMSInvalidStateException', `${k.arn} is ${k.state}.`);
      k.state = 'Enabled';
      return {};
    },
    DisableKey: (b) => {
      const k = lookup(b.KeyId);
      if (!['Enabled', 'Disabled'].includes(k.state)) throw new KmsError('KMSInvalidStateException', `${k.arn} is ${k.state}.`);
      k.state = 'Disabled';
      return {};
    },
    ScheduleKeyDeletion: (b) => {
      const k = lookup(b.KeyId);
      const days = Number(b.PendingWindowInDays ?? 30);
      if (!Number.isInteger(days) || days < 7 || days > 30) throw new KmsError('ValidationException', 'PendingWindowInDays must be between 7 and 30');
      if (k.state === 'PendingDeletion' || k.state === 'PendingReplicaDeletion')
        throw new KmsError('KMSInvalidStateException', `${k.arn} is pending deletion.`);
      // A primary key waits for its replicas to be deleted first.
      const replicasLeft = k.multiRegion === 'PRIMARY' && [...k.group!.members.values()].some((x) => x !== k && x.state !== 'PendingDeletion');
      k.state = replicasLeft ? 'PendingReplicaDeletion' : 'PendingDeletion';
      return { KeyId: k.arn, DeletionDate: Math.floor(Date.now() / 1000) + days * 86400, KeyState: k.state, PendingWindowInDays: days };
    },
    CancelKeyDeletion: (b) => {
      const k = lookup(b.KeyId);
      if (k.state !== 'PendingDeletion' && k.state !== 'PendingReplicaDeletion')
        throw new KmsError('KMSInvalidStateException', `${k.arn} is not pending deletion.`);
      k.state = 'Disabled';
      return { KeyId: k.arn };
    },
    UpdateAlias: (b) => {
      const name = aliasName(b.AliasName);
      const { aliases } = regionState(current);
      if (!aliases.has(name)) throw new KmsError('NotFoundException', `Alias ${name} does not exist`);
      aliases.set(name, lookup(b.TargetKeyId).id);
      return {};
    },
    DeleteAlias: (b) => {
      const name = aliasName(b.AliasName);
      if (!regionState(current).aliases.delete(name)) throw new KmsError('NotFoundException', `Alias ${name} does not exist`);
      return {};
    },
    CreateAlias: (b) => {
      const name = String(b.AliasName ?? '');
      const { aliases } = regionState(current);
      if (!name.startsWith('alias/')) throw new KmsError('ValidationException', 'AliasName must start with alias/');
      if (aliases.has(name)) throw new KmsError('AlreadyExistsException', `An alias with the name ${name} already exists`);
      aliases.set(name, lookup(b.TargetKeyId).id);
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
        if (msg.length !== { sha256: 32, sha384: 48, sha512: 64 }[hash])
          throw new KmsError('ValidationException', 'Digest is invalid length for algorithm ' + alg);
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
      return {
        KeyId: k.arn,
        CiphertextBlob: Buffer.concat([Buffer.from([idb.length]), idb, iv, body]).toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },
    Decrypt: (b) => {
      const blob = b64(b.CiphertextBlob, 'CiphertextBlob');
      if (b.EncryptionAlgorithm && b.EncryptionAlgorithm !== 'SYMMETRIC_DEFAULT') {
        const k = find(b.KeyId);
        if (!k.priv || k.usage !== 'ENCRYPT_DECRYPT') throw new KmsError('InvalidKeyUsageException', `${k.arn} is not an encryption key`);
        try {
          return {
            KeyId: k.arn,
            Plaintext: privateDecrypt(
              { key: k.priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: String(b.EncryptionAlgorithm).endsWith('SHA_1') ? 'sha1' : 'sha256' },
              blob,
            ).toString('base64'),
          };
        } catch {
          throw new KmsError('InvalidCiphertextException', '');
        }
      }
      const idLen = blob[0] ?? 0;
      const k = find(blob.subarray(1, 1 + idLen).toString() || 'missing');
      if (b.KeyId && find(b.KeyId).id !== k.id)
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
      const rest = blob.subarray(1 + idLen);
      try {
        const d = createDecipheriv('aes-256-gcm', k.secret!, rest.subarray(0, 12));
        d.setAAD(context(b.EncryptionContext));
        d.setAuthTag(rest.subarray(rest.length - 16));
        return {
          KeyId: k.arn,
          Plaintext: Buffer.concat([d.update(rest.subarray(12, rest.length - 16)), d.final()]).toString('base64'),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      } catch {
        throw new KmsError('InvalidCiphertextException', '');
      }
    },
    GenerateRandom: (b) => {
      const n = Number(b.NumberOfBytes);
      if (!Number.isInteger(n) || n < 1 || n > 1024) throw new KmsError('ValidationException', 'NumberOfBytes must be 1-1024');
      return { Plaintext: randomBytes(n).toString('base64') };
    },
  };

  /** The region a request is signed for (its credential scope), before the signature is checked. */
  const scopeOf = (req: http.IncomingMessage) => /Credential=[^/]+\/\d{8}\/([^/]+)\/kms\//.exec(String(req.headers.authorization ?? ''))?.[1] ?? region;

  async function checkSignature(req: http.IncomingMessage, body: Buffer, port: number): Promise<void> {
    const auth = String(req.headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/kms\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    if (m[1] !== accessKeyId) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(m[3]))
      throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${m[3]}'.`);
    // A region the account has not enabled does not know the account's credentials.
    if (disabledRegions.has(m[3])) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const when = new Date(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
    if (Number.isNaN(when.getTime()) || Math.abs(when.getTime() - Date.now()) > 15 * 60_000)
      throw new KmsError('InvalidSignatureException', 'Signature expired');
    const signed = m[4].split(';');
    const headers: Record<string, string> = {};
    for (const h of signed) headers[h] = String(req.headers[h] ?? '');
    const copy = new HttpRequest({ method: req.method, protocol: 'http:', hostname: '127.0.0.1', port, path: req.url ?? '/', headers, body: body.toString() });
    const resigned = await signerFor(m[3]).sign(copy, { signingDate: when, signableHeaders: new Set(signed) });
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
      current = scopeOf(req);
      calls.push(op);
      requests.push({ op, region: current });
      try {
        if (throttle > 0) {
          throttle--;
          throw new KmsError('ThrottlingException', 'Rate exceeded');
        }
        if (fail > 0) {
          fail--;
          throw new KmsError('KMSInternalException', 'internal error', failStatus);
        }
        const fault = (when: Fault['when']) => {
          const f = faults.find((x) => x.op === op && x.when === when && x.n > 0 && (x.region === undefined || x.region === current));
          if (f) {
            f.n--;
            throw new KmsError(f.type, `injected ${f.status === 400 ? 'throttling' : 'failure'} ${when} ${op}`, f.status);
          }
        };
        fault('before');
        const hold = holds.findIndex((h) => h.op === op);
        if (hold >= 0) {
          const [h] = holds.splice(hold, 1);
          h.arrived();
          await h.gate;
        }
        const body = Buffer.concat(chunks);
        await checkSignature(req, body, (server.address() as { port: number }).port);
        const fn = ops[op];
        if (!fn) throw new KmsError('UnknownOperationException', `unknown operation ${op}`);
        current = scopeOf(req);
        const out = fn(JSON.parse(body.toString() || '{}'));
        fault('after');
        send(200, out);
      } catch (e) {
        if (e instanceof KmsError) send(e.status, { __type: e.type, message: e.message });
        else send(500, { __type: 'KMSInternalException', message: (e as Error).message });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    region,
    accessKeyId,
    secretAccessKey,
    createKey,
    calls,
    requests,
    throttleNext: (n) => {
      throttle = n;
    },
    failNext: (n, status = 500) => {
      fail = n;
      failStatus = status;
    },
    faultOn: (op, n, o = {}) => {
      const status = o.status ?? 500;
      faults.push({
        op,
        n,
        when: o.when ?? 'before',
        status,
        type: o.type ?? (status === 400 ? 'ThrottlingException' : 'KMSInternalException'),
        region: o.region,
      });
    },
    holdNext: (op) => {
      let arrived!: () => void;
      let release!: () => void;
      const received = new Promise<void>((r) => (arrived = r));
      holds.push({ op, arrived, gate: new Promise<void>((r) => (release = r)) });
      return { received, release };
    },
    disableRegion: (r, disabled = true) => {
      if (disabled) disabledRegions.add(r);
      else disabledRegions.delete(r);
    },
    allKeys: () => [...regions.values()].flatMap((st) => [...st.keys.values()]),
    aliasTarget: (a, r = region) => regionState(r).aliases.get(a),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
