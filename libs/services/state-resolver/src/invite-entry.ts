// A remote server's invite into a room this server is joined to: once countersigned it is a room event signed by
// its origin and by us, so it enters the room at once through the inbound path, as if the origin had sent it by
// /send (its origin sends it so only later). Otherwise the invited user, told of the invite, could be refused a
// join for not being invited yet. The inbound path's checks decide, as for any received event; what they refuse
// refuses the invite. Remote trouble filling a gap defers the entry to the bus's inbound path instead.
import type { Bus, BusTopology, InboundPdu, JsonObject } from '@fedgate/bus';
import { FederationClientError } from '@fedgate/federation-client';
import type { Pdu } from '@fedgate/protocol';
import type { Store } from '@fedgate/store';
import { forbidden, PoisonMessageError } from './errors';
import type { InboundPduHandler } from './inbound-pdus';
import { withRemoteBudget } from './remote-budget';

/** Time for the entry's remote calls (the origin's missing prev events); within receive-invite's 10 s. */
export const INVITE_ENTRY_BUDGET_MS = 5_000;
/** Beyond the remote budget, how long the entry may wait (for the room lock, mostly) before the invite is answered without it. */
const LOCAL_SLACK_MS = 2_000;

export interface InviteToEnter {
  roomId: string;
  eventId: string;
  roomVersion: string;
  origin: string;
  /** Countersigned. */
  pdu: Pdu;
  inviteRoomState: JsonObject[];
}

export class InviteEntry {
  constructor(
    private readonly store: Store,
    private readonly inbound: InboundPduHandler,
    private readonly bus: Bus,
    private readonly topology: BusTopology,
    private readonly budgetMs = INVITE_ENTRY_BUDGET_MS,
  ) {}

  /**
   * 'entered': the invite is in the room (the room log entry, with `invite_room_state`, tells chat-sync).
   * 'deferred': the origin did not let its gap be filled in time; the event is handed to the inbound path on the
   * bus (the parked path's budget), and the origin's own /send brings it too. Throws the refusal when the
   * inbound checks reject or soft-fail it.
   */
  async enter(invite: InviteToEnter): Promise<'entered' | 'deferred'> {
    const inbound: InboundPdu = {
      eventId: invite.eventId,
      roomId: invite.roomId,
      roomVersion: invite.roomVersion,
      origin: invite.origin,
      txnId: `invite:${invite.eventId}`,
      receivedAt: Date.now(),
      redacted: false,
      pdu: invite.pdu as unknown as JsonObject,
    };
    let timer: NodeJS.Timeout | undefined;
    const tooLong = new Promise<'too_long'>((resolve) => (timer = setTimeout(() => resolve('too_long'), this.budgetMs + LOCAL_SLACK_MS)));
    const entry = withRemoteBudget(Date.now() + this.budgetMs, () => this.inbound.handle(inbound, undefined, { invite_room_state: invite.inviteRoomState as never }));
    try {
      const outcome = await Promise.race([entry, tooLong]);
      // Still waiting on the room (a long command holds it): it goes on by itself; the bus copy is a no-op then.
      if (outcome === 'too_long') {
        entry.catch(() => undefined);
        return await this.defer(inbound);
      }
    } catch (err) {
      if (err instanceof PoisonMessageError) throw forbidden(`the invite cannot enter room ${invite.roomId}: ${err.message}`);
      if (err instanceof FederationClientError) return this.defer(inbound);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    const record = await this.store.events.get(invite.eventId);
    if (record?.status !== 'accepted' || record.outlier) {
      throw forbidden(`the invite cannot enter room ${invite.roomId}: ${record?.reason ?? 'not kept'}`);
    }
    return 'entered';
  }

  private async defer(inbound: InboundPdu): Promise<'deferred'> {
    await this.bus.publish(this.topology.inboundPdu.subjectFor(inbound.roomId), inbound, { messageId: `${inbound.eventId}|${inbound.origin}|${inbound.txnId}` });
    return 'deferred';
  }
}
