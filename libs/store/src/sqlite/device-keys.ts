import { canonicalJson } from '@fedgate/protocol';
import { keyAlgorithm, type ClaimedKey, type DeviceKeyRepository, type DeviceRecord, type KeyObject } from '../ports/device-keys';
import type { SqliteDatabase } from './database';
import { appendLocalChange, DEVICE_LIST_SCHEMA } from './device-lists';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS store_devices (
  user_id TEXT NOT NULL, device_id TEXT NOT NULL, display_name TEXT, keys TEXT, created_ts INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_one_time_keys (
  user_id TEXT NOT NULL, device_id TEXT NOT NULL, key_id TEXT NOT NULL, algorithm TEXT NOT NULL, key TEXT NOT NULL,
  PRIMARY KEY (user_id, device_id, key_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_one_time_keys_algorithm ON store_one_time_keys (user_id, device_id, algorithm);
CREATE TABLE IF NOT EXISTS store_fallback_keys (
  user_id TEXT NOT NULL, device_id TEXT NOT NULL, algorithm TEXT NOT NULL, key_id TEXT NOT NULL, key TEXT NOT NULL, used INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id, algorithm)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_cross_signing_keys (
  user_id TEXT NOT NULL, usage TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (user_id, usage)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_user_signing_signatures (
  signer TEXT NOT NULL, target TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (signer, target, key_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_device_list_streams (user_id TEXT PRIMARY KEY, stream_id INTEGER NOT NULL) WITHOUT ROWID;
`;

interface DeviceRow {
  user_id: string;
  device_id: string;
  display_name: string | null;
  keys: string | null;
  created_ts: number;
}

const toRecord = (r: DeviceRow): DeviceRecord => ({
  userId: r.user_id,
  deviceId: r.device_id,
  displayName: r.display_name,
  keys: r.keys === null ? null : (JSON.parse(r.keys) as KeyObject),
  createdTs: r.created_ts,
});

export class SqliteDeviceKeyRepository implements DeviceKeyRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(SCHEMA);
    db.db.exec(DEVICE_LIST_SCHEMA);
  }

  /** Moves the user's stream id and logs the change (the EDU's outbox) in the caller's transaction. */
  private bump(userId: string, deviceId: string | null): number {
    const streamId = this.db.get<{ stream_id: number }>(
      `INSERT INTO store_device_list_streams (user_id, stream_id) VALUES (?, 1)
       ON CONFLICT (user_id) DO UPDATE SET stream_id = stream_id + 1 RETURNING stream_id`,
      userId,
    )!.stream_id;
    appendLocalChange(this.db, userId, deviceId === null ? 'signing' : 'device', deviceId, streamId);
    return streamId;
  }

  async putDevice(userId: string, deviceId: string, displayName?: string | null, now = Date.now()) {
    return this.db.transaction(() => {
      const existing = this.db.get<DeviceRow>('SELECT * FROM store_devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
      if (!existing) {
        this.db.run('INSERT INTO store_devices (user_id, device_id, display_name, keys, created_ts) VALUES (?, ?, ?, NULL, ?)', userId, deviceId, displayName ?? null, now);
        return { created: true, changed: true, streamId: this.bump(userId, deviceId) };
      }
      if (displayName !== undefined && displayName !== existing.display_name) {
        this.db.run('UPDATE store_devices SET display_name = ? WHERE user_id = ? AND device_id = ?', displayName, userId, deviceId);
        return { created: false, changed: true, streamId: this.bump(userId, deviceId) };
      }
      return { created: false, changed: false, streamId: this.streamId(userId) };
    });
  }

  async getDevice(userId: string, deviceId: string) {
    const row = this.db.get<DeviceRow>('SELECT * FROM store_devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
    return row ? toRecord(row) : null;
  }

  async listDevices(userId: string) {
    return this.db.all<DeviceRow>('SELECT * FROM store_devices WHERE user_id = ? ORDER BY device_id', userId).map(toRecord);
  }

  async deleteDevice(userId: string, deviceId: string) {
    return this.db.transaction(() => {
      const { changes } = this.db.run('DELETE FROM store_devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
      this.db.run('DELETE FROM store_one_time_keys WHERE user_id = ? AND device_id = ?', userId, deviceId);
      this.db.run('DELETE FROM store_fallback_keys WHERE user_id = ? AND device_id = ?', userId, deviceId);
      return changes === 1 ? { deleted: true, streamId: this.bump(userId, deviceId) } : { deleted: false, streamId: this.streamId(userId) };
    });
  }

  async setDeviceKeys(userId: string, deviceId: string, keys: KeyObject) {
    return this.db.transaction(() => {
      const existing = this.db.get<DeviceRow>('SELECT * FROM store_devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
      if (!existing) return { found: false, changed: false, streamId: this.streamId(userId) };
      const text = canonicalJson(keys);
      if (existing.keys === text) return { found: true, changed: false, streamId: this.streamId(userId) };
      this.db.run('UPDATE store_devices SET keys = ? WHERE user_id = ? AND device_id = ?', text, userId, deviceId);
      return { found: true, changed: true, streamId: this.bump(userId, deviceId) };
    });
  }

  async addOneTimeKeys(userId: string, deviceId: string, keys: Record<string, unknown>) {
    return this.db.transaction(() => {
      const conflicts: string[] = [];
      for (const [keyId, key] of Object.entries(keys)) {
        const text = canonicalJson(key);
        const held = this.db.get<{ key: string }>('SELECT key FROM store_one_time_keys WHERE user_id = ? AND device_id = ? AND key_id = ?', userId, deviceId, keyId);
        if (held) {
          if (held.key !== text) conflicts.push(keyId);
          continue;
        }
        this.db.run('INSERT INTO store_one_time_keys (user_id, device_id, key_id, algorithm, key) VALUES (?, ?, ?, ?, ?)', userId, deviceId, keyId, keyAlgorithm(keyId), text);
      }
      return { conflicts };
    });
  }

  async countOneTimeKeys(userId: string, deviceId: string) {
    const rows = this.db.all<{ algorithm: string; n: number }>(
      'SELECT algorithm, COUNT(*) AS n FROM store_one_time_keys WHERE user_id = ? AND device_id = ? GROUP BY algorithm',
      userId,
      deviceId,
    );
    return Object.fromEntries(rows.map((r) => [r.algorithm, Number(r.n)]));
  }

  async setFallbackKeys(userId: string, deviceId: string, keys: Record<string, unknown>) {
    this.db.transaction(() => {
      for (const [keyId, key] of Object.entries(keys)) {
        this.db.run(
          `INSERT INTO store_fallback_keys (user_id, device_id, algorithm, key_id, key, used) VALUES (?, ?, ?, ?, ?, 0)
           ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key = excluded.key, used = 0`,
          userId,
          deviceId,
          keyAlgorithm(keyId),
          keyId,
          canonicalJson(key),
        );
      }
    });
  }

  async unusedFallbackKeyAlgorithms(userId: string, deviceId: string) {
    return this.db
      .all<{ algorithm: string }>('SELECT algorithm FROM store_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0 ORDER BY algorithm', userId, deviceId)
      .map((r) => r.algorithm);
  }

  async claimKey(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | null> {
    return this.db.transaction(() => {
      const row = this.db.get<{ key_id: string; key: string }>(
        'SELECT key_id, key FROM store_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? ORDER BY key_id LIMIT 1',
        userId,
        deviceId,
        algorithm,
      );
      if (row) {
        this.db.run('DELETE FROM store_one_time_keys WHERE user_id = ? AND device_id = ? AND key_id = ?', userId, deviceId, row.key_id);
        return { keyId: row.key_id, key: JSON.parse(row.key) as unknown, fallback: false };
      }
      const fallback = this.db.get<{ key_id: string; key: string }>(
        'SELECT key_id, key FROM store_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?',
        userId,
        deviceId,
        algorithm,
      );
      if (!fallback) return null;
      this.db.run('UPDATE store_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?', userId, deviceId, algorithm);
      return { keyId: fallback.key_id, key: JSON.parse(fallback.key) as unknown, fallback: true };
    });
  }

  async setCrossSigningKey(userId: string, usage: string, key: KeyObject) {
    return this.db.transaction(() => {
      this.db.run(
        'INSERT INTO store_cross_signing_keys (user_id, usage, key) VALUES (?, ?, ?) ON CONFLICT (user_id, usage) DO UPDATE SET key = excluded.key',
        userId,
        usage,
        canonicalJson(key),
      );
      return { streamId: this.bump(userId, null) };
    });
  }

  async crossSigningKeys(userId: string) {
    const rows = this.db.all<{ usage: string; key: string }>('SELECT usage, key FROM store_cross_signing_keys WHERE user_id = ?', userId);
    return Object.fromEntries(rows.map((r) => [r.usage, JSON.parse(r.key) as KeyObject]));
  }

  async addUserSigningSignature(signer: string, target: string, keyId: string, signature: string) {
    this.db.run(
      'INSERT INTO store_user_signing_signatures (signer, target, key_id, signature) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET signature = excluded.signature',
      signer,
      target,
      keyId,
      signature,
    );
  }

  async userSigningSignatures(signer: string, target: string) {
    const rows = this.db.all<{ key_id: string; signature: string }>('SELECT key_id, signature FROM store_user_signing_signatures WHERE signer = ? AND target = ?', signer, target);
    return Object.fromEntries(rows.map((r) => [r.key_id, r.signature]));
  }

  async finishPendingChanges() {
    // The device write, the stream move and the change log are one transaction here.
    return 0;
  }

  private streamId(userId: string): number {
    return this.db.get<{ stream_id: number }>('SELECT stream_id FROM store_device_list_streams WHERE user_id = ?', userId)?.stream_id ?? 0;
  }

  async deviceListStreamId(userId: string) {
    return this.streamId(userId);
  }
}
