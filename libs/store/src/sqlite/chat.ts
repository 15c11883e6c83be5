import type {
  AliasRecord,
  AliasRepository,
  AppServiceQueueItem,
  AppServiceQueueRepository,
  AppServiceTransaction,
  LocalMembershipRepository,
  ProfileRecord,
  ProfileRepository,
} from '../ports/chat';
import { appServiceTransactionJson, fillAppServiceTransaction, withEventsJson, type QueuedAppServiceItem } from '../shared/app-service-transactions';
import type { SqliteDatabase } from './database';

/** chat-sync's tables; created by the repositories so the shared schema stays as it is. */
const CHAT_SCHEMA = `
CREATE TABLE IF NOT EXISTS store_profiles (
  user_id TEXT PRIMARY KEY, displayname TEXT, avatar_url TEXT, app_service_id TEXT, created_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_aliases (
  alias TEXT PRIMARY KEY, room_id TEXT NOT NULL, servers TEXT NOT NULL, creator TEXT NOT NULL, created_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_aliases_room ON store_aliases (room_id);
CREATE TABLE IF NOT EXISTS store_local_memberships (
  user_id TEXT NOT NULL, room_id TEXT NOT NULL, membership TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_app_service_queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, app_service_id TEXT NOT NULL, item_id TEXT NOT NULL, kind TEXT NOT NULL, event TEXT NOT NULL,
  UNIQUE (app_service_id, item_id)
);
CREATE INDEX IF NOT EXISTS store_app_service_queue_order ON store_app_service_queue (app_service_id, seq);
CREATE TABLE IF NOT EXISTS store_app_service_delivered (
  app_service_id TEXT NOT NULL, item_id TEXT NOT NULL, delivered_ts INTEGER NOT NULL, PRIMARY KEY (app_service_id, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_app_service_delivered_ts ON store_app_service_delivered (delivered_ts);
CREATE TABLE IF NOT EXISTS store_app_service_txns (
  app_service_id TEXT PRIMARY KEY, next_txn_id INTEGER NOT NULL, open_txn_id TEXT, open_last_seq INTEGER, open_body TEXT
) WITHOUT ROWID;
`;

export function ensureChatSchema(db: SqliteDatabase): void {
  db.db.exec(CHAT_SCHEMA);
}

interface ProfileRow {
  user_id: string;
  displayname: string | null;
  avatar_url: string | null;
  app_service_id: string | null;
  created_ts: number;
}

const profileOf = (r: ProfileRow): ProfileRecord => ({
  userId: r.user_id,
  displayname: r.displayname,
  avatarUrl: r.avatar_url,
  appServiceId: r.app_service_id,
  createdTs: r.created_ts,
});

export class SqliteProfileRepository implements ProfileRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async create(p: ProfileRecord): Promise<{ created: boolean }> {
    const { changes } = this.db.run(
      'INSERT INTO store_profiles (user_id, displayname, avatar_url, app_service_id, created_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      p.userId,
      p.displayname,
      p.avatarUrl,
      p.appServiceId,
      p.createdTs,
    );
    return { created: changes > 0 };
  }

  async get(userId: string): Promise<ProfileRecord | undefined> {
    const r = this.db.get<ProfileRow>('SELECT * FROM store_profiles WHERE user_id = ?', userId);
    return r && profileOf(r);
  }

  async update(userId: string, change: { displayname?: string | null; avatarUrl?: string | null }): Promise<ProfileRecord | undefined> {
    if (change.displayname !== undefined) this.db.run('UPDATE store_profiles SET displayname = ? WHERE user_id = ?', change.displayname, userId);
    if (change.avatarUrl !== undefined) this.db.run('UPDATE store_profiles SET avatar_url = ? WHERE user_id = ?', change.avatarUrl, userId);
    return this.get(userId);
  }
}

interface AliasRow {
  alias: string;
  room_id: string;
  servers: string;
  creator: string;
  created_ts: number;
}

const aliasOf = (r: AliasRow): AliasRecord => ({ alias: r.alias, roomId: r.room_id, servers: JSON.parse(r.servers) as string[], creator: r.creator, createdTs: r.created_ts });

export class SqliteAliasRepository implements AliasRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async create(a: AliasRecord): Promise<{ created: boolean; existing?: AliasRecord }> {
    const { changes } = this.db.run(
      'INSERT INTO store_aliases (alias, room_id, servers, creator, created_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      a.alias,
      a.roomId,
      JSON.stringify(a.servers),
      a.creator,
      a.createdTs,
    );
    if (changes > 0) return { created: true };
    return { created: false, existing: await this.get(a.alias) };
  }

  async get(alias: string): Promise<AliasRecord | undefined> {
    const r = this.db.get<AliasRow>('SELECT * FROM store_aliases WHERE alias = ?', alias);
    return r && aliasOf(r);
  }

  async remove(alias: string): Promise<boolean> {
    return this.db.run('DELETE FROM store_aliases WHERE alias = ?', alias).changes > 0;
  }

  async forRoom(roomId: string): Promise<AliasRecord[]> {
    return this.db.all<AliasRow>('SELECT * FROM store_aliases WHERE room_id = ? ORDER BY alias', roomId).map(aliasOf);
  }
}

