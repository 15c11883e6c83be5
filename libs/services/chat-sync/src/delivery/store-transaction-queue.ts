import { randomUUID } from 'node:crypto';
import type { AppServiceQueueItem, Store } from '@fedgate/store';
import type { PendingTransaction, QueuedItem, TransactionLimits, TransactionQueue } from '../push';

function toQueueItem(item: QueuedItem): AppServiceQueueItem {
  return { itemId: item.id ?? (typeof item.event.event_id === 'string' ? item.event.event_id : randomUUID()), kind: item.kind, event: item.event as never };
}

/** The pusher's queue in the store: items and the pinned open transaction survive restarts. */
export class StoreTransactionQueue implements TransactionQueue {
  constructor(
    private readonly store: Store,
    /** An item handed over again after it was delivered (a bus redelivery, a publish again): not sent again, told here. */
    private readonly onAlreadyDelivered?: (appServiceId: string, itemId: string, kind: QueuedItem['kind']) => void,
  ) {}

  async enqueue(appServiceId: string, item: QueuedItem): Promise<void> {
    const queued = toQueueItem(item);
    const { delivered } = await this.store.appServiceQueue.enqueue(appServiceId, queued);
    if (delivered) this.onAlreadyDelivered?.(appServiceId, queued.itemId, item.kind);
  }

  async enqueueMany(appServiceId: string, items: readonly QueuedItem[]): Promise<void> {
    const queued = items.map(toQueueItem);
    const results = await this.store.appServiceQueue.enqueueMany(appServiceId, queued);
    results.forEach((r, i) => r.delivered && this.onAlreadyDelivered?.(appServiceId, queued[i]!.itemId, queued[i]!.kind));
  }

  openTransaction(appServiceId: string, limits: TransactionLimits): Promise<PendingTransaction | null> {
    return this.store.appServiceQueue.openTransaction(appServiceId, limits);
  }

  ackTransaction(appServiceId: string, txnId: string): Promise<void> {
    return this.store.appServiceQueue.ackTransaction(appServiceId, txnId);
  }

  pendingCount(appServiceId: string): Promise<number> {
    return this.store.appServiceQueue.pendingCount(appServiceId);
  }
}
