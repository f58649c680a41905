// AutoMTLS: go-plugin's client puts its self-signed certificate in PLUGIN_CLIENT_CERT.
// The plugin answers with a certificate of the same shape (ECDSA P-521, CN/SAN
// localhost, usable as client and server, self-signed CA) and requires the client's
// certificate on every connection, including the broker connections it dials back.
//
// The certificate is one fixed shape written with node:crypto and a few DER helpers
// rather than a general X.509 library: it is made on every plugin start, before the
// handshake, where loading such a library costs more than all the rest of start-up.
import { createPrivateKey, generateKeyPair, randomBytes, sign, X509Certificate } from 'node:crypto';
import tls, { type SecureContext } from 'node:tls';
import { promisify } from 'node:util';
import { bits, bool, explicit, octets, oid, pem, seq, set, time, uint, utf8, tlv } from './der';

/** The plugin's TLS identity for one run: certificate, key, and the certificate as the handshake line carries it. */
export interface PluginIdentity {
  certPem: string;
  keyPem: string;
  /** DER of the certificate, base64 standard alphabet without padding, as the handshake carries it. */
  handshakeCert: string;
}

const ECDSA_WITH_SHA512 = seq(oid('1.2.840.10045.4.3.4'));
const NAME = seq(set(seq(oid('2.5.4.10'), utf8('HashiCorp'))), set(seq(oid('2.5.4.3'), utf8('localhost'))));
const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
const EXTENSIONS = explicit(
  3,
  seq(
    ext('2.5.29.19', true, seq(bool(true))), // basicConstraints: CA
    // keyUsage: digitalSignature(0) keyEncipherment(2) keyAgreement(4) keyCertSign(5)
    ext('2.5.29.15', true, bits(Buffer.from([0b10101100]), 2)),
    ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.2'), oid('1.3.6.1.5.5.7.3.1'))), // clientAuth, serverAuth
    ext('2.5.29.17', false, seq(tlv(0x82, Buffer.from('localhost')))), // SAN dNSName
  ),
);

/** A fresh self-signed ECDSA P-521 identity for localhost, as go-plugin's AutoMTLS expects. */
export async function generateIdentity(): Promise<PluginIdentity> {
  // Encoded output, not KeyObjects: Node 20's generated KeyObjects can deadlock the process
  // when the finished job is collected during an export (test/unit/keygen-gc.test.ts).
  const { publicKey: spki, privateKey: pkcs8Pem } = await promisify(generateKeyPair)('ec', {
    namedCurve: 'P-521',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const privateKey = createPrivateKey(pkcs8Pem);
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0] &= 0x7f;
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))), // v3
    uint(serial),
    ECDSA_WITH_SHA512,
    NAME,
    seq(time(new Date(now - 30_000)), time(new Date(now + 262980 * 3600_000))),
    NAME,
    spki,
    EXTENSIONS,
  );
  const der = seq(tbs, ECDSA_WITH_SHA512, bits(sign('sha512', tbs, privateKey)));
  return {
    certPem: pem(der, 'CERTIFICATE'),
    keyPem: pkcs8Pem,
    handshakeCert: der.toString('base64').replace(/=+$/, ''),
  };
}

/** Validate PLUGIN_CLIENT_CERT before trusting it; a bad value is a launch error, not a crash later. */
export function parseClientCert(pem: string): string {
  try {
    new X509Certificate(pem);
  } catch (e) {
    throw new Error(`PLUGIN_CLIENT_CERT is not a valid PEM certificate: ${(e as Error).message}`, { cause: e });
  }
  return pem;
}

/**
 * Dial a peer (Vault's broker listeners) that must present a certificate chaining to
 * `peerCertPem`, presenting ours: one context for every connection (grpc-client.ts).
 */
export function mtlsClientContext(peerCertPem: string, own: { certPem: string; keyPem: string }): SecureContext {
  return tls.createSecureContext({ ca: peerCertPem, cert: own.certPem, key: own.keyPem, minVersion: 'TLSv1.2' });
}
