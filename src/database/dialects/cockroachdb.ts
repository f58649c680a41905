import { DEFAULT_RENEW, DEFAULT_ROTATION, vaultExpiration, type Dialect } from './dialect';

/** CockroachDB's dialect. */
export const cockroachdb: Dialect = {
  name: 'cockroachdb',
  // CockroachDB user names are case-insensitive and stored lower-cased, even when quoted:
  // return the stored form to Vault so later renew/revoke calls find the user.
  normalizeUsername: (u) => u.toLowerCase(),
  maxUsernameBytes: 63,
  transactionalDdl: true,
  formatExpiration: vaultExpiration,
  defaultRotation: DEFAULT_ROTATION,
  defaultRenew: DEFAULT_RENEW,
  // No pg_shdepend: clean every database. DROP ROLE fails with 2BP01 ("grants still exist")
  // while any database holds a grant to the user.
  dependentDatabases() {
    return { text: this.allDatabasesQuery, values: [] };
  },
  releaseObjects: (user, admin) => [`REASSIGN OWNED BY ${user} TO ${admin}`, `DROP OWNED BY ${user}`],
  allDatabasesQuery: "SELECT datname FROM pg_catalog.pg_database WHERE datname <> 'system'",
  dropRole: (user) => [`DROP ROLE IF EXISTS ${user}`],
  takeMembership: (user, admin) => `GRANT ${user} TO ${admin}`,
  terminateSessionsQuery: 'CANCEL SESSIONS IF EXISTS (SELECT session_id FROM [SHOW CLUSTER SESSIONS] WHERE user_name = $1)',
  roleExistsQuery: 'SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1',
};
