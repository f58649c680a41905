// RSASSA-PSS in the PKI engine, as current Vault (1.11+) signs with use_pss: RSA issuers sign
// with id-RSASSA-PSS and explicit parameters (the hash of signature_bits, MGF1 with the same
// hash, a salt as long as the digest), as Go's x509 writes them; EC and Ed25519 issuers ignore
// it. A new root's CRLs are signed as the root is (revocation_signature_algorithm), which
// issuer/<ref> also sets. openssl and node:crypto judge every certificate and CRL.
import { beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { backendMount, failure } from '../support/backend';
import { opensslScratch } from '../support/openssl';
import { pemDer, readElement } from '../../src/goplugin/der';

const { file, openssl, text } = opensslScratch('vpt-pki-pss-');

/** The DER of a certificate's (or CRL's) outer signatureAlgorithm, hex. */
function signatureAlgorithmHex(pem: string): string {
  const der = pemDer(pem);
  const outer = readElement(der, 0);
  const tbs = readElement(der, outer.content);
  const alg = readElement(der, tbs.end);
  return der.subarray(tbs.end, alg.end).toString('hex');
}

// What Go's x509 writes for SHA{256,384,512}WithRSAPSS (RFC 4055 RSASSA-PSS-params): the hash
// with NULL parameters, MGF1 with the same hash, the salt length; no trailer field.
const HASH_OID = { 256: '608648016503040201', 384: '608648016503040202', 512: '608648016503040203' } as const;
const SALT = { 256: '20', 384: '30', 512: '40' } as const;
const goPss = (bits: 256 | 384 | 512) =>
  `3041${'06092a864886f70d01010a'}3034a00f300d0609${HASH_OID[bits]}0500a11c301a06092a864886f70d010108300d0609${HASH_OID[bits]}0500a2030201${SALT[bits]}`;

/** openssl's lines about the signature: the algorithm, then (PSS) its hash, mask and salt. */
function pssText(t: string): { alg?: string; hash?: string; mask?: string; salt?: string } {
  return {
    alg: /Signature Algorithm: (\S+)/.exec(t)?.[1],
    hash: /Hash Algorithm: (\S+)/.exec(t)?.[1],
    mask: /Mask Algorithm: (.+)/.exec(t)?.[1].trim(),
    salt: /Salt Length: (\S+)/.exec(t)?.[1],
  };
}

const rsaCsr = (cn: string) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return openssl('req', '-new', '-key', file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), '-subj', `/CN=${cn}`);
};
const ecCsr = (cn: string) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return openssl('req', '-new', '-key', file(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), '-subj', `/CN=${cn}`);
};
const raw = (d: { http_raw_body: string }) => Buffer.from(d.http_raw_body, 'base64').toString('utf8');

