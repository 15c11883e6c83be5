import type { JsonObject } from '@fedgate/protocol';
import { ObjectId, type Collection, type Document } from 'mongodb';
import type { AuditEntry, AuditQuery, AuditRecord, AuditRepository } from '../ports/audit';

export class MongoAuditRepository implements AuditRepository {
  constructor(private readonly audit: Collection<Document>) {}

  async append(e: AuditEntry): Promise<AuditRecord> {
    const _id = new ObjectId();
    const { details, ...fields } = e;
    await this.audit.insertOne({ _id, ...fields, details: details === undefined ? undefined : JSON.stringify(details) });
    return { ...e, id: _id.toHexString() };
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    const filter: Document = {};
    for (const field of ['direction', 'origin', 'destination', 'outcome', 'reason', 'decision', 'roomId', 'server', 'rule'] as const) if (q[field] !== undefined) filter[field] = q[field];
    if (q.sinceTs !== undefined || q.untilTs !== undefined) {
      filter.ts = {};
      if (q.sinceTs !== undefined) filter.ts.$gte = q.sinceTs;
      if (q.untilTs !== undefined) filter.ts.$lt = q.untilTs;
    }
    const docs = await this.audit
      .find(filter)
      .sort({ ts: -1, _id: -1 })
      .limit(q.limit ?? 100)
      .toArray();
    return docs.map(toRecord);
  }

  async pruneBefore(ts: number): Promise<number> {
    return (await this.audit.deleteMany({ ts: { $lt: ts } })).deletedCount;
  }
}

function toRecord(d: Document): AuditRecord {
  const { _id, details, ...rest } = d;
  const record = { ...rest, id: (_id as ObjectId).toHexString() } as AuditRecord;
  for (const optional of ['reason', 'txnId', 'pduCount', 'eduCount', 'decision', 'roomId', 'eventId', 'sender', 'server', 'rule', 'policyVersion'] as const) if (record[optional] === null) delete record[optional];
  if (typeof details === 'string') record.details = JSON.parse(details) as JsonObject;
  return record;
}
