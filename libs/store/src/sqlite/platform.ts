import type { InFlightTransaction } from '../ports/federation';
import type { AppServicePosition, AppServiceRegistration, AppServiceRepository, MediaRecord, MediaRepository, MediaThumbnailRecord } from '../ports/platform';
import type { SqliteDatabase } from './database';

interface PositionRow {
  id: string;
  stream_position: number;
  last_txn_id: number;
  in_flight_txn: string | null;
  in_flight_up_to: number | null;
}

export class SqliteAppServiceRepository implements AppServiceRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async register(registration: AppServiceRegistration): Promise<void> {
    this.db.run(
      'INSERT INTO store_app_services (id, registration) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET registration = excluded.registration',
      registration.id,
      JSON.stringify(registration),
    );
  }

  async get(id: string): Promise<AppServiceRegistration | undefined> {
    const r = this.db.get<{ registration: string }>('SELECT registration FROM store_app_services WHERE id = ?', id);
    return r && (JSON.parse(r.registration) as AppServiceRegistration);
  }

  async list(): Promise<AppServiceRegistration[]> {
    return this.db.all<{ registration: string }>('SELECT registration FROM store_app_services ORDER BY id').map((r) => JSON.parse(r.registration));
  }

  async remove(id: string): Promise<void> {
    this.db.run('DELETE FROM store_app_services WHERE id = ?', id);
  }

  async getPosition(id: string): Promise<AppServicePosition> {
    const r = this.db.get<PositionRow>('SELECT * FROM store_app_service_positions WHERE id = ?', id);
    if (!r) return { appServiceId: id, streamPosition: 0, lastTxnId: 0, inFlight: null };
    return {
      appServiceId: id,
      streamPosition: r.stream_position,
      lastTxnId: r.last_txn_id,
      inFlight: r.in_flight_txn === null ? null : { txnId: r.in_flight_txn, upTo: r.in_flight_up_to ?? 0 },
    };
  }

  async beginTransaction(id: string, upTo: number): Promise<InFlightTransaction> {
    this.db.transaction(() => {
      this.db.run('INSERT INTO store_app_service_positions (id) VALUES (?) ON CONFLICT DO NOTHING', id);
      this.db.run(
        `UPDATE store_app_service_positions SET last_txn_id = last_txn_id + 1, in_flight_txn = CAST(last_txn_id + 1 AS TEXT), in_flight_up_to = ?
         WHERE id = ? AND in_flight_txn IS NULL`,
        upTo,
        id,
      );
    });
    return (await this.getPosition(id)).inFlight as InFlightTransaction;
  }

  async completeTransaction(id: string, txnId: string): Promise<void> {
    this.db.run(
      `UPDATE store_app_service_positions SET stream_position = max(stream_position, in_flight_up_to), in_flight_txn = NULL, in_flight_up_to = NULL
       WHERE id = ? AND in_flight_txn = ?`,
      id,
      txnId,
    );
  }
}

export class SqliteMediaRepository implements MediaRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async put(media: MediaRecord): Promise<MediaRecord> {
    this.db.run('INSERT INTO store_media (origin, media_id, record) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', media.origin, media.mediaId, JSON.stringify(media));
    return (await this.get(media.origin, media.mediaId)) as MediaRecord;
  }

  async get(origin: string, mediaId: string): Promise<MediaRecord | undefined> {
    const r = this.db.get<{ record: string }>('SELECT record FROM store_media WHERE origin = ? AND media_id = ?', origin, mediaId);
    return r && (JSON.parse(r.record) as MediaRecord);
  }

  async remove(origin: string, mediaId: string): Promise<void> {
    this.db.run('DELETE FROM store_media WHERE origin = ? AND media_id = ?', origin, mediaId);
  }

  async completePending(media: MediaRecord): Promise<boolean> {
    const { changes } = this.db.run(
      "UPDATE store_media SET record = ? WHERE origin = ? AND media_id = ? AND json_extract(record, '$.pendingUntilTs') IS NOT NULL",
      JSON.stringify(media),
      media.origin,
      media.mediaId,
    );
    return changes === 1;
  }

  async putThumbnail(thumbnail: MediaThumbnailRecord): Promise<MediaThumbnailRecord> {
    this.db.run(
      'INSERT INTO store_media_thumbnails (origin, media_id, variant, record) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      thumbnail.origin,
      thumbnail.mediaId,
      thumbnail.variant,
      JSON.stringify(thumbnail),
    );
    return (await this.getThumbnail(thumbnail.origin, thumbnail.mediaId, thumbnail.variant)) as MediaThumbnailRecord;
  }

  async getThumbnail(origin: string, mediaId: string, variant: string): Promise<MediaThumbnailRecord | undefined> {
    const r = this.db.get<{ record: string }>('SELECT record FROM store_media_thumbnails WHERE origin = ? AND media_id = ? AND variant = ?', origin, mediaId, variant);
    return r && (JSON.parse(r.record) as MediaThumbnailRecord);
  }
}
