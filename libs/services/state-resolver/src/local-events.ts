// The create-event command: this server's users acting in rooms this server is in, including creating
// rooms and inviting users of other servers (who sign the invite first).
import { randomBytes } from 'node:crypto';
import type { CreateEventCommand, CreateEventReply } from '@fedgate/bus';
import { FederationApi, FederationHttpError, partitionRemoteEvents, verifyRemoteEvents, type KeyRing } from '@fedgate/federation-client';
import { DEFAULT_ROOM_VERSION, isSupportedRoomVersion, roomVersionRules, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
import { domainOf, isObject, splitStateMapKey, stateMapKey } from '@fedgate/room-state';
import { pduWithRedaction, type Store } from '@fedgate/store';
import type { ClientTransactionLog } from './client-transactions';
import { badJson, CommandRefusal, describeError, forbidden, notFound } from './errors';
import type { EventBuilder, BuiltEvent } from './event-builder';
import type { PolicyServerSignatures } from './policy-server-signatures';
import { hasRedactPower, redactsOf } from './redactions';
import type { RoomLocks } from './room-locks';
import { ClientTransactionTaken, type RoomTimeline } from './room-timeline';

/** State kept in an invite's `invite_room_state` / a knock's stripped state. */
export const STRIPPED_STATE_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];

export async function strippedState(store: Store, state: Map<string, string>, extra: string[] = []): Promise<Record<string, unknown>[]> {
  const ids: string[] = [];
  for (const [key, id] of state) if (STRIPPED_STATE_TYPES.includes(splitStateMapKey(key).type)) ids.push(id);
  const records = await store.events.getMany([...ids, ...extra]);
  return [...records.values()].map((r) => {
    const stripped: Record<string, unknown> = { type: r.type, state_key: r.stateKey ?? '', content: r.pdu.content, sender: r.pdu.sender };
    return stripped;
  });
}

/**
 * `invite_room_state` of an invite we send, as spec v1.16 requires: the stripped-state events (the create
 * event always) and the inviter's membership, as full PDUs of the room version; the receiver checks them
 * and strips them itself.
 */
export async function inviteRoomStatePdus(store: Store, state: Map<string, string>, rules: RoomVersionRules, inviter: string): Promise<Record<string, unknown>[]> {
  const ids: string[] = [];
  for (const [key, id] of state) if (STRIPPED_STATE_TYPES.includes(splitStateMapKey(key).type)) ids.push(id);
  const inviterMember = state.get(stateMapKey('m.room.member', inviter));
  if (inviterMember) ids.push(inviterMember);
  const records = await store.events.getMany(ids);
  return [...records.values()].map((record) => {
    const { unsigned: _unsigned, event_id: _eventId, ...pdu } = pduWithRedaction(record, rules.id) as Record<string, unknown>;
    return rules.eventFormat === 'v1' ? { ...pdu, event_id: record.eventId } : pdu;
  });
}

export class LocalEvents {
  constructor(
    private readonly store: Store,
    private readonly timeline: RoomTimeline,
    private readonly locks: RoomLocks,
    private readonly builder: EventBuilder,
    private readonly keyRing: KeyRing,
    private readonly api: FederationApi,
    private readonly transactions: ClientTransactionLog,
    private readonly serverName: string,
    /** The room's policy server, asked to sign each event before it is kept or sent (absent: rooms' policy servers are not honoured). */
    private readonly policy?: PolicyServerSignatures,
  ) {}

  async onCommand(command: CreateEventCommand): Promise<CreateEventReply> {
    try {
      return { ok: true, ...(await this.create(command)) };
    } catch (err) {
      if (err instanceof CommandRefusal) return err.toReply();
      throw err;
    }
  }

