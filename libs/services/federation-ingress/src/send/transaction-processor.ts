// PUT /send/{txnId}: per-PDU checks and hand-off to the inbound stream, per-EDU validation, one answer per
// (origin, txnId) remembered so a retry gets the same answer.
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { FedgateConfig } from '@fedgate/config';
import type { InboundEdu, InboundPdu, PublishItem } from '@fedgate/bus';
import { verifyRemoteEvents, type RemoteEventResult } from '@fedgate/federation-client';
import { BUS, BUS_TOPOLOGY, KEY_RING, STORE, type Bus, type BusTopology, type KeyRing, type Store } from '@fedgate/platform';
import { isObject, isUserOf, roomVersionsForEventId, validateEdu, type JsonObject } from '@fedgate/protocol';
import { domainOf } from '@fedgate/room-state';
import { FEDGATE_CONFIG, MatrixError, SERVICE_LOGGER } from '@fedgate/service-kit';
import type { Logger } from 'pino';
import { RoomAccess } from '../auth/room-access';
import { INGRESS_OPTIONS, type IngressOptions } from '../ingress-options';
import { IngressMetrics } from './ingress-metrics';
import { OriginLock } from './origin-lock';
import { ROOM_EDU_TYPES, RoomEduChecks } from './room-edus';

export interface TransactionResult {
  /** The response body: `{pdus: {eventId: {} | {error}}}`. */
  response: JsonObject;
  /** For the audit record: every PDU and EDU refused, with the reason (also those without an event ID). */
  refused: JsonObject[];
  replayed: boolean;
}

interface PendingPdu {
  index: number;
  pdu: Record<string, unknown>;
  roomId: string;
  roomVersion: string;
}

/**
 * The bus deduplicates on (event, origin, transaction): a transaction published twice (a crash before its answer
 * was recorded) counts once, but the same event in a later transaction is handed on again. The event ID alone
 * would drop, for the whole duplicate window, an event sent again after its first copy was dead-lettered or
 * rejected for want of its auth events; state-resolver skips events it has settled for good.
 */
export function inboundPduMessageId(eventId: string, origin: string, txnId: string): string {
  return `${eventId}|${origin}|${txnId}`;
}

