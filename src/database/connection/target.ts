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
}

/** libpq key=value connection strings: host=h port=5432 user='a b' */
function parseKeywordDsn(dsn: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|[^\s]*)/gy;
  let pos = 0;
  while (pos < dsn.trim().length) {
    const m = re.exec(dsn);
    if (!m) break;
    out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
    pos = re.lastIndex;
  }
  if (dsn.slice(pos).trim()) throw invalid('connection_url: cannot parse the key=value connection string');
  return out;
}

function fillUrlTemplate(url: string, c: ConnectionConfig, urlForm: boolean): string {
  const enc = (v: string) => (c.disableEscaping || !urlForm ? v : encodeURIComponent(v));
  const kvQuote = (v: string) => (urlForm ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
  return url.replace(/\{\{\s*username\s*\}\}/g, () => kvQuote(enc(c.username ?? ''))).replace(/\{\{\s*password\s*\}\}/g, () => kvQuote(enc(c.password ?? '')));
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
  if (!t.user) throw invalid('no username: set username, or put one in connection_url');
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
    applicationName: p.application_name ?? DEFAULTS.applicationName,
  };
}
