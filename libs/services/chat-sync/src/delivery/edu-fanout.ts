// Inbound EDUs (remote, and local ones chat-sync republished) → ephemeral events for application
// services with `receive_ephemeral`: typing (the room's full typing list, again when a notice times out),
// read receipts, presence; and to-device messages (`m.direct_to_device`) for the devices of the
// services' users, one per device (MSC2409).
import { createHash } from 'node:crypto';
import type { InboundEdu } from '@fedgate/bus';
import { isUserOf } from '@fedgate/protocol';
import type { Bus, BusTopology, Store } from '@fedgate/platform';
import { ApplicationServiceRegistry, type ApplicationService } from '../registration';
import { RoomView } from '../rooms/room-view';
import { DEFAULT_TYPING_LIMITS, TypingTracker, type TypingLimits } from './typing-tracker';

type Ephemeral = { roomId?: string; event: Record<string, unknown> };

export interface EduFanoutOptions {
  now?: () => number;
  typingLimits?: TypingLimits;
  /** A typing timeout that could not be told to the services (it is logged; nothing else is lost). */
  onExpiryFailure?: (error: unknown) => void;
  /** A to-device message (or part of one) nobody here can take, with why: logged, never silent. */
  onUndeliveredToDevice?: (details: { origin: string; sender?: unknown; messageId?: unknown; recipient?: string; device?: string; reason: string }) => void;
}

export class EduFanout {
  private readonly typing: TypingTracker;
  private readonly now: () => number;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt: number | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    private readonly registry: ApplicationServiceRegistry,
    private readonly options: EduFanoutOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.typing = new TypingTracker(options.typingLimits ?? DEFAULT_TYPING_LIMITS);
  }

  async handle(edu: InboundEdu, messageId: string): Promise<void> {
    if (edu.eduType === 'm.direct_to_device') return this.deliverToDevice(edu, messageId);
    const ephemerals = this.toEphemeral(edu);
    this.scheduleExpiry();
    await this.deliver(ephemerals, messageId);
  }

  /** Rooms with someone typing, as tracked (bounded by the typing limits). */
  get typingRoomCount(): number {
    return this.typing.roomCount;
  }

  /** Stops the typing timeouts (on shutdown). */
  stop(): void {
    this.stopped = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  /**
   * Tells the services when a remote user stops typing because their notice timed out (the remote may never
   * send typing: false). Returns once the updates are published; the timer calls it.
   */
  async expireTyping(): Promise<void> {
    const now = this.now();
    const changed = this.typing.expire(now);
    const ephemerals = changed.map(({ roomId, userIds }) => ({ roomId, event: { type: 'm.typing', room_id: roomId, content: { user_ids: userIds } } }));
    await this.deliver(ephemerals, `typing-timeout:${now}`);
  }

  private scheduleExpiry(): void {
    if (this.stopped) return;
    const next = this.typing.nextExpiry();
    if (next === undefined || (this.expiryAt !== undefined && this.expiryAt <= next)) return;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryAt = next;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.expiryAt = undefined;
      this.expireTyping().then(
        () => this.scheduleExpiry(),
        (error: unknown) => {
          this.options.onExpiryFailure?.(error);
          this.scheduleExpiry();
        },
      );
    }, Math.max(0, next - this.now()));
    this.expiryTimer.unref();
  }

  private async deliver(ephemerals: readonly Ephemeral[], messageId: string): Promise<void> {
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

  /**
   * Each message goes to the devices named (`*`: all the user's devices) that exist here, for the service
   * that owns the user. A message for a device or user no service here has is not delivered (a sender's
   * device list can be stale): `onUndeliveredToDevice` says so, with the reason.
   */
  private async deliverToDevice(edu: InboundEdu, messageId: string): Promise<void> {
    const content = edu.content as Record<string, unknown>;
    const { sender, type, messages } = content;
    const undelivered = (reason: string, recipient?: string, device?: string) =>
      this.options.onUndeliveredToDevice?.({ origin: edu.origin, sender, messageId: content.message_id, recipient, device, reason });
    if (typeof sender !== 'string' || typeof type !== 'string' || typeof messages !== 'object' || messages === null) return undelivered('malformed');
    // Only a server may speak for its own users.
    if (!isUserOf(sender, edu.origin)) return undelivered('not_origin_user');
    // A message sent again (in another transaction: the bus message differs) is handed on once, by message_id.
    const dedupe = typeof content.message_id === 'string' ? content.message_id : undefined;
    if (dedupe !== undefined && (await this.store.toDevice.wasDelivered(edu.origin, sender, dedupe))) return undelivered('duplicate_message_id');
    const baseId = dedupe === undefined ? messageId : `to-device:${createHash('sha256').update(JSON.stringify([edu.origin, sender, dedupe])).digest('base64url')}`;
    let index = 0;
    for (const [userId, byDevice] of Object.entries(messages as Record<string, unknown>)) {
      if (typeof byDevice !== 'object' || byDevice === null) {
        undelivered('malformed', userId);
        continue;
      }
      const owner = this.registry.exclusiveOwnerOfUser(userId);
      const services = (owner ? [owner] : this.registry.services.filter((s) => s.isInterestedInUser(userId))).filter((s) => s.registration.receiveEphemeral && s.registration.url !== null);
      if (services.length === 0) {
        undelivered('no_application_service', userId);
        continue;
      }
      for (const [target, message] of Object.entries(byDevice as Record<string, unknown>)) {
        const deviceIds = target === '*' ? (await this.store.deviceKeys.listDevices(userId)).map((d) => d.deviceId) : (await this.store.deviceKeys.getDevice(userId, target)) ? [target] : [];
        if (deviceIds.length === 0) undelivered('unknown_device', userId, target);
        for (const deviceId of deviceIds) {
          const event = { type, sender, content: message as Record<string, unknown>, to_user_id: userId, to_device_id: deviceId };
          const id = `${baseId}:to-device:${index++}`;
          for (const service of services) {
            await this.bus.publish(
              this.topology.appservice.subjectFor(service.id),
              { appserviceId: service.id, roomId: '', eventId: id, event, kind: 'to_device' },
              { messageId: `${service.id}:${id}` },
            );
          }
        }
      }
    }
    if (dedupe !== undefined) await this.store.toDevice.markDelivered(edu.origin, sender, dedupe, this.now());
  }

  private toEphemeral(edu: InboundEdu): Ephemeral[] {
    const content = edu.content as Record<string, any>;
    switch (edu.eduType) {
      case 'm.typing': {
        if (typeof content.room_id !== 'string' || typeof content.user_id !== 'string') return [];
        // Only a server may speak for its own users.
        if (!isUserOf(content.user_id, edu.origin)) return [];
        const userIds = this.typing.update(content.room_id, content.user_id, content.typing === true, content.timeout, this.now());
        return [{ roomId: content.room_id, event: { type: 'm.typing', room_id: content.room_id, content: { user_ids: userIds } } }];
      }
      case 'm.receipt': {
        const out: Ephemeral[] = [];
        for (const [roomId, byType] of Object.entries(content)) {
          const byEvent: Record<string, Record<string, Record<string, Record<string, unknown>>>> = {};
          for (const [receiptType, byUser] of Object.entries((byType ?? {}) as Record<string, any>)) {
            for (const [userId, receipt] of Object.entries((byUser ?? {}) as Record<string, any>)) {
              if (!isUserOf(userId, edu.origin)) continue;
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
          .filter((u: any) => isUserOf(u?.user_id, edu.origin))
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
