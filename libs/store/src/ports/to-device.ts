// To-device messages, durably: what `/sendToDevice` accepted is kept (reserved with its messages) until
// it is published, so a crash between the two is finished by a retry or by the repair on start; and each
// inbound message (origin, sender, message_id) is taken once, however often a remote server sends it.

export interface OutgoingToDevice {
  /** Derived from (sender, type, txnId): the same request retried has the same key. */
  key: string;
  sender: string;
  type: string;
  /** `messages` as the client sent them (user → device → content). */
  messages: Record<string, unknown>;
  createdTs: number;
  published: boolean;
}

export interface ToDeviceRepository {
  /** Keeps the request unless one with the key is held already; returns the one held. */
  reserve(message: Omit<OutgoingToDevice, 'published'>): Promise<OutgoingToDevice>;
  markPublished(key: string): Promise<void>;
  /** Reserved and not published yet (a crash cut them short), oldest first. */
  unpublished(limit: number): Promise<OutgoingToDevice[]>;
  /** Whether the inbound message (origin, sender, messageId) was handed on already. */
  wasDelivered(origin: string, sender: string, messageId: string): Promise<boolean>;
  /** Recorded after it was handed on: a crash before this hands it on again, under the same bus message IDs. */
  markDelivered(origin: string, sender: string, messageId: string, now?: number): Promise<void>;
  /** Forgets delivery records and published requests older than `before` (a retry or resend after that is new); returns how many. */
  prune(before: number): Promise<number>;
}
