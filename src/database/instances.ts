// The database instances of one plugin process, by multiplex id (one per
// `database/config/<name>` on a multiplexing Vault; one, id '', otherwise). Each is an
// SqlDatabase behind the sanitising wrapper.
import type { Logger } from '../goplugin/log';
import type { Database, InitializeRequest, InitializeResponse } from './database';
import { precondition } from './errors';
import { SanitizingDatabase } from './sanitizing-database';
import { SqlDatabase, type SqlDatabaseOptions } from './sql-database';

/** The database instances of a (multiplexed) plugin process, by Vault's multiplex id. */
export class Instances {
  private readonly dbs = new Map<string, Database>();
  constructor(
    private readonly log: Logger,
    private readonly options: SqlDatabaseOptions = {},
  ) {}

  get(id: string): Database {
    const db = this.dbs.get(id);
    if (!db) throw precondition('database connection is not initialized (Vault re-initializes it from the stored config; check the config write succeeded)');
    return db;
  }

  /** Replace (or create) an instance; the old one closes only after the new one is ready. */
  async initialize(id: string, req: InitializeRequest): Promise<InitializeResponse> {
    const sql = new SqlDatabase(this.log.named(id ? `db.${id.slice(0, 12)}` : 'db'), this.options);
    const db = new SanitizingDatabase(sql, () => sql.secrets(), this.log);
    const res = await db.initialize(req);
    const old = this.dbs.get(id);
    this.dbs.set(id, db);
    if (old) void old.close().catch(() => undefined);
    return res;
  }

  async close(id: string): Promise<void> {
    const db = this.dbs.get(id);
    this.dbs.delete(id);
    await db?.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.dbs.values()];
    this.dbs.clear();
    await Promise.all(all.map((d) => d.close().catch(() => undefined)));
  }

  get size(): number {
    return this.dbs.size;
  }
}
