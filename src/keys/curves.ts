// The elliptic curves keys here are on, one row a curve: the name key specs, JWKs, WebCrypto
// and Vault's messages use ("P-256"), OpenSSL's (a KeyObject's namedCurve), the size Vault's
// PKI key_bits gives it, the bytes of a coordinate (and of an ECDSA r or s), and the DER of its
// OID (PKCS#11's CKA_EC_PARAMS). Every map between curve names reads this one table.

/** One curve's names and sizes. */
export interface CurveFacts {
  /** OpenSSL's name, as Node reports it in asymmetricKeyDetails.namedCurve. */
  openssl: string;
  /** Its size in bits: Vault PKI's key_bits for it. */
  bits: number;
  /** Bytes of a coordinate, and of an ECDSA signature's r and s. */
  bytes: number;
  /** The DER of its OBJECT IDENTIFIER (tag and length included), hex. */
  oid: string;
}

const TABLE = {
  'P-224': { openssl: 'secp224r1', bits: 224, bytes: 28, oid: '06052b81040021' },
  'P-256': { openssl: 'prime256v1', bits: 256, bytes: 32, oid: '06082a8648ce3d030107' },
  'P-384': { openssl: 'secp384r1', bits: 384, bytes: 48, oid: '06052b81040022' },
  'P-521': { openssl: 'secp521r1', bits: 521, bytes: 66, oid: '06052b81040023' },
  secp256k1: { openssl: 'secp256k1', bits: 256, bytes: 32, oid: '06052b8104000a' },
} as const satisfies Record<string, CurveFacts>;

/** A curve by the name key specs and JWKs give it. */
export type CurveName = keyof typeof TABLE;

/** The NIST curves, as Vault's PKI signs keys on them (its key_bits 224, 256, 384 and 521). */
export const NIST_CURVES = ['P-224', 'P-256', 'P-384', 'P-521'] as const satisfies readonly CurveName[];
/** The curves a managed key (KeySpec) may be on, and a PKI CA's key. */
export const MANAGED_CURVES = ['P-256', 'P-384', 'P-521'] as const satisfies readonly CurveName[];
export type ManagedCurve = (typeof MANAGED_CURVES)[number];

/** What the table says of a curve. */
export const curveFacts = (name: CurveName): CurveFacts => TABLE[name];

/** Bytes of one coordinate (and of r or s) on `curve`. */
export const curveBytes = (curve: CurveName): number => TABLE[curve].bytes;

/** The curve among `among` whose OpenSSL name (a KeyObject's namedCurve) this is; undefined for any other. */
export function curveOfOpenssl<C extends CurveName>(openssl: string | undefined, among: readonly C[]): C | undefined {
  return among.find((c) => TABLE[c].openssl === openssl);
}

/** The curve among `among` whose OID is this DER (hex); undefined for any other. */
export function curveOfOid<C extends CurveName>(oidHex: string, among: readonly C[]): C | undefined {
  return among.find((c) => TABLE[c].oid === oidHex);
}

/** The NIST curve of this size in bits (Vault PKI's key_bits for an EC key); undefined for any other. */
export function nistCurveOfBits(bits: number): (typeof NIST_CURVES)[number] | undefined {
  return NIST_CURVES.find((c) => TABLE[c].bits === bits);
}

/** The digest an ECDSA signature on a managed curve is made over where nothing else is asked (as Go's x509 pairs them). */
export const ecdsaHash = (curve: ManagedCurve): 'sha256' | 'sha384' | 'sha512' => ECDSA_HASH[curve];
const ECDSA_HASH = { 'P-256': 'sha256', 'P-384': 'sha384', 'P-521': 'sha512' } as const;
