// What federation egress keeps per destination besides its cursor (see DestinationRepository): the
// queue of PDUs/EDUs still to send, and the transaction being sent, so a retry after a restart
// sends the same transaction ID with the same body.
import type { JsonObject } from '@fedgate/protocol';
import type { InFlightTransaction } from './federation';

export interface EgressQueueItem {
  destination: string;
  /** Increases with insertion order within a destination; compared with the destination's cursor. */
  position: number;
  /** Dedupe key within the destination (event ID or EDU ID). */
  key: string;
  item: JsonObject;
  enqueuedTs: number;
}

/** The body of a transaction saved before its first attempt. */
export interface PendingEgressTransaction {
  destination: string;
  txnId: string;
  /** Queue position the transaction covers up to (inclusive). */
  upTo: number;
  body: JsonObject;
  createdTs: number;
}

export interface EgressQueueRepository {
  /**
   * Appends `item` to the destination's queue unless an item with the same key is still queued there;
   * returns its position either way.
   */
  append(destination: string, key: string, item: JsonObject, enqueuedTs: number): Promise<{ position: number; inserted: boolean }>;
  /** Queued items with position > `afterPosition`, oldest first. */
  list(destination: string, afterPosition: number, limit: number): Promise<EgressQueueItem[]>;
  /** How many items are queued after `afterPosition`. */
  count(destination: string, afterPosition: number): Promise<number>;
  /** Removes items with position ≤ `position` (delivered, or skipped by catch-up); returns how many. */
  removeUpTo(destination: string, position: number): Promise<number>;
  /** Removes the given items (dropped as stale); returns how many. */
  remove(destination: string, positions: number[]): Promise<number>;
  /** Destinations with queued items or a saved transaction, for resuming after a restart. */
  destinationsWithWork(): Promise<string[]>;
  /** Saves the transaction unless one with the same (destination, txnId) is saved; returns the saved one. */
  saveTransaction(txn: PendingEgressTransaction): Promise<PendingEgressTransaction>;
  getTransaction(destination: string, txnId: string): Promise<PendingEgressTransaction | undefined>;
  deleteTransaction(destination: string, txnId: string): Promise<void>;
  /**
   * Saves `txn` and makes it the destination's transaction in flight (DestinationRepository.beginTransaction), unless
   * one is in flight already: then nothing is saved. Returns the transaction in flight either way. One commit where
   * the backend allows (issue 19: two per destination of a fan-out before), so no body is ever saved and left unsent.
   */
  beginTransaction(txn: PendingEgressTransaction): Promise<InFlightTransaction>;
  /**
   * The transaction in flight is over (delivered or given up): the destination's cursor passes it
   * (DestinationRepository.completeTransaction), its items and its saved body go. One commit where the backend
   * allows (three before), so a crash leaves either all of it or none.
   */
  settleTransaction(destination: string, txnId: string, upTo: number, nowTs: number): Promise<void>;
  /**
   * Deletes the destination's saved bodies whose transaction is not in flight (read after the bodies): left by a
   * process dying inside `settleTransaction` on a backend without multi-document transactions. Safe beside a sender
   * of the same destination (another replica's included) because a body is only ever saved once its transaction is
   * in flight, so one not in flight is over and never sent again. Returns how many went.
   */
  removeSettledTransactions(destination: string): Promise<number>;
}
