// Applies accepted redactions to their targets, whichever of the two arrives first. The check is the one
// every room version makes when the redaction is applied (rooms/v3+ "Redactions"): the target is in the
// same room, and its sender is on the redaction sender's server or the redaction's sender has the redact
// power level in the state before the redaction. (v1–v2 check the event ID domains at auth time already.)
import { roomVersionRules, type Pdu, type RoomVersionRules } from '@fedgate/protocol';
import { domainOf, powerLevelsOf, stateMapKey, toRoomEvent, userPowerLevel } from '@fedgate/room-state';
import { stateTupleKey, type EventRecord, type RedactionClaim, type Store } from '@fedgate/store';
import type { ClaimedTargets } from './claimed-targets';

/** The event an `m.room.redaction` names: in its content from room version 11, at the top level before. */
export function redactsOf(pdu: Pdu | Record<string, unknown>, rules: RoomVersionRules): string | undefined {
  const content = pdu.content as Record<string, unknown> | undefined;
  const redacts = rules.redactsInContent ? content?.redacts : pdu.redacts;
  return typeof redacts === 'string' ? redacts : undefined;
}

/**
 * Whether `sender` has the redact power level in `state` (room-state keys): what a user needs to redact
 * someone else's event (rooms v3+ "Redactions"; v1–v2 check the event ID domains in the auth rules).
 */
export async function hasRedactPower(store: Store, sender: string, state: Map<string, string>, rules: RoomVersionRules): Promise<boolean> {
  const powerLevelsId = state.get(stateMapKey('m.room.power_levels', ''));
  const createId = state.get(stateMapKey('m.room.create', ''));
  const events = await store.events.getMany([powerLevelsId, createId].filter((id): id is string => id !== undefined));
  const asRoomEvent = (id: string | undefined) => {
    const record = id === undefined ? undefined : events.get(id);
    return record && toRoomEvent(record.pdu, record.eventId);
  };
  const powerLevels = asRoomEvent(powerLevelsId);
  return userPowerLevel(sender, powerLevels, asRoomEvent(createId), rules) >= powerLevelsOf(powerLevels, rules).redact;
}

export class RedactionApplier {
  constructor(
    private readonly store: Store,
    /** Where this process is the only one adding claims: which events can be claimed, so the others skip the read. */
    private readonly claimed?: ClaimedTargets,
  ) {}

  /**
   * Called once an event is stored as accepted: a redaction claims its target (applied now if the target is
   * stored), and claims earlier redactions made on this event are checked. Returns the applied redactions.
   */
  async onAccepted(eventId: string, roomId: string, pdu: Pdu, rules: RoomVersionRules): Promise<RedactionClaim[]> {
    const applied: RedactionClaim[] = [];
    if (pdu.type === 'm.room.redaction') {
      const target = redactsOf(pdu, rules);
      if (target !== undefined) {
        const claim = { redactionEventId: eventId, targetEventId: target, roomId };
        await this.claimed?.claiming(roomId, target);
        await this.store.redactions.addClaim(claim);
        if (await this.applyIfAllowed(claim)) applied.push(claim);
      }
    }
    if (this.claimed && !(await this.claimed.mayBeClaimed(roomId, eventId))) return applied;
    const claim = await this.applyClaimsOn(eventId);
    if (claim) applied.push(claim);
    return applied;
  }

  /** Checks the claims on a target that was just stored (e.g. as an outlier); returns the one applied, if any. */
  async applyClaimsOn(targetEventId: string): Promise<RedactionClaim | undefined> {
    for (const claim of await this.store.redactions.claimsOn(targetEventId)) {
      if (await this.applyIfAllowed(claim)) return claim;
    }
    return undefined;
  }

  private async applyIfAllowed(claim: RedactionClaim): Promise<boolean> {
    const records = await this.store.events.getMany([claim.targetEventId, claim.redactionEventId]);
    const target = records.get(claim.targetEventId);
    const redaction = records.get(claim.redactionEventId);
    if (!target || !redaction || target.redactedBy !== undefined) return false;
    if (target.roomId !== claim.roomId || redaction.status !== 'accepted') return false;
    if (!(await this.mayRedact(redaction, target))) return false;
    const applied = await this.store.redactions.apply(claim);
    if (applied) this.claimed?.redacted(claim.roomId, claim.targetEventId);
    return applied;
  }

  private async mayRedact(redaction: EventRecord, target: EventRecord): Promise<boolean> {
    const room = await this.store.rooms.get(redaction.roomId);
    if (!room) return false;
    const rules = roomVersionRules(room.roomVersion);
    if (rules.redactionAuthByEventIdDomain) return true;
    if (domainOf(redaction.pdu.sender) === domainOf(target.pdu.sender)) return true;
    const before = await this.store.state.stateBeforeEvent(redaction.eventId);
    if (!before) return false;
    const powerLevelsId = before.get(stateTupleKey('m.room.power_levels', ''));
    const createId = before.get(stateTupleKey('m.room.create', ''));
    const events = await this.store.events.getMany([powerLevelsId, createId].filter((id): id is string => id !== undefined));
    const asRoomEvent = (id: string | undefined) => {
      const record = id === undefined ? undefined : events.get(id);
      return record && toRoomEvent(record.pdu, record.eventId);
    };
    const powerLevels = asRoomEvent(powerLevelsId);
    const create = asRoomEvent(createId);
    return userPowerLevel(redaction.pdu.sender, powerLevels, create, rules) >= powerLevelsOf(powerLevels, rules).redact;
  }
}
