// Tables of one row per (user, optional scope, name) — account data, private receipts — kept WITHOUT ROWID, where
// a primary key column may not be NULL: an absent scope (a global entry, the main timeline) is stored as ''.
import type { SqliteDatabase } from './database';

/** A nullable key as stored: '' for null. */
export const storedKey = (value: string | null): string => value ?? '';
/** A stored key read back: '' is null. */
export const keyRead = (value: string): string | null => (value === '' ? null : value);

export class UserKeyedTable {
  private readonly upsertSql: string;

  /** `keys` start with `user_id`; the other columns are replaced on conflict. Types are SQLite column types. */
  constructor(
    private readonly db: SqliteDatabase,
    private readonly table: string,
    keys: readonly string[],
    columns: Readonly<Record<string, 'TEXT' | 'INTEGER'>>,
  ) {
    const values = Object.keys(columns);
    const all = [...keys, ...values];
    db.db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
  ${[...keys.map((k) => `${k} TEXT NOT NULL`), ...values.map((v) => `${v} ${columns[v]} NOT NULL`)].join(', ')},
  PRIMARY KEY (${keys.join(', ')})
) WITHOUT ROWID;`);
    this.upsertSql = `INSERT INTO ${table} (${all.join(', ')}) VALUES (${all.map(() => '?').join(', ')})
       ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${values.map((v) => `${v} = excluded.${v}`).join(', ')}`;
  }

  /** Values in the order of the keys, then the columns. */
  upsert(...values: Array<string | number>): void {
    this.db.run(this.upsertSql, ...values);
  }

  deleteForUser(userId: string): number {
    return Number(this.db.run(`DELETE FROM ${this.table} WHERE user_id = ?`, userId).changes);
  }
}
