// (sender, txnId) → event ID, so a retried create-event command answers with the first event.
import type { Store } from '@fedgate/store';

export interface ClientTransactionLog {
  get(sender: string, txnId: string): Promise<string | undefined>;
  /** First write wins; returns the stored event ID. */
  record(sender: string, txnId: string, eventId: string): Promise<string>;
}

interface StoreWithClientTransactions {
  clientTransactions?: {
    get(sender: string, txnId: string): Promise<{ eventId: string } | undefined>;
    record(entry: { sender: string; txnId: string; eventId: string; roomId: string; createdTs: number }): Promise<{ eventId: string }>;
  };
}

/**
 * Uses the store's `clientTransactions` repository when the store has one; otherwise keeps the mapping in
 * memory (retries within this process's life are still answered with the first event).
 */
export function clientTransactionLog(store: Store): ClientTransactionLog {
  const repo = (store as Store & StoreWithClientTransactions).clientTransactions;
  if (repo) {
    return {
      get: async (sender, txnId) => (await repo.get(sender, txnId))?.eventId,
      record: async (sender, txnId, eventId) => (await repo.record({ sender, txnId, eventId, roomId: '', createdTs: Date.now() })).eventId,
    };
  }
  const memory = new Map<string, string>();
  const key = (sender: string, txnId: string) => JSON.stringify([sender, txnId]);
  return {
    get: async (sender, txnId) => memory.get(key(sender, txnId)),
    record: async (sender, txnId, eventId) => {
      const k = key(sender, txnId);
      if (!memory.has(k)) memory.set(k, eventId);
      return memory.get(k)!;
    },
  };
}