  /**
   * Builds, authorizes, persists and publishes; the reply carries the room ID too (new rooms). Sends with one
   * (sender, txnId) answer with one event however they overlap: one at a time in this process, and the
   * transaction is reserved in the store for the event before the event enters the room (first write wins).
   */
  async create(command: CreateEventCommand): Promise<{ eventId: string; roomId: string }> {
    if (typeof command.sender !== 'string' || domainOf(command.sender) !== this.serverName) throw forbidden(`${command.sender} is not a user of ${this.serverName}`);
    if (typeof command.type !== 'string' || !isObject(command.content)) throw badJson('type must be a string and content an object');
    if (command.txnId === undefined) return this.createOnce(command);
    const txn = { sender: command.sender, txnId: String(command.txnId) };
    return this.locks.run(`txn\u0000${txn.sender}\u0000${txn.txnId}`, async () => {
      const known = await this.transactions.get(txn.sender, txn.txnId);
      if (known) {
        // Its commit may have been cut short: finished before the answer names it.
        await this.locks.run(known.roomId, () => this.timeline.recover(known.roomId));
        return known;
      }
      try {
        return await this.createOnce(command, txn);
      } catch (err) {
        if (err instanceof ClientTransactionTaken) return err.existing;
        throw err;
      }
    });
  }

  private createOnce(command: CreateEventCommand, txn?: { sender: string; txnId: string }): Promise<{ eventId: string; roomId: string }> {
    return command.type === 'm.room.create' && (command.stateKey ?? '') === '' ? this.createRoom(command, txn) : this.createInRoom(command, txn);
  }

  private async createRoom(command: CreateEventCommand, txn?: { sender: string; txnId: string }): Promise<{ eventId: string; roomId: string }> {
    const content: Record<string, unknown> = { ...command.content };
    const version = content.room_version ?? DEFAULT_ROOM_VERSION;
    if (!isSupportedRoomVersion(version)) throw new CommandRefusal('M_UNSUPPORTED_ROOM_VERSION', `room version ${JSON.stringify(version)} is not supported`, 400);
    content.room_version = version;
    const rules = roomVersionRules(version);
    if (!rules.creatorIsSender && content.creator === undefined) content.creator = command.sender;
    let roomId: string | undefined;
    if (!rules.roomIdFromCreateEvent) {
      const asked = command.roomId;
      const usable = typeof asked === 'string' && asked.startsWith('!') && domainOf(asked) === this.serverName && !(await this.store.rooms.get(asked));
      roomId = usable ? asked : `!${randomBytes(12).toString('base64url')}:${this.serverName}`;
    }
    const built = this.builder.buildCreate(command.sender, content, rules, roomId);
    const evaluation = await this.timeline.evaluate(built.eventId, built.pdu, rules);
    if (evaluation.status !== 'accepted') throw forbidden(evaluation.reason ?? 'the create event is not allowed');
    return this.locks.run(evaluation.roomId, async () => {
      const committed = await this.timeline.commit(evaluation, { local: true, txn });
      return { eventId: committed.eventId, roomId: committed.roomId };
    });
  }

  private async createInRoom(command: CreateEventCommand, txn?: { sender: string; txnId: string }): Promise<{ eventId: string; roomId: string }> {
    const room = await this.store.rooms.get(command.roomId);
    if (!room?.currentStateId) throw notFound(`room ${command.roomId} is not known here`);
    const rules = roomVersionRules(room.roomVersion);
    return this.locks.run(command.roomId, async () => {
      // A commit cut short here is finished first, so this event builds on it.
      await this.timeline.recover(command.roomId);
      const current = (await this.timeline.currentState(command.roomId))!;
      const draft = { roomId: command.roomId, sender: command.sender, type: command.type, stateKey: command.stateKey, content: command.content };
      let built = await this.builder.build(draft, rules, current);
      let evaluation = await this.timeline.evaluate(built.eventId, built.pdu, rules);
      if (evaluation.status !== 'accepted') throw forbidden(evaluation.reason ?? 'not allowed');
      if (built.pdu.type === 'm.room.redaction') await this.checkRedaction(built.pdu, rules, current);
      // Before anything is kept or sent: a refusal refuses the request and leaves nothing behind (the spec's "discarded").
      if (this.policy) {
        built = { ...built, pdu: await this.policy.signLocal(command.roomId, built.eventId, built.pdu, rules, current) };
        evaluation = { ...evaluation, pdu: built.pdu };
      }
      if (this.isRemoteInvite(command)) {
        built = await this.inviteRemote(built, rules, current);
        evaluation = { ...evaluation, pdu: built.pdu };
      }
      const committed = await this.timeline.commit(evaluation, { local: true, txn });
      return { eventId: committed.eventId, roomId: committed.roomId };
    });
  }

