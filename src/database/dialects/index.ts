import type { Dialect, DialectName } from './dialect';
import { postgresql } from './postgresql';
import { cockroachdb } from './cockroachdb';
import { yugabytedb } from './yugabytedb';

export type { Dialect, DialectName } from './dialect';
/** Each dialect by name. */
export const DIALECTS: Record<DialectName, Dialect> = { postgresql, cockroachdb, yugabytedb };

/** From `SELECT version()`: "CockroachDB CCL v23.1...", "PostgreSQL 11.2-YB-2.20...", "PostgreSQL 16.4 ...". */
export function detectDialect(version: string): Dialect {
  if (/cockroachdb/i.test(version)) return cockroachdb;
  if (/-YB-/i.test(version)) return yugabytedb;
  return postgresql;
}