describe('PKI: use_pss on root/generate, for each signature_bits', () => {
  it.each([256, 384, 512] as const)("SHA-%i: id-RSASSA-PSS with Go's parameters; openssl and node verify it; the issuer and its CRL follow", async (bits) => {
    const { ok } = backendMount('pki');
    const root = await ok('update', 'root/generate/internal', {
      common_name: `PSS ${bits}`,
      key_type: 'rsa',
      use_pss: true,
      signature_bits: bits,
      ttl: '8760h',
    });
    expect(signatureAlgorithmHex(root.certificate)).toBe(goPss(bits));
    expect(pssText(text(root.certificate))).toEqual({ alg: 'rsassaPss', hash: `sha${bits}`, mask: `mgf1 with sha${bits}`, salt: `0x${SALT[bits]}` });
    const ca = file(root.certificate);
    expect(openssl('verify', '-CAfile', ca, ca)).toMatch(/: OK/);
    const x = new X509Certificate(root.certificate);
    expect(x.verify(x.publicKey)).toBe(true);

    // As current Vault: the new root's CRLs are signed as the root is.
    const issuer = await ok('read', 'issuer/default');
    expect(issuer.revocation_signature_algorithm).toBe(`SHA${bits}WithRSAPSS`);
    await ok('update', 'roles/web', { allow_any_name: true, key_type: 'rsa', use_pss: true, signature_bits: bits });
    const leaf = await ok('update', 'issue/web', { common_name: 'pss.example.com', ttl: '1h' });
    expect(signatureAlgorithmHex(leaf.certificate)).toBe(goPss(bits));
    await ok('update', 'revoke', { serial_number: leaf.serial_number });
    const crl = raw(await ok('read', 'crl/pem'));
    expect(signatureAlgorithmHex(crl)).toBe(goPss(bits));
    const crlText = openssl('crl', '-in', file(crl), '-noout', '-text', '-CAfile', ca);
    expect(crlText).toMatch(/verify OK/);
    expect(pssText(crlText)).toEqual({ alg: 'rsassaPss', hash: `sha${bits}`, mask: `mgf1 with sha${bits}`, salt: `0x${SALT[bits]}` });
    expect(openssl('verify', '-crl_check', '-CAfile', ca, '-CRLfile', file(crl), file(leaf.certificate))).toMatch(/certificate revoked/);
  });

  it('signature_bits 0: SHA-256, as Vault fills it in for an RSA key', async () => {
    const { ok } = backendMount('pki');
    const root = await ok('update', 'root/generate/internal', { common_name: 'PSS default', key_type: 'rsa', use_pss: true, ttl: '8760h' });
    expect(signatureAlgorithmHex(root.certificate)).toBe(goPss(256));
    expect((await ok('read', 'issuer/default')).revocation_signature_algorithm).toBe('SHA256WithRSAPSS');
  });

  it('ignored for EC and Ed25519 keys, as Vault ignores it for ECDSA/Ed25519 issuers', async () => {
    const { ok } = backendMount('pki');
    const ec = await ok('update', 'root/generate/internal', { common_name: 'EC', key_type: 'ec', use_pss: true, issuer_name: 'ec' });
    expect(pssText(text(ec.certificate)).alg).toBe('ecdsa-with-SHA256');
    expect((await ok('read', 'issuer/ec')).revocation_signature_algorithm).toBe('ECDSAWithSHA256');
    const ed = await ok('update', 'root/generate/internal', { common_name: 'Ed', key_type: 'ed25519', use_pss: true, issuer_name: 'ed' });
    expect(pssText(text(ed.certificate)).alg).toBe('ED25519');
    expect((await ok('read', 'issuer/ed')).revocation_signature_algorithm).toBe('Ed25519');
    // Their CRLs, signed through the same signer as their certificates, verify.
    for (const [ref, root] of [
      ['ec', ec],
      ['ed', ed],
    ]) {
      const crl = raw(await ok('read', `issuer/${ref}/crl/pem`));
      expect(openssl('crl', '-in', file(crl), '-noout', '-CAfile', file(root.certificate)), ref).toMatch(/verify OK/);
    }
  });

  it('not a field of intermediate/generate: Go cannot sign a CSR with PSS, and Vault drops the field', async () => {
    const { ok } = backendMount('pki');
    const { csr } = await ok('update', 'intermediate/generate/internal', { common_name: 'Int', key_type: 'rsa', use_pss: true });
    expect(pssText(openssl('req', '-in', file(csr), '-noout', '-text')).alg).toBe('sha256WithRSAEncryption');
  });
});

