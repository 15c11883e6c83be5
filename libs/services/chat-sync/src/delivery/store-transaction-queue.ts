import { randomUUID } from 'node:crypto';
import type { Store } from '@fedgate/store';
import type { PendingTransaction, QueuedItem, TransactionLimits, TransactionQueue } from '../push';

/** The pusher's queue in the store: items and the pinned open transaction survive restarts. */
export class StoreTransactionQueue implements TransactionQueue {
  constructor(private readonly store: Store) {}

  async enqueue(appServiceId: string, item: QueuedItem): Promise<void> {
    const itemId = item.id ?? (typeof item.event.event_id === 'string' ? item.event.event_id : randomUUID());
    await this.store.appServiceQueue.enqueue(appServiceId, { itemId, kind: item.kind, event: item.event as never });
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
