import type { RedactionClaim, RedactionRepository } from '../ports/redactions';
import type { SqliteDatabase } from './database';

export class SqliteRedactionRepository implements RedactionRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async addClaim(claim: RedactionClaim): Promise<void> {
    this.db.run(
      'INSERT INTO store_redaction_claims (target_id, redaction_id, room_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      claim.targetEventId,
      claim.redactionEventId,
      claim.roomId,
    );
  }

  async claimsOn(targetEventId: string): Promise<RedactionClaim[]> {
    const rows = this.db.all<{ redaction_id: string; room_id: string }>(
      'SELECT redaction_id, room_id FROM store_redaction_claims WHERE target_id = ? ORDER BY id',
      targetEventId,
    );
    return rows.map((r) => ({ redactionEventId: r.redaction_id, targetEventId, roomId: r.room_id }));
  }

  async openClaimTargets(roomId: string): Promise<string[]> {
    const rows = this.db.all<{ target_id: string }>(
      `SELECT DISTINCT c.target_id FROM store_redaction_claims c
        WHERE c.room_id = ? AND NOT EXISTS (SELECT 1 FROM store_redacted_events r WHERE r.event_id = c.target_id)`,
      roomId,
    );
    return rows.map((r) => r.target_id);
  }

  async apply(claim: RedactionClaim): Promise<boolean> {
    const r = this.db.run(
      `INSERT INTO store_redacted_events (event_id, redaction_id)
        SELECT ?, ? WHERE EXISTS (SELECT 1 FROM store_events WHERE event_id = ?) ON CONFLICT DO NOTHING`,
      claim.targetEventId,
      claim.redactionEventId,
      claim.targetEventId,
    );
    return r.changes > 0;
  }
}
