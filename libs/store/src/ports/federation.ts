// What ingress and egress keep about other servers: received transactions (dedupe), destinations
// (queue cursor, in-flight transaction, backoff) and signing keys (own and cached remote).
import type { JsonObject } from '@fedgate/protocol';

export interface ReceivedTransaction {
  origin: string;
  txnId: string;
  /** The answer given the first time, returned again for a repeat. */
  response: JsonObject;
  receivedTs: number;
}

export interface ReceivedTransactionRepository {
  get(origin: string, txnId: string): Promise<ReceivedTransaction | undefined>;
  /** Stores the answer unless (origin, txnId) is stored already; returns what is stored (first write wins). */
  record(txn: ReceivedTransaction): Promise<ReceivedTransaction>;
  /** Forgets transactions received before `ts`; returns how many. */
  pruneBefore(ts: number): Promise<number>;
}

/** A transaction being sent: retried with the same ID until it succeeds. */
export interface InFlightTransaction {
  txnId: string;
  /** The queue position the transaction reaches; the cursor moves here on success. */
  upTo: number;
}

export interface DestinationRecord {
  destination: string;
  /** Position in the destination's queue up to which everything was delivered. */
  cursor: number;
  inFlight: InFlightTransaction | null;
  /** Consecutive failures; 0 after a success. */
  failures: number;
  /** Do not try before this time (ms); null when not backing off. */
  retryAt: number | null;
  lastSuccessTs: number | null;
}

export interface DestinationRepository {
  /** The record, or the default (cursor 0, no backoff) for a destination never seen. */
  get(destination: string): Promise<DestinationRecord>;
  /** Sets the in-flight transaction if there is none and returns the one in flight (so a retry reuses its ID). */
  beginTransaction(destination: string, proposed: InFlightTransaction): Promise<InFlightTransaction>;
  /** Marks `txnId` delivered: cursor moves to its `upTo` (never backwards), backoff cleared. Idempotent. */
  completeTransaction(destination: string, txnId: string, nowTs: number): Promise<void>;
  /** Counts a failure and sets when to try again. */
  recordFailure(destination: string, retryAt: number): Promise<DestinationRecord>;
  /** Clears the retry time (the server talked to us), keeping the failure count. */
  wake(destination: string): Promise<void>;
  /** Destinations backing off whose retry time is at or before `nowTs`, soonest first. */
  dueForRetry(nowTs: number, limit: number): Promise<DestinationRecord[]>;
}

export interface OwnSigningKey {
  keyId: string;
  /** Unpadded base64 ed25519 seed. */
  seed: string;
  publicKey: string;
  createdTs: number;
  /** Set when the key was retired: it is then served as an old verify key. */
  expiredTs: number | null;
}

export interface RemoteServerKey {
  serverName: string;
  keyId: string;
  publicKey: string;
  /** From the key response: valid for signatures made up to this time. */
  validUntilTs: number;
  /** Set for keys listed as old_verify_keys: valid only for signatures before this time (validUntilTs then unused). */
  expiredTs: number | null;
  fetchedTs: number;
}

export interface ServerKeyRepository {
  putOwn(key: OwnSigningKey): Promise<void>;
  listOwn(): Promise<OwnSigningKey[]>;
  /** Stores or refreshes cached keys (by server name and key ID); an older fetch never overwrites a newer one. */
  putRemote(keys: RemoteServerKey[]): Promise<void>;
  /**
   * A cached key usable for a signature made at `atTs`: a current key with validUntilTs ≥ atTs, or an
   * old key with expiredTs > atTs. Undefined means fetch it (or the signature is not acceptable).
   */
  getRemote(serverName: string, keyId: string, atTs: number): Promise<RemoteServerKey | undefined>;
  listRemote(serverName: string): Promise<RemoteServerKey[]>;
}
