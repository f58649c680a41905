// keys/<name>/csr and keys/<name>/set-certificate: current Vault's (1.15+) certificates for
// transit's signing keys. A CSR is signed by a key version (the template's subject and
// requested extensions kept, its key replaced); an externally signed chain whose leaf
// certifies that version's key is stored on the version, shown by keys/<name> and exported
// by export/certificate-chain/<name>. Vault 1.8's transit has neither path.
import { X509Certificate, sign as nodeSign } from 'node:crypto';
import { bits, oid, pem, pemDer, readElement, seq, set, tlv, uint, type DerElement } from '../../goplugin/der';
import { UserError, type PathDef, type Request } from '../framework';
import { x509 } from '../pki/ca';
import type { Transit } from './context';
import { SPEC, canSign, parsed, publicKeyObject, type KeyVersion, type Policy } from './policy';

import { nameGroup } from '../../schema';
const NAME = nameGroup();

// What Go's x509 signs a request with for each key (and what it can certify): ECDSA with the
// curve's hash, RSA PKCS#1 v1.5 with SHA-256, Ed25519. secp256k1 and ML-DSA keys have no
// x509 signature algorithm in Go's library, which Vault's CSRs are made with.
const CSR_SIGNING: Record<string, { hash: string | null; algorithm: Buffer }> = {
  'ecdsa-p256': { hash: 'sha256', algorithm: seq(oid('1.2.840.10045.4.3.2')) },
  'ecdsa-p384': { hash: 'sha384', algorithm: seq(oid('1.2.840.10045.4.3.3')) },
  'ecdsa-p521': { hash: 'sha512', algorithm: seq(oid('1.2.840.10045.4.3.4')) },
  'rsa-2048': { hash: 'sha256', algorithm: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) },
  'rsa-3072': { hash: 'sha256', algorithm: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) },
  'rsa-4096': { hash: 'sha256', algorithm: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) },
  ed25519: { hash: null, algorithm: seq(oid('1.3.101.112')) },
};
const EXTENSION_REQUEST = oid('1.2.840.113549.1.9.14');

/** The key, checked as Vault checks it for either path: it exists, signs, is not derived, and certificates can name it. */
function certifiable(p: Policy | undefined, name: string): Policy {
  if (!p) throw new UserError(`key with provided name '${name}' not found`);
  if (!canSign(p.type)) throw new UserError(`key type '${p.type}' does not support signing`);
  if (p.derived) throw new UserError('operation not supported on keys with derivation enabled');
  if (!CSR_SIGNING[p.type])
    throw new UserError(`key type '${p.type}' cannot be named in an X.509 certificate or request here (ECDSA P-256/384/521, RSA and Ed25519 can)`);
  return p;
}

/** The version asked for (latest when not given), or a 400. */
function versionFor(p: Policy, r: Request): { n: number; v: KeyVersion } {
  const n = r.data.has('version') ? r.data.int('version') : p.latest_version;
  const v = n > 0 ? p.versions[String(n)] : undefined;
  if (!v) throw new UserError(`key version ${n} does not exist or cannot be found`);
  return { n, v };
}

const badTemplate = () => new UserError('csr is not a valid PEM certificate request');
/** The DER elements directly inside the constructed element `e` of `der`, each with where it starts. */
function children(der: Buffer, e: DerElement): Array<DerElement & { at: number }> {
  const out: Array<DerElement & { at: number }> = [];
  for (let at = e.content; at < e.end; ) {
    const c = readElement(der, at, badTemplate, e.end);
    out.push({ ...c, at });
    at = c.end;
  }
  return out;
}

/**
 * The template's subject (DER, as given) and the extensions it requests (each Extension's
 * DER, as given). An empty template asks for nothing: an empty subject.
 */
function readTemplate(text: string): { subject: Buffer; extensions: Buffer[] } {
  if (!text.trim()) return { subject: seq(), extensions: [] };
  // The first PEM block, as Go's pem.Decode finds it; what it holds must then be a request.
  const block = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!block || !/^[A-Za-z0-9+/=\s]*$/.test(block[2])) throw new UserError('could not decode PEM certificate request');
  const der = pemDer(block[0]);
  const [info] = children(der, readElement(der, 0, badTemplate));
  // CertificationRequestInfo: version, subject, subjectPKInfo, [0] attributes.
  const parts = info?.tag === 0x30 ? children(der, info) : [];
  if (parts.length < 3 || parts[0].tag !== 0x02 || parts[1].tag !== 0x30 || parts[2].tag !== 0x30) throw badTemplate();
  const whole = (e: DerElement & { at: number }) => der.subarray(e.at, e.end);
  const extensions: Buffer[] = [];
  if (parts[3]?.tag === 0xa0) {
    for (const a of children(der, parts[3])) {
      const [type, values] = a.tag === 0x30 ? children(der, a) : [];
      if (!type || values?.tag !== 0x31 || !whole(type).equals(EXTENSION_REQUEST)) continue;
      for (const list of children(der, values)) if (list.tag === 0x30) for (const ext of children(der, list)) extensions.push(whole(ext));
    }
  }
  return { subject: whole(parts[1]), extensions };
}

