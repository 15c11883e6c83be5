import type { LeaseRepository, LiveLease } from '../ports/leases';
import type { SqliteDatabase } from './database';

export class SqliteLeaseRepository implements LeaseRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec('CREATE TABLE IF NOT EXISTS store_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ts INTEGER NOT NULL) WITHOUT ROWID');
    // Epochs apart from the leases (a table made before them has no such column); one counter for all leases.
    db.db.exec('CREATE TABLE IF NOT EXISTS store_lease_epochs (name TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch INTEGER NOT NULL) WITHOUT ROWID');
    db.db.exec('CREATE TABLE IF NOT EXISTS store_lease_epoch_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)');
  }

  async acquireWithEpoch(name: string, holder: string, ttlMs: number, now = Date.now()): Promise<number | undefined> {
    return this.db.transaction(() => {
      const current = this.db.get<{ holder: string; expires_ts: number }>('SELECT holder, expires_ts FROM store_leases WHERE name = ?', name);
      const epoch = this.db.get<{ holder: string; epoch: number }>('SELECT holder, epoch FROM store_lease_epochs WHERE name = ?', name);
      if (current && current.holder !== holder && current.expires_ts > now) return undefined;
      this.db.run('INSERT INTO store_leases (name, holder, expires_ts) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ts = excluded.expires_ts', name, holder, now + ttlMs);
      // Still ours (even past its expiry, as long as nobody took it since): same epoch.
      if (current?.holder === holder && epoch?.holder === holder) return epoch.epoch;
      this.db.run('INSERT INTO store_lease_epoch_counter (id, value) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET value = value + 1');
      const next = this.db.get<{ value: number }>('SELECT value FROM store_lease_epoch_counter WHERE id = 1')!.value;
      this.db.run('INSERT INTO store_lease_epochs (name, holder, epoch) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch', name, holder, next);
      return next;
    });
  }

  async tryAcquire(name: string, holder: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    const { changes } = this.db.run(
      `INSERT INTO store_leases (name, holder, expires_ts) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ts = excluded.expires_ts
       WHERE store_leases.expires_ts <= ? OR store_leases.holder = excluded.holder`,
      name,
      holder,
      now + ttlMs,
      now,
    );
    return changes === 1;
  }

  async release(name: string, holder: string): Promise<void> {
    this.db.run('DELETE FROM store_leases WHERE name = ? AND holder = ?', name, holder);
  }

  async renewMany(names: readonly string[], holder: string, ttlMs: number, now = Date.now()): Promise<string[]> {
    if (names.length === 0) return [];
    const marks = names.map(() => '?').join(', ');
    this.db.run(`UPDATE store_leases SET expires_ts = ? WHERE holder = ? AND name IN (${marks})`, now + ttlMs, holder, ...names);
    const rows = this.db.all<{ name: string }>(`SELECT name FROM store_leases WHERE holder = ? AND expires_ts = ? AND name IN (${marks})`, holder, now + ttlMs, ...names);
    return rows.map((r) => r.name);
  }

  async live(prefix: string, now = Date.now()): Promise<LiveLease[]> {
    // A range rather than LIKE: names may hold % and _.
    const rows = this.db.all<{ name: string; holder: string; expires_ts: number }>(
      'SELECT name, holder, expires_ts FROM store_leases WHERE name >= ? AND name < ? AND expires_ts > ? ORDER BY name',
      prefix,
      `${prefix}\uffff`,
      now,
    );
    return rows.map((r) => ({ name: r.name, holder: r.holder, expiresTs: r.expires_ts }));
  }
}
