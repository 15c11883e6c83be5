import type { Collection, Document } from 'mongodb';
import type { ClientTransaction, ClientTransactionRepository } from '../ports/client-transactions';
import { compoundId } from './database';

export class MongoClientTransactionRepository implements ClientTransactionRepository {
  constructor(private readonly txns: Collection<Document>) {}

  async get(sender: string, txnId: string): Promise<ClientTransaction | undefined> {
    const d = await this.txns.findOne({ _id: compoundId(sender, txnId) as never });
    return d ? { sender, txnId, eventId: d.eventId, roomId: d.roomId, createdTs: d.createdTs } : undefined;
  }

  async record(txn: ClientTransaction): Promise<ClientTransaction> {
    await this.txns.updateOne(
      { _id: compoundId(txn.sender, txn.txnId) as never },
      { $setOnInsert: { sender: txn.sender, txnId: txn.txnId, eventId: txn.eventId, roomId: txn.roomId, createdTs: txn.createdTs } },
      { upsert: true },
    );
    return (await this.get(txn.sender, txn.txnId)) as ClientTransaction;
  }
}
