// PKCS#11 mechanism and parameter names: the `mechanism` config field, curve OIDs, and
// the hash/MGF1 pairs of RSA-PSS and RSA-OAEP.
import { keyInvalid, keyUnsupported } from '../errors';
import type { SignHash } from '../types';
import { pk } from './library';

/** The mechanisms the `mechanism` field may name as CKM_ names. */
export const MECHANISMS: Record<string, number> = {
  CKM_RSA_PKCS: 0x1,
  CKM_RSA_PKCS_OAEP: 0x9,
  CKM_RSA_PKCS_PSS: 0xd,
  CKM_ECDSA: 0x1041,
  CKM_AES_GCM: 0x1087,
  CKM_EDDSA: 0x1057,
};

/** The `mechanism` field: a decimal number, 0x hex, or a known CKM_ name. */
export function parseMechanism(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v in MECHANISMS) return MECHANISMS[v];
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw keyInvalid(`mechanism: "${v.slice(0, 30)}" is not a number, 0x hex, or a known CKM_ name`);
  return n;
}

/** The hash mechanism and MGF1 of an RSA-PSS or RSA-OAEP parameter; SHA-3 (PKCS#11 3.0 only) is refused. */
export function hashMech(h: SignHash | 'sha1'): { hashAlg: number; mgf: number } {
  const P = pk();
  const byHash: Record<string, { hashAlg: number; mgf: number } | undefined> = {
    sha1: { hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1 },
    sha224: { hashAlg: P.CKM_SHA224, mgf: P.CKG_MGF1_SHA224 },
    sha256: { hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256 },
    sha384: { hashAlg: P.CKM_SHA384, mgf: P.CKG_MGF1_SHA384 },
    sha512: { hashAlg: P.CKM_SHA512, mgf: P.CKG_MGF1_SHA512 },
  };
  const m = byHash[h];
  if (!m) throw keyUnsupported(`pkcs11: RSA-PSS with ${h} is not supported (sha1, sha224, sha256, sha384 or sha512)`);
  return m;
}
