import type { ClientTransaction, ClientTransactionRepository } from '../ports/client-transactions';
import type { SqliteDatabase } from './database';

export class SqliteClientTransactionRepository implements ClientTransactionRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async get(sender: string, txnId: string): Promise<ClientTransaction | undefined> {
    const r = this.db.get<{ event_id: string; room_id: string; created_ts: number }>(
      'SELECT event_id, room_id, created_ts FROM store_client_transactions WHERE sender = ? AND txn_id = ?',
      sender,
      txnId,
    );
    return r && { sender, txnId, eventId: r.event_id, roomId: r.room_id, createdTs: r.created_ts };
  }

  async record(txn: ClientTransaction): Promise<ClientTransaction> {
    this.db.run(
      'INSERT INTO store_client_transactions (sender, txn_id, event_id, room_id, created_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      txn.sender,
      txn.txnId,
      txn.eventId,
      txn.roomId,
      txn.createdTs,
    );
    return (await this.get(txn.sender, txn.txnId)) as ClientTransaction;
  }
}
