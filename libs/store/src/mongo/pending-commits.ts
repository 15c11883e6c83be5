import type { Collection, Document } from 'mongodb';
import type { PendingCommit, PendingCommitRepository } from '../ports/pending-commits';
import { nextCounterValue } from './database';

/** One document per event (`_id` = event ID); the collection is empty but for commits under way, so listing scans little. */
export class MongoPendingCommitRepository implements PendingCommitRepository {
  constructor(
    private readonly commits: Collection<Document>,
    private readonly counters: Collection<Document>,
  ) {}

  async add(commit: PendingCommit): Promise<void> {
    const seq = await nextCounterValue(this.counters, 'pending_commits');
    await this.commits.updateOne(
      { _id: commit.eventId as never },
      { $setOnInsert: { roomId: commit.roomId, payload: JSON.stringify(commit.payload), createdTs: commit.createdTs, seq } },
      { upsert: true },
    );
  }

  async get(eventId: string): Promise<PendingCommit | undefined> {
    const d = await this.commits.findOne({ _id: eventId as never });
    return d ? toCommit(d) : undefined;
  }

  async list(roomId?: string): Promise<PendingCommit[]> {
    const docs = await this.commits.find(roomId === undefined ? {} : { roomId }).toArray();
    return docs.sort((a, b) => (a.seq as number) - (b.seq as number)).map(toCommit);
  }

  async remove(eventId: string): Promise<void> {
    await this.commits.deleteOne({ _id: eventId as never });
  }
}

function toCommit(d: Document): PendingCommit {
  return { eventId: String(d._id), roomId: d.roomId as string, payload: JSON.parse(d.payload as string) as Record<string, unknown>, createdTs: d.createdTs as number };
}
