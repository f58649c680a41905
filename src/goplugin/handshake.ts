// go-plugin's handshake: the plugin listens, then prints one line on stdout telling the
// client how to reach it: CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK-TYPE|NETWORK-ADDR|PROTOCOL[|SERVER-CERT].
/** go-plugin's own protocol version (the first handshake field). */
export const CORE_PROTOCOL_VERSION = 1;

/** Bind to a free loopback port in [min, max] (the client's PLUGIN_MIN_PORT/PLUGIN_MAX_PORT); `listen` binds one port or rejects. */
export async function bindInRange<T>(listen: (port: number) => Promise<T>, min: number, max: number): Promise<T> {
  // Start at a random offset so concurrently launched plugins rarely race for the same port.
  const span = max - min + 1;
  const start = Math.floor(Math.random() * span);
  let lastErr: Error | undefined;
  for (let i = 0; i < Math.min(span, 200); i++) {
    const port = min + ((start + i) % span);
    try {
      return await listen(port);
    } catch (e) {
      lastErr = e as Error;
    }
  }
  throw new Error(`no free port in ${min}-${max}: ${lastErr?.message ?? 'unknown'}`, { cause: lastErr });
}

/**
 * The handshake line for a gRPC server listening at `at` (listener.ts). Only AutoMTLS puts our
 * certificate in it (`serverCert`, base64 DER); in the wrapping-token mode Vault already has it.
 */
export function handshakeLine(appVersion: number, at: { network: string; address: string }, serverCert?: string): string {
  const fields = [String(CORE_PROTOCOL_VERSION), String(appVersion), at.network, at.address, 'grpc'];
  if (serverCert) fields.push(serverCert);
  return fields.join('|');
}