/** A PKCS#10 request for the version's key, signed by it, with the template's subject and requested extensions. */
export function keyCsr(p: Policy, v: KeyVersion, template: string): string {
  if (!v.key) throw new UserError('could not create the csr: private key not imported for key version selected');
  const { subject, extensions } = readTemplate(template);
  const spki = publicKeyObject(v).export({ type: 'spki', format: 'der' }) as Buffer;
  const attributes = extensions.length ? seq(EXTENSION_REQUEST, set(seq(...extensions))) : Buffer.alloc(0);
  const info = seq(uint(Buffer.from([0])), subject, spki, tlv(0xa0, attributes));
  const how = CSR_SIGNING[p.type];
  const signature = nodeSign(how.hash, info, { key: parsed(v.key).priv, dsaEncoding: 'der' });
  return pem(seq(info, how.algorithm, bits(signature)), 'CERTIFICATE REQUEST').trimEnd();
}

/** The PEM certificates of a chain as Vault reads it: CERTIFICATE blocks in order, others ignored. */
function readChain(text: string): X509Certificate[] {
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g)];
  if (!blocks.length) throw new UserError('could not decode PEM block in certificate chain');
  const certs: X509Certificate[] = [];
  for (const [whole, label] of blocks) {
    if (label !== 'CERTIFICATE' && label !== 'X509 CERTIFICATE') continue;
    try {
      certs.push(new X509Certificate(pemDer(whole)));
    } catch {
      throw new UserError('failed to parse certificate in certificate chain');
    }
  }
  if (!certs.length) throw new UserError('provided certificate chain did not contain any valid PEM certificate');
  return certs;
}

/** A certificate's Basic Constraints as Go reads them: present (BasicConstraintsValid), and cA (IsCA). */
function basicConstraints(c: X509Certificate): { present: boolean; ca: boolean } {
  const X = x509();
  const ext = new X.X509Certificate(c.raw).getExtension(X.BasicConstraintsExtension);
  return { present: !!ext, ca: !!ext?.ca };
}

/** The chain checked as Vault checks it, for version `v` of `p`; its certificates as DER, leaf first. */
export function checkChain(p: Policy, v: KeyVersion, text: string): Buffer[] {
  const chain = readChain(text);
  const [leaf, ...rest] = chain;
  if (basicConstraints(leaf).ca) throw new UserError('certificate in the first position is not a leaf certificate');
  for (const c of rest) {
    const bc = basicConstraints(c);
    if (bc.present && !bc.ca) throw new UserError('provided certificate chain contains more than one leaf certificate');
  }
  const want = SPEC[p.type]!;
  const got = leaf.publicKey;
  const kind =
    got.asymmetricKeyType === 'ec' ? 'ec' : got.asymmetricKeyType === 'ed25519' ? 'ed25519' : got.asymmetricKeyType === 'rsa' ? 'rsa' : got.asymmetricKeyType;
  if (kind !== want.kind)
    throw new UserError(`provided leaf certificate public key algorithm '${got.asymmetricKeyType}' does not match the transit key type '${p.type}'`);
  const mine = publicKeyObject(v).export({ type: 'spki', format: 'der' }) as Buffer;
  if (!mine.equals(got.export({ type: 'spki', format: 'der' }) as Buffer))
    throw new UserError('leaf certificate public key does not match the key version selected');
  return chain.map((c) => c.raw);
}

/** A version's chain as Vault shows and exports it: PEM blocks joined by newlines, leaf first. */
export const chainPem = (v: KeyVersion): string | undefined => v.certificate_chain?.map((d) => pem(Buffer.from(d, 'base64'), 'CERTIFICATE').trim()).join('\n');

/** keys/<name>/csr and keys/<name>/set-certificate. */
export function certificatePaths(t: Transit): PathDef[] {
  return [
    {
      pattern: `keys/${NAME}/csr`,
      fields: {
        name: { type: 'string', description: 'Name of the key.' },
        version: { type: 'int', description: 'Key version to sign with (default: the latest).' },
        csr: {
          type: 'string',
          default: '',
          description: 'PEM CSR template: its subject and requested extensions are kept, its key replaced. Empty: a request with an empty subject.',
        },
      },
      synopsis: "Make a CSR for a signing key's version, signed by it.",
      description:
        'Current Vault (1.15+): returns name, type and csr (PEM). ECDSA P-256/384/521, RSA and Ed25519 keys that are not derived; the version must hold its private key.',
      operations: {
        update: async (r) => {
          const p = certifiable(await t.policies.get(r.data.str('name')), r.data.str('name'));
          const { v } = versionFor(p, r);
          return { data: { name: p.name, type: p.type, csr: keyCsr(p, v, r.data.str('csr')) } };
        },
      },
    },
    {
      pattern: `keys/${NAME}/set-certificate`,
      fields: {
        name: { type: 'string', description: 'Name of the key.' },
        version: { type: 'int', description: 'Key version the chain certifies (default: the latest).' },
        certificate_chain: { type: 'string', required: true, description: 'PEM certificates, the leaf (certifying this version’s key) first.' },
      },
      synopsis: "Store an externally signed certificate chain on a signing key's version.",
      description:
        "Current Vault (1.15+): the leaf must certify the version's public key and be the chain's only leaf; keys/<name> then shows it and export/certificate-chain/<name> returns it.",
      operations: {
        update: async (r) => {
          const text = r.data.str('certificate_chain');
          const p = await t.policies.update(r.data.str('name'), async (found) => {
            const cur = certifiable(found, r.data.str('name'));
            const { n, v } = versionFor(cur, r);
            const der = checkChain(cur, v, text);
            const next: Policy = { ...cur, versions: { ...cur.versions, [n]: { ...v, certificate_chain: der.map((d) => d.toString('base64')) } } };
            return { policy: next, result: next };
          });
          return { data: { name: p.name, type: p.type, 'certificate-chain': text } };
        },
      },
    },
  ];
}
