// Room log → application services: every accepted event goes to each AS with interest in it (sender,
// membership target, room ID, alias or a joined member in its namespaces), as an AppServicePush on
// that AS's subject. Invites carry the stripped room state the invitee may see.
import type { RoomLogEntry } from '@fedgate/bus';
import type { Bus, BusTopology, Store } from '@fedgate/platform';
import { stateTupleKey } from '@fedgate/store';
import type { Logger } from 'pino';
import { ApplicationServiceRegistry } from '../registration';
import { strippedState, toClientEvent } from '../rooms/client-event';
import { RoomView } from '../rooms/room-view';
import type { InviteeProvisioning } from './invitee-provisioning';

const INVITE_STATE_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];

export class RoomLogFanout {
  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    private readonly registry: ApplicationServiceRegistry,
    private readonly serverName: string,
    private readonly logger: Logger,
    private readonly invitees?: InviteeProvisioning,
  ) {}

  async handle(entry: RoomLogEntry): Promise<void> {
    const pdu = entry.event as { type: string; sender: string; state_key?: string; content: Record<string, unknown>; unsigned?: Record<string, unknown> };
    if (pdu.type === 'm.room.member' && pdu.state_key?.endsWith(`:${this.serverName}`) && entry.outcome === 'accepted') {
      await this.store.memberships.set(pdu.state_key, entry.roomId, String(pdu.content.membership), entry.eventId);
    }
    // Soft-failed and rejected events never reach clients.
    if (entry.outcome !== 'accepted') return;
    // Before the invite is pushed: the AS is asked about an invitee nobody registered (and may create it).
    if (pdu.type === 'm.room.member' && pdu.content.membership === 'invite' && typeof pdu.state_key === 'string') {
      await this.invitees?.ensureRegistered(pdu.state_key);
    }
    const view = new RoomView(this.store);
    const joinedMembers = await view.joinedMembers(entry.roomId);
    const aliases = (await this.store.aliases.forRoom(entry.roomId)).map((a) => a.alias);
    const interested = this.registry.interestedIn({ type: pdu.type, room_id: entry.roomId, sender: pdu.sender, state_key: pdu.state_key }, { joinedMembers, aliases });
    if (interested.length === 0) return;
    const event = toClientEvent(entry.event, entry.eventId, entry.roomId);
    if (pdu.type === 'm.room.member' && pdu.content.membership === 'invite' && !Array.isArray(event.unsigned?.invite_room_state)) {
      event.unsigned = { ...event.unsigned, invite_room_state: await this.inviteRoomState(view, entry.roomId, pdu.sender) };
    }
    for (const service of interested) {
      await this.bus.publish(
        this.topology.appservice.subjectFor(service.id),
        { appserviceId: service.id, roomId: entry.roomId, eventId: entry.eventId, event, kind: 'event' },
        { messageId: `${service.id}:${entry.eventId}` },
      );
    }
    this.logger.debug({ eventId: entry.eventId, appServices: interested.map((s) => s.id) }, 'room event queued for application services');
  }

  private async inviteRoomState(view: RoomView, roomId: string, inviter: string): Promise<Record<string, unknown>[]> {
    const state = await view.currentState(roomId);
    if (!state) return [];
    const stripped: Record<string, unknown>[] = [];
    for (const type of INVITE_STATE_TYPES) {
      const record = state.events.get(stateTupleKey(type, ''));
      if (record) stripped.push(strippedState(record.pdu));
    }
    const inviterMember = state.events.get(stateTupleKey('m.room.member', inviter));
    if (inviterMember) stripped.push(strippedState(inviterMember.pdu));
    return stripped;
  }
}
