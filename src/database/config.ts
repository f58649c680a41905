// The connection configuration Vault passes to Initialize (the `connection_details`
// of `vault write database/config/<name>`), declared once: parsing, validation,
// defaults and the README's field table all come from CONFIG_FIELDS.
import { invalid } from './errors';
import { UsernameTemplate, DEFAULT_USERNAME_TEMPLATE, TemplateError } from './template';
import { parseFields, type Field } from '../schema';

/** libpq's sslmode values, in increasing strictness. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
/** One of SSL_MODES. */
export type SslMode = (typeof SSL_MODES)[number];

/** pg's connect timer is a Node timer: a longer delay fires at once (TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2_147_483_647;

// port, db and sslmode have no declared default: they are resolved from connection_url
// first, then libpq's defaults (5432, the username, prefer), when the target is built.
/** Every connection field Vault may send: the one declaration parsing, defaults, redaction and the README table read. */
export const CONFIG_FIELDS = {
  connection_url: {
    type: 'string',
    description:
      'postgres://{{username}}:{{password}}@host:port/db?sslmode=... (or key=value form); {{username}}/{{password}} are filled from the fields below, URL-escaped',
    secret: true,
  },
  host: { type: 'string', description: 'server host (when connection_url is not used)' },
  port: { type: 'int', description: 'server port (default 5432)', min: 1 },
  db: { type: 'string', description: 'database to connect to (default: the username, as libpq does)' },
  username: { type: 'string', description: 'the privileged user the plugin connects as' },
  password: { type: 'string', description: "that user's password", secret: true },
  sslmode: { type: 'string', allowed: SSL_MODES, lowercase: true, description: 'libpq sslmode (default prefer)' },
  sslrootcert: { type: 'string', description: 'CA certificate: a file path or inline PEM' },
  sslcert: { type: 'string', description: 'client certificate: a file path or inline PEM' },
  sslkey: {
    type: 'string',
    description: 'client private key: a file path or inline PEM (an inline key is stored by Vault as private_key, which it hides on read)',
    secret: true,
  },
  // Current Vault's names (its PostgreSQL plugin takes PEM in these; Vault hides private_key on read).
  tls_ca: { type: 'string', description: 'CA certificate, PEM (current Vault name; same as sslrootcert)' },
  tls_certificate: { type: 'string', description: 'client certificate, PEM (current Vault name; same as sslcert)' },
  private_key: { type: 'string', description: 'client private key, PEM (current Vault name; same as sslkey)', secret: true },
  connect_timeout: {
    type: 'duration',
    unit: 'ms',
    default: 10_000,
    max: MAX_TIMER_MS,
    description: 'how long to wait for a connection (seconds or a duration like "500ms")',
  },
  username_template: { type: 'string', default: DEFAULT_USERNAME_TEMPLATE, description: 'template for generated usernames (Vault template language)' },
  password_authentication: {
    type: 'string',
    allowed: ['password', 'scram-sha-256'],
    lowercase: true,
    default: 'password',
    description: 'send the clear password or a SCRAM-SHA-256 verifier computed by the plugin',
  },
  disable_escaping: { type: 'bool', default: false, description: 'do not URL-escape username/password when filling connection_url' },
  max_open_connections: { type: 'int', default: 4, description: 'pool size; 0 means 4, a negative value no limit (as Vault)' },
  max_idle_connections: {
    type: 'int',
    default: 0,
    description: 'idle connections kept; 0, or more than max_open_connections, means max_open_connections; negative: none',
  },
  max_connection_lifetime: { type: 'duration', default: 0, description: 'recycle connections older than this (0: never)' },
  load_balance: { type: 'string', description: 'YugabyteDB smart driver: true|any|only-primary|only-rr|prefer-primary|prefer-rr|false' },
  yb_servers_refresh_interval: { type: 'int', default: 300, description: 'YugabyteDB smart driver: seconds between yb_servers() refreshes', min: 0 },
  topology_keys: { type: 'string', description: 'YugabyteDB smart driver: cloud.region.zone[:preference],...' },
} as const satisfies Record<string, Field>;

/** A connection field's name. */
export type ConfigKey = keyof typeof CONFIG_FIELDS;

/** The connection configuration, parsed and defaulted (durations in the units named). */
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

/** What parseConfig gives: the configuration and the keys it did not know. */
export interface ParsedConfig {
  config: ConnectionConfig;
  /** Keys Vault sent that this plugin does not know (reported, not fatal: newer Vaults add fields). */
  unknownKeys: string[];
}

