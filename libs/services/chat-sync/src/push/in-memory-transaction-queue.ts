import { fillAppServiceTransaction } from '@fedgate/store';
import type { PendingTransaction, QueuedItem, TransactionLimits, TransactionQueue } from './transaction-queue';

interface AppServiceQueueState {
  items: { seq: number; item: QueuedItem }[];
  nextSeq: number;
  nextTxnId: number;
  /** The open transaction and the last sequence number it covers. */
  open: { transaction: PendingTransaction; lastSeq: number } | null;
  ackedSeq: number;
}

/** A TransactionQueue held in memory, for unit tests and single-process development. */
export class InMemoryTransactionQueue implements TransactionQueue {
  private readonly states = new Map<string, AppServiceQueueState>();

  async enqueue(appServiceId: string, item: QueuedItem): Promise<void> {
    const state = this.state(appServiceId);
    state.items.push({ seq: state.nextSeq++, item });
  }

  async openTransaction(appServiceId: string, limits: TransactionLimits): Promise<PendingTransaction | null> {
    const state = this.state(appServiceId);
    if (state.open) return state.open.transaction;
    const items = state.items.map(({ seq, item }) => ({ seq, kind: item.kind, event: JSON.stringify(item.event) }));
    const filled = fillAppServiceTransaction(String(state.nextTxnId), items, limits);
    if (!filled) return null;
    state.nextTxnId++;
    const { transaction, lastSeq } = filled as { transaction: PendingTransaction; lastSeq: number };
    state.open = { transaction, lastSeq };
    return transaction;
  }

  async ackTransaction(appServiceId: string, txnId: string): Promise<void> {
    const state = this.state(appServiceId);
    if (!state.open || state.open.transaction.txnId !== txnId) return;
    state.ackedSeq = state.open.lastSeq;
    state.items = state.items.filter(({ seq }) => seq > state.ackedSeq);
    state.open = null;
  }

  /** Items not yet acknowledged, for tests. */
  pendingCount(appServiceId: string): number {
    return this.state(appServiceId).items.length;
  }

  private state(appServiceId: string): AppServiceQueueState {
    let state = this.states.get(appServiceId);
    if (!state) {
      state = { items: [], nextSeq: 1, nextTxnId: 1, open: null, ackedSeq: 0 };
      this.states.set(appServiceId, state);
    }
    return state;
  }
}