@Injectable()
export class TransactionProcessor {
  private readonly lock: OriginLock;
  private readonly unavailableRetryAfterMs: number;

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(KEY_RING) private readonly keyRing: KeyRing,
    @Inject(INGRESS_OPTIONS) private readonly options: IngressOptions,
    private readonly access: RoomAccess,
    private readonly metrics: IngressMetrics,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    @Optional() @Inject(FEDGATE_CONFIG) config?: FedgateConfig,
  ) {
    this.lock = new OriginLock(store.leases, options.originLockTtlMs, {
      maxHoldMs: options.originLockMaxHoldMs,
      onHeldTooLong: (origin) => logger.warn({ origin, maxHoldMs: options.originLockMaxHoldMs }, 'a transaction ran past the longest hold of its origin lease; the lease is no longer renewed'),
      onLost: (origin) => logger.warn({ origin }, 'origin transaction lease lost (this replica stalled past its expiry); the transaction in work runs to its end (idempotent per origin, txnId and event ID)'),
      onRenewalFailed: (origin, err) => logger.warn({ err, origin }, 'renewing the origin transaction lease failed; tried again shortly'),
    });
    this.unavailableRetryAfterMs = config?.federation?.unavailableRetryAfterMs ?? options.unavailableRetryAfterMs;
  }

  /** Body limits, before any work. Throws MatrixError. */
  checkShape(body: unknown): { pdus: unknown[]; edus: unknown[] } {
    if (!isObject(body)) throw MatrixError.badJson('Transaction must be a JSON object');
    const { pdus, edus } = body;
    if (!Array.isArray(pdus)) throw MatrixError.badJson('pdus must be an array');
    if (edus !== undefined && !Array.isArray(edus)) throw MatrixError.badJson('edus must be an array');
    if (pdus.length > this.options.maxPdusPerTransaction) {
      throw new MatrixError(400, 'M_TOO_LARGE', `Transaction holds ${pdus.length} PDUs, more than ${this.options.maxPdusPerTransaction}`);
    }
    if ((edus?.length ?? 0) > this.options.maxEdusPerTransaction) {
      throw new MatrixError(400, 'M_TOO_LARGE', `Transaction holds ${edus!.length} EDUs, more than ${this.options.maxEdusPerTransaction}`);
    }
    return { pdus, edus: edus ?? [] };
  }

  async process(origin: string, txnId: string, body: unknown): Promise<TransactionResult> {
    const { pdus, edus } = this.checkShape(body);
    const release = await this.lock.tryAcquire(origin);
    if (!release) {
      this.metrics.rateLimited.inc({ limit: 'transaction_in_flight' });
      throw MatrixError.limitExceeded(this.options.busyRetryAfterMs, `A transaction from ${origin} is already being processed`);
    }
    try {
      const seen = await this.ours('store', () => this.store.receivedTransactions.get(origin, txnId));
      if (seen) return { response: seen.response, refused: [], replayed: true };
      const receivedAt = Date.now();
      const refused: JsonObject[] = [];
      const results = await this.handlePdus(origin, txnId, pdus, receivedAt, refused);
      await this.handleEdus(origin, txnId, edus, receivedAt, refused);
      const response: JsonObject = { pdus: results };
      const stored = await this.ours('store', () => this.store.receivedTransactions.record({ origin, txnId, response, receivedTs: receivedAt }));
      return { response: stored.response, refused, replayed: false };
    } finally {
      await release().catch((err: unknown) => this.logger.warn({ err, origin }, 'releasing the origin transaction lease failed; it frees itself when it expires'));
    }
  }

  private async handlePdus(origin: string, txnId: string, pdus: unknown[], receivedAt: number, refused: JsonObject[]): Promise<Record<string, JsonObject>> {
    const results: Record<string, JsonObject> = {};
    const refuse = (index: number, reason: string, errcode: string, eventId?: string) => {
      refused.push({ kind: 'pdu', index, errcode, reason, ...(eventId ? { eventId } : {}) });
      if (eventId) results[eventId] = { error: reason };
    };
    const pending: PendingPdu[] = [];
    // Read once per room of the transaction, not once per PDU (issue 19): a transaction is one room's run of events.
    const roomVersions = new Map<string, Promise<string | undefined>>();
    for (const [index, pdu] of pdus.entries()) {
      if (!isObject(pdu)) {
        refuse(index, 'PDU is not an object', 'M_BAD_JSON');
        continue;
      }
      const roomId = pdu.room_id;
      if (typeof roomId !== 'string') {
        refuse(index, 'PDU has no room_id', 'M_BAD_JSON');
        continue;
      }
      if (!roomVersions.has(roomId)) roomVersions.set(roomId, this.access.reads.roomVersion(roomId));
      const roomVersion = (await roomVersions.get(roomId)!) ?? (await this.rescindedInviteVersion(origin, roomId, pdu));
      if (!roomVersion) {
        refuse(index, `Unknown room ${roomId}`, 'M_NOT_FOUND', typeof pdu.event_id === 'string' ? pdu.event_id : undefined);
        continue;
      }
      pending.push({ index, pdu, roomId, roomVersion });
    }
    const checked = await this.verify(pending);
    const acls = new Map<string, Promise<(servers: readonly string[]) => string | undefined>>();
    const batch: { item: PublishItem; eventId: string }[] = [];
    for (const p of pending) {
      const result = checked.get(p.index)!;
      if (!result.ok && result.problem === 'invalid') {
        refuse(p.index, result.reason, result.errcode, result.eventId);
        continue;
      }
      if (!acls.has(p.roomId)) acls.set(p.roomId, this.access.aclCheck(p.roomId));
      const denied = (await acls.get(p.roomId)!)([origin, typeof p.pdu.sender === 'string' ? domainOf(p.pdu.sender) : '']);
      if (denied) {
        refuse(p.index, `Server ${denied} is denied by the room's server ACL`, 'M_FORBIDDEN', result.eventId);
        continue;
      }
      if (!result.ok) {
        refuse(p.index, result.reason, result.errcode, result.eventId);
        continue;
      }
      const { eventId } = result;
      if (result.redacted) refused.push({ kind: 'pdu', index: p.index, eventId, errcode: 'content_hash', reason: 'content hash mismatch: kept redacted' });
      const message: InboundPdu = {
        eventId,
        roomId: p.roomId,
        roomVersion: p.roomVersion,
        origin,
        txnId,
        receivedAt,
        redacted: result.redacted,
        pdu: result.pdu as unknown as JsonObject,
      };
      batch.push({ eventId, item: { subject: this.topology.inboundPdu.subjectFor(p.roomId), data: message, options: { messageId: inboundPduMessageId(eventId, origin, txnId) } } });
    }
    // One bus commit for the transaction's PDUs, in their order; nothing is answered as accepted before it.
    if (batch.length > 0) await this.ours('bus', () => this.bus.publishBatch(batch.map((b) => b.item)));
    for (const { eventId } of batch) results[eventId] = {};
    return results;
  }

  /**
   * A room we are not in, where a user of ours holds an invite sent by `origin`: a leave for that user from the
   * same server rescinds the invite and is let through (state-resolver keeps it out of band). The room version is
   * the invite's, recovered from its event ID; where several versions give that ID, the one the leave verifies under.
   */
  private async rescindedInviteVersion(origin: string, roomId: string, pdu: Record<string, unknown>): Promise<string | undefined> {
    if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string' || (pdu.content as { membership?: unknown } | undefined)?.membership !== 'leave') return undefined;
    const events = await this.store.events.byDepthRange({ roomId, minDepth: 0, maxDepth: Number.MAX_SAFE_INTEGER, limit: 1000, excludeRejected: true });
    const invite = events.find((e) => e.type === 'm.room.member' && e.stateKey === pdu.state_key && (e.pdu.content as { membership?: unknown }).membership === 'invite');
    if (!invite || !isUserOf(invite.pdu.sender, origin)) return undefined;
    const candidates = roomVersionsForEventId(invite.pdu as Record<string, unknown>, invite.eventId);
    if (candidates.length === 1) return candidates[0];
    for (const version of candidates) {
      const [checked] = await verifyRemoteEvents(this.keyRing, [pdu], { roomVersion: version, roomId });
      if (checked?.ok) return version;
    }
    return candidates[0];
  }

  /**
   * Our bus or store failing is our outage, not the peer's fault: a 503 with `Retry-After`, the transaction
   * left unrecorded so its retry is handled in full (what was published already is deduplicated by message ID).
   */
  private async ours<T>(part: 'bus' | 'store', call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      this.metrics.unavailable.inc({ part });
      this.logger.error({ err, part }, `our ${part} failed under a transaction; the peer is told to retry`);
      throw new MatrixError(503, 'M_UNKNOWN', `Temporarily unavailable (${part}); retry the transaction later`, { retry_after_ms: this.unavailableRetryAfterMs });
    }
  }

  /** Stateless checks, one batch per room version; results by index in the transaction. */
  private async verify(pending: readonly PendingPdu[]): Promise<Map<number, RemoteEventResult>> {
    const byVersion = new Map<string, PendingPdu[]>();
    for (const p of pending) {
      const batch = byVersion.get(p.roomVersion) ?? [];
      batch.push(p);
      byVersion.set(p.roomVersion, batch);
    }
    const checked = new Map<number, RemoteEventResult>();
    for (const [roomVersion, batch] of byVersion) {
      const results = await verifyRemoteEvents(this.keyRing, batch.map((p) => p.pdu), { roomVersion });
      batch.forEach((p, i) => checked.set(p.index, results[i]!));
    }
    return checked;
  }

  private async handleEdus(origin: string, txnId: string, edus: unknown[], receivedAt: number, refused: JsonObject[]): Promise<void> {
    const roomChecks = new RoomEduChecks(this.access, origin);
    for (const [index, edu] of edus.entries()) {
      try {
        validateEdu(edu);
      } catch (error) {
        refused.push({ kind: 'edu', index, errcode: 'M_BAD_JSON', reason: (error as Error).message });
        continue;
      }
      const { edu: passed, dropped } = await roomChecks.check(edu);
      for (const { roomId, reason } of dropped) {
        refused.push({ kind: 'edu', index, eduType: edu.edu_type, ...(roomId !== undefined ? { roomId } : {}), errcode: reason === 'server_acl' ? 'M_FORBIDDEN' : 'M_BAD_STATE', reason });
        this.metrics.edusDropped.inc({ edu_type: ROOM_EDU_TYPES.includes(edu.edu_type) ? edu.edu_type : 'other', reason });
        this.logger.debug({ origin, txnId, eduType: edu.edu_type, roomId, reason }, 'room EDU left out');
      }
      if (!passed) continue;
      const message: InboundEdu = { origin, txnId, eduType: passed.edu_type, receivedAt, content: passed.content };
      await this.ours('bus', () => this.bus.publish(this.topology.inboundEdu.subjectFor(edu.edu_type), message, { messageId: `${origin}:${txnId}:${index}` }));
    }
  }
}
