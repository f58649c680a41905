// Where to connect and as whom: connection_url (URL or libpq key=value form, with
// {{username}}/{{password}} filled in) or host/port/db, plus the TLS settings.
import type { ConnectionConfig, SslMode } from '../config';
import { SSL_MODES } from '../config';
import { DEFAULTS } from '../defaults';
import { invalid } from '../errors';

/** Where to connect: host, port, database, credentials and libpq parameters, resolved from the configuration. */
export interface Target {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  sslmode: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  applicationName?: string;
  /** connect_timeout of connection_url (libpq: seconds; 0 or less waits indefinitely), overriding the field. */
  connectTimeoutMs?: number;
  /** The startup `options` (command-line switches for the server: -c name=value ...): connection_url's options and runtime parameters; none when it gives none. */
  options?: string;
  /** Set the session's time zone to UTC when a connection opens (unless false: connection_url sets its own). */
  utcSession?: boolean;
  /** connection_url's libpq parameters this plugin does not apply (harmless ones only): to report, not to drop silently. */
  ignoredParams?: string[];
}

/** connection_url parameters resolveTarget applies itself. */
const APPLIED = new Set(['host', 'port', 'dbname', 'user', 'password', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name']);
/** libpq parameters without effect here that change nothing a caller relies on: reported in the log. */
const IGNORED = new Set([
  'sslsni',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
  'tcp_user_timeout',
  'sslcompression',
  'krbsrvname',
  'gsslib',
  'gssdelegation',
  'passfile',
]);
/** libpq parameters accepted at the value that is what this plugin does anyway (lowercase). */
const AS_DONE: Record<string, string[]> = {
  gssencmode: ['disable', 'prefer'],
  channel_binding: ['disable', 'prefer'],
  target_session_attrs: ['any'],
  load_balance_hosts: ['disable'],
  sslnegotiation: ['postgres'],
  client_encoding: ['utf8', 'utf-8', 'unicode'],
};
/** Every other libpq connection parameter (PostgreSQL's libpq docs, "Parameter Key Words"): refused, as its effect would be missing. */
const LIBPQ_UNSUPPORTED = new Set([
  'hostaddr',
  'require_auth',
  'replication',
  'requiressl',
  'sslkeylogfile',
  'sslpassword',
  'sslcertmode',
  'sslcrl',
  'sslcrldir',
  'requirepeer',
  'ssl_min_protocol_version',
  'ssl_max_protocol_version',
  'min_protocol_version',
  'max_protocol_version',
  'service',
]);
/** YugabyteDB smart-driver settings, which this plugin takes as configuration fields. */
const SMART_DRIVER = new Set(['load_balance', 'topology_keys', 'yb_servers_refresh_interval']);

/**
 * Does connection_url set the session's time zone itself (a timezone parameter, or -c
 * timezone= / --timezone= in its options)? Otherwise each connection sets UTC once it is
 * open (session.ts), as Vault's connutil adds timezone=UTC to a postgres:// URL.
 */
function setsTimeZone(p: Record<string, string>): boolean {
  return Object.keys(p).some((k) => k.toLowerCase() === 'timezone') || /(?:^|\s)(?:-c\s*|--)timezone=/i.test(p.options ?? '');
}

/** A value as one word of the startup `options`: the server splits them at spaces, and takes a backslash as escaping the next character. */
const optionWord = (v: string) => v.replace(/[\\\s]/g, (ch) => `\\${ch}`);

/**
 * What connection_url's other parameters become. As libpq and Go's pgx: connect_timeout
 * bounds the connect, `options` is sent as it is, and a name libpq does not know is a
 * server setting for the session (search_path=x), sent as -c name=value in `options`.
 */
function extraParams(p: Record<string, string>): Pick<Target, 'connectTimeoutMs' | 'options' | 'ignoredParams' | 'utcSession'> {
  const ignoredParams: string[] = [];
  const settings: string[] = [];
  let connectTimeoutMs: number | undefined;
  for (const [name, value] of Object.entries(p)) {
    if (APPLIED.has(name) || name === 'options' || name === 'fallback_application_name') continue;
    if (name === 'connect_timeout') {
      if (!/^\s*-?\d+\s*$/.test(value)) throw invalid('connection_url: connect_timeout must be a whole number of seconds');
      connectTimeoutMs = Math.max(0, Math.min(Number(value), 2_147_483)) * 1000; // 0 = no bound (node-postgres as libpq)
    } else if (IGNORED.has(name)) ignoredParams.push(name);
    else if (AS_DONE[name]) {
      if (!AS_DONE[name].includes(value.toLowerCase()))
        throw invalid(`connection_url: ${name}=${value} is not supported by this plugin (supported: ${AS_DONE[name].join(', ')})`);
    } else if (LIBPQ_UNSUPPORTED.has(name)) throw invalid(`connection_url: the parameter ${name} is not supported by this plugin`);
    else if (SMART_DRIVER.has(name)) throw invalid(`connection_url: give ${name} as a configuration field, not in connection_url`);
    else {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw invalid(`connection_url: ${JSON.stringify(name)} is not a parameter name`);
      settings.push(`-c ${name}=${optionWord(value)}`);
    }
  }
  const options = [p.options, ...settings].filter((x) => x?.trim()).join(' ') || undefined;
  return { connectTimeoutMs, options, ignoredParams, utcSession: !setsTimeZone(p) };
}

/**
 * libpq key=value connection strings (host=h port=5432 user='a b'), by libpq's grammar:
 * a value is quoted ('...') or runs to the next white space; in both, a backslash takes
 * the next character literally.
 */
function parseKeywordDsn(dsn: string): Record<string, string> {
  const out: Record<string, string> = {};
  const bad = () => invalid('connection_url: cannot parse the key=value connection string');
  let i = 0;
  const ws = () => {
    while (i < dsn.length && /\s/.test(dsn[i])) i++;
  };
  for (ws(); i < dsn.length; ws()) {
    const key = /[A-Za-z_][A-Za-z0-9_]*/y;
    key.lastIndex = i;
    const k = key.exec(dsn);
    if (!k) throw bad();
    i = key.lastIndex;
    ws();
    if (dsn[i] !== '=') throw bad();
    i++;
    ws();
    let v = '';
    const quoted = dsn[i] === "'";
    if (quoted) i++;
    for (;;) {
      if (i >= dsn.length) {
        if (quoted) throw bad(); // unterminated quote
        break;
      }
      const ch = dsn[i];
      if (quoted ? ch === "'" : /\s/.test(ch)) {
        if (quoted) i++;
        break;
      }
      if (ch === '\\') {
        if (i + 1 >= dsn.length) throw bad();
        v += dsn[i + 1];
        i += 2;
      } else {
        v += ch;
        i++;
      }
    }
    out[k[0]] = v;
  }
  return out;
}

const PLACEHOLDER = /\{\{\s*(username|password)\s*\}\}/y;

/**
 * connection_url with {{username}}/{{password}} filled in. URL form: URL-escaped (unless
 * disable_escaping). key=value form: a placeholder the user quoted ('{{password}}', as
 * Vault's docs write it) gets its ' and \ backslash-escaped; an unquoted one is escaped
 * likewise, white space included, so any value stays one value.
 */
function fillUrlTemplate(url: string, c: ConnectionConfig, urlForm: boolean): string {
  const value = (name: string) => (name === 'username' ? c.username : c.password) ?? '';
  if (urlForm) {
    const enc = (v: string) => (c.disableEscaping ? v : encodeURIComponent(v));
    return url.replace(/\{\{\s*(username|password)\s*\}\}/g, (_m, name: string) => enc(value(name)));
  }
  let out = '';
  // The template read so far, a placeholder standing as one character: where a value starts is decided on it, not on the values.
  let read = '';
  let inQuote = false;
  const atValueStart = () => /=\s*$/.test(read);
  for (let i = 0; i < url.length; ) {
    PLACEHOLDER.lastIndex = i;
    const m = PLACEHOLDER.exec(url);
    if (m) {
      const v = value(m[1]);
      const whole = !inQuote && atValueStart() && !/^\S/.test(url.slice(PLACEHOLDER.lastIndex));
      // An empty unquoted value would swallow the next keyword (libpq skips white space after "=").
      out += whole && v === '' ? "''" : v.replace(inQuote ? /['\\]/g : /['\\\s]/g, (ch) => `\\${ch}`);
      read += 'x';
      i = PLACEHOLDER.lastIndex;
      continue;
    }
    const ch = url[i];
    const step = ch === '\\' ? url.slice(i, i + 2) : ch;
    // A quote opens a quoted value only where a value starts (elsewhere it is a character of the value).
    if (ch === "'") inQuote = inQuote ? false : atValueStart();
    out += step;
    read += step;
    i += step.length;
  }
  return out;
}

/** The target a configuration names (connection_url, or host/port/db), with libpq's defaults; bad input is InvalidArgument. */
export function resolveTarget(c: ConnectionConfig): Target {
  let t: Partial<Target> & { params: Record<string, string> } = { params: {} };
  if (c.connectionUrl) {
    const urlForm = /^[a-z][a-z0-9+.-]*:\/\//i.test(c.connectionUrl.trim());
    const filled = fillUrlTemplate(c.connectionUrl.trim(), c, urlForm);
    if (urlForm) {
      let u: URL;
      try {
        u = new URL(filled);
      } catch {
        throw invalid('connection_url is not a valid URL (multi-host URLs are not supported; a literal "%" or "@" in a password must come from {{password}})');
      }
      if (!/^postgres(ql)?:$/.test(u.protocol))
        throw invalid(`connection_url: unsupported scheme ${u.protocol.replace(/:$/, '')} (use postgres:// or postgresql://)`);
      const dec = (s: string) => {
        try {
          return decodeURIComponent(s);
        } catch {
          throw invalid('connection_url: malformed %-escape');
        }
      };
      const params: Record<string, string> = {};
      u.searchParams.forEach((v, k) => {
        params[k] = v;
      });
      t = {
        params,
        host: params.host ?? (u.hostname.replace(/^\[|\]$/g, '') || undefined),
        port: u.port ? Number(u.port) : params.port ? Number(params.port) : undefined,
        database: u.pathname.length > 1 ? dec(u.pathname.slice(1)) : params.dbname,
        user: u.username ? dec(u.username) : params.user,
        password: u.password ? dec(u.password) : params.password,
      };
    } else {
      const kv = parseKeywordDsn(filled);
      t = { params: kv, host: kv.host, port: kv.port ? Number(kv.port) : undefined, database: kv.dbname, user: kv.user, password: kv.password };
    }
  } else {
    t.host = c.host;
    t.port = c.port;
    t.database = c.db;
    t.user = c.username;
    t.password = c.password;
  }
  const p = t.params;
  // Separate fields complement (and for TLS settings, override) the URL.
  const sslmode = (c.sslmode ?? p.sslmode ?? DEFAULTS.sslmode).toLowerCase();
  if (!(SSL_MODES as readonly string[]).includes(sslmode)) throw invalid(`sslmode must be one of ${SSL_MODES.join(', ')}`);
  if (t.port !== undefined && (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535)) throw invalid('port must be 1-65535');
  if (!t.user) {
    // As current Vault, the username/password fields only fill connection_url's placeholders;
    // rather than connect as the OS user (as libpq would), say what is missing.
    if (c.connectionUrl && c.username)
      throw invalid(
        'connection_url names no user: the username and password fields are used only through {{username}} and {{password}} in connection_url (e.g. postgres://{{username}}:{{password}}@host:5432/db), or write the user into connection_url',
      );
    throw invalid(
      c.connectionUrl
        ? 'no username: set username and write {{username}}/{{password}} in connection_url, or write the user into connection_url'
        : 'no username: set username',
    );
  }
  return {
    host: t.host || 'localhost',
    port: t.port ?? DEFAULTS.port,
    database: t.database || t.user,
    user: t.user,
    password: t.password,
    sslmode: sslmode as SslMode,
    sslrootcert: c.sslrootcert ?? p.sslrootcert,
    sslcert: c.sslcert ?? p.sslcert,
    sslkey: c.sslkey ?? p.sslkey,
    applicationName: p.application_name ?? p.fallback_application_name ?? DEFAULTS.applicationName,
    ...extraParams(p),
  };
}
