// The one wrapper every database call goes through (as dbplugin's
// DatabaseErrorSanitizerMiddleware): whatever a call throws leaves it as a PluginError
// with a status code and a message redacted of the configuration's secrets, the call's
// own (passwords in the request) and those derived during the call (withSecrets).
import { redact, type Logger } from '../goplugin/log';
import { CONFIG_FIELDS } from './config';
import type { Field } from '../schema';
import type { Database, DeleteUserRequest, InitializeRequest, NewUserRequest, UpdateUserRequest } from './database';
import { PluginError, attachedSecrets, sqlState } from './errors';
import { classify } from './sqlstate';

/** Any error as a PluginError whose message carries none of the secrets (nor any attached to the error). */
export function sanitizeError(e: unknown, secrets: readonly string[], method: string): PluginError {
  const all = [...secrets, ...attachedSecrets(e)];
  if (e instanceof PluginError) {
    // An error wrapping the server's or driver's says which call met it, and the SQLSTATE
    // (a PluginError's own message never states it: this is the one place that adds it).
    const state = sqlState(e.cause);
    let message = e.cause === undefined ? e.message : `${method}: ${e.message}`;
    if (state) message += ` (SQLSTATE ${state})`;
    return new PluginError(e.code, redact(message, all));
  }
  const { code, message } = classify(e);
  return new PluginError(code, redact(`${method}: ${message}`, all));
}

/** The values of a configuration's secret fields (connection_url, password, sslkey), and a password written into the URL. */
function configSecretValues(config: Record<string, unknown>): string[] {
  const values = Object.entries(config)
    .filter(([k, v]) => typeof v === 'string' && v && (CONFIG_FIELDS as Record<string, Field>)[k]?.secret)
    .map(([, v]) => v as string);
  const url = config.connection_url;
  if (typeof url === 'string') {
    try {
      const pw = new URL(url.trim()).password;
      if (pw) values.push(pw, decodeURIComponent(pw));
    } catch {
      /* not a URL: redact() covers password=... in key=value form */
    }
  }
  return values;
}

/** A Database whose every failure leaves as a PluginError redacted of the configuration's and the call's secrets. */
export class SanitizingDatabase implements Database {
  constructor(
    private readonly inner: Database,
    /** The secrets of the instance's configuration, asked at the time of each failure. */
    private readonly secrets: () => string[],
    private readonly log: Logger,
  ) {}

  private async run<T>(method: string, requestSecrets: () => Array<string | undefined>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const secrets = [...this.secrets(), ...requestSecrets()].filter((s): s is string => !!s);
      const err = sanitizeError(e, secrets, method);
      this.log.debug('call failed', { method, code: err.code, error: err.message });
      throw err;
    }
  }

  initialize(req: InitializeRequest) {
    return this.run(
      'Initialize',
      () => configSecretValues(req.config),
      () => this.inner.initialize(req),
    );
  }

  newUser(req: NewUserRequest) {
    return this.run(
      'NewUser',
      () => [req.password],
      () => this.inner.newUser(req),
    );
  }

  updateUser(req: UpdateUserRequest) {
    return this.run(
      'UpdateUser',
      () => [req.password?.newPassword, req.selfManagedPassword],
      () => this.inner.updateUser(req),
    );
  }

  deleteUser(req: DeleteUserRequest) {
    return this.run(
      'DeleteUser',
      () => [],
      () => this.inner.deleteUser(req),
    );
  }

  type(): string {
    return this.inner.type();
  }

  close() {
    return this.run(
      'Close',
      () => [],
      () => this.inner.close(),
    );
  }
}
