// Finding the configured key on the token (by CKA_LABEL and/or CKA_ID), reading what it is
// and its public half; and generating it there when allow_generate_key is set.
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { strictElement } from '../../goplugin/der';
import { KeyError, keyInvalid, keyUnsupported } from '../errors';
import { curveBytes, curveFacts, curveOfOid, MANAGED_CURVES } from '../curves';
import type { BackendConfig } from '../config';
import type { KeySpec } from '../types';
import { pk, type Handle, type Pkcs11Types } from './library';
import { MECHANISMS, parseMechanism } from './mechanisms';

/** A key found on the token: the handle of its private (or secret) object, what it is, and its public half. */
export interface FoundKey {
  handle: Handle;
  spec: KeySpec;
  /** undefined for AES keys. */
  pub?: KeyObject;
}

/** The configured key's identity (label and/or id) as a search template for objects of class `cls`. */
function template(cfg: BackendConfig, cls: number): Pkcs11Types.Template {
  const P = pk();
  const t: Pkcs11Types.Template = [{ type: P.CKA_CLASS, value: cls }];
  if (cfg.key_label) t.push({ type: P.CKA_LABEL, value: String(cfg.key_label) });
  if (cfg.key_id) t.push({ type: P.CKA_ID, value: Buffer.from(String(cfg.key_id).replace(/^0x/i, ''), 'hex') });
  return t;
}

function findOne(p: Pkcs11Types.PKCS11, s: Handle, cfg: BackendConfig, cls: number, keyName: string): Handle | undefined {
  p.C_FindObjectsInit(s, template(cfg, cls));
  try {
    const found = p.C_FindObjects(s, 2);
    if (found.length > 1) throw keyInvalid(`pkcs11 key "${keyName}": more than one object matches; set key_id too`);
    return found[0];
  } finally {
    p.C_FindObjectsFinal(s);
  }
}

const attrBuffer = (a: Pkcs11Types.Attribute): Buffer => (Buffer.isBuffer(a.value) ? a.value : Buffer.alloc(0));

/** The configured key on the token (an EC or RSA private key, else an AES secret key), or undefined. */
export function findKey(p: Pkcs11Types.PKCS11, s: Handle, cfg: BackendConfig, keyName: string): FoundKey | undefined {
  const P = pk();
  const priv = findOne(p, s, cfg, P.CKO_PRIVATE_KEY, keyName);
  if (priv) {
    const [kt] = p.C_GetAttributeValue(s, priv, [{ type: P.CKA_KEY_TYPE }]);
    const keyType = attrBuffer(kt).readUInt32LE(0);
    if (keyType === P.CKK_EC) {
      const [params] = p.C_GetAttributeValue(s, priv, [{ type: P.CKA_EC_PARAMS }]);
      const hex = attrBuffer(params).toString('hex');
      const curve = curveOfOid(hex, MANAGED_CURVES);
      if (!curve) throw keyUnsupported(`pkcs11 key "${keyName}": unsupported EC curve ${hex}`);
      const pubObj = findOne(p, s, cfg, P.CKO_PUBLIC_KEY, keyName);
      if (!pubObj) throw new KeyError('not_found', `pkcs11 key "${keyName}": the public half is not on the token`);
      const n = curveBytes(curve);
      let point = attrBuffer(p.C_GetAttributeValue(s, pubObj, [{ type: P.CKA_EC_POINT }])[0]);
      // The uncompressed point itself, or (as PKCS#11 specifies it, and SoftHSM keeps it) a DER OCTET STRING of it.
      const wrapped = point[0] === 0x04 && point.length !== 2 * n + 1 ? strictElement(point, 0) : undefined;
      if (wrapped) point = point.subarray(wrapped.content, wrapped.end);
      const pub = createPublicKey({
        format: 'jwk',
        key: { kty: 'EC', crv: curve, x: point.subarray(1, 1 + n).toString('base64url'), y: point.subarray(1 + n).toString('base64url') },
      });
      return { handle: priv, spec: { kind: 'ec', curve }, pub };
    }
    if (keyType === P.CKK_RSA) {
      const [mod, exp] = p.C_GetAttributeValue(s, priv, [{ type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }]);
      const pub = createPublicKey({ format: 'jwk', key: { kty: 'RSA', n: attrBuffer(mod).toString('base64url'), e: attrBuffer(exp).toString('base64url') } });
      return { handle: priv, spec: { kind: 'rsa', bits: attrBuffer(mod).length * 8 }, pub };
    }
    throw keyUnsupported(`pkcs11 key "${keyName}": key type ${keyType} is not supported`);
  }
  const secret = findOne(p, s, cfg, P.CKO_SECRET_KEY, keyName);
  if (!secret) return undefined;
  const [len] = p.C_GetAttributeValue(s, secret, [{ type: P.CKA_VALUE_LEN }]);
  const bits = attrBuffer(len).readUInt32LE(0) * 8;
  if (bits !== 128 && bits !== 256) throw keyUnsupported(`pkcs11 key "${keyName}": AES-${bits} is not supported`);
  return { handle: secret, spec: { kind: 'aes', bits } };
}

/**
 * Generate the configured key on the token: AES (mechanism CKM_AES_GCM, or key_bits 128/256
 * without a curve), EC (a curve, CKM_ECDSA, or no key_bits), else RSA of key_bits (>= 2048).
 * Private halves are token objects, private, sensitive and not extractable.
 */
export async function generateKey(p: Pkcs11Types.PKCS11, s: Handle, cfg: BackendConfig): Promise<void> {
  const P = pk();
  const mech = parseMechanism(cfg.mechanism === undefined ? undefined : String(cfg.mechanism));
  const bits = typeof cfg.key_bits === 'number' ? cfg.key_bits : undefined;
  const ids: Pkcs11Types.Template = template(cfg, 0).slice(1);
  if (!cfg.key_id) ids.push({ type: P.CKA_ID, value: randomBytes(8) });
  const privAttrs: Pkcs11Types.Template = [
    ...ids,
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
  ];
  if (mech === MECHANISMS.CKM_AES_GCM || (!cfg.curve && (bits === 128 || bits === 256))) {
    await p.C_GenerateKeyAsync(s, { mechanism: P.CKM_AES_KEY_GEN }, [
      ...privAttrs,
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_VALUE_LEN, value: (bits ?? 256) / 8 },
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_DECRYPT, value: true },
    ]);
  } else if (cfg.curve || mech === MECHANISMS.CKM_ECDSA || !bits) {
    const curve = MANAGED_CURVES.find((c) => c.replace('-', '') === String(cfg.curve ?? 'P256'))!; // the field's P256, P384, P521
    await p.C_GenerateKeyPairAsync(
      s,
      { mechanism: P.CKM_EC_KEY_PAIR_GEN },
      [
        ...ids,
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_VERIFY, value: true },
        { type: P.CKA_EC_PARAMS, value: Buffer.from(curveFacts(curve).oid, 'hex') },
      ],
      [...privAttrs, { type: P.CKA_SIGN, value: true }],
    );
  } else {
    if (bits < 2048) throw keyInvalid('key_bits: RSA keys must be at least 2048 bits');
    await p.C_GenerateKeyPairAsync(
      s,
      { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [
        ...ids,
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_VERIFY, value: true },
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_MODULUS_BITS, value: bits },
        { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      ],
      [...privAttrs, { type: P.CKA_SIGN, value: true }, { type: P.CKA_DECRYPT, value: true }],
    );
  }
}
