// A mount's broker connection to Vault's storage is closed while the mount is idle and opened
// again on its next storage call: through a real Vault 1.8, in both TLS modes, with a short
// idle time given to the plugin through Vault's own environment (go-plugin appends the host's
// environment to a plugin's).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKER_IDLE_ENV } from '../../src/goplugin/broker';
import { TLS_MODES, procNet, socketInodes, startDevVault, vaultBin, waitFor, type VaultNode } from '../support/vault';
import { b64, decrypt, enablePki, enableTransit, issue, pkiWork, read, transitWork, verify, write, type PkiState, type TransitState } from './steps';

/**
 * The connections a plugin process opened itself: to Vault's broker listeners, which go-plugin
 * opens as Unix sockets on Linux (TCP elsewhere). Counted from /proc: the process's socket
 * inodes that are connected Unix stream sockets, or established TCP from a port it does not listen on.
 */
function dialedConnections(pid: number): number {
  const inodes = socketInodes(pid);
  // A client unix socket has no path (an accepted one shows its listener's).
  let n = procNet(pid, 'unix').filter((f) => inodes.has(f[6]) && f[5] === '03' && f.length < 8).length;
  const tcp = [...procNet(pid, 'tcp'), ...procNet(pid, 'tcp6')].filter((f) => inodes.has(f[9]));
  const port = (f: string[]) => Number.parseInt(f[1].split(':')[1], 16);
  const listening = new Set(tcp.filter((f) => f[3] === '0A').map(port));
  n += tcp.filter((f) => f[3] === '01' && !listening.has(port(f))).length;
  return n;
}

/** Connections every running plugin process of this Vault opened to it. */
function outbound(v: VaultNode): number {
  let n = 0;
  for (const p of v.plugins()) {
    try {
      n += dialedConnections(p.pid);
    } catch {
      /* the process exited meanwhile (Vault 1.8's metadata-mode runs) */
    }
  }
  return n;
}

for (const mode of TLS_MODES) {
  describe.skipIf(!vaultBin())(`idle broker connections in a real Vault (${mode} TLS)`, { timeout: 120_000 }, () => {
    let v: VaultNode;
    let transit: TransitState;
    let pki: PkiState;

    beforeAll(async () => {
      v = await startDevVault({ mode, env: { [BROKER_IDLE_ENV]: '1000' } });
      await v.registerPlugin();
      await enableTransit(v);
      await enablePki(v);
      transit = await transitWork(v);
      pki = await pkiWork(v);
    });
    afterAll(async () => {
      await v?.destroy();
    });

    it('closes the idle connections, and the mounts answer correctly afterwards over new ones', async () => {
      // One process per mount (Vault 1.8 offers secrets plugins protocol 4), each connected to its broker listener.
      expect(outbound(v)).toBeGreaterThan(0);
      // grpc-js idles the channel after 1 s; the connection is shut at the next subchannel-pool sweep (≤ 10 s).
      await waitFor('every plugin broker connection to close', () => outbound(v) === 0, 30_000, 250);

      // Storage reads and writes after the idle period: existing key, a new key, an issued (stored) certificate.
      expect(await decrypt(v, 'transit', transit.key, transit.v2)).toBe(transit.plaintext);
      const fresh = (await write(v, 'transit/encrypt/app', `plaintext=${transit.plaintext}`)).ciphertext;
      expect(await decrypt(v, 'transit', 'app', fresh)).toBe(transit.plaintext);
      await write(v, 'transit/keys/after-idle', 'type=ecdsa-p256');
      const input = b64('signed after idle');
      const sig = (await write(v, 'transit/sign/after-idle', `input=${input}`)).signature;
      expect((await write(v, 'transit/verify/after-idle', `input=${input}`, `signature=${sig}`)).valid).toBe(true);
      const cert = await issue(v, 'pki', pki.role, 'after-idle.example.test', 'ttl=1h');
      expect(verify(pki.caPem, cert.certificate)).toMatch(/OK/);
      expect((await read(v, `pki/cert/${cert.serial_number}`)).data.certificate.trim()).toBe(cert.certificate.trim());
      // ...over connections opened again (one per process that was called).
      expect(outbound(v)).toBeGreaterThan(0);
    });
  });
}