export class SqliteLocalMembershipRepository implements LocalMembershipRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async set(userId: string, roomId: string, membership: string, eventId: string): Promise<void> {
    this.db.run(
      `INSERT INTO store_local_memberships (user_id, room_id, membership, event_id) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, room_id) DO UPDATE SET membership = excluded.membership, event_id = excluded.event_id`,
      userId,
      roomId,
      membership,
      eventId,
    );
  }

  async roomsOf(userId: string, membership: string): Promise<string[]> {
    return this.db
      .all<{ room_id: string }>('SELECT room_id FROM store_local_memberships WHERE user_id = ? AND membership = ? ORDER BY room_id', userId, membership)
      .map((r) => r.room_id);
  }
}

interface TxnRow {
  next_txn_id: number;
  open_txn_id: string | null;
  open_last_seq: number | null;
  open_body: string | null;
}

export class SqliteAppServiceQueueRepository implements AppServiceQueueRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async enqueue(appServiceId: string, item: AppServiceQueueItem): Promise<{ inserted: boolean; delivered?: true }> {
    return this.enqueueNow(appServiceId, item);
  }

  async enqueueMany(appServiceId: string, items: readonly AppServiceQueueItem[]): Promise<Array<{ inserted: boolean; delivered?: true }>> {
    return this.db.transaction(() => items.map((item) => this.enqueueNow(appServiceId, item)));
  }

  private enqueueNow(appServiceId: string, item: AppServiceQueueItem): { inserted: boolean; delivered?: true } {
    const { changes } = this.db.run(
      `INSERT INTO store_app_service_queue (app_service_id, item_id, kind, event) SELECT ?, ?, ?, ?
       WHERE NOT EXISTS (SELECT 1 FROM store_app_service_delivered WHERE app_service_id = ? AND item_id = ?) ON CONFLICT DO NOTHING`,
      appServiceId,
      item.itemId,
      item.kind,
      JSON.stringify(item.event),
      appServiceId,
      item.itemId,
    );
    if (changes > 0) return { inserted: true };
    const delivered = this.db.get('SELECT 1 FROM store_app_service_delivered WHERE app_service_id = ? AND item_id = ?', appServiceId, item.itemId);
    return delivered ? { inserted: false, delivered: true } : { inserted: false };
  }

  async openTransaction(appServiceId: string, limits: { maxEvents: number; maxEphemeral: number }): Promise<AppServiceTransaction | null> {
    return this.db.transaction(() => {
      this.db.run('INSERT INTO store_app_service_txns (app_service_id, next_txn_id) VALUES (?, 1) ON CONFLICT DO NOTHING', appServiceId);
      const row = this.db.get<TxnRow>('SELECT * FROM store_app_service_txns WHERE app_service_id = ?', appServiceId) as TxnRow;
      if (row.open_txn_id !== null && row.open_body !== null) return JSON.parse(row.open_body) as AppServiceTransaction;
      const items = this.db.all<QueuedAppServiceItem>(
        'SELECT seq, kind, event FROM store_app_service_queue WHERE app_service_id = ? ORDER BY seq LIMIT ?',
        appServiceId,
        limits.maxEvents + limits.maxEphemeral,
      );
      const filled = fillAppServiceTransaction(String(row.next_txn_id), items, limits);
      if (!filled) return null;
      const { transaction, lastSeq, eventsJson } = filled;
      this.db.run(
        'UPDATE store_app_service_txns SET next_txn_id = next_txn_id + 1, open_txn_id = ?, open_last_seq = ?, open_body = ? WHERE app_service_id = ?',
        transaction.txnId,
        lastSeq,
        appServiceTransactionJson(transaction, eventsJson),
        appServiceId,
      );
      return withEventsJson(transaction, eventsJson);
    });
  }

  async ackTransaction(appServiceId: string, txnId: string): Promise<void> {
    this.db.transaction(() => {
      const row = this.db.get<TxnRow>('SELECT * FROM store_app_service_txns WHERE app_service_id = ?', appServiceId);
      if (!row || row.open_txn_id !== txnId) return;
      this.db.run(
        `INSERT INTO store_app_service_delivered (app_service_id, item_id, delivered_ts)
         SELECT app_service_id, item_id, ? FROM store_app_service_queue WHERE app_service_id = ? AND seq <= ? ON CONFLICT DO NOTHING`,
        Date.now(),
        appServiceId,
        row.open_last_seq,
      );
      this.db.run('DELETE FROM store_app_service_queue WHERE app_service_id = ? AND seq <= ?', appServiceId, row.open_last_seq);
      this.db.run('UPDATE store_app_service_txns SET open_txn_id = NULL, open_last_seq = NULL, open_body = NULL WHERE app_service_id = ?', appServiceId);
    });
  }

  async pendingCount(appServiceId: string): Promise<number> {
    return this.db.get<{ n: number }>('SELECT count(*) AS n FROM store_app_service_queue WHERE app_service_id = ?', appServiceId)?.n ?? 0;
  }

  async pruneDelivered(deliveredBefore: number): Promise<number> {
    return this.db.run('DELETE FROM store_app_service_delivered WHERE delivered_ts < ?', deliveredBefore).changes;
  }
}