  /**
   * A local user's redaction of a known event: refused when the event is in another room, or is someone
   * else's and the user lacks the redact power level (it would never be applied). An unknown target is a
   * claim, applied if allowed once the target arrives.
   */
  private async checkRedaction(pdu: Pdu, rules: RoomVersionRules, current: Map<string, string>): Promise<void> {
    const targetId = redactsOf(pdu, rules);
    if (targetId === undefined) throw badJson('a redaction names the event it redacts');
    const target = await this.store.events.get(targetId);
    if (!target) return;
    if (target.roomId !== pdu.room_id) throw badJson(`${targetId} is not an event of ${String(pdu.room_id)}`);
    if (target.pdu.sender === pdu.sender || rules.redactionAuthByEventIdDomain) return;
    if (!(await hasRedactPower(this.store, pdu.sender, current, rules))) throw forbidden(`${pdu.sender} may not redact events of other users in this room`);
  }

  private isRemoteInvite(command: CreateEventCommand): boolean {
    return command.type === 'm.room.member' && command.content.membership === 'invite' && typeof command.stateKey === 'string' && domainOf(command.stateKey) !== this.serverName;
  }

  /** invite v2 on the invitee's server; the answer must be our event with its signature added. */
  private async inviteRemote(built: BuiltEvent, rules: RoomVersionRules, current: Map<string, string>): Promise<BuiltEvent> {
    const destination = domainOf(built.pdu.state_key as string);
    const inviteRoomState = await inviteRoomStatePdus(this.store, current, rules, built.pdu.sender as string);
    const roomId = built.pdu.room_id as string;
    const started = Date.now();
    let answered: Record<string, unknown>;
    try {
      answered = await this.api.invite(destination, roomId, built.eventId, { event: built.pdu, room_version: rules.id, invite_room_state: inviteRoomState });
    } catch (err) {
      if (err instanceof FederationHttpError) {
        const body = err.body as { error?: unknown } | undefined;
        const refusal = forbidden(`${destination} refused the invite: ${err.errcode ?? err.status} ${typeof body?.error === 'string' ? body.error : ''}`.trim());
        await this.auditFailedInvite(destination, roomId, built.eventId, started, err.status, 'rejected', err.errcode ?? `http_${err.status}`, refusal.message);
        throw refusal;
      }
      const code = (err as { code?: unknown }).code;
      const refusal = new CommandRefusal('M_UNKNOWN', `could not reach ${destination} to invite: ${describeError(err)}`, 502);
      await this.auditFailedInvite(destination, roomId, built.eventId, started, 0, 'error', typeof code === 'string' ? code : 'unreachable', refusal.message);
      throw refusal;
    }
    const { valid, refused } = partitionRemoteEvents(
      await verifyRemoteEvents(this.keyRing, [answered], { roomVersion: rules, roomId, expectedIds: new Set([built.eventId]), extraSigners: [destination] }),
    );
    if (valid.length !== 1 || valid[0].redacted) {
      const refusal = forbidden(`${destination} answered the invite with an event that does not verify: ${refused[0]?.reason ?? 'content changed'}`);
      await this.auditFailedInvite(destination, roomId, built.eventId, started, 200, 'rejected', 'invite_answer_unverified', refusal.message);
      throw refusal;
    }
    // The invitee adds its signature; ours and the policy server's stay whatever its answer carries.
    const signatures: Record<string, Record<string, string>> = { ...(valid[0].pdu.signatures as Record<string, Record<string, string>>) };
    for (const [server, sigs] of Object.entries(built.pdu.signatures ?? {})) signatures[server] = { ...signatures[server], ...sigs };
    return { eventId: built.eventId, pdu: { ...built.pdu, signatures } as Pdu };
  }

  /** An invite that did not go through leaves a queryable record of where, when and why. */
  private async auditFailedInvite(destination: string, roomId: string, eventId: string, started: number, status: number, outcome: 'rejected' | 'error', reason: string, error: string): Promise<void> {
    await this.store.audit.append({
      direction: 'out',
      origin: this.serverName,
      destination,
      method: 'PUT',
      path: `/_matrix/federation/v2/invite/${encodeURIComponent(roomId)}/${encodeURIComponent(eventId)}`,
      ts: started,
      durationMs: Date.now() - started,
      status,
      outcome,
      reason,
      details: { roomId, eventId, error },
    });
  }
}

