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
}

export interface MediaRepository {
  /** Stores the record unless (origin, mediaId) is stored; returns what is stored. */
  put(media: MediaRecord): Promise<MediaRecord>;
  get(origin: string, mediaId: string): Promise<MediaRecord | undefined>;
  remove(origin: string, mediaId: string): Promise<void>;
}
