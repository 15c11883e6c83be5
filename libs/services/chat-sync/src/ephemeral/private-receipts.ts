// Private read receipts (`m.read.private`): kept per user, room and thread, and told to the application service
// that set it (as an ephemeral `m.receipt`, when it asked for ephemeral events) and to nobody else. Unlike `m.read`
// they never go on the outbound EDU subject, so no other server and no other service sees them.
import { Inject, Injectable } from '@nestjs/common';
import { BUS, BUS_TOPOLOGY, STORE, type Bus, type BusTopology, type Store } from '@fedgate/platform';
import type { ApplicationService } from '../registration';

export const PRIVATE_RECEIPT_TYPE = 'm.read.private';

@Injectable()
export class PrivateReceipts {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
  ) {}

  async set(service: ApplicationService, userId: string, roomId: string, eventId: string, threadId: string | undefined, now = Date.now()): Promise<void> {
    await this.store.privateReceipts.put({ userId, roomId, threadId: threadId ?? null, eventId, ts: now });
    if (!service.registration.receiveEphemeral || service.registration.url === null) return;
    const data = { ts: now, ...(threadId !== undefined ? { thread_id: threadId } : {}) };
    const event = { type: 'm.receipt', room_id: roomId, content: { [eventId]: { [PRIVATE_RECEIPT_TYPE]: { [userId]: data } } } };
    const id = `private-receipt:${userId}:${roomId}:${threadId ?? ''}:${now}`;
    await this.bus.publish(this.topology.appservice.subjectFor(service.id), { appserviceId: service.id, roomId, eventId: id, event, kind: 'ephemeral' }, { messageId: `${service.id}:${id}` });
  }
}
