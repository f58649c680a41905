// What differs between PostgreSQL-wire databases when managing roles.
/** The servers this plugin speaks to. */
export type DialectName = 'postgresql' | 'cockroachdb' | 'yugabytedb';

/** What differs between the servers: name folding, statements, capabilities. */
export interface Dialect {
  name: DialectName;
  /** The name the server will actually store (CockroachDB folds user names to lower case). */
  normalizeUsername(username: string): string;
  /** Longest user name the server keeps without silently truncating it. */
  maxUsernameBytes: number;
  /** Can CREATE ROLE / GRANT run inside BEGIN..COMMIT and be rolled back? */
  transactionalDdl: boolean;
  /** Text for {{expiration}} / VALID UNTIL. */
  formatExpiration(d: Date): string;
  defaultRotation: string;
  defaultRenew: string;
  /** Query listing the databases where the user owns objects or holds privileges. */
  dependentDatabases(username: string): { text: string; values: string[] };
  /** Every database one can connect to (the fallback when DROP ROLE still reports dependencies). */
  allDatabasesQuery: string;
  /** Statements run in each of those databases so the role can be dropped. */
  releaseObjects(quotedUser: string, quotedAdmin: string): string[];
  /** Gives the admin the privileges of the user, when releasing objects is denied. */
  takeMembership(quotedUser: string, quotedAdmin: string): string;
  /** Statements that finally remove the role. */
  dropRole(quotedUser: string): string[];
  /** Query ($1 = user name) ending the user's open sessions, so revocation takes effect now. */
  terminateSessionsQuery?: string;
  /** Query ($1 = backend pid) cancelling that backend's running statement, where the server has one. */
  cancelBackendQuery?: string;
  /** Query ($1 = user name) returning a row when the role exists. */
  roleExistsQuery: string;
}

/** Vault's format for {{expiration}}: 2006-01-02 15:04:05-0700, in UTC. */
export function vaultExpiration(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}+0000`;
}

/** The password change run when a role gives no rotation statements. */
export const DEFAULT_ROTATION = 'ALTER ROLE "{{name}}" WITH PASSWORD \'{{password}}\';';
/** The expiration change run when a role gives no renew statements. */
export const DEFAULT_RENEW = 'ALTER ROLE "{{name}}" VALID UNTIL \'{{expiration}}\';';
