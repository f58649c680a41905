// YugabyteDB's smart driver (@yugabytedb/pg, node-postgres's API) for load_balance /
// topology_keys, and the one-setting-per-process rule its shared state imposes.
import type { Pool as PgPool, Client as PgClient } from 'pg';
import type { ConnectionConfig } from '../config';
import { DEFAULTS } from '../defaults';
import { invalid } from '../errors';
import type { Target } from './target';

type Driver = { Pool: new (cfg: object) => PgPool; Client: new (cfg: object) => PgClient };

const smartDriverWanted = (c: ConnectionConfig) => !!c.loadBalance && c.loadBalance !== 'false';

/** node-postgres, or YugabyteDB's smart driver (same API) when load balancing is asked for. */
export function driverFor(c: ConnectionConfig): Driver {
  if (smartDriverWanted(c)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@yugabytedb/pg') as Driver;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('pg') as Driver;
}

// @yugabytedb/pg keeps its view of the cluster (control connection, server lists,
// topology, per-host connection counts) in static fields shared by the whole process.
// Two configs for different clusters or topologies in one plugin process would route
// each other's connections, so one smart-driver setting is served at a time.
let smartOwner: { key: string; refs: number } | undefined;

function resetSmartDriverState(): void {
  const C = (require('@yugabytedb/pg') as { Client: Record<string, unknown> }).Client;
  const ctl = C.controlClient as { end?: () => Promise<void> } | undefined;
  void ctl?.end?.().catch(() => undefined);
  C.controlClient = undefined;
  C.controlClientHost = '';
  C.lastTimeMetaDataFetched = 0;
  C.usePublic = false;
  for (const k of ['connectionMap', 'failedHosts', 'failedHostsTime', 'hostServerInfoPrimary', 'hostServerInfoRR', 'topologyKeyMap']) {
    (C[k] as Map<unknown, unknown> | undefined)?.clear();
  }
}

/** Reserve the process's smart driver for this cluster setting; returns the release function. */
export function claimSmartDriver(c: ConnectionConfig, t: Target): () => void {
  if (!smartDriverWanted(c)) return () => undefined;
  const key = JSON.stringify([t.host, t.port, c.loadBalance, c.topologyKeys ?? '', c.ybServersRefreshInterval ?? DEFAULTS.ybServersRefreshIntervalSec]);
  if (smartOwner && smartOwner.refs > 0 && smartOwner.key !== key) {
    throw invalid(
      'YugabyteDB smart-driver mode keeps cluster state per process, and this plugin process already serves another ' +
        'load_balance/topology_keys setting. Register the plugin a second time under another name for the second cluster.',
    );
  }
  if (!smartOwner || smartOwner.key !== key) {
    resetSmartDriverState();
    smartOwner = { key, refs: 0 };
  }
  const owner = smartOwner;
  owner.refs++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    // The last configuration using the driver: end its control connection and forget the cluster.
    if (--owner.refs === 0 && smartOwner === owner) {
      resetSmartDriverState();
      smartOwner = undefined;
    }
  };
}

/** The YugabyteDB smart driver's options for a configuration; none when it does not ask for load balancing. */
export function smartDriverOptions(c: ConnectionConfig): Record<string, unknown> {
  if (!smartDriverWanted(c)) return {};
  return {
    loadBalance: c.loadBalance,
    ybServersRefreshInterval: c.ybServersRefreshInterval ?? DEFAULTS.ybServersRefreshIntervalSec,
    topologyKeys: c.topologyKeys ?? '',
  };
}
