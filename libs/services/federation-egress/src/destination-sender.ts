// One destination's sender: reads the durable queue, sends one transaction at a time, retries the same
// transaction (same ID, same body) after backing off, gives up with a recorded reason when the remote or
// our policy refuses it, and switches to catch-up after a long outage.
import type { EgressEntry } from '@fedgate/bus';
import type { JsonObject } from '@fedgate/protocol';
import { EventVisibility, type AuditEntry, type DestinationRecord, type EgressQueueItem, type PendingEgressTransaction } from '@fedgate/store';
import { retryDelayMs } from './backoff';
import type { EgressContext } from './egress-context';
import { classifySendFailure } from './send-failure';
import { findStaleEdus } from './stale-edus';
import { takeBatch } from './transaction-batch';
import { queuedTraceKey } from './destinations';

/** How many queued items one read looks at (enough for a full transaction plus stale EDUs before it). */
const QUEUE_WINDOW = 500;
/** Event IDs kept in one audit record's details; the count is always exact. */
const AUDIT_ID_LIMIT = 200;

export class DestinationSender {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** Trace keys of the items of each transaction formed here (one saved before a restart has none). */
  private readonly traceKeys = new Map<string, string[]>();
  /**
   * Whether the queue may hold more than the transaction being sent (unknown counts as yes). When it does not, the
   * sender stops after delivering: an item appended meanwhile kicks it again, so a fan-out's thousand destinations
   * skip a second read of an empty queue each.
   */
  private queuedBeyond = true;
  private settledBodiesRemoved = false;

  constructor(
    readonly destination: string,
    private readonly ctx: EgressContext,
    /** Called when a run ends with nothing left to do and no retry or poll pending: the owner may let this sender go. */
    private readonly onIdle: (sender: DestinationSender) => void = () => undefined,
  ) {
    this.now = ctx.now ?? Date.now;
  }

