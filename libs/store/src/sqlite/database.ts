// One SQLite file for the embedded mode, shared with the embedded bus (which keeps `bus_` tables):
// every table here is prefixed `store_`. WAL so readers do not wait on the writer.
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS store_events (
  event_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, type TEXT NOT NULL, state_key TEXT,
  depth INTEGER NOT NULL, prev_ids TEXT NOT NULL, auth_ids TEXT NOT NULL, pdu TEXT NOT NULL,
  status TEXT NOT NULL, reason TEXT, outlier INTEGER NOT NULL, received_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_events_room_depth ON store_events (room_id, depth);
CREATE INDEX IF NOT EXISTS store_events_room_status_depth ON store_events (room_id, status, depth);
CREATE TABLE IF NOT EXISTS store_redaction_claims (
  id INTEGER PRIMARY KEY AUTOINCREMENT, target_id TEXT NOT NULL, redaction_id TEXT NOT NULL, room_id TEXT NOT NULL,
  UNIQUE (target_id, redaction_id)
);
CREATE INDEX IF NOT EXISTS store_redaction_claims_room ON store_redaction_claims (room_id);
CREATE TABLE IF NOT EXISTS store_redacted_events (event_id TEXT PRIMARY KEY, redaction_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_state_snapshots (
  id TEXT PRIMARY KEY, room_id TEXT NOT NULL, base_id TEXT, ancestors TEXT NOT NULL, delta TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_event_state (
  event_id TEXT PRIMARY KEY, before_id TEXT NOT NULL, after_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_rooms (
  room_id TEXT PRIMARY KEY, room_version TEXT NOT NULL, creator TEXT NOT NULL, created_ts INTEGER NOT NULL,
  current_state_id TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_forward_extremities (
  room_id TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (room_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_joined_servers (
  room_id TEXT NOT NULL, server TEXT NOT NULL, PRIMARY KEY (room_id, server)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_joined_servers_server ON store_joined_servers (server);
CREATE TABLE IF NOT EXISTS store_client_transactions (
  sender TEXT NOT NULL, txn_id TEXT NOT NULL, event_id TEXT NOT NULL, room_id TEXT NOT NULL, created_ts INTEGER NOT NULL,
  PRIMARY KEY (sender, txn_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_pending_commits (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, room_id TEXT NOT NULL, payload TEXT NOT NULL, created_ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS store_partial_state_rooms (
  room_id TEXT PRIMARY KEY, join_event_id TEXT NOT NULL, servers TEXT NOT NULL, resident TEXT NOT NULL, started_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_received_transactions (
  origin TEXT NOT NULL, txn_id TEXT NOT NULL, response TEXT NOT NULL, received_ts INTEGER NOT NULL,
  PRIMARY KEY (origin, txn_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_received_transactions_ts ON store_received_transactions (received_ts);
CREATE TABLE IF NOT EXISTS store_destinations (
  destination TEXT PRIMARY KEY, cursor INTEGER NOT NULL DEFAULT 0, in_flight_txn TEXT, in_flight_up_to INTEGER,
  failures INTEGER NOT NULL DEFAULT 0, retry_at INTEGER, last_success_ts INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_destinations_retry_at ON store_destinations (retry_at);
CREATE TABLE IF NOT EXISTS store_egress_queue (
  position INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL, item_key TEXT NOT NULL, item TEXT NOT NULL,
  enqueued_ts INTEGER NOT NULL, UNIQUE (destination, item_key)
);
CREATE INDEX IF NOT EXISTS store_egress_queue_destination ON store_egress_queue (destination, position);
CREATE TABLE IF NOT EXISTS store_egress_transactions (
  destination TEXT NOT NULL, txn_id TEXT NOT NULL, up_to INTEGER NOT NULL, body TEXT NOT NULL, created_ts INTEGER NOT NULL,
  PRIMARY KEY (destination, txn_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_own_keys (
  key_id TEXT PRIMARY KEY, seed TEXT NOT NULL, public_key TEXT NOT NULL, created_ts INTEGER NOT NULL, expired_ts INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_remote_keys (
  server_name TEXT NOT NULL, key_id TEXT NOT NULL, public_key TEXT NOT NULL, valid_until_ts INTEGER NOT NULL,
  expired_ts INTEGER, fetched_ts INTEGER NOT NULL, PRIMARY KEY (server_name, key_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_app_services (id TEXT PRIMARY KEY, registration TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_app_service_positions (
  id TEXT PRIMARY KEY, stream_position INTEGER NOT NULL DEFAULT 0, last_txn_id INTEGER NOT NULL DEFAULT 0,
  in_flight_txn TEXT, in_flight_up_to INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_media (
  origin TEXT NOT NULL, media_id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (origin, media_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_media_thumbnails (
  origin TEXT NOT NULL, media_id TEXT NOT NULL, variant TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (origin, media_id, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, direction TEXT NOT NULL, origin TEXT NOT NULL, destination TEXT NOT NULL,
  method TEXT NOT NULL, path TEXT NOT NULL, ts INTEGER NOT NULL, duration_ms REAL NOT NULL, status INTEGER NOT NULL,
  outcome TEXT NOT NULL, reason TEXT, txn_id TEXT, pdu_count INTEGER, edu_count INTEGER, details TEXT,
  decision TEXT, room_id TEXT, event_id TEXT, sender TEXT, server TEXT, rule TEXT, policy_version TEXT
);
CREATE INDEX IF NOT EXISTS store_audit_ts ON store_audit (ts);
CREATE INDEX IF NOT EXISTS store_audit_origin_ts ON store_audit (origin, ts);
CREATE INDEX IF NOT EXISTS store_audit_destination_ts ON store_audit (destination, ts);
CREATE INDEX IF NOT EXISTS store_audit_outcome_ts ON store_audit (outcome, ts);
CREATE INDEX IF NOT EXISTS store_audit_reason_ts ON store_audit (reason, ts);
`;

/** Columns added to tables after their first release: added to an existing file when missing. */
const ADDED_COLUMNS: Array<{ table: string; columns: string[]; indexes: string }> = [
  // 'event': the record's PDU is the event row's (written in the same transaction), not a second copy in `payload`.
  { table: 'store_pending_commits', columns: ['pdu_from'], indexes: '' },
  {
    table: 'store_audit',
    columns: ['decision', 'room_id', 'event_id', 'sender', 'server', 'rule', 'policy_version'],
    indexes: `
CREATE INDEX IF NOT EXISTS store_audit_room_ts ON store_audit (room_id, ts) WHERE room_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS store_audit_rule_ts ON store_audit (rule, ts) WHERE rule IS NOT NULL;
CREATE INDEX IF NOT EXISTS store_audit_server_ts ON store_audit (server, ts) WHERE server IS NOT NULL;
CREATE INDEX IF NOT EXISTS store_audit_decision_ts ON store_audit (decision, ts) WHERE decision IS NOT NULL;`,
  },
];

export type Row = Record<string, SQLInputValue>;

/** The database file with a cache of prepared statements. */
export class SqliteDatabase {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    // WAL: a commit appends its pages to the -wal file (readers keep their snapshot, the writer does not wait on them).
    // synchronous = NORMAL in WAL mode: a commit is written (write(2)) before COMMIT returns, so it survives the death
    // of this process; fsync happens at checkpoints only, so a power loss or kernel crash can lose the last commits (never
    // corrupt the file). FULL would fsync the WAL at every commit. busy_timeout: another connection's write (the embedded
    // bus has its own on the same file) is waited for, not failed.
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
    for (const { table, columns, indexes } of ADDED_COLUMNS) {
      const present = new Set((this.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name));
      for (const column of columns) if (!present.has(column)) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} TEXT`);
      this.db.exec(indexes);
    }
  }

  private inTransaction = false;

  statement(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  run(sql: string, ...params: SQLInputValue[]): { changes: number; lastInsertRowid: number } {
    const r = this.statement(sql).run(...params);
    return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
  }

  get<T = Row>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.statement(sql).get(...params) as T | undefined;
  }

  all<T = Row>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.statement(sql).all(...params) as T[];
  }

  /**
   * Runs `fn` in one transaction (SQLite is one writer in one process, so this is cheap and safe). `fn` is
   * synchronous, so no other code writes in between; a nested call joins the enclosing transaction.
   */
  transaction<T>(fn: () => T): T {
    if (this.inTransaction) return fn();
    this.db.exec('BEGIN IMMEDIATE');
    this.inTransaction = true;
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }
}

/** SQLite stores no undefined: null instead. */
export const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);
