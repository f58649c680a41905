import { DEFAULT_RENEW, DEFAULT_ROTATION, vaultExpiration, type Dialect } from './dialect';

/** PostgreSQL's dialect (the base the others build on). */
export const postgresql: Dialect = {
  name: 'postgresql',
  normalizeUsername: (u) => u,
  maxUsernameBytes: 63, // NAMEDATALEN - 1
  transactionalDdl: true,
  formatExpiration: vaultExpiration,
  defaultRotation: DEFAULT_ROTATION,
  defaultRenew: DEFAULT_RENEW,
  // pg_shdepend records, per database, what a role owns and every privilege granted to it;
  // grants on shared objects (databases, tablespaces) have dbid 0 and are handled from here.
  dependentDatabases: (username) => ({
    values: [username],
    text: `SELECT DISTINCT COALESCE(d.datname, pg_catalog.current_database()) AS datname
       FROM pg_catalog.pg_shdepend s
       JOIN pg_catalog.pg_roles r ON r.oid = s.refobjid
       LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
      WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND r.rolname = $1
        AND (s.dbid = 0 OR d.datallowconn)`,
  }),
  // Objects move to the admin (data is kept); DROP OWNED then revokes every remaining grant,
  // including on shared objects such as databases.
  releaseObjects: (user, admin) => [`REASSIGN OWNED BY ${user} TO ${admin}`, `DROP OWNED BY ${user}`],
  allDatabasesQuery: 'SELECT datname FROM pg_catalog.pg_database WHERE datallowconn',
  dropRole: (user) => [`DROP ROLE IF EXISTS ${user}`],
  // A CREATEROLE (non-superuser) admin holds ADMIN on the roles it created but not their
  // privileges; membership gives it the right to REASSIGN/DROP OWNED. It goes with the role.
  takeMembership: (user, admin) => `GRANT ${user} TO ${admin}`,
  terminateSessionsQuery:
    'SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> pg_catalog.pg_backend_pid()',
  roleExistsQuery: 'SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1',
  cancelBackendQuery: 'SELECT pg_catalog.pg_cancel_backend($1)',
};