describe('PKI: use_pss when an RSA issuer signs (roles, sign-intermediate, sign-verbatim)', () => {
  const { call, ok } = backendMount('pki');
  let ca: string;
  beforeAll(async () => {
    const root = await ok('update', 'root/generate/internal', { common_name: 'RSA Root', key_type: 'rsa', ttl: '87600h' });
    ca = file(root.certificate);
  });
  const verified = (pem: string) => {
    expect(openssl('verify', '-CAfile', ca, file(pem))).toMatch(/: OK/);
    const issuer = new X509Certificate(openssl('x509', '-in', ca));
    expect(new X509Certificate(pem).verify(issuer.publicKey)).toBe(true);
    return pem;
  };

  it('roles: issue/ and sign/ sign RSA leaves with PSS; the role reads back use_pss', async () => {
    await ok('update', 'roles/pss', { allow_any_name: true, key_type: 'rsa', use_pss: true });
    expect((await ok('read', 'roles/pss')).use_pss).toBe(true);
    const issued = await ok('update', 'issue/pss', { common_name: 'a.example.com', ttl: '1h' });
    expect(signatureAlgorithmHex(verified(issued.certificate))).toBe(goPss(256));
    const signed = await ok('update', 'sign/pss', { csr: rsaCsr('b.example.com'), ttl: '1h' });
    expect(signatureAlgorithmHex(verified(signed.certificate))).toBe(goPss(256));
    await ok('update', 'roles/pss512', { allow_any_name: true, key_type: 'rsa', use_pss: true, signature_bits: 512 });
    expect(pssText(text(verified((await ok('update', 'issue/pss512', { common_name: 'c.example.com', ttl: '1h' })).certificate))).hash).toBe('sha512');
    // Without use_pss: PKCS#1 v1.5, as before.
    await ok('update', 'roles/plain', { allow_any_name: true, key_type: 'rsa' });
    expect(pssText(text((await ok('update', 'issue/plain', { common_name: 'd.example.com', ttl: '1h' })).certificate)).alg).toBe('sha256WithRSAEncryption');
  });

  it("an EC leaf gets PSS only with an explicit signature_bits, as in Vault (its hash bits stay 0 for EC keys, and Go's default is PKCS#1 v1.5)", async () => {
    await ok('update', 'roles/ec', { allow_any_name: true, key_type: 'ec', use_pss: true });
    expect(pssText(text(verified((await ok('update', 'issue/ec', { common_name: 'e.example.com', ttl: '1h' })).certificate))).alg).toBe(
      'sha256WithRSAEncryption',
    );
    await ok('update', 'roles/ec384', { allow_any_name: true, key_type: 'ec', use_pss: true, signature_bits: 384 });
    const leaf = await ok('update', 'issue/ec384', { common_name: 'f.example.com', ttl: '1h' });
    expect(signatureAlgorithmHex(verified(leaf.certificate))).toBe(goPss(384));
    // key_type any: by the CSR's key.
    await ok('update', 'roles/any', { allow_any_name: true, key_type: 'any', use_pss: true });
    expect(signatureAlgorithmHex(verified((await ok('update', 'sign/any', { csr: rsaCsr('g.example.com'), ttl: '1h' })).certificate))).toBe(goPss(256));
    expect(pssText(text(verified((await ok('update', 'sign/any', { csr: ecCsr('h.example.com'), ttl: '1h' })).certificate))).alg).toBe(
      'sha256WithRSAEncryption',
    );
  });

  it('sign-intermediate and sign-verbatim take use_pss too', async () => {
    const inter = await ok('update', 'root/sign-intermediate', { csr: rsaCsr('PSS Int'), use_pss: true, signature_bits: 384, ttl: '1h' });
    expect(signatureAlgorithmHex(verified(inter.certificate))).toBe(goPss(384));
    const verbatim = await ok('update', 'sign-verbatim', { csr: rsaCsr('v.example.com'), use_pss: true, ttl: '1h' });
    expect(signatureAlgorithmHex(verified(verbatim.certificate))).toBe(goPss(256));
    expect((await call('update', 'sign-verbatim', { csr: rsaCsr('w.example.com'), use_pss: true, signature_bits: 1024 })).error).toMatch(
      /signature_bits: 1024 is not supported/,
    );
  });
});

describe("PKI: an issuer's revocation_signature_algorithm (current Vault)", () => {
  it("is Vault's name of the CRLs' algorithm: set in any case, read back in Vault's, checked against the key; empty is the key's default", async () => {
    const { call, ok } = backendMount('pki');
    const root = await ok('update', 'root/generate/internal', { common_name: 'CRL Root', key_type: 'rsa', ttl: '8760h' });
    const ca = file(root.certificate);
    expect((await ok('read', 'issuer/default')).revocation_signature_algorithm).toBe('SHA256WithRSA');
    const crlOf = async () => {
      await ok('read', 'crl/rotate');
      const crl = raw(await ok('read', 'crl/pem'));
      expect(openssl('crl', '-in', file(crl), '-noout', '-CAfile', ca)).toMatch(/verify OK/);
      return crl;
    };
    expect(pssText(openssl('crl', '-in', file(await crlOf()), '-noout', '-text')).alg).toBe('sha256WithRSAEncryption');

    expect((await ok('update', 'issuer/default', { revocation_signature_algorithm: 'sha512withrsapss' })).revocation_signature_algorithm).toBe(
      'SHA512WithRSAPSS',
    );
    expect(signatureAlgorithmHex(await crlOf())).toBe(goPss(512));
    await ok('update', 'issuer/default', { revocation_signature_algorithm: 'SHA384WithRSA' });
    expect(pssText(openssl('crl', '-in', file(await crlOf()), '-noout', '-text')).alg).toBe('sha384WithRSAEncryption');

    expect((await call('update', 'issuer/default', { revocation_signature_algorithm: 'sha1withrsa' })).error).toMatch(
      /^Unknown signature algorithm value: sha1withrsa - valid values are /,
    );
    expect((await call('update', 'issuer/default', { revocation_signature_algorithm: 'ECDSAWithSHA256' })).error).toBe(
      "revocation_signature_algorithm: ECDSAWithSHA256 cannot be used with this issuer's rsa key",
    );
    expect((await ok('update', 'issuer/default', { revocation_signature_algorithm: '' })).revocation_signature_algorithm).toBe('');
    expect(pssText(openssl('crl', '-in', file(await crlOf()), '-noout', '-text')).alg).toBe('sha256WithRSAEncryption');
  });

  it('an EC issuer: ECDSA with the hash named; an imported issuer starts with none (the key default)', async () => {
    const { ok } = backendMount('pki');
    const root = await ok('update', 'root/generate/exported', { common_name: 'EC CRL Root', key_type: 'ec', ttl: '8760h' });
    const other = backendMount('pki');
    await other.ok('update', 'config/ca', { pem_bundle: `${root.private_key}\n${root.certificate}` });
    expect((await other.ok('read', 'issuer/default')).revocation_signature_algorithm).toBe('');
    await other.ok('update', 'issuer/default', { revocation_signature_algorithm: 'ECDSAWithSHA384' });
    await other.ok('read', 'crl/rotate');
    const crl = raw(await other.ok('read', 'crl/pem'));
    const t = openssl('crl', '-in', file(crl), '-noout', '-text', '-CAfile', file(root.certificate));
    expect(t).toMatch(/verify OK/);
    expect(pssText(t).alg).toBe('ecdsa-with-SHA384');
  });
});

