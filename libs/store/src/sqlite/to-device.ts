import type { OutgoingToDevice, ToDeviceRepository } from '../ports/to-device';
import type { SqliteDatabase } from './database';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS store_to_device_outbox (
  key TEXT PRIMARY KEY, sender TEXT NOT NULL, type TEXT NOT NULL, messages TEXT NOT NULL, created_ts INTEGER NOT NULL, published INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_to_device_outbox_unpublished ON store_to_device_outbox (published, created_ts);
CREATE TABLE IF NOT EXISTS store_to_device_delivered (
  origin TEXT NOT NULL, sender TEXT NOT NULL, message_id TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (origin, sender, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_to_device_delivered_ts ON store_to_device_delivered (ts);
`;

interface OutboxRow {
  key: string;
  sender: string;
  type: string;
  messages: string;
  created_ts: number;
  published: number;
}

const toMessage = (r: OutboxRow): OutgoingToDevice => ({
  key: r.key,
  sender: r.sender,
  type: r.type,
  messages: JSON.parse(r.messages) as Record<string, unknown>,
  createdTs: Number(r.created_ts),
  published: r.published === 1,
});

export class SqliteToDeviceRepository implements ToDeviceRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(SCHEMA);
  }

  async reserve(message: Omit<OutgoingToDevice, 'published'>) {
    return this.db.transaction(() => {
      this.db.run(
        'INSERT INTO store_to_device_outbox (key, sender, type, messages, created_ts, published) VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING',
        message.key,
        message.sender,
        message.type,
        JSON.stringify(message.messages),
        message.createdTs,
      );
      return toMessage(this.db.get<OutboxRow>('SELECT * FROM store_to_device_outbox WHERE key = ?', message.key)!);
    });
  }

  async markPublished(key: string) {
    this.db.run('UPDATE store_to_device_outbox SET published = 1 WHERE key = ?', key);
  }

  async unpublished(limit: number) {
    return this.db.all<OutboxRow>('SELECT * FROM store_to_device_outbox WHERE published = 0 ORDER BY created_ts LIMIT ?', limit).map(toMessage);
  }

  async wasDelivered(origin: string, sender: string, messageId: string) {
    return this.db.get('SELECT 1 FROM store_to_device_delivered WHERE origin = ? AND sender = ? AND message_id = ?', origin, sender, messageId) !== undefined;
  }

  async markDelivered(origin: string, sender: string, messageId: string, now = Date.now()) {
    this.db.run('INSERT INTO store_to_device_delivered (origin, sender, message_id, ts) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', origin, sender, messageId, now);
  }

  async prune(before: number) {
    return this.db.transaction(
      () =>
        this.db.run('DELETE FROM store_to_device_delivered WHERE ts < ?', before).changes +
        this.db.run('DELETE FROM store_to_device_outbox WHERE published = 1 AND created_ts < ?', before).changes,
    );
  }
}
