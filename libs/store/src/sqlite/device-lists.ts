import type { DeviceListChangeEntry, DeviceListChangeKind, DeviceListRepository, RemoteDeviceList } from '../ports/device-lists';
import type { SqliteDatabase } from './database';

export const DEVICE_LIST_SCHEMA = `
CREATE TABLE IF NOT EXISTS store_device_list_changes (
  position INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, kind TEXT NOT NULL, device_id TEXT, stream_id INTEGER,
  announced INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS store_device_list_changes_unannounced ON store_device_list_changes (announced, position);
CREATE TABLE IF NOT EXISTS store_remote_device_lists (
  user_id TEXT PRIMARY KEY, stream_id INTEGER NOT NULL, devices TEXT NOT NULL, master_key TEXT, self_signing_key TEXT,
  stale INTEGER NOT NULL, updated_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_remote_device_lists_stale ON store_remote_device_lists (stale, updated_ts);
`;

interface ChangeRow {
  position: number;
  user_id: string;
  kind: string;
  device_id: string | null;
  stream_id: number | null;
}

interface RemoteRow {
  user_id: string;
  stream_id: number;
  devices: string;
  master_key: string | null;
  self_signing_key: string | null;
  stale: number;
  updated_ts: number;
}

const toEntry = (r: ChangeRow): DeviceListChangeEntry => ({
  position: Number(r.position),
  userId: r.user_id,
  kind: r.kind as DeviceListChangeKind,
  deviceId: r.device_id,
  streamId: r.stream_id === null ? null : Number(r.stream_id),
});

/** Appends a local change to the log, unannounced; called inside the device-keys repository's transactions. */
export function appendLocalChange(db: SqliteDatabase, userId: string, kind: 'device' | 'signing', deviceId: string | null, streamId: number): void {
  db.run('INSERT INTO store_device_list_changes (user_id, kind, device_id, stream_id, announced) VALUES (?, ?, ?, ?, 0)', userId, kind, deviceId, streamId);
}

export class SqliteDeviceListRepository implements DeviceListRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(DEVICE_LIST_SCHEMA);
  }

  async recordChange(userId: string, kind: 'remote' | 'membership') {
    return this.db.get<{ position: number }>('INSERT INTO store_device_list_changes (user_id, kind, announced) VALUES (?, ?, 0) RETURNING position', userId, kind)!.position;
  }

  async changesSince(position: number, limit: number) {
    return this.db.all<ChangeRow>('SELECT * FROM store_device_list_changes WHERE position > ? ORDER BY position LIMIT ?', position, limit).map(toEntry);
  }

  async latestPosition() {
    return Number(this.db.get<{ p: number | null }>('SELECT MAX(position) AS p FROM store_device_list_changes')?.p ?? 0);
  }

  async unannounced(limit: number) {
    return this.db.all<ChangeRow>('SELECT * FROM store_device_list_changes WHERE announced = 0 ORDER BY position LIMIT ?', limit).map(toEntry);
  }

  async markAnnounced(position: number) {
    this.db.run('UPDATE store_device_list_changes SET announced = 1 WHERE position = ?', position);
  }

  async remoteList(userId: string): Promise<RemoteDeviceList | null> {
    const r = this.db.get<RemoteRow>('SELECT * FROM store_remote_device_lists WHERE user_id = ?', userId);
    if (!r) return null;
    return {
      userId: r.user_id,
      streamId: Number(r.stream_id),
      devices: JSON.parse(r.devices) as RemoteDeviceList['devices'],
      masterKey: r.master_key === null ? null : (JSON.parse(r.master_key) as RemoteDeviceList['masterKey']),
      selfSigningKey: r.self_signing_key === null ? null : (JSON.parse(r.self_signing_key) as RemoteDeviceList['selfSigningKey']),
      stale: r.stale === 1,
      updatedTs: Number(r.updated_ts),
    };
  }

  async replaceRemoteList(list: RemoteDeviceList, expected: { streamId: number; stale: boolean } | null, options: { logChange?: boolean } = {}) {
    return this.db.transaction(() => {
      const written = this.writeRemoteList(list, expected);
      if (written && options.logChange) this.db.run("INSERT INTO store_device_list_changes (user_id, kind, announced) VALUES (?, 'remote', 0)", list.userId);
      return written;
    });
  }

  private writeRemoteList(list: RemoteDeviceList, expected: { streamId: number; stale: boolean } | null): boolean {
    const values = [list.streamId, JSON.stringify(list.devices), list.masterKey ? JSON.stringify(list.masterKey) : null, list.selfSigningKey ? JSON.stringify(list.selfSigningKey) : null, list.stale ? 1 : 0, list.updatedTs] as const;
    if (expected === null) {
      const { changes } = this.db.run(
        'INSERT INTO store_remote_device_lists (user_id, stream_id, devices, master_key, self_signing_key, stale, updated_ts) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        list.userId,
        ...values,
      );
      return changes === 1;
    }
    const { changes } = this.db.run(
      'UPDATE store_remote_device_lists SET stream_id = ?, devices = ?, master_key = ?, self_signing_key = ?, stale = ?, updated_ts = ? WHERE user_id = ? AND stream_id = ? AND stale = ?',
      ...values,
      list.userId,
      expected.streamId,
      expected.stale ? 1 : 0,
    );
    return changes === 1;
  }

  async staleRemoteUsers(limit: number) {
    return this.db.all<{ user_id: string }>('SELECT user_id FROM store_remote_device_lists WHERE stale = 1 ORDER BY updated_ts LIMIT ?', limit).map((r) => r.user_id);
  }
}
