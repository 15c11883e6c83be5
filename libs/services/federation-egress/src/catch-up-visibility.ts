// Whether a server may be sent an event at catch-up: the room's history visibility at the event, and the
// memberships of that server's users at it (federation "history visibility", as servers filter events they
// send or serve to another server). Shared and world-readable history is visible to any server; joined (and
// invited) history only to a server with a user joined (or invited) at the event. Unknown state: not visible.
import { parseStateTupleKey, stateTupleKey, type Store } from '@fedgate/store';

export type CatchUpVisibility = 'visible' | 'not_visible' | 'state_unknown';

function serverOf(userId: string): string | undefined {
  const colon = userId.indexOf(':');
  return userId.startsWith('@') && colon > 0 ? userId.slice(colon + 1) : undefined;
}

export async function visibilityForServer(store: Store, server: string, eventId: string): Promise<CatchUpVisibility> {
  const [before, after] = await Promise.all([store.state.stateBeforeEvent(eventId), store.state.stateAfterEvent(eventId)]);
  if (!before || !after) return 'state_unknown';
  // The visibility in force when the event was sent: before it (an event changing the visibility is judged by the old one).
  const visibilityId = before.get(stateTupleKey('m.room.history_visibility', ''));
  const memberIds: string[] = [];
  for (const [key, id] of after) {
    const { type, stateKey } = parseStateTupleKey(key);
    if (type === 'm.room.member' && serverOf(stateKey) === server) memberIds.push(id);
  }
  const records = await store.events.getMany(visibilityId === undefined ? memberIds : [visibilityId, ...memberIds]);
  const visibility = visibilityId === undefined ? 'shared' : records.get(visibilityId)?.pdu.content.history_visibility;
  if (visibility !== 'joined' && visibility !== 'invited') return 'visible';
  for (const id of memberIds) {
    const membership = records.get(id)?.pdu.content.membership;
    if (membership === 'join' || (membership === 'invite' && visibility === 'invited')) return 'visible';
  }
  return 'not_visible';
}
