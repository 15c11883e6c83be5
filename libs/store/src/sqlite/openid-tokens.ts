import type { OpenIdTokenRecord, OpenIdTokenRepository } from '../ports/openid-tokens';
import type { SqliteDatabase } from './database';

const OPENID_SCHEMA = `
CREATE TABLE IF NOT EXISTS store_openid_tokens (
  token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_openid_tokens_expires ON store_openid_tokens (expires_ts);
`;

export class SqliteOpenIdTokenRepository implements OpenIdTokenRepository {
  constructor(private readonly db: SqliteDatabase) {
    db.db.exec(OPENID_SCHEMA);
  }

  async put(record: OpenIdTokenRecord): Promise<void> {
    this.db.run('INSERT INTO store_openid_tokens (token_hash, user_id, expires_ts) VALUES (?, ?, ?)', record.tokenHash, record.userId, record.expiresTs);
  }

  async findValid(tokenHash: string, now: number): Promise<OpenIdTokenRecord | undefined> {
    const r = this.db.get<{ user_id: string; expires_ts: number }>('SELECT user_id, expires_ts FROM store_openid_tokens WHERE token_hash = ? AND expires_ts > ?', tokenHash, now);
    return r && { tokenHash, userId: r.user_id, expiresTs: r.expires_ts };
  }

  async purgeExpired(now: number): Promise<number> {
    return Number(this.db.run('DELETE FROM store_openid_tokens WHERE expires_ts <= ?', now).changes);
  }
}
