// Everything the host tells the plugin at launch comes from environment variables.
export const DATABASE_COOKIE = { key: 'VAULT_DATABASE_PLUGIN', value: '926a0820-aea2-be28-51d6-83cdf00e8edb' } as const;
export const BACKEND_COOKIE = { key: 'VAULT_BACKEND_PLUGIN', value: '6669da05-b1c8-4f49-97d9-c8e5bed98e20' } as const;

export type Role = 'database' | 'backend';

export const NOT_A_PROGRAM_MESSAGE =
  'This binary is a plugin. These are not meant to be executed directly.\n' +
  'Please execute the program that consumes these plugins, which will\n' +
  'load any plugins automatically\n';

export interface LaunchEnv {
  role: Role;
  /** App protocol versions the client accepts; empty when the client sent none. */
  clientVersions: number[];
  minPort: number;
  maxPort: number;
  clientCertPem?: string;
  /** Vault < 1.12 backend plugins: a wrapping token to fetch TLS material from Vault. */
  unwrapToken?: string;
  metadataMode: boolean;
  vaultVersion?: string;
}

export function detectRole(env: NodeJS.ProcessEnv): Role | undefined {
  if (env[DATABASE_COOKIE.key] === DATABASE_COOKIE.value) return 'database';
  if (env[BACKEND_COOKIE.key] === BACKEND_COOKIE.value) return 'backend';
  return undefined;
}

function intOr(v: string | undefined, dflt: number): number {
  const n = v === undefined || v === '' ? NaN : Number(v);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : dflt;
}

export function readLaunchEnv(env: NodeJS.ProcessEnv): LaunchEnv | undefined {
  const role = detectRole(env);
  if (!role) return undefined;
  const clientVersions = (env.PLUGIN_PROTOCOL_VERSIONS ?? '')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
  // go-plugin's defaults when the client leaves the range unset (0).
  let minPort = intOr(env.PLUGIN_MIN_PORT, 10000);
  let maxPort = intOr(env.PLUGIN_MAX_PORT, 25000);
  if (maxPort < minPort) [minPort, maxPort] = [maxPort, minPort];
  return {
    role,
    clientVersions,
    minPort,
    maxPort,
    clientCertPem: env.PLUGIN_CLIENT_CERT || undefined,
    unwrapToken: env.VAULT_UNWRAP_TOKEN || undefined,
    metadataMode: env.VAULT_PLUGIN_METADATA_MODE === 'true',
    vaultVersion: env.VAULT_VERSION || undefined,
  };
}

/** go-plugin's rule: the highest version both sides speak; else our highest (the client then reports the mismatch). */
export function negotiateVersion(served: number[], clientVersions: number[]): { version: number; matched: boolean } {
  const ours = [...served].sort((a, b) => b - a);
  if (clientVersions.length === 0) return { version: ours[ours.length - 1], matched: true };
  for (const v of ours) if (clientVersions.includes(v)) return { version: v, matched: true };
  return { version: ours[0], matched: false };
}

/**
 * An operator setting given at plugin registration (`env=` in the plugin catalog):
 * `VAULT_<name>`, or OpenBao's `BAO_<name>` when the Vault name is unset.
 */
export function operatorSetting(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[`VAULT_${name}`];
  if (v !== undefined && v !== '') return v;
  const b = env[`BAO_${name}`];
  return b !== undefined && b !== '' ? b : undefined;
}