/** Parse Vault's connection_details by CONFIG_FIELDS; bad input is an InvalidArgument PluginError naming the field. */
export function parseConfig(raw: Record<string, unknown>): ParsedConfig {
  const { values: vals, unknown: unknownKeys } = parseFields(CONFIG_FIELDS, raw, invalid);
  const s = (k: ConfigKey) => vals[k] as string | undefined;
  const n = (k: ConfigKey) => vals[k] as number;
  if (!s('connection_url') && !s('host')) throw invalid('connection_url or host is required');
  if (s('connection_url') && s('host')) throw invalid('set either connection_url or host/port/db, not both');
  const sslrootcert = oneOf(s, 'sslrootcert', 'tls_ca');
  const sslcert = oneOf(s, 'sslcert', 'tls_certificate');
  const sslkey = oneOf(s, 'sslkey', 'private_key');
  // Vault's rules (its SQL connection producer, then Go's database/sql): open 0 is the
  // default 4 and a negative open is no limit; idle 0 is the same as open, more idle than
  // open is open, and a negative result keeps no idle connection (so with a negative open,
  // idle 0 keeps none, as in Vault).
  let maxOpen = n('max_open_connections');
  if (maxOpen === 0) maxOpen = CONFIG_FIELDS.max_open_connections.default;
  let maxIdle = n('max_idle_connections');
  if (maxIdle === 0 || maxIdle > maxOpen) maxIdle = maxOpen;
  if (maxIdle < 0) maxIdle = 0;
  if (maxOpen < 0) maxOpen = Number.POSITIVE_INFINITY;
  let usernameTemplate: UsernameTemplate;
  try {
    usernameTemplate = UsernameTemplate.parse(s('username_template')!);
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    throw invalid(`username_template is invalid: ${e.detail}`, { cause: e });
  }
  return {
    unknownKeys,
    config: {
      connectionUrl: s('connection_url'),
      host: s('host'),
      port: vals.port as number | undefined,
      db: s('db'),
      username: s('username'),
      password: s('password'),
      sslmode: s('sslmode') as SslMode | undefined,
      sslrootcert,
      sslcert,
      sslkey,
      connectTimeoutMs: n('connect_timeout'),
      usernameTemplate,
      scram: s('password_authentication') === 'scram-sha-256',
      disableEscaping: vals.disable_escaping as boolean,
      maxOpen,
      maxIdle,
      maxLifetimeSec: n('max_connection_lifetime'),
      loadBalance: s('load_balance'),
      ybServersRefreshInterval: n('yb_servers_refresh_interval'),
      topologyKeys: s('topology_keys'),
    },
  };
}

/** A TLS setting given under libpq's name or current Vault's: one of them, or both the same. */
function oneOf(s: (k: ConfigKey) => string | undefined, libpq: ConfigKey, vault: ConfigKey): string | undefined {
  const a = s(libpq);
  const b = s(vault);
  if (a && b && a !== b) throw invalid(`set ${libpq} or ${vault}, not both`);
  return a || b;
}

const isPem = (v: unknown): v is string => typeof v === 'string' && v.includes('-----BEGIN');

/** connection_url without an inline `sslkey` parameter (URL or key=value form), and that key; null when it has none. */
function takeInlineKey(url: string): { url: string; key: string } | null {
  if (/^\s*[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const q = url.indexOf('?');
    if (q < 0) return null;
    let key: string | undefined;
    const kept = url
      .slice(q + 1)
      .split('&')
      .filter((part) => {
        if (!part.startsWith('sslkey=')) return true;
        let v: string;
        try {
          v = decodeURIComponent(part.slice(7).replace(/\+/g, ' ')); // as URLSearchParams reads it
        } catch {
          return true;
        }
        if (!isPem(v)) return true;
        key = v;
        return false;
      });
    return key === undefined ? null : { url: kept.length ? `${url.slice(0, q)}?${kept.join('&')}` : url.slice(0, q), key };
  }
  // key=value form: sslkey='...' (a PEM has spaces, so it is quoted), with \\ and \' escapes.
  const m = /(^|\s)sslkey\s*=\s*'((?:[^'\\]|\\.)*)'/.exec(url);
  if (!m) return null;
  const v = m[2].replace(/\\(.)/g, '$1');
  if (!isPem(v)) return null;
  return { url: (url.slice(0, m.index) + url.slice(m.index + m[0].length)).trim(), key: v };
}

/**
 * The configuration Vault is to store (InitializeResponse.config; Vault sends it back on the
 * next Initialize, and `vault read database/config/<name>` shows all of it but `password`
 * and `private_key`): as given, except that a client key given inline (as `sslkey`, or as
 * an sslkey parameter of connection_url) is moved to `private_key`.
 */
export function storedConfig(raw: Record<string, unknown>): Record<string, unknown> {
  const out = { ...raw };
  if (isPem(out.sslkey)) {
    out.private_key = out.sslkey;
    delete out.sslkey;
  }
  const fromUrl = typeof out.connection_url === 'string' ? takeInlineKey(out.connection_url) : null;
  if (fromUrl) {
    out.connection_url = fromUrl.url;
    // A key field overrides the URL's parameter, so that one was unused anyway.
    if (!out.private_key && !out.sslkey) out.private_key = fromUrl.key;
  }
  return out;
}

/** Every secret value in a config, for redaction of messages. */
export function configSecrets(c: ConnectionConfig): string[] {
  return [c.password, c.sslkey?.includes('-----BEGIN') ? c.sslkey : undefined].filter((x): x is string => !!x);
}
