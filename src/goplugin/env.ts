// Everything the host tells the plugin at launch comes from environment variables
// (and, for reaching Vault's API in the wrapping-token TLS mode, Vault's plugin flags).
// Vault's own variables are read under their OpenBao names too (BAO_*, see operatorSetting).
import { socketSettings, type SocketSettings } from './listener';
import type { VaultApiSettings } from './unwrap';

/** go-plugin's magic cookie that Vault sets when it launches a database plugin. */
export const DATABASE_COOKIE = { key: 'VAULT_DATABASE_PLUGIN', value: '926a0820-aea2-be28-51d6-83cdf00e8edb' } as const;
/** go-plugin's magic cookie that Vault sets when it launches a secrets (backend) plugin. */
export const BACKEND_COOKIE = { key: 'VAULT_BACKEND_PLUGIN', value: '6669da05-b1c8-4f49-97d9-c8e5bed98e20' } as const;

/** Which plugin this process is, by the cookie it was launched with. */
export type Role = 'database' | 'backend';

/** What go-plugin prints when a plugin is run by hand, without a cookie. */
export const NOT_A_PROGRAM_MESSAGE =
  'This binary is a plugin. These are not meant to be executed directly.\n' +
  'Please execute the program that consumes these plugins, which will\n' +
  'load any plugins automatically\n';

/** Everything the host told the plugin at launch. */
export interface LaunchEnv {
  role: Role;
  /** App protocol versions the client accepts; empty when the client sent none. */
  clientVersions: number[];
  minPort: number;
  maxPort: number;
  /** Listen on a unix socket with these settings (go-plugin's default); absent: TCP in minPort..maxPort. */
  socket?: SocketSettings;
  clientCertPem?: string;
  /** Vault < 1.12 backend plugins: a wrapping token to fetch TLS material from Vault. */
  unwrapToken?: string;
  /** How to reach Vault's API to unwrap it (HTTPS trust and client certificate). */
  vaultApi?: VaultApiSettings;
  metadataMode: boolean;
  vaultVersion?: string;
}

/** The role the environment's magic cookie names, or undefined when run by hand. */
export function detectRole(env: NodeJS.ProcessEnv): Role | undefined {
  if (env[DATABASE_COOKIE.key] === DATABASE_COOKIE.value) return 'database';
  if (env[BACKEND_COOKIE.key] === BACKEND_COOKIE.value) return 'backend';
  return undefined;
}

function intOr(v: string | undefined, dflt: number): number {
  const n = v === undefined || v === '' ? NaN : Number(v);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : dflt;
}

/** Go's strconv.ParseBool, as Vault reads VAULT_SKIP_VERIFY; undefined for anything else. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

const API_FLAGS = {
  'ca-cert': 'caCert',
  'ca-path': 'caPath',
  'client-cert': 'clientCert',
  'client-key': 'clientKey',
  'tls-server-name': 'serverName',
} as const;

/**
 * Vault's API client settings for the unwrap call: the variables Vault's api package reads
 * (VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME,
 * VAULT_SKIP_VERIFY, or their BAO_ names), overridden by the flags Vault's own plugins take
 * in the catalog's args (-ca-cert=..., -ca-path, -client-cert, -client-key, -tls-server-name,
 * -tls-skip-verify). Unknown arguments are ignored.
 */
export function readVaultApiSettings(env: NodeJS.ProcessEnv, argv: readonly string[] = []): VaultApiSettings {
  const s: VaultApiSettings = {
    caCert: operatorSetting('CACERT', env),
    caPath: operatorSetting('CAPATH', env),
    clientCert: operatorSetting('CLIENT_CERT', env),
    clientKey: operatorSetting('CLIENT_KEY', env),
    serverName: operatorSetting('TLS_SERVER_NAME', env),
  };
  const skip = operatorSetting('SKIP_VERIFY', env);
  if (skip !== undefined) {
    s.skipVerify = parseGoBool(skip);
    if (s.skipVerify === undefined) throw new Error('VAULT_SKIP_VERIFY is not a boolean');
  }
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([a-z-]+)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) continue;
    const [, name, inline] = m;
    if (name === 'tls-skip-verify') {
      const v = inline === undefined ? true : parseGoBool(inline);
      if (v === undefined) throw new Error('-tls-skip-verify is not a boolean');
      s.skipVerify = v;
    } else if (name in API_FLAGS) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`-${name} needs a value`);
      s[API_FLAGS[name as keyof typeof API_FLAGS]] = value;
    }
  }
  return s;
}

/** The launch settings from the environment (and Vault's plugin flags in argv); undefined without a cookie. */
export function readLaunchEnv(env: NodeJS.ProcessEnv, argv: readonly string[] = []): LaunchEnv | undefined {
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
  const unwrapToken = operatorSetting('UNWRAP_TOKEN', env);
  return {
    role,
    clientVersions,
    minPort,
    maxPort,
    socket: socketSettings(env),
    clientCertPem: env.PLUGIN_CLIENT_CERT || undefined,
    unwrapToken,
    vaultApi: unwrapToken ? readVaultApiSettings(env, argv) : undefined,
    metadataMode: operatorSetting('PLUGIN_METADATA_MODE', env) === 'true',
    vaultVersion: operatorSetting('VERSION', env),
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

/**
 * A whole-number operator setting (operatorSetting's `VAULT_`/`BAO_` names, `vaultName` the
 * VAULT_ one): `fallback` when unset, else an integer from min to max; anything else is an
 * error that names the variable ("a whole number[ of <unit>] from min to max").
 */
export function wholeNumberSetting(
  vaultName: string,
  bounds: { min: number; max: number; fallback: number; unit?: string },
  env: NodeJS.ProcessEnv = process.env,
): number {
  const raw = operatorSetting(vaultName.slice('VAULT_'.length), env);
  if (raw === undefined) return bounds.fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < bounds.min || n > bounds.max) {
    const what = bounds.unit ? `a whole number of ${bounds.unit}` : 'a whole number';
    throw new Error(`${vaultName} must be ${what} from ${bounds.min} to ${bounds.max}, got ${JSON.stringify(raw.slice(0, 20))}`);
  }
  return n;
}
