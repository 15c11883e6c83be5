import type { Collection, Document } from 'mongodb';
import type { RedactionClaim, RedactionRepository } from '../ports/redactions';

/** Claims are one document per target (`_id` lookups only, for FerretDB); an applied redaction is a field of the event document. */
export class MongoRedactionRepository implements RedactionRepository {
  constructor(
    private readonly claims: Collection<Document>,
    private readonly events: Collection<Document>,
  ) {}

  async addClaim(claim: RedactionClaim): Promise<void> {
    await this.claims.updateOne(
      { _id: claim.targetEventId as never },
      { $addToSet: { claims: { redactionEventId: claim.redactionEventId, roomId: claim.roomId } } },
      { upsert: true },
    );
  }

  async claimsOn(targetEventId: string): Promise<RedactionClaim[]> {
    const d = await this.claims.findOne({ _id: targetEventId as never });
    const claims = (d?.claims ?? []) as Array<{ redactionEventId: string; roomId: string }>;
    return claims.map((c) => ({ redactionEventId: c.redactionEventId, targetEventId, roomId: c.roomId }));
  }

  async openClaimTargets(roomId: string): Promise<string[]> {
    const claimed = (await this.claims.find({ 'claims.roomId': roomId }, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id));
    if (claimed.length === 0) return [];
    const redacted = await this.events.find({ _id: { $in: claimed as never[] }, redactedBy: { $exists: true } }, { projection: { _id: 1 } }).toArray();
    const done = new Set(redacted.map((d) => String(d._id)));
    return claimed.filter((id) => !done.has(id));
  }

  async apply(claim: RedactionClaim): Promise<boolean> {
    const r = await this.events.updateOne(
      { _id: claim.targetEventId as never, redactedBy: { $exists: false } },
      { $set: { redactedBy: claim.redactionEventId } },
    );
    return r.modifiedCount > 0;
  }
}
