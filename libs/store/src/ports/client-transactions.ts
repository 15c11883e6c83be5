// Client transaction IDs of local events: (sender, txnId) → the event the first request created, so a
// retried send answers with the same event instead of creating another.

export interface ClientTransaction {
  sender: string;
  txnId: string;
  eventId: string;
  roomId: string;
  createdTs: number;
}

export interface ClientTransactionRepository {
  get(sender: string, txnId: string): Promise<ClientTransaction | undefined>;
  /** Stores the mapping unless (sender, txnId) is stored; returns what is stored (first write wins). */
  record(txn: ClientTransaction): Promise<ClientTransaction>;
}
