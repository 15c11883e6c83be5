import type { JsonObject } from '@fedgate/protocol';
import type { EgressQueueItem, EgressQueueRepository, PendingEgressTransaction } from '../ports/egress-queue';
import type { InFlightTransaction } from '../ports/federation';
import type { SqliteDatabase } from './database';
import { completeInFlight } from './federation';

interface QueueRow {
  destination: string;
  position: number;
  item_key: string;
  item: string;
  enqueued_ts: number;
}

interface TransactionRow {
  destination: string;
  txn_id: string;
  up_to: number;
  body: string;
  created_ts: number;
}

const toItem = (r: QueueRow): EgressQueueItem => ({
  destination: r.destination,
  position: r.position,
  key: r.item_key,
  item: JSON.parse(r.item) as JsonObject,
  enqueuedTs: r.enqueued_ts,
});

const toTransaction = (r: TransactionRow): PendingEgressTransaction => ({
  destination: r.destination,
  txnId: r.txn_id,
  upTo: r.up_to,
  body: JSON.parse(r.body) as JsonObject,
  createdTs: r.created_ts,
});

export class SqliteEgressQueueRepository implements EgressQueueRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async append(destination: string, key: string, item: JsonObject, enqueuedTs: number): Promise<{ position: number; inserted: boolean }> {
    const r = this.db.run(
      'INSERT INTO store_egress_queue (destination, item_key, item, enqueued_ts) VALUES (?, ?, ?, ?) ON CONFLICT (destination, item_key) DO NOTHING',
      destination,
      key,
      JSON.stringify(item),
      enqueuedTs,
    );
    if (r.changes > 0) return { position: r.lastInsertRowid, inserted: true };
    const existing = this.db.get<{ position: number }>('SELECT position FROM store_egress_queue WHERE destination = ? AND item_key = ?', destination, key);
    return { position: existing?.position ?? 0, inserted: false };
  }

  async list(destination: string, afterPosition: number, limit: number): Promise<EgressQueueItem[]> {
    return this.db
      .all<QueueRow>('SELECT * FROM store_egress_queue WHERE destination = ? AND position > ? ORDER BY position LIMIT ?', destination, afterPosition, limit)
      .map(toItem);
  }

  async count(destination: string, afterPosition: number): Promise<number> {
    return this.db.get<{ n: number }>('SELECT count(*) AS n FROM store_egress_queue WHERE destination = ? AND position > ?', destination, afterPosition)?.n ?? 0;
  }

  async removeUpTo(destination: string, position: number): Promise<number> {
    return this.db.run('DELETE FROM store_egress_queue WHERE destination = ? AND position <= ?', destination, position).changes;
  }

  async remove(destination: string, positions: number[]): Promise<number> {
    if (positions.length === 0) return 0;
    return this.db.transaction(() =>
      positions.reduce((n, p) => n + this.db.run('DELETE FROM store_egress_queue WHERE destination = ? AND position = ?', destination, p).changes, 0),
    );
  }

  async destinationsWithWork(): Promise<string[]> {
    return this.db
      .all<{ destination: string }>('SELECT DISTINCT destination FROM store_egress_queue UNION SELECT destination FROM store_egress_transactions ORDER BY destination')
      .map((r) => r.destination);
  }

  async saveTransaction(txn: PendingEgressTransaction): Promise<PendingEgressTransaction> {
    this.insertTransactionRow(txn);
    return (await this.getTransaction(txn.destination, txn.txnId)) as PendingEgressTransaction;
  }

  async getTransaction(destination: string, txnId: string): Promise<PendingEgressTransaction | undefined> {
    const r = this.db.get<TransactionRow>('SELECT * FROM store_egress_transactions WHERE destination = ? AND txn_id = ?', destination, txnId);
    return r && toTransaction(r);
  }

  async deleteTransaction(destination: string, txnId: string): Promise<void> {
    this.db.run('DELETE FROM store_egress_transactions WHERE destination = ? AND txn_id = ?', destination, txnId);
  }

  // The destination's row is SqliteDestinationRepository's; written here in the same transaction as the queue's rows.
  async beginTransaction(txn: PendingEgressTransaction): Promise<InFlightTransaction> {
    return this.db.transaction(() => {
      this.db.run('INSERT INTO store_destinations (destination) VALUES (?) ON CONFLICT DO NOTHING', txn.destination);
      const begun = this.db.run(
        'UPDATE store_destinations SET in_flight_txn = ?, in_flight_up_to = ? WHERE destination = ? AND in_flight_txn IS NULL',
        txn.txnId,
        txn.upTo,
        txn.destination,
      );
      if (begun.changes > 0) {
        this.insertTransactionRow(txn);
        return { txnId: txn.txnId, upTo: txn.upTo };
      }
      const row = this.db.get<{ in_flight_txn: string; in_flight_up_to: number }>('SELECT in_flight_txn, in_flight_up_to FROM store_destinations WHERE destination = ?', txn.destination)!;
      return { txnId: row.in_flight_txn, upTo: row.in_flight_up_to };
    });
  }

  async settleTransaction(destination: string, txnId: string, upTo: number, nowTs: number): Promise<void> {
    this.db.transaction(() => {
      completeInFlight(this.db, destination, txnId, nowTs);
      this.db.run('DELETE FROM store_egress_queue WHERE destination = ? AND position <= ?', destination, upTo);
      this.db.run('DELETE FROM store_egress_transactions WHERE destination = ? AND txn_id = ?', destination, txnId);
    });
  }

  // Begin and settle are one transaction each here, so nothing is left by a crash; this only removes what a body
  // saved by saveTransaction (the sender rebuilding a lost one) racing a settle could leave.
  async removeSettledTransactions(destination: string): Promise<number> {
    return this.db.run(
      'DELETE FROM store_egress_transactions WHERE destination = ? AND txn_id IS NOT (SELECT in_flight_txn FROM store_destinations WHERE destination = ?)',
      destination,
      destination,
    ).changes;
  }

  private insertTransactionRow(txn: PendingEgressTransaction): void {
    this.db.run(
      'INSERT INTO store_egress_transactions (destination, txn_id, up_to, body, created_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      txn.destination,
      txn.txnId,
      txn.upTo,
      JSON.stringify(txn.body),
      txn.createdTs,
    );
  }
}
