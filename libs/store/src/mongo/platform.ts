import type { Collection, Document } from 'mongodb';
import type { InFlightTransaction } from '../ports/federation';
import type { AppServicePosition, AppServiceRegistration, AppServiceRepository, MediaRecord, MediaRepository, MediaThumbnailRecord } from '../ports/platform';
import { compoundId } from './database';

export class MongoAppServiceRepository implements AppServiceRepository {
  constructor(
    private readonly registrations: Collection<Document>,
    private readonly positions: Collection<Document>,
  ) {}

  async register(registration: AppServiceRegistration): Promise<void> {
    await this.registrations.replaceOne({ _id: registration.id as never }, { registration: JSON.stringify(registration) }, { upsert: true });
  }

  async get(id: string): Promise<AppServiceRegistration | undefined> {
    const d = await this.registrations.findOne({ _id: id as never });
    return d ? (JSON.parse(d.registration) as AppServiceRegistration) : undefined;
  }

  async list(): Promise<AppServiceRegistration[]> {
    const docs = await this.registrations.find({}).sort({ _id: 1 }).toArray();
    return docs.map((d) => JSON.parse(d.registration) as AppServiceRegistration);
  }

  async remove(id: string): Promise<void> {
    await this.registrations.deleteOne({ _id: id as never });
  }

  async getPosition(id: string): Promise<AppServicePosition> {
    const d = await this.positions.findOne({ _id: id as never });
    if (!d) return { appServiceId: id, streamPosition: 0, lastTxnId: 0, inFlight: null };
    return {
      appServiceId: id,
      streamPosition: d.streamPosition,
      lastTxnId: d.lastTxnId,
      inFlight: d.inFlight ? { txnId: d.inFlight.txnId, upTo: d.inFlight.upTo } : null,
    };
  }

  async beginTransaction(id: string, upTo: number): Promise<InFlightTransaction> {
    await this.positions.updateOne({ _id: id as never }, { $setOnInsert: { streamPosition: 0, lastTxnId: 0, inFlight: null } }, { upsert: true });
    const current = await this.getPosition(id);
    if (current.inFlight) return current.inFlight;
    // Two conditional steps instead of a transaction: take the next number, then claim the in-flight
    // slot with it. If another caller took a number in between, its claim wins and both return it;
    // a number taken but never claimed is only a gap, and IDs still increase.
    const taken = await this.positions.findOneAndUpdate({ _id: id as never, inFlight: null }, { $inc: { lastTxnId: 1 } }, { returnDocument: 'after' });
    if (taken) {
      const txnId = String(taken.lastTxnId);
      await this.positions.updateOne({ _id: id as never, inFlight: null, lastTxnId: taken.lastTxnId }, { $set: { inFlight: { txnId, upTo } } });
    }
    return (await this.getPosition(id)).inFlight ?? this.beginTransaction(id, upTo);
  }

  async completeTransaction(id: string, txnId: string): Promise<void> {
    const current = await this.getPosition(id);
    if (current.inFlight?.txnId !== txnId) return;
    await this.positions.updateOne({ _id: id as never, 'inFlight.txnId': txnId }, { $max: { streamPosition: current.inFlight.upTo }, $set: { inFlight: null } });
  }
}

/**
 * Media records, and their thumbnails in the same collection under four-part IDs (origin, media ID,
 * `thumbnail`, variant) that never meet a record's two-part ID. `pending` mirrors `pendingUntilTs` so
 * completing an upload is one conditional update.
 */
export class MongoMediaRepository implements MediaRepository {
  constructor(private readonly media: Collection<Document>) {}

  async put(media: MediaRecord): Promise<MediaRecord> {
    await this.media.updateOne(
      { _id: compoundId(media.origin, media.mediaId) as never },
      { $setOnInsert: { record: JSON.stringify(media), pending: media.pendingUntilTs !== undefined } },
      { upsert: true },
    );
    return (await this.get(media.origin, media.mediaId)) as MediaRecord;
  }

  async get(origin: string, mediaId: string): Promise<MediaRecord | undefined> {
    const d = await this.media.findOne({ _id: compoundId(origin, mediaId) as never });
    return d ? (JSON.parse(d.record) as MediaRecord) : undefined;
  }

  async remove(origin: string, mediaId: string): Promise<void> {
    await this.media.deleteOne({ _id: compoundId(origin, mediaId) as never });
  }

  async completePending(media: MediaRecord): Promise<boolean> {
    const result = await this.media.updateOne({ _id: compoundId(media.origin, media.mediaId) as never, pending: true }, { $set: { record: JSON.stringify(media), pending: false } });
    return result.modifiedCount === 1;
  }

  async putThumbnail(thumbnail: MediaThumbnailRecord): Promise<MediaThumbnailRecord> {
    const _id = compoundId(thumbnail.origin, thumbnail.mediaId, 'thumbnail', thumbnail.variant);
    await this.media.updateOne({ _id: _id as never }, { $setOnInsert: { record: JSON.stringify(thumbnail) } }, { upsert: true });
    return (await this.getThumbnail(thumbnail.origin, thumbnail.mediaId, thumbnail.variant)) as MediaThumbnailRecord;
  }

  async getThumbnail(origin: string, mediaId: string, variant: string): Promise<MediaThumbnailRecord | undefined> {
    const d = await this.media.findOne({ _id: compoundId(origin, mediaId, 'thumbnail', variant) as never });
    return d ? (JSON.parse(d.record) as MediaThumbnailRecord) : undefined;
  }
}
