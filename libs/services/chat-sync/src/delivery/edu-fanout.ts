// Inbound EDUs (remote, and local ones chat-sync republished) → ephemeral events for application
// services with `receive_ephemeral`: typing (the room's full typing list), read receipts, presence.
import type { InboundEdu } from '@fedgate/bus';
import type { Bus, BusTopology, Store } from '@fedgate/platform';
import { ApplicationServiceRegistry, type ApplicationService } from '../registration';
import { RoomView } from '../rooms/room-view';

type Ephemeral = { roomId?: string; event: Record<string, unknown> };

export class EduFanout {
  /** Room → user → typing until (ms). */
  private readonly typing = new Map<string, Map<string, number>>();

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    private readonly registry: ApplicationServiceRegistry,
    private readonly now: () => number = Date.now,
  ) {}

  async handle(edu: InboundEdu, messageId: string): Promise<void> {
    const ephemerals = this.toEphemeral(edu);
    for (const [index, ephemeral] of ephemerals.entries()) {
      const services = await this.interested(ephemeral);
      for (const service of services) {
        const id = `${messageId}:${index}`;
        await this.bus.publish(
          this.topology.appservice.subjectFor(service.id),
          { appserviceId: service.id, roomId: ephemeral.roomId ?? '', eventId: id, event: ephemeral.event, kind: 'ephemeral' },
          { messageId: `${service.id}:${id}` },
        );
      }
    }
  }

  private toEphemeral(edu: InboundEdu): Ephemeral[] {
    const content = edu.content as Record<string, any>;
    switch (edu.eduType) {
      case 'm.typing': {
        if (typeof content.room_id !== 'string' || typeof content.user_id !== 'string') return [];
        // Only a server may speak for its own users.
        if (!content.user_id.endsWith(`:${edu.origin}`)) return [];
        const room = this.typing.get(content.room_id) ?? new Map<string, number>();
        this.typing.set(content.room_id, room);
        const now = this.now();
        if (content.typing === true) room.set(content.user_id, now + (typeof content.timeout === 'number' ? content.timeout : 30_000));
        else room.delete(content.user_id);
        for (const [user, until] of room) if (until <= now) room.delete(user);
        return [{ roomId: content.room_id, event: { type: 'm.typing', room_id: content.room_id, content: { user_ids: [...room.keys()] } } }];
      }
      case 'm.receipt': {
        const out: Ephemeral[] = [];
        for (const [roomId, byType] of Object.entries(content)) {
          const byEvent: Record<string, Record<string, Record<string, Record<string, unknown>>>> = {};
          for (const [receiptType, byUser] of Object.entries((byType ?? {}) as Record<string, any>)) {
            for (const [userId, receipt] of Object.entries((byUser ?? {}) as Record<string, any>)) {
              if (!userId.endsWith(`:${edu.origin}`)) continue;
              for (const eventId of Array.isArray(receipt?.event_ids) ? receipt.event_ids : []) {
                if (typeof eventId !== 'string') continue;
                ((byEvent[eventId] ??= {})[receiptType] ??= {})[userId] = { ...(receipt.data ?? {}) };
              }
            }
          }
          if (Object.keys(byEvent).length) out.push({ roomId, event: { type: 'm.receipt', room_id: roomId, content: byEvent } });
        }
        return out;
      }
      case 'm.presence': {
        const updates = Array.isArray(content.push) ? content.push : [];
        return updates
          .filter((u: any) => typeof u?.user_id === 'string' && u.user_id.endsWith(`:${edu.origin}`))
          .map((u: any) => {
            const { user_id: sender, ...rest } = u;
            return { event: { type: 'm.presence', sender, content: rest } };
          });
      }
      default:
        return [];
    }
  }

  /**
   * Room EDUs go to services with a member in the room (or interest in the room ID/aliases);
   * presence to services interested in the user or sharing a room with them (their users' rooms).
   */
  private async interested(ephemeral: Ephemeral): Promise<ApplicationService[]> {
    const candidates = this.registry.services.filter((s) => s.registration.receiveEphemeral && s.registration.url !== null);
    if (candidates.length === 0) return [];
    if (ephemeral.roomId !== undefined) {
      const joinedMembers = await new RoomView(this.store).joinedMembers(ephemeral.roomId);
      const aliases = (await this.store.aliases.forRoom(ephemeral.roomId)).map((a) => a.alias);
      return candidates.filter((s) => s.isInterestedIn({ type: String(ephemeral.event.type), room_id: ephemeral.roomId as string, sender: '' }, { joinedMembers, aliases }));
    }
    const sender = String(ephemeral.event.sender);
    const result: ApplicationService[] = [];
    for (const service of candidates) {
      if (service.isInterestedInUser(sender) || (await this.sharesRoom(service, sender))) result.push(service);
    }
    return result;
  }

  private async sharesRoom(service: ApplicationService, userId: string): Promise<boolean> {
    // Rooms this server is in where the user is joined, checked against the service's members there.
    const view = new RoomView(this.store);
    const server = userId.slice(userId.indexOf(':') + 1);
    for (const roomId of await this.store.rooms.roomsOfServer(server)) {
      const members = await view.joinedMembers(roomId);
      if (members.includes(userId) && members.some((m) => service.isInterestedInUser(m))) return true;
    }
    return false;
  }
}
