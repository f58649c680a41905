// AutoMTLS: go-plugin's client puts its self-signed certificate in PLUGIN_CLIENT_CERT.
// The plugin answers with a certificate of the same shape (ECDSA P-521, CN/SAN
// localhost, usable as client and server, self-signed CA) and requires the client's
// certificate on every connection, including the broker connections it dials back.
import 'reflect-metadata'; // @peculiar/x509 resolves its ASN.1 providers through tsyringe
import { webcrypto, randomBytes, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface PluginIdentity {
  certPem: string;
  keyPem: string;
  /** DER of the certificate, base64 standard alphabet without padding, as the handshake carries it. */
  handshakeCert: string;
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export async function generateIdentity(): Promise<PluginIdentity> {
  const alg = { name: 'ECDSA', namedCurve: 'P-521', hash: 'SHA-512' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive INTEGER
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: 'CN=localhost, O=HashiCorp',
    notBefore: new Date(now - 30_000),
    notAfter: new Date(now + 262980 * 3600_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment |
          x509.KeyUsageFlags.keyAgreement | x509.KeyUsageFlags.keyCertSign,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: toPem(pkcs8, 'PRIVATE KEY'),
    handshakeCert: Buffer.from(cert.rawData).toString('base64').replace(/=+$/, ''),
  };
}

/** Validate PLUGIN_CLIENT_CERT before trusting it; a bad value is a launch error, not a crash later. */
export function parseClientCert(pem: string): string {
  try {
    new X509Certificate(pem);
  } catch (e) {
    throw new Error(`PLUGIN_CLIENT_CERT is not a valid PEM certificate: ${(e as Error).message}`);
  }
  return pem;
}
