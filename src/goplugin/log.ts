// hclog-compatible JSON logging on stderr: go-plugin's client parses each line and
// re-emits it in Vault's log at the given level. Never pass secrets as fields; values
// that may embed credentials go through redact() first.
import { operatorSetting } from './env';

/** Log levels, as hclog names them. */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

/** A structured logger whose string fields and error messages are redacted before they are written. */
export interface Logger {
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  named(module: string): Logger;
}

type Sink = (line: string) => void;

function levelFromEnv(): Level {
  const v = (operatorSetting('PLUGIN_LOG_LEVEL') ?? process.env.PLUGIN_LOG_LEVEL ?? 'info').toLowerCase();
  return (v in ORDER ? v : 'info') as Level;
}

/** Replace passwords in URLs / key=value pairs with a marker. Used on every error text we emit. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text
    // scheme://user:password@host
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1[redacted]@')
    // password=..., pin: ..., secret_key="..."
    .replace(/\b(password|passwd|pwd|pin|secret(?:_key)?|client_secret|private_key|token)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)/gi, '$1$2[redacted]')
    // PASSWORD 'xyz' / PASSWORD E'xyz' in SQL text
    .replace(/\bPASSWORD\s+E?'(?:[^']|'')*'/gi, "PASSWORD '[redacted]'")
    .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '[redacted private key]');
  // Longest first, so a form that contains another is replaced whole.
  const forms = [...new Set(secrets.flatMap(derivedForms))].sort((a, b) => b.length - a.length);
  for (const s of forms) out = out.split(s).join('[redacted]');
  return out;
}

/**
 * A secret as it may appear in text: as is, as quoted into SQL ('' and "" doubled, E''
 * backslashes), URL-escaped (connection_url), and JSON-escaped (log fields).
 */
function derivedForms(s: string): string[] {
  if (!s || s.length < 4) return [];
  let url = s;
  try {
    url = encodeURIComponent(s);
  } catch {
    /* lone surrogate: no URL form */
  }
  return [s, s.replace(/'/g, "''"), s.replace(/"/g, '""'), s.replace(/\\/g, '\\\\').replace(/'/g, "''"), url, JSON.stringify(s).slice(1, -1)];
}

/** A logger writing hclog-style JSON lines to stderr (or `sink`), at the level given or PLUGIN_LOG_LEVEL's. */
export function createLogger(opts: { module?: string; level?: Level; sink?: Sink } = {}): Logger {
  const min = ORDER[opts.level ?? levelFromEnv()];
  const sink: Sink = opts.sink ?? ((line) => process.stderr.write(line + '\n'));
  const make = (module: string | undefined): Logger => {
    const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
      if (ORDER[level] < min) return;
      const rec: Record<string, unknown> = {
        '@level': level,
        '@message': redact(msg),
        '@timestamp': new Date().toISOString().replace('Z', '000Z'),
      };
      if (module) rec['@module'] = module;
      for (const [k, v] of Object.entries(fields ?? {})) {
        rec[k] = typeof v === 'string' ? redact(v) : v instanceof Error ? redact(v.message) : v;
      }
      sink(JSON.stringify(rec));
    };
    return {
      trace: (m, f) => emit('trace', m, f),
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      named: (sub) => make(module ? `${module}.${sub}` : sub),
    };
  };
  return make(opts.module);
}
