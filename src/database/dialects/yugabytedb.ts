import { postgresql } from './postgresql';
import type { Dialect } from './dialect';

// YSQL reuses PostgreSQL 11's catalog and statements; DDL is not transactional in the
// releases still deployed, so creation runs statement by statement with a compensating
// DROP ROLE on failure.
/** YugabyteDB's dialect: PostgreSQL's, creating users statement by statement. */
export const yugabytedb: Dialect = {
  ...postgresql,
  name: 'yugabytedb',
  transactionalDdl: false,
};
