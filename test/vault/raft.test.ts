// Three Vault nodes on Raft (loopback): transit, PKI and a database config mounted through the
// active node; the active node killed; after a new one takes over, a surviving standby (which
// forwards to it) serves the same keys, CA, database config and leases. Both TLS modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login, pgInfo, roleExists, admin, type PgInfo } from '../support/db';
import { TLS_MODES, startRaftCluster, vaultBin, type RaftCluster, type VaultNode } from '../support/vault';
import {
  creds,
  dbAdmin,
  dbConfig,
  dbRole,
  decrypt,
  enablePki,
  enableTransit,
  issue,
  pkiWork,
  transitWork,
  verify,
  type PkiState,
  type TransitState,
} from './steps';

for (const mode of TLS_MODES) {
  describe.skipIf(!vaultBin())(`a 3-node Raft cluster losing its active node (${mode} TLS)`, { timeout: 120_000 }, () => {
    let cluster: RaftCluster;
    let first: VaultNode;
    let transit: TransitState;
    let pki: PkiState;
    let dba: PgInfo;
    let held: Awaited<ReturnType<typeof creds>>;

    beforeAll(async () => {
      cluster = await startRaftCluster({ mode });
      dba = await dbAdmin(pgInfo(), 'raft');
    }, 180_000);
    afterAll(async () => {
      await cluster?.stop();
      for (const u of [held?.username, dba?.user]) if (u) await admin((c) => c.query(`DROP ROLE IF EXISTS "${u}"`)).catch(() => undefined);
    });

    it('three voters; plugin registered and mounted through the active node', async () => {
      const peers = await cluster.peers();
      expect(peers.map((p) => p.voter)).toEqual([true, true, true]);
      first = await cluster.waitForActive(5000);
      expect(first).toBe(cluster.nodes[0]);
      // The catalog is replicated; the executable must be in every node's plugin_directory.
      await first.registerPlugin();
      for (const n of cluster.nodes) expect(n.pluginSha256()).toBe(first.pluginSha256());
      await enableTransit(first);
      await enablePki(first);
      await first.vault(['secrets', 'enable', 'database']);
      transit = await transitWork(first);
      pki = await pkiWork(first);
      expect(verify(pki.caPem, (await issue(first, 'pki', pki.role, 'one.example.test', 'ttl=1h')).certificate)).toMatch(/: OK/);
      await dbConfig(first, 'pg', dba);
      await dbRole(first, 'app', 'pg');
      held = await creds(first, 'app');
      expect(await login(held.username, held.password)).toBe(true);
      // Standbys run no plugin processes.
      for (const n of cluster.nodes.slice(1)) expect(n.plugins()).toEqual([]);
    });

    it('the active node killed: a new active within 60 s, and a surviving standby serves everything', async () => {
      await first.stop('SIGKILL');
      const active = await cluster.waitForActive(60_000);
      expect(active).not.toBe(first);
      const standby = cluster.nodes.find((n) => n !== first && n !== active)!;
      expect(await standby.health()).toBe(429);

      // Transit: the same key decrypts both versions' old ciphertexts.
      expect(await decrypt(standby, 'transit', transit.key, transit.v1)).toBe(transit.plaintext);
      expect(await decrypt(standby, 'transit', transit.key, transit.v2)).toBe(transit.plaintext);
      // PKI: the same CA, and what it issues now verifies against the CA fetched before.
      const ca = await standby.http('GET', 'pki/ca/pem');
      expect(ca.status, ca.text).toBe(200);
      expect(ca.text.trim(), JSON.stringify([...ca.headers])).toBe(pki.caPem.trim());
      const leaf = await issue(standby, 'pki', pki.role, 'two.example.test', 'ttl=1h');
      expect(verify(pki.caPem, leaf.certificate)).toMatch(/: OK/);
      // Database: new credentials log in; the earlier lease and its SQL role are still there.
      const fresh = await creds(standby, 'app');
      expect(await login(fresh.username, fresh.password)).toBe(true);
      const leases: string[] = await standby.vault(['list', '-format=json', 'sys/leases/lookup/database/creds/app/']);
      expect(leases).toContain(held.leaseId.split('/').pop());
      const lookup = await standby.vault(['lease', 'lookup', '-format=json', held.leaseId]);
      expect(lookup.data.id).toBe(held.leaseId);
      expect(await roleExists(held.username)).toBe(true);
      expect(await login(held.username, held.password)).toBe(true);
      // The new active node runs the plugin now.
      expect(active.plugins().length).toBeGreaterThanOrEqual(3);
      await standby.vault(['lease', 'revoke', '-sync', held.leaseId]);
      expect(await roleExists(held.username)).toBe(false);
      await standby.vault(['lease', 'revoke', '-sync', fresh.leaseId]);
    });
  });
}
