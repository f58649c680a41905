// Which TLS the plugin serves (and dials the broker) with, from what the client gave it.
import { generateIdentity, parseClientCert } from './autotls';
import type { BrokerTls } from './broker';
import { unwrapLegacyTls } from './unwrap';
import type { LaunchEnv } from './env';
import type { Logger } from './log';

/** The served TLS: the peer (host) certificate to require, our identity, and how it was obtained. */
export type ServerTls = BrokerTls & { mode: 'AutoMTLS' | 'wrapping token'; handshakeCert?: string };

/**
 * The TLS the plugin serves (and dials the broker) with. AutoMTLS when the client sent its
 * certificate (PLUGIN_CLIENT_CERT), as go-plugin does even if a wrapping token is present;
 * else the certificate unwrapped from VAULT_UNWRAP_TOKEN; plaintext only in metadata mode.
 */
export async function serverTls(env: LaunchEnv, log: Logger): Promise<ServerTls | undefined> {
  if (env.clientCertPem) {
    const clientCert = parseClientCert(env.clientCertPem);
    const identity = await generateIdentity();
    return {
      mode: 'AutoMTLS',
      hostCertPem: clientCert,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      serverName: 'localhost',
      handshakeCert: identity.handshakeCert,
    };
  }
  if (env.metadataMode) return undefined;
  if (env.unwrapToken) {
    const t = await unwrapLegacyTls(env.unwrapToken, env.vaultApi);
    log.debug('TLS certificate unwrapped from Vault', { server_name: t.serverName });
    return { mode: 'wrapping token', hostCertPem: t.caPem, certPem: t.certPem, keyPem: t.keyPem, serverName: t.serverName };
  }
  // Refuse to serve plaintext: any local process could otherwise drive the plugin.
  throw new Error('neither PLUGIN_CLIENT_CERT (AutoMTLS) nor VAULT_UNWRAP_TOKEN is set: refusing to serve gRPC without mutual TLS');
}
