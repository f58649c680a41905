// Stands in for @yugabytedb/pg's own logger (its lib/logger.js) in the executable, put there
// by scripts/build.mjs. That module is winston with two transports made when the driver
// loads: one writing to stdout (go-plugin's handshake channel) and one appending to ./app.log,
// i.e. a file in Vault's working directory. Here the driver's messages go to the plugin's
// log as every other line does (hclog JSON on stderr, which Vault shows in its own log), its
// warnings (an unusable topology key) at warn, the rest at debug/trace.
import { createLogger, type Logger } from '../../goplugin/log';

let log: Logger | undefined;
const out = (): Logger => {
  log ??= createLogger({ module: 'yugabyte-driver' });
  return log;
};
const text = (m: unknown): string => (typeof m === 'string' ? m : m instanceof Error ? m.message : String(m));

/** The driver's logger API (winston's level methods it calls, and its level field). */
export const logger = {
  level: 'info',
  silly: (m: unknown) => out().trace(text(m)),
  debug: (m: unknown) => out().trace(text(m)),
  verbose: (m: unknown) => out().trace(text(m)),
  info: (m: unknown) => out().debug(text(m)),
  warn: (m: unknown) => out().warn(text(m)),
  error: (m: unknown) => out().error(text(m)),
};

/** The driver's setLogLevel: the plugin's own level (VAULT_PLUGIN_LOG_LEVEL) decides instead. */
export function setLogLevel(level: string): void {
  logger.level = level;
}
