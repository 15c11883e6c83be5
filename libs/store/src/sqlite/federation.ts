import type { JsonObject } from '@fedgate/protocol';
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
import type { SqliteDatabase } from './database';

/** The destination's transaction in flight went through: its cursor moves past it and its backoff is cleared. */
export function completeInFlight(db: SqliteDatabase, destination: string, txnId: string, nowTs: number): void {
  db.run(
    `UPDATE store_destinations SET cursor = max(cursor, in_flight_up_to), in_flight_txn = NULL, in_flight_up_to = NULL,
       failures = 0, retry_at = NULL, last_success_ts = ? WHERE destination = ? AND in_flight_txn = ?`,
    nowTs,
    destination,
    txnId,
  );
}

export class SqliteReceivedTransactionRepository implements ReceivedTransactionRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async get(origin: string, txnId: string): Promise<ReceivedTransaction | undefined> {
    const r = this.db.get<{ response: string; received_ts: number }>(
      'SELECT response, received_ts FROM store_received_transactions WHERE origin = ? AND txn_id = ?',
      origin,
      txnId,
    );
    return r && { origin, txnId, response: JSON.parse(r.response) as JsonObject, receivedTs: r.received_ts };
  }

  async record(txn: ReceivedTransaction): Promise<ReceivedTransaction> {
    this.db.run(
      'INSERT INTO store_received_transactions (origin, txn_id, response, received_ts) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      txn.origin,
      txn.txnId,
      JSON.stringify(txn.response),
      txn.receivedTs,
    );
    return (await this.get(txn.origin, txn.txnId)) as ReceivedTransaction;
  }

  async pruneBefore(ts: number): Promise<number> {
    return this.db.run('DELETE FROM store_received_transactions WHERE received_ts < ?', ts).changes;
  }
}

interface DestinationRow {
  destination: string;
  cursor: number;
  in_flight_txn: string | null;
  in_flight_up_to: number | null;
  failures: number;
  retry_at: number | null;
  last_success_ts: number | null;
}

const toDestination = (r: DestinationRow): DestinationRecord => ({
  destination: r.destination,
  cursor: r.cursor,
  inFlight: r.in_flight_txn === null ? null : { txnId: r.in_flight_txn, upTo: r.in_flight_up_to ?? 0 },
  failures: r.failures,
  retryAt: r.retry_at,
  lastSuccessTs: r.last_success_ts,
});

export class SqliteDestinationRepository implements DestinationRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async get(destination: string): Promise<DestinationRecord> {
    const r = this.db.get<DestinationRow>('SELECT * FROM store_destinations WHERE destination = ?', destination);
    return r ? toDestination(r) : { destination, cursor: 0, inFlight: null, failures: 0, retryAt: null, lastSuccessTs: null };
  }

  async beginTransaction(destination: string, proposed: InFlightTransaction): Promise<InFlightTransaction> {
    this.ensure(destination);
    this.db.run(
      'UPDATE store_destinations SET in_flight_txn = ?, in_flight_up_to = ? WHERE destination = ? AND in_flight_txn IS NULL',
      proposed.txnId,
      proposed.upTo,
      destination,
    );
    return (await this.get(destination)).inFlight as InFlightTransaction;
  }

  async completeTransaction(destination: string, txnId: string, nowTs: number): Promise<void> {
    completeInFlight(this.db, destination, txnId, nowTs);
  }

  async recordFailure(destination: string, retryAt: number): Promise<DestinationRecord> {
    this.ensure(destination);
    this.db.run('UPDATE store_destinations SET failures = failures + 1, retry_at = ? WHERE destination = ?', retryAt, destination);
    return this.get(destination);
  }

  async wake(destination: string): Promise<void> {
    this.db.run('UPDATE store_destinations SET retry_at = NULL WHERE destination = ?', destination);
  }

  async dueForRetry(nowTs: number, limit: number): Promise<DestinationRecord[]> {
    return this.db
      .all<DestinationRow>('SELECT * FROM store_destinations WHERE retry_at IS NOT NULL AND retry_at <= ? ORDER BY retry_at, destination LIMIT ?', nowTs, limit)
      .map(toDestination);
  }

  private ensure(destination: string): void {
    this.db.run('INSERT INTO store_destinations (destination) VALUES (?) ON CONFLICT DO NOTHING', destination);
  }
}

interface RemoteKeyRow {
  server_name: string;
  key_id: string;
  public_key: string;
  valid_until_ts: number;
  expired_ts: number | null;
  fetched_ts: number;
}

const toRemoteKey = (r: RemoteKeyRow): RemoteServerKey => ({
  serverName: r.server_name,
  keyId: r.key_id,
  publicKey: r.public_key,
  validUntilTs: r.valid_until_ts,
  expiredTs: r.expired_ts,
  fetchedTs: r.fetched_ts,
});

export class SqliteServerKeyRepository implements ServerKeyRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async putOwn(key: OwnSigningKey): Promise<void> {
    this.db.run(
      `INSERT INTO store_own_keys (key_id, seed, public_key, created_ts, expired_ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key_id) DO UPDATE SET expired_ts = excluded.expired_ts`,
      key.keyId,
      key.seed,
      key.publicKey,
      key.createdTs,
      key.expiredTs,
    );
  }

  async listOwn(): Promise<OwnSigningKey[]> {
    return this.db
      .all<{ key_id: string; seed: string; public_key: string; created_ts: number; expired_ts: number | null }>('SELECT * FROM store_own_keys ORDER BY created_ts, key_id')
      .map((r) => ({ keyId: r.key_id, seed: r.seed, publicKey: r.public_key, createdTs: r.created_ts, expiredTs: r.expired_ts }));
  }

  async putRemote(keys: RemoteServerKey[]): Promise<void> {
    this.db.transaction(() => {
      for (const k of keys) {
        this.db.run(
          `INSERT INTO store_remote_keys (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (server_name, key_id) DO UPDATE SET public_key = excluded.public_key, valid_until_ts = excluded.valid_until_ts,
             expired_ts = excluded.expired_ts, fetched_ts = excluded.fetched_ts WHERE excluded.fetched_ts >= store_remote_keys.fetched_ts`,
          k.serverName,
          k.keyId,
          k.publicKey,
          k.validUntilTs,
          k.expiredTs,
          k.fetchedTs,
        );
      }
    });
  }

  async getRemote(serverName: string, keyId: string, atTs: number): Promise<RemoteServerKey | undefined> {
    const r = this.db.get<RemoteKeyRow>(
      'SELECT * FROM store_remote_keys WHERE server_name = ? AND key_id = ? AND ((expired_ts IS NULL AND valid_until_ts >= ?) OR expired_ts > ?)',
      serverName,
      keyId,
      atTs,
      atTs,
    );
    return r && toRemoteKey(r);
  }

  async listRemote(serverName: string): Promise<RemoteServerKey[]> {
    return this.db.all<RemoteKeyRow>('SELECT * FROM store_remote_keys WHERE server_name = ? ORDER BY key_id', serverName).map(toRemoteKey);
  }
}
