// The connection configuration Vault passes to Initialize (the `connection_details`
// of `vault write database/config/<name>`), declared once: parsing, validation,
// defaults and the README's field table all come from CONFIG_FIELDS.
import { invalid } from './errors';
import { UsernameTemplate, DEFAULT_USERNAME_TEMPLATE } from './template';

export type FieldType = 'string' | 'int' | 'bool' | 'duration' | 'enum';

export interface FieldSpec {
  type: FieldType;
  description: string;
  values?: readonly string[];
  secret?: boolean;
  min?: number;
}

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const CONFIG_FIELDS = {
  connection_url: { type: 'string', description: 'postgres://{{username}}:{{password}}@host:port/db?sslmode=... (or key=value form); {{username}}/{{password}} are filled from the fields below, URL-escaped', secret: true },
  host: { type: 'string', description: 'server host (when connection_url is not used)' },
  port: { type: 'int', description: 'server port (default 5432)', min: 1 },
  db: { type: 'string', description: 'database to connect to (default: the username, as libpq does)' },
  username: { type: 'string', description: 'the privileged user the plugin connects as' },
  password: { type: 'string', description: "that user's password", secret: true },
  sslmode: { type: 'enum', values: SSL_MODES, description: 'libpq sslmode (default prefer)' },
  sslrootcert: { type: 'string', description: 'CA certificate: a file path or inline PEM' },
  sslcert: { type: 'string', description: 'client certificate: a file path or inline PEM' },
  sslkey: { type: 'string', description: 'client private key: a file path or inline PEM', secret: true },
  connect_timeout: { type: 'duration', description: 'how long to wait for a connection (default 10s)' },
  username_template: { type: 'string', description: 'template for generated usernames (Vault template language)' },
  password_authentication: { type: 'enum', values: ['password', 'scram-sha-256'], description: 'send the clear password (default) or a SCRAM-SHA-256 verifier computed by the plugin' },
  disable_escaping: { type: 'bool', description: 'do not URL-escape username/password when filling connection_url' },
  max_open_connections: { type: 'int', description: 'pool size (default 4)', min: 1 },
  max_idle_connections: { type: 'int', description: 'idle connections kept (default and maximum: max_open_connections)', min: 0 },
  max_connection_lifetime: { type: 'duration', description: 'recycle connections older than this (default 0: never)' },
  load_balance: { type: 'string', description: 'YugabyteDB smart driver: true|any|only-primary|only-rr|prefer-primary|prefer-rr|false' },
  yb_servers_refresh_interval: { type: 'int', description: 'YugabyteDB smart driver: seconds between yb_servers() refreshes (default 300)', min: 0 },
  topology_keys: { type: 'string', description: 'YugabyteDB smart driver: cloud.region.zone[:preference],...' },
} as const satisfies Record<string, FieldSpec>;

export type ConfigKey = keyof typeof CONFIG_FIELDS;

export interface ConnectionConfig {
  connectionUrl?: string;
  host?: string;
  port?: number;
  db?: string;
  username?: string;
  password?: string;
  sslmode?: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  connectTimeoutMs: number;
  usernameTemplate: UsernameTemplate;
  scram: boolean;
  disableEscaping: boolean;
  maxOpen: number;
  maxIdle: number;
  maxLifetimeSec: number;
  loadBalance?: string;
  ybServersRefreshInterval?: number;
  topologyKeys?: string;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Seconds from "90", 90, "1m30s", "1.5h" (Go duration syntax, as Vault accepts). */
export function parseDurationSeconds(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const s = v.trim();
    if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
    const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
    let total = 0;
    let m: RegExpExecArray | null;
    let pos = 0;
    while ((m = re.exec(s))) { total += Number(m[1]) * DURATION_UNITS[m[2]]; pos = re.lastIndex; }
    if (s.length > 0 && pos === s.length) return total;
  }
  throw invalid(`${key}: invalid duration ${JSON.stringify(v)} (use seconds or a duration like "30s", "5m")`);
}

function coerce(key: ConfigKey, spec: FieldSpec, v: unknown): unknown {
  if (v === null || v === undefined || v === '') return undefined;
  switch (spec.type) {
    case 'string':
      if (typeof v !== 'string') throw invalid(`${key}: expected a string`);
      return v;
    case 'enum': {
      const s = String(v).toLowerCase();
      if (!spec.values!.includes(s)) throw invalid(`${key}: must be one of ${spec.values!.join(', ')}; got ${JSON.stringify(String(v).slice(0, 40))}`);
      return s;
    }
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      throw invalid(`${key}: expected true or false`);
    case 'int': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
      if (!Number.isInteger(n)) throw invalid(`${key}: expected an integer`);
      if (spec.min !== undefined && n < spec.min) throw invalid(`${key}: must be at least ${spec.min}`);
      return n;
    }
    case 'duration':
      return parseDurationSeconds(v, key);
  }
}

export interface ParsedConfig {
  config: ConnectionConfig;
  /** Keys Vault sent that this plugin does not know (reported, not fatal: newer Vaults add fields). */
  unknownKeys: string[];
}

export function parseConfig(raw: Record<string, unknown>): ParsedConfig {
  const vals: Partial<Record<ConfigKey, unknown>> = {};
  const unknownKeys: string[] = [];
  for (const [k, v] of Object.entries(raw)) {
    if (k in CONFIG_FIELDS) vals[k as ConfigKey] = coerce(k as ConfigKey, CONFIG_FIELDS[k as ConfigKey], v);
    else unknownKeys.push(k);
  }
  const s = (k: ConfigKey) => vals[k] as string | undefined;
  const n = (k: ConfigKey) => vals[k] as number | undefined;
  if (!s('connection_url') && !s('host')) throw invalid('connection_url or host is required');
  if (s('connection_url') && s('host')) throw invalid('set either connection_url or host/port/db, not both');
  const maxOpen = n('max_open_connections') ?? 4;
  let maxIdle = n('max_idle_connections') ?? 0;
  // Vault's rule: 0 means "same as open"; more idle than open makes no sense.
  if (maxIdle === 0 || maxIdle > maxOpen) maxIdle = maxOpen;
  let usernameTemplate: UsernameTemplate;
  try {
    usernameTemplate = UsernameTemplate.parse(s('username_template') ?? DEFAULT_USERNAME_TEMPLATE);
  } catch (e) {
    throw invalid(`username_template is invalid: ${(e as Error).message.replace(/^username_template: /, '')}`);
  }
  return {
    unknownKeys,
    config: {
      connectionUrl: s('connection_url'),
      host: s('host'),
      port: n('port'),
      db: s('db'),
      username: s('username'),
      password: s('password'),
      sslmode: s('sslmode') as SslMode | undefined,
      sslrootcert: s('sslrootcert'),
      sslcert: s('sslcert'),
      sslkey: s('sslkey'),
      connectTimeoutMs: Math.round((n('connect_timeout') ?? 10) * 1000),
      usernameTemplate,
      scram: s('password_authentication') === 'scram-sha-256',
      disableEscaping: (vals.disable_escaping as boolean | undefined) ?? false,
      maxOpen,
      maxIdle,
      maxLifetimeSec: n('max_connection_lifetime') ?? 0,
      loadBalance: s('load_balance'),
      ybServersRefreshInterval: n('yb_servers_refresh_interval'),
      topologyKeys: s('topology_keys'),
    },
  };
}

/** Every secret value in a config, for redaction of messages. */
export function configSecrets(c: ConnectionConfig): string[] {
  return [c.password, c.sslkey?.includes('-----BEGIN') ? c.sslkey : undefined].filter((x): x is string => !!x);
}
