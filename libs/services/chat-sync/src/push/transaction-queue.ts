// The pusher's queue port. A transaction, once formed, is pinned: it keeps its txnId and contents
// across retries and restarts until acknowledged, so the AS can deduplicate by txnId (the spec's
// idempotency rule) without ever seeing two different bodies under one ID.

export type JsonObject = Record<string, unknown>;

/** `id` dedupes within a service's queue where the queue supports it (the event ID for room events). */
/** `device_list`: MSC3202, `{user_id, left?}`; gathered into the transaction's `deviceLists`. */
export type QueuedItem = { kind: 'event' | 'ephemeral' | 'to_device' | 'device_list'; event: JsonObject; id?: string };

export interface PendingTransaction {
  txnId: string;
  /** Room events (client format), in the order they were enqueued. */
  events: JsonObject[];
  /** Ephemeral events (typing, receipts, presence), in order. */
  ephemeral: JsonObject[];
  /** To-device messages for the service's users (MSC2409), present only when there are some. */
  toDevice?: JsonObject[];
  /** MSC3202 device-list changes, present only when there are some. */
  deviceLists?: { changed: string[]; left: string[] };
  /** `events` as JSON text, when the queue has it as stored: sent as is, not serialised again (issue 19). */
  readonly eventsJson?: string;
}

export interface TransactionLimits {
  maxEvents: number;
  maxEphemeral: number;
}

export interface TransactionQueue {
  /** Appends an item to the AS's queue, after everything enqueued before it. */
  enqueue(appServiceId: string, item: QueuedItem): Promise<void>;
  /** Appends items in order, in one write where the queue can (issue 19: a bus run's pushes); absent: one `enqueue` each. */
  enqueueMany?(appServiceId: string, items: readonly QueuedItem[]): Promise<void>;
  /**
   * The AS's open transaction, forming one from the head of the queue if none is open;
   * null when there is nothing to send. Returns the same transaction until it is acked.
   */
  openTransaction(appServiceId: string, limits: TransactionLimits): Promise<PendingTransaction | null>;
  /** The AS accepted the transaction: drop its items and move the persisted position past them. */
  ackTransaction(appServiceId: string, txnId: string): Promise<void>;
}
