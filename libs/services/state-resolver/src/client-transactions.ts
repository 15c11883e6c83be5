// (sender, txnId) → event ID, so a retried create-event command answers with the first event.
import type { Store } from '@fedgate/store';

export interface ClientTransactionLog {
  get(sender: string, txnId: string): Promise<{ eventId: string; roomId: string } | undefined>;
  /** First write wins; returns what is stored. */
  record(sender: string, txnId: string, created: { eventId: string; roomId: string }): Promise<{ eventId: string; roomId: string }>;
}

export function clientTransactionLog(store: Store): ClientTransactionLog {
  return {
    get: async (sender, txnId) => pick(await store.clientTransactions.get(sender, txnId)),
    record: async (sender, txnId, created) => pick(await store.clientTransactions.record({ sender, txnId, ...created, createdTs: Date.now() }))!,
  };
}

function pick(txn: { eventId: string; roomId: string } | undefined): { eventId: string; roomId: string } | undefined {
  return txn && { eventId: txn.eventId, roomId: txn.roomId };
}