describe('PKI: use_pss with an RSA managed key', () => {
  it('the key signs with its PSS (SHA-256, the one hash a managed key signs with here); certificates and CRLs verify', async () => {
    const { call, ok } = backendMount('pki');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await ok('update', 'managed-keys/software/pss-root', { key_type: 'rsa-2048', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) });
    const root = await ok('update', 'root/generate/kms', { common_name: 'KMS PSS', managed_key_name: 'pss-root', use_pss: true, ttl: '8760h' });
    expect(signatureAlgorithmHex(root.certificate)).toBe(goPss(256));
    const ca = file(root.certificate);
    expect(openssl('verify', '-CAfile', ca, ca)).toMatch(/: OK/);
    await ok('update', 'roles/web', { allow_any_name: true, key_type: 'rsa', use_pss: true });
    const leaf = await ok('update', 'issue/web', { common_name: 'kms.example.com', ttl: '1h' });
    expect(openssl('verify', '-CAfile', ca, file(leaf.certificate))).toMatch(/: OK/);
    await ok('update', 'revoke', { serial_number: leaf.serial_number });
    const crl = raw(await ok('read', 'crl/pem'));
    expect(signatureAlgorithmHex(crl)).toBe(goPss(256));
    expect(openssl('crl', '-in', file(crl), '-noout', '-CAfile', ca)).toMatch(/verify OK/);
    // Its one hash: another is refused when set, not by every later revocation.
    expect((await ok('read', 'issuer/default')).revocation_signature_algorithm).toBe('SHA256WithRSAPSS');
    expect(failure(await call('update', 'issuer/default', { revocation_signature_algorithm: 'SHA384WithRSAPSS' }))).toBe(
      "signature algorithm SHA384WithRSAPSS: this issuer's key is a managed key, which signs with SHA-256 only",
    );
    await ok('update', 'issuer/default', { revocation_signature_algorithm: 'SHA256WithRSA' });
    await ok('read', 'crl/rotate');
    expect(pssText(openssl('crl', '-in', file(raw(await ok('read', 'crl/pem'))), '-noout', '-text', '-CAfile', ca)).alg).toBe('sha256WithRSAEncryption');
  });
});

describe("PKI: sign-self-issued keeps the certificate's own signature algorithm when the key types match (as Vault: Go signs the parsed certificate as its template)", () => {
  const { ok } = backendMount('pki');
  let ca: string;
  beforeAll(async () => {
    ca = file((await ok('update', 'root/generate/internal', { common_name: 'Cross Root', key_type: 'rsa', ttl: '87600h' })).certificate);
  });
  /** A self-issued CA certificate made by openssl with these signing options. */
  const selfIssued = (type: 'rsa' | 'ec', cn: string, sign: string[]) => {
    const key = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = file(key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    return openssl('req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', ...sign);
  };

  it.each([
    ['RSASSA-PSS SHA-384', 'rsa', ['-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'], goPss(384)],
    ['PKCS#1 v1.5 SHA-512', 'rsa', ['-sha512'], '300d06092a864886f70d01010d0500'],
    ["ECDSA (another key type): the issuer's own, SHA-256 PKCS#1 v1.5", 'ec', ['-sha384'], '300d06092a864886f70d01010b0500'],
  ] as const)('%s', async (_, type, sign, expected) => {
    const cert = selfIssued(type, `Old ${type}`, [...sign]);
    expect(cert).toMatch(/BEGIN CERTIFICATE/);
    const signed = await ok('update', 'root/sign-self-issued', { certificate: cert });
    expect(signatureAlgorithmHex(signed.certificate)).toBe(expected);
    expect(openssl('verify', '-partial_chain', '-CAfile', ca, file(signed.certificate))).toMatch(/: OK/);
  });
});
