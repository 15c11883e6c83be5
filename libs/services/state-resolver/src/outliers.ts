// Events fetched to fill in what a room needs (auth chains, the state at an unknown prev event, the
// state handed over by send_join): verified, authorized against their own auth events in auth order,
// and stored as outliers — they are not in the timeline here, only known.
import { partitionRemoteEvents, verifyRemoteEvents, type AcceptedRemoteEvent, type KeyRing, type RefusedRemoteEvent } from '@fedgate/federation-client';
import { byteLimitViolation, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
import { authorizeByAuthEvents, isStateEvent, roomOfEvent, stateMapKey, type RoomEvent } from '@fedgate/room-state';
import type { EventRecord, EventStatus, Store } from '@fedgate/store';
import { withPhaseSpan } from '@fedgate/telemetry';
import { EventGraph } from './event-graph';
import { RedactionApplier } from './redactions';
import { recordFor, roomIdOf } from './room-timeline';

export interface ImportResult {
  /** Every imported event (new or already stored) and its status, loaded for lookups. */
  graph: EventGraph;
  imported: string[];
  refused: RefusedRemoteEvent[];
}

/** Parents-first order over auth_events within `events`; anything in a cycle comes last. */
export function authOrder(events: readonly AcceptedRemoteEvent[], parse: (v: AcceptedRemoteEvent) => RoomEvent): AcceptedRemoteEvent[] {
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const pending = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const e of events) {
    const auth = new Set(parse(e).auth_events.filter((a) => byId.has(a)));
    pending.set(e.eventId, auth.size);
    for (const a of auth) children.set(a, [...(children.get(a) ?? []), e.eventId]);
  }
  const ready = events.filter((e) => pending.get(e.eventId) === 0).map((e) => e.eventId);
  const order: AcceptedRemoteEvent[] = [];
  while (ready.length > 0) {
    const id = ready.shift()!;
    order.push(byId.get(id)!);
    for (const c of children.get(id) ?? []) {
      const left = pending.get(c)! - 1;
      pending.set(c, left);
      if (left === 0) ready.push(c);
    }
  }
  const placed = new Set(order.map((e) => e.eventId));
  return [...order, ...events.filter((e) => !placed.has(e.eventId))];
}

export class OutlierImporter {
  private readonly redactions: RedactionApplier;

  constructor(
    private readonly store: Store,
    private readonly keyRing: KeyRing,
  ) {
    this.redactions = new RedactionApplier(store);
  }

  /**
   * `history`: the events are backfilled timeline (kept with `outlier: false`, and stored outliers among them
   * that passed auth join the timeline) — still outside current state and forward extremities.
   */
  async import(pdus: readonly Record<string, unknown>[], rules: RoomVersionRules, roomId: string, expectedIds?: ReadonlySet<string>, options: { history?: boolean } = {}): Promise<ImportResult> {
    const { valid, refused } = partitionRemoteEvents(
      await withPhaseSpan('verify events', () => verifyRemoteEvents(this.keyRing, pdus, { roomVersion: rules, roomId, expectedIds }), () => ({ 'fedgate.events': pdus.length })),
    );
    const graph = new EventGraph(this.store);
    const unique = [...new Map(valid.map((v) => [v.eventId, v])).values()];
    const stored = await this.store.events.getMany(unique.map((v) => v.eventId));
    for (const record of stored.values()) graph.addRecord(record);
    const fresh = unique.filter((v) => !stored.has(v.eventId));
    const parsed = new Map(fresh.map((v) => [v.eventId, graph.add(v.eventId, v.pdu)]));
    await graph.loadAuthClosure(fresh.flatMap((v) => parsed.get(v.eventId)!.auth_events), roomId);

    const records: EventRecord[] = [];
    for (const v of authOrder(fresh, (e) => parsed.get(e.eventId)!)) {
      const event = parsed.get(v.eventId)!;
      const tooLong = byteLimitViolation(v.pdu, rules);
      const verdict = authorizeByAuthEvents(event, graph.lookup, rules, graph.isRejected);
      const status: EventStatus = verdict.allowed && !tooLong ? 'accepted' : 'rejected';
      graph.setStatus(v.eventId, status);
      const reason = tooLong ?? (verdict.allowed ? (v.redacted ? 'content hash mismatch: stored redacted' : undefined) : `auth events: ${verdict.reason.message}`);
      records.push(recordFor(v.eventId, roomIdOf(v.pdu, rules), v.pdu, event, status, reason, !options.history));
    }
    if (records.length > 0) {
      const { inserted } = await withPhaseSpan('store outliers', () => this.store.events.appendMany(records), () => ({ 'fedgate.events': records.length }));
      // A redaction may have arrived before its target did.
      for (const id of inserted) await this.redactions.applyClaimsOn(id);
    }
    if (options.history) {
      for (const record of stored.values()) {
        if (record.outlier && record.status === 'accepted') await this.store.events.setOutcome(record.eventId, { status: record.status, reason: record.reason, outlier: false });
      }
    }
    return { graph, imported: unique.map((v) => v.eventId), refused };
  }

  /**
   * A state map from event IDs (rejected ones, unknown ones and those of another room left out), keyed
   * `type\0state_key`. A peer's list may name events we hold for another room: they never become this room's state.
   */
  static stateFrom(eventIds: readonly string[], graph: EventGraph, roomId: string): Map<string, string> {
    const state = new Map<string, string>();
    for (const id of eventIds) {
      const e = graph.lookup(id);
      if (!e || !isStateEvent(e) || graph.isRejected(id) || roomOfEvent(e) !== roomId) continue;
      state.set(stateMapKey(e.type, e.state_key!), id);
    }
    return state;
  }

  /** The IDs in `eventIds` that name events of another room (for the audit record of a lying answer). */
  static otherRooms(eventIds: readonly string[], graph: EventGraph, roomId: string): string[] {
    return eventIds.filter((id) => {
      const e = graph.lookup(id);
      return e !== undefined && roomOfEvent(e) !== roomId;
    });
  }
}

export type { Pdu };
