// PUT /send/{txnId}: per-PDU checks and hand-off to the inbound stream, per-EDU validation, one answer per
// (origin, txnId) remembered so a retry gets the same answer.
import { Inject, Injectable } from '@nestjs/common';
import type { InboundEdu, InboundPdu } from '@fedgate/bus';
import type { ServerKeyRequest } from '@fedgate/federation-client';
import { BUS, BUS_TOPOLOGY, KEY_RING, STORE, type Bus, type BusTopology, type KeyRing, type Store } from '@fedgate/platform';
import { validateEdu, type JsonObject } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { RoomAccess } from '../auth/room-access';
import { keysNeededFor, verifyPduWithKeys } from '../events/verify-pdu';
import { INGRESS_OPTIONS, type IngressOptions } from '../ingress-options';
import { OriginLock } from './origin-lock';

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
  eventId: string;
  keys: ServerKeyRequest[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const serverOf = (id: unknown) => (typeof id === 'string' && id.includes(':') ? id.slice(id.indexOf(':') + 1) : undefined);

@Injectable()
export class TransactionProcessor {
  private readonly lock = new OriginLock();

  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(KEY_RING) private readonly keyRing: KeyRing,
    @Inject(INGRESS_OPTIONS) private readonly options: IngressOptions,
    private readonly access: RoomAccess,
  ) {}

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
    const release = this.lock.tryAcquire(origin);
    if (!release) throw MatrixError.limitExceeded(this.options.busyRetryAfterMs, `A transaction from ${origin} is already being processed`);
    try {
      const seen = await this.store.receivedTransactions.get(origin, txnId);
      if (seen) return { response: seen.response, refused: [], replayed: true };
      const receivedAt = Date.now();
      const refused: JsonObject[] = [];
      const results = await this.handlePdus(origin, txnId, pdus, receivedAt, refused);
      await this.handleEdus(origin, txnId, edus, receivedAt, refused);
      const response: JsonObject = { pdus: results };
      const stored = await this.store.receivedTransactions.record({ origin, txnId, response, receivedTs: receivedAt });
      return { response: stored.response, refused, replayed: false };
    } finally {
      release();
    }
  }

  private async handlePdus(origin: string, txnId: string, pdus: unknown[], receivedAt: number, refused: JsonObject[]): Promise<Record<string, JsonObject>> {
    const results: Record<string, JsonObject> = {};
    const refuse = (index: number, reason: string, errcode: string, eventId?: string) => {
      refused.push({ kind: 'pdu', index, errcode, reason, ...(eventId ? { eventId } : {}) });
      if (eventId) results[eventId] = { error: reason };
    };
    const pending: PendingPdu[] = [];
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
      const roomVersion = await this.access.reads.roomVersion(roomId);
      if (!roomVersion) {
        refuse(index, `Unknown room ${roomId}`, 'M_NOT_FOUND', typeof pdu.event_id === 'string' ? pdu.event_id : undefined);
        continue;
      }
      try {
        pending.push({ index, pdu, roomId, roomVersion, ...keysNeededFor(pdu, roomVersion) });
      } catch (error) {
        refuse(index, (error as Error).message, (error as { errcode?: string }).errcode ?? 'M_BAD_JSON');
      }
    }
    const lookup = await this.keyRing.prepare(pending.flatMap((p) => p.keys));
    for (const p of pending) {
      const denied = await this.access.deniedByAcl(p.roomId, [origin, serverOf(p.pdu.sender) ?? '']);
      if (denied) {
        refuse(p.index, `Server ${denied} is denied by the room's server ACL`, 'M_FORBIDDEN', p.eventId);
        continue;
      }
      const checked = verifyPduWithKeys(p.pdu, p.roomVersion, p.eventId, lookup);
      if (!checked.ok) {
        refuse(p.index, checked.reason, checked.errcode, p.eventId);
        continue;
      }
      if (checked.redacted) refused.push({ kind: 'pdu', index: p.index, eventId: p.eventId, errcode: 'content_hash', reason: 'content hash mismatch: kept redacted' });
      const message: InboundPdu = {
        eventId: p.eventId,
        roomId: p.roomId,
        roomVersion: p.roomVersion,
        origin,
        txnId,
        receivedAt,
        redacted: checked.redacted,
        pdu: checked.pdu,
      };
      await this.bus.publish(this.topology.inboundPdu.subjectFor(p.roomId), message, { messageId: p.eventId });
      results[p.eventId] = {};
    }
    return results;
  }

  private async handleEdus(origin: string, txnId: string, edus: unknown[], receivedAt: number, refused: JsonObject[]): Promise<void> {
    for (const [index, edu] of edus.entries()) {
      try {
        validateEdu(edu);
      } catch (error) {
        refused.push({ kind: 'edu', index, errcode: 'M_BAD_JSON', reason: (error as Error).message });
        continue;
      }
      const roomId = (edu.content as { room_id?: unknown }).room_id;
      if (typeof roomId === 'string' && !(await this.access.aclAllows(roomId, origin))) {
        refused.push({ kind: 'edu', index, eduType: edu.edu_type, errcode: 'M_FORBIDDEN', reason: `Server ${origin} is denied by the server ACL of ${roomId}` });
        continue;
      }
      const message: InboundEdu = { origin, txnId, eduType: edu.edu_type, receivedAt, content: edu.content };
      await this.bus.publish(this.topology.inboundEdu.subjectFor(edu.edu_type), message, { messageId: `${origin}:${txnId}:${index}` });
    }
  }
}
