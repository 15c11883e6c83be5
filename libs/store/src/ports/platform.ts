// What chat-sync keeps: application-service registrations and their transaction positions, and
// media metadata.
import type { JsonObject } from '@fedgate/protocol';
import type { InFlightTransaction } from './federation';

export interface AppServiceNamespace {
  exclusive: boolean;
  regex: string;
}

export interface AppServiceRegistration {
  id: string;
  url: string | null;
  asToken: string;
  hsToken: string;
  senderLocalpart: string;
  namespaces: { users: AppServiceNamespace[]; aliases: AppServiceNamespace[]; rooms: AppServiceNamespace[] };
  rateLimited?: boolean;
  protocols?: string[];
}

export interface AppServicePosition {
  appServiceId: string;
  /** Position in the room event log up to which everything was pushed. */
  streamPosition: number;
  /** The last transaction ID used; IDs increase. */
  lastTxnId: number;
  inFlight: InFlightTransaction | null;
}

export interface AppServiceRepository {
  register(registration: AppServiceRegistration): Promise<void>;
  get(id: string): Promise<AppServiceRegistration | undefined>;
  list(): Promise<AppServiceRegistration[]>;
  remove(id: string): Promise<void>;

  getPosition(id: string): Promise<AppServicePosition>;
  /**
   * The transaction to push next: the one in flight if any (a retry keeps its ID), else a new one
   * with the next transaction ID covering events up to `upTo`.
   */
  beginTransaction(id: string, upTo: number): Promise<InFlightTransaction>;
  /** Marks `txnId` delivered: stream position moves to its `upTo` (never backwards). Idempotent. */
  completeTransaction(id: string, txnId: string): Promise<void>;
}

export interface MediaRecord {
  /** The server the media belongs to. */
  origin: string;
  mediaId: string;
  contentType: string;
  size: number;
  uploadName: string | null;
  sha256: string;
  /** Where the bytes are (a path or an object-store key). */
  location: string;
  createdTs: number;
  uploader: string | null;
  extra?: JsonObject;
  /**
   * Set on an ID reserved by `POST /_matrix/media/v1/create` whose bytes have not arrived: until this
   * time the uploader may still `PUT` them (size 0, empty location meanwhile).
   */
  pendingUntilTs?: number;
}

/** A generated thumbnail of one media item, cached: `variant` names size, method and animation. */
export interface MediaThumbnailRecord {
  origin: string;
  mediaId: string;
  /** e.g. `96x96-crop`, `640x480-scale-animated`: one per distinct request shape. */
  variant: string;
  contentType: string;
  size: number;
  width: number;
  height: number;
  location: string;
  createdTs: number;
}

export interface MediaRepository {
  /** Stores the record unless (origin, mediaId) is stored; returns what is stored. */
  put(media: MediaRecord): Promise<MediaRecord>;
  get(origin: string, mediaId: string): Promise<MediaRecord | undefined>;
  remove(origin: string, mediaId: string): Promise<void>;
  /**
   * Replaces a pending record (one with `pendingUntilTs`) by `media`, the uploaded one. False when
   * nothing is pending under (origin, mediaId): unknown, or already uploaded (first upload wins).
   */
  completePending(media: MediaRecord): Promise<boolean>;
  /** Stores the thumbnail unless that variant is stored; returns what is stored. */
  putThumbnail(thumbnail: MediaThumbnailRecord): Promise<MediaThumbnailRecord>;
  getThumbnail(origin: string, mediaId: string, variant: string): Promise<MediaThumbnailRecord | undefined>;
}