  /** There may be work: run now, or once more after the current run. */
  kick(): void {
    if (this.stopped) return;
    this.again = true;
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
      if (this.again) this.kick();
      else if (!this.timer && !this.stopped) this.onIdle(this);
    });
  }

  /** Resolves when the current run is over; the queue stays in the store for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.again = false;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** True while a run is going on (tests wait for quiet). */
  get busy(): boolean {
    return this.running !== undefined;
  }

  private async loop(): Promise<void> {
    while (this.again && !this.stopped) {
      this.again = false;
      try {
        await this.drain();
      } catch (err) {
        // The store or bus failed, not the remote: try again a little later rather than spin, and without
        // counting it against the destination (no failure recorded, no backoff).
        this.ctx.logger.error({ err, destination: this.destination, retryInMs: this.ctx.settings.wakePollMs }, 'egress sender failed on our side (store or bus); retrying');
        this.ctx.onOwnFailure?.(this.destination, err);
        this.wakeAt(this.now() + this.ctx.settings.wakePollMs);
      }
    }
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const prepared = await (this.ctx.preparing ? this.ctx.preparing(() => this.prepare()) : this.prepare());
      if (!prepared) return;
      const { record, txn } = prepared;
      // Fencing: a replica whose lease on this destination's partition is stale sends nothing. It looks again
      // shortly: a renewed lease resumes sending, a partition taken over stops this sender altogether.
      if (this.ctx.owns && !this.ctx.owns(this.destination)) {
        this.ctx.logger.warn({ destination: this.destination }, 'lease on the destination partition is stale; not sending for now');
        this.wakeAt(this.now() + this.ctx.settings.wakePollMs);
        return;
      }
      if (!(await this.attempt(txn, record))) return;
      if (!this.queuedBeyond) return;
    }
  }

  /** The transaction to send next (in flight, or formed from the queue), unless backing off or nothing is queued. */
  private async prepare(): Promise<{ record: DestinationRecord; txn: PendingEgressTransaction } | undefined> {
    if (this.stopped) return undefined;
    const record = await this.ctx.store.destinations.get(this.destination);
    if (record.retryAt !== null && record.retryAt > this.now()) {
      this.wakeAt(record.retryAt);
      return undefined;
    }
    if (await this.needsCatchUp(record)) await this.catchUp(record);
    this.queuedBeyond = true;
    const txn = record.inFlight ? await this.inFlightTransaction(record) : await this.nextTransaction(record);
    if (!txn) await this.removeSettledBodies();
    return txn ? { record, txn } : undefined;
  }

  /**
   * Nothing to send: bodies of transactions no longer in flight, left by a process that died settling one on MongoDB,
   * would otherwise name this destination as having work on every start. Once per sender: they come from a death.
   */
  private async removeSettledBodies(): Promise<void> {
    if (this.settledBodiesRemoved) return;
    const removed = await this.ctx.store.egressQueue.removeSettledTransactions(this.destination);
    this.settledBodiesRemoved = true;
    if (removed > 0) this.ctx.logger.info({ destination: this.destination, removed }, 'removed saved bodies of transactions no longer in flight');
  }

  private wakeAt(ts: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // Re-read the record at least every wakePollMs: a server-up handled by another replica clears retryAt.
    const delay = Math.max(0, Math.min(ts - this.now(), this.ctx.settings.wakePollMs));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, delay);
    this.timer.unref();
  }

  /** The transaction already in flight, as first saved; rebuilt from the queue under the same ID if its body is gone. */
  private async inFlightTransaction(record: DestinationRecord): Promise<PendingEgressTransaction | undefined> {
    const inFlight = record.inFlight!;
    const saved = await this.ctx.store.egressQueue.getTransaction(this.destination, inFlight.txnId);
    if (saved) return saved;
    this.ctx.logger.warn({ destination: this.destination, txnId: inFlight.txnId }, 'in-flight transaction body missing; rebuilding it from the queue');
    const items = (await this.ctx.store.egressQueue.list(this.destination, record.cursor, QUEUE_WINDOW)).filter((i) => i.position <= inFlight.upTo);
    const body = await this.transactionBody(items.map((i) => i.item as unknown as EgressEntry), inFlight.txnId);
    return this.ctx.store.egressQueue.saveTransaction({ destination: this.destination, txnId: inFlight.txnId, upTo: inFlight.upTo, body, createdTs: this.now() });
  }

  private async nextTransaction(record: DestinationRecord): Promise<PendingEgressTransaction | undefined> {
    const queue = this.ctx.store.egressQueue;
    for (;;) {
      const window = await queue.list(this.destination, record.cursor, QUEUE_WINDOW);
      if (window.length === 0) return undefined;
      const items = await this.dropStaleEdus(window);
      const batch = takeBatch(items, this.ctx.settings.maxPdusPerTransaction, this.ctx.settings.maxEdusPerTransaction);
      if (!batch) continue;
      this.queuedBeyond = window.length === QUEUE_WINDOW || batch.items.length < items.length;
      const now = this.now();
      const txnId = `${now.toString(36)}.${batch.upTo}`;
      const body = await this.transactionBody(batch.items.map((i) => i.item as unknown as EgressEntry), txnId);
      if ((body.pdus as unknown[]).length === 0 && (body.edus as unknown[]).length === 0) {
        await queue.removeUpTo(this.destination, batch.upTo);
        continue;
      }
      const proposed: PendingEgressTransaction = { destination: this.destination, txnId, upTo: batch.upTo, body, createdTs: now };
      this.traceKeys.set(
        txnId,
        batch.items.map((i) => {
          const entry = i.item as unknown as EgressEntry;
          return queuedTraceKey(this.destination, entry.kind === 'pdu' ? entry.eventId : `edu:${entry.eduId}`);
        }),
      );
      // Saved as it is begun (one commit), before the first attempt, so every retry (also after a restart) sends these bytes.
      const inFlight = await queue.beginTransaction(proposed);
      if (inFlight.txnId === txnId) return proposed;
      this.traceKeys.delete(txnId);
      return this.inFlightTransaction({ ...record, inFlight });
    }
  }

  /** The `/send` body for queued entries; PDUs come from the event store (missing ones are recorded and left out). */
  private async transactionBody(entries: EgressEntry[], txnId: string): Promise<JsonObject> {
    const eventIds = entries.flatMap((e) => (e.kind === 'pdu' ? [e.eventId] : []));
    const stored = await this.ctx.store.events.getMany(eventIds);
    const missing = eventIds.filter((id) => !stored.has(id));
    if (missing.length > 0) {
      await this.audit({ status: 0, outcome: 'rejected', reason: 'event_not_found', txnId, durationMs: 0, details: { eventIds: missing.slice(0, AUDIT_ID_LIMIT), count: missing.length } });
    }
    const pdus = eventIds.filter((id) => stored.has(id)).map((id) => stored.get(id)!.pdu);
    const edus = entries.flatMap((e) => (e.kind === 'edu' ? [{ edu_type: e.eduType, content: e.content }] : []));
    return { origin: this.ctx.serverName, origin_server_ts: this.now(), pdus, edus } as unknown as JsonObject;
  }

  private async dropStaleEdus(window: EgressQueueItem[]): Promise<EgressQueueItem[]> {
    const stale = findStaleEdus(window, this.now(), this.ctx.settings.typingTtlMs);
    if (stale.length === 0) return window;
    await this.ctx.store.egressQueue.remove(this.destination, stale.map((s) => s.position));
    await this.audit({
      status: 0,
      outcome: 'rejected',
      reason: 'stale_edu',
      durationMs: 0,
      eduCount: stale.length,
      details: { dropped: stale.slice(0, AUDIT_ID_LIMIT).map((s) => ({ eduId: s.eduId, eduType: s.eduType, why: s.why })) },
    });
    const dropped = new Set(stale.map((s) => s.position));
    return window.filter((i) => !dropped.has(i.position));
  }

  /** Returns true when the transaction is settled (delivered or given up), false when backing off. */
  private async attempt(txn: PendingEgressTransaction, record: DestinationRecord): Promise<boolean> {
    const started = this.now();
    const body = txn.body as { pdus: Array<{ event_id?: string }>; edus: unknown[] };
    const counts = { pduCount: body.pdus.length, eduCount: body.edus.length };
    const path = `/_matrix/federation/v1/send/${encodeURIComponent(txn.txnId)}`;
    let response: { status: number; body: { pdus?: Record<string, { error?: string }> } | undefined };
    const put = () =>
      this.ctx.client.putJson<{ pdus?: Record<string, { error?: string }> }>(this.destination, path, txn.body, { timeoutMs: this.ctx.settings.requestTimeoutMs });
    const traceKeys = this.traceKeys.get(txn.txnId) ?? [];
    const attributes = { 'fedgate.destination': this.destination, 'fedgate.txn_id': txn.txnId, 'fedgate.pdus': counts.pduCount, 'fedgate.edus': counts.eduCount };
    try {
      response = await (this.ctx.traces ? this.ctx.traces.inSpanOf('federation-egress transaction', traceKeys, attributes, put) : put());
    } catch (error) {
      const durationMs = this.now() - started;
      await this.ctx.pace?.();
      const failure = classifySendFailure(error);
      if (failure.retry) {
        const backoff = retryDelayMs(record.failures + 1, this.ctx.settings.backoff, this.ctx.random);
        // A 429 says when to come back; never later than the longest backoff.
        const delay = failure.retryAfterMs !== undefined ? Math.min(failure.retryAfterMs, this.ctx.settings.backoff.maxMs) : backoff;
        const retryAt = this.now() + delay;
        this.ctx.onTransaction?.(this.destination, 'retry');
        const updated = await this.ctx.store.destinations.recordFailure(this.destination, retryAt);
        this.ctx.logger.info({ destination: this.destination, txnId: txn.txnId, reason: failure.reason, failures: updated.failures, retryAt }, 'transaction failed; backing off');
        await this.audit({ status: failure.status, outcome: 'error', reason: failure.reason, txnId: txn.txnId, durationMs, ...counts, details: { message: failure.message, retryAt } });
        this.wakeAt(retryAt);
        return false;
      }
      this.ctx.onTransaction?.(this.destination, 'refused');
      const dropped = await this.queuedPdus(record.cursor, txn.upTo);
      const catchUp = await this.catchUpAfterDrop(dropped);
      this.ctx.logger.warn({ destination: this.destination, txnId: txn.txnId, reason: failure.reason, catchUp: catchUp.length }, 'transaction refused; dropping it');
      await this.audit({
        status: failure.status,
        outcome: 'rejected',
        reason: failure.reason,
        txnId: txn.txnId,
        durationMs,
        ...counts,
        details: {
          message: failure.message,
          dropped: true,
          eventIds: dropped.length > 0 ? dropped.slice(0, AUDIT_ID_LIMIT).map((d) => d.eventId) : body.pdus.slice(0, AUDIT_ID_LIMIT).map((p) => p.event_id ?? null),
          catchUp,
        },
      });
      await this.settle(txn);
      this.queuedBeyond = true;
      for (const { eventId, roomId } of catchUp) {
        const entry: EgressEntry = { kind: 'pdu', destination: this.destination, roomId, eventId, enqueuedAt: this.now() };
        await this.ctx.store.egressQueue.append(this.destination, eventId, entry as unknown as JsonObject, this.now());
      }
      return true;
    }
    const durationMs = this.now() - started;
    // Answers of a fan-out come together: their records and settles wait for their turn (issue 19).
    await this.ctx.pace?.();
    this.ctx.onTransaction?.(this.destination, 'ok');
    // Delivered. From here a failure is ours (store down), never the destination's: it propagates to loop(),
    // which tries again shortly without backing the destination off, and the same txnId is sent again (the
    // remote answers a retried transaction without processing it twice).
    const pduErrors = Object.entries(response.body?.pdus ?? {}).filter(([, r]) => r && typeof r.error === 'string');
    if (pduErrors.length > 0) {
      this.ctx.logger.warn({ destination: this.destination, txnId: txn.txnId, pduErrors: Object.fromEntries(pduErrors) }, 'remote refused some PDUs');
    }
    await this.audit({
      status: response.status,
      outcome: 'ok',
      reason: pduErrors.length > 0 ? 'pdu_errors' : undefined,
      txnId: txn.txnId,
      durationMs,
      ...counts,
      details: pduErrors.length > 0 ? { pduErrors: Object.fromEntries(pduErrors.map(([id, r]) => [id, String(r.error)])) } : undefined,
    });
    await this.settle(txn);
    return true;
  }

  /** The PDUs queued after `cursor` up to `upTo` (a transaction's), with their rooms. */
  private async queuedPdus(cursor: number, upTo: number): Promise<Array<{ eventId: string; roomId: string }>> {
    const items = (await this.ctx.store.egressQueue.list(this.destination, cursor, QUEUE_WINDOW)).filter((i) => i.position <= upTo);
    return items.flatMap((i) => {
      const entry = i.item as unknown as EgressEntry;
      return entry.kind === 'pdu' ? [{ eventId: entry.eventId, roomId: entry.roomId }] : [];
    });
  }

  /**
   * A transaction given up still leaves its rooms to catch up: the rooms' latest events (forward
   * extremities) are queued again, and the remote fetches what lies between with /get_missing_events.
   * A refused transaction made of nothing but those latest events is not queued again (the same bytes
   * would be refused again), so this always ends.
   */
  private async catchUpAfterDrop(dropped: Array<{ eventId: string; roomId: string }>): Promise<Array<{ eventId: string; roomId: string }>> {
    const extremities: Array<{ eventId: string; roomId: string }> = [];
    for (const roomId of [...new Set(dropped.map((d) => d.roomId))].sort()) {
      for (const eventId of await this.ctx.store.rooms.getForwardExtremities(roomId)) extremities.push({ eventId, roomId });
    }
    const latest = new Set(extremities.map((e) => e.eventId));
    if (dropped.every((d) => latest.has(d.eventId))) {
      const refused = new Set(dropped.map((d) => d.eventId));
      return extremities.filter((e) => !refused.has(e.eventId));
    }
    return extremities;
  }

  /** The transaction is over: the cursor passes it, its items and saved body go. */
  private async settle(txn: PendingEgressTransaction): Promise<void> {
    this.ctx.traces?.forget(this.traceKeys.get(txn.txnId) ?? []);
    this.traceKeys.delete(txn.txnId);
    await this.ctx.store.egressQueue.settleTransaction(this.destination, txn.txnId, txn.upTo, this.now());
  }

  private async needsCatchUp(record: DestinationRecord): Promise<boolean> {
    if (record.failures === 0) return false;
    const queue = this.ctx.store.egressQueue;
    const [oldest] = await queue.list(this.destination, record.cursor, 1);
    if (!oldest) return false;
    if (this.now() - oldest.enqueuedTs > this.ctx.settings.catchUpAfterMs) return true;
    return (await queue.count(this.destination, record.cursor)) > this.ctx.settings.catchUpQueueLimit;
  }

  /**
   * After a long outage the remote does not need every event we queued: the latest events of each room
   * (its forward extremities) are enough, and it fetches what it misses with /get_missing_events. Only
   * extremities it may have: the destination still has a user joined to the room, and history visibility
   * lets it see each one; when none is left, the last event queued for it in that room goes instead (it was
   * meant for it: a kick, say). EDUs stay queued (stale ones are dropped as usual); a transaction already in
   * flight is still sent as saved.
   */
  private async catchUp(record: DestinationRecord): Promise<void> {
    const queue = this.ctx.store.egressQueue;
    const skipped: Array<{ position: number; eventId: string; roomId: string }> = [];
    let after = record.inFlight?.upTo ?? record.cursor;
    for (;;) {
      const page = await queue.list(this.destination, after, 1000);
      if (page.length === 0) break;
      for (const item of page) {
        const entry = item.item as unknown as EgressEntry;
        if (entry.kind === 'pdu') skipped.push({ position: item.position, eventId: entry.eventId, roomId: entry.roomId });
      }
      after = page[page.length - 1].position;
    }
    for (let i = 0; i < skipped.length; i += 500) await queue.remove(this.destination, skipped.slice(i, i + 500).map((s) => s.position));
    const lastQueued = new Map(skipped.map((s) => [s.roomId, s.eventId]));
    const rooms = [...lastQueued.keys()].sort();
    const sent: string[] = [];
    const withheld: Array<{ roomId: string; eventId?: string; why: string }> = [];
    const now = this.now();
    for (const roomId of rooms) {
      const chosen: string[] = [];
      if (!(await this.ctx.store.rooms.getJoinedServers(roomId)).includes(this.destination)) withheld.push({ roomId, why: 'not_in_room' });
      else {
        const visibility = new EventVisibility(this.ctx.store, { serverName: this.destination });
        for (const eventId of await this.ctx.store.rooms.getForwardExtremities(roomId)) {
          const verdict = await visibility.sendable(eventId, roomId);
          if (verdict === 'visible') chosen.push(eventId);
          else withheld.push({ roomId, eventId, why: verdict });
        }
      }
      if (chosen.length === 0) chosen.push(lastQueued.get(roomId)!);
      for (const eventId of chosen) {
        const entry: EgressEntry = { kind: 'pdu', destination: this.destination, roomId, eventId, enqueuedAt: now };
        await queue.append(this.destination, eventId, entry as unknown as JsonObject, now);
        sent.push(eventId);
      }
    }
    this.ctx.logger.info({ destination: this.destination, skipped: skipped.length, rooms: rooms.length, extremities: sent.length, withheld: withheld.length }, 'catch-up: sending only the latest events');
    await this.audit({
      status: 0,
      outcome: 'rejected',
      reason: 'catch_up',
      durationMs: 0,
      pduCount: skipped.length,
      details: { skippedEventIds: skipped.slice(0, AUDIT_ID_LIMIT).map((s) => s.eventId), skippedCount: skipped.length, rooms, extremities: sent, withheld: withheld.slice(0, AUDIT_ID_LIMIT) },
    });
  }

  private async audit(entry: Omit<AuditEntry, 'direction' | 'origin' | 'destination' | 'method' | 'path' | 'ts'> & { txnId?: string }): Promise<void> {
    const path = entry.txnId ? `/_matrix/federation/v1/send/${encodeURIComponent(entry.txnId)}` : '/_matrix/federation/v1/send';
    await this.ctx.store.audit.append({
      direction: 'out',
      origin: this.ctx.serverName,
      destination: this.destination,
      method: 'PUT',
      path,
      ts: this.now() - entry.durationMs,
      ...entry,
    });
  }
}
