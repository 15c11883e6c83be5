import type { JsonObject } from '@fedgate/protocol';
import type { Collection, Document } from 'mongodb';
import type {
  DestinationRecord,
  DestinationRepository,
  InFlightTransaction,
  OwnSigningKey,
  ReceivedTransaction,
  ReceivedTransactionRepository,
  RemoteServerKey,
  ServerKeyRepository,
} from '../ports/federation';
import { compoundId, isDuplicateKey } from './database';

export class MongoReceivedTransactionRepository implements ReceivedTransactionRepository {
  constructor(private readonly txns: Collection<Document>) {}

  async get(origin: string, txnId: string): Promise<ReceivedTransaction | undefined> {
    const d = await this.txns.findOne({ _id: compoundId(origin, txnId) as never });
    return d ? { origin, txnId, response: JSON.parse(d.response) as JsonObject, receivedTs: d.receivedTs } : undefined;
  }

  async record(txn: ReceivedTransaction): Promise<ReceivedTransaction> {
    await this.txns.updateOne(
      { _id: compoundId(txn.origin, txn.txnId) as never },
      { $setOnInsert: { origin: txn.origin, txnId: txn.txnId, response: JSON.stringify(txn.response), receivedTs: txn.receivedTs } },
      { upsert: true },
    );
    return (await this.get(txn.origin, txn.txnId)) as ReceivedTransaction;
  }

  async pruneBefore(ts: number): Promise<number> {
    return (await this.txns.deleteMany({ receivedTs: { $lt: ts } })).deletedCount;
  }
}

const NEW_DESTINATION = { cursor: 0, inFlight: null, failures: 0, retryAt: null, lastSuccessTs: null };

const toDestination = (d: Document): DestinationRecord => ({
  destination: d._id as string,
  cursor: d.cursor,
  inFlight: d.inFlight ? { txnId: d.inFlight.txnId, upTo: d.inFlight.upTo } : null,
  failures: d.failures,
  retryAt: d.retryAt ?? null,
  lastSuccessTs: d.lastSuccessTs ?? null,
});

export class MongoDestinationRepository implements DestinationRepository {
  constructor(private readonly destinations: Collection<Document>) {}

  async get(destination: string): Promise<DestinationRecord> {
    const d = await this.destinations.findOne({ _id: destination as never });
    return d ? toDestination(d) : { destination, ...NEW_DESTINATION };
  }

  async beginTransaction(destination: string, proposed: InFlightTransaction): Promise<InFlightTransaction> {
    await this.ensure(destination);
    await this.destinations.updateOne({ _id: destination as never, inFlight: null }, { $set: { inFlight: { txnId: proposed.txnId, upTo: proposed.upTo } } });
    return (await this.get(destination)).inFlight as InFlightTransaction;
  }

  async completeTransaction(destination: string, txnId: string, nowTs: number): Promise<void> {
    const current = await this.get(destination);
    if (current.inFlight?.txnId !== txnId) return;
    // Conditional on the same transaction still in flight, so a repeat or a race changes nothing.
    await this.destinations.updateOne(
      { _id: destination as never, 'inFlight.txnId': txnId },
      { $max: { cursor: current.inFlight.upTo }, $set: { inFlight: null, failures: 0, retryAt: null, lastSuccessTs: nowTs } },
    );
  }

  async recordFailure(destination: string, retryAt: number): Promise<DestinationRecord> {
    await this.ensure(destination);
    await this.destinations.updateOne({ _id: destination as never }, { $inc: { failures: 1 }, $set: { retryAt } });
    return this.get(destination);
  }

  async wake(destination: string): Promise<void> {
    await this.destinations.updateOne({ _id: destination as never }, { $set: { retryAt: null } });
  }

  async dueForRetry(nowTs: number, limit: number): Promise<DestinationRecord[]> {
    const docs = await this.destinations
      .find({ retryAt: { $ne: null, $lte: nowTs } })
      .sort({ retryAt: 1, _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map(toDestination);
  }

  private async ensure(destination: string): Promise<void> {
    await this.destinations.updateOne({ _id: destination as never }, { $setOnInsert: NEW_DESTINATION }, { upsert: true });
  }
}

const toRemoteKey = (d: Document): RemoteServerKey => ({
  serverName: d.serverName,
  keyId: d.keyId,
  publicKey: d.publicKey,
  validUntilTs: d.validUntilTs,
  expiredTs: d.expiredTs ?? null,
  fetchedTs: d.fetchedTs,
});

export class MongoServerKeyRepository implements ServerKeyRepository {
  constructor(
    private readonly own: Collection<Document>,
    private readonly remote: Collection<Document>,
  ) {}

  async putOwn(key: OwnSigningKey): Promise<void> {
    await this.own.updateOne(
      { _id: key.keyId as never },
      { $setOnInsert: { seed: key.seed, publicKey: key.publicKey, createdTs: key.createdTs }, $set: { expiredTs: key.expiredTs } },
      { upsert: true },
    );
  }

  async listOwn(): Promise<OwnSigningKey[]> {
    const docs = await this.own.find({}).sort({ createdTs: 1, _id: 1 }).toArray();
    return docs.map((d) => ({ keyId: d._id as unknown as string, seed: d.seed, publicKey: d.publicKey, createdTs: d.createdTs, expiredTs: d.expiredTs ?? null }));
  }

  async putRemote(keys: RemoteServerKey[]): Promise<void> {
    for (const k of keys) {
      // Matches only when the stored fetch is not newer; otherwise the upsert's insert hits the
      // unique _id and is dropped, so an older fetch never overwrites a newer one.
      try {
        await this.remote.updateOne(
          { _id: compoundId(k.serverName, k.keyId) as never, fetchedTs: { $lte: k.fetchedTs } },
          { $set: { serverName: k.serverName, keyId: k.keyId, publicKey: k.publicKey, validUntilTs: k.validUntilTs, expiredTs: k.expiredTs, fetchedTs: k.fetchedTs } },
          { upsert: true },
        );
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    }
  }

  async getRemote(serverName: string, keyId: string, atTs: number): Promise<RemoteServerKey | undefined> {
    const d = await this.remote.findOne({ _id: compoundId(serverName, keyId) as never });
    if (!d) return undefined;
    const key = toRemoteKey(d);
    const usable = key.expiredTs === null ? key.validUntilTs >= atTs : key.expiredTs > atTs;
    return usable ? key : undefined;
  }

  async listRemote(serverName: string): Promise<RemoteServerKey[]> {
    const docs = await this.remote.find({ serverName }).sort({ keyId: 1 }).toArray();
    return docs.map(toRemoteKey);
  }
}
