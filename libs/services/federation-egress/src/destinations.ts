import type { RoomLogEntry } from '@fedgate/bus';

/**
 * Memberships whose target's server must hear of the event even when none of its users is joined. Not an
 * invite: that travels by the invite API only (a `/send` to a server not in the room makes it ask for the
 * missing events, which it may not read, and some servers then store the invite as rejected).
 */
const TARGET_MUST_LEARN = new Set(['leave', 'ban']);

function serverOfUserId(userId: unknown): string | undefined {
  if (typeof userId !== 'string') return undefined;
  const colon = userId.indexOf(':');
  return userId.startsWith('@') && colon > 0 ? userId.slice(colon + 1) : undefined;
}

/**
 * Where a persisted event goes: nowhere unless this server sends it (created here, or accepted through our
 * make/send handshake) and it was accepted; else the servers joined to the room at the event, plus the
 * target's server of a kick, ban or leave — never the sender's own server, which made the event (the
 * server that joined through send_join is not sent its own join back), nor the servers that hold it already (`heldBy`:
 * the resident our join went through, which sends it on to the room itself).
 */
export function destinationsForEvent(entry: RoomLogEntry, ownServerName: string): string[] {
  if (!entry.local || entry.outcome !== 'accepted') return [];
  const destinations = new Set(entry.joinedServers);
  const event = entry.event as { type?: unknown; sender?: unknown; state_key?: unknown; content?: { membership?: unknown } };
  if (event.type === 'm.room.member' && TARGET_MUST_LEARN.has(String(event.content?.membership))) {
    const target = serverOfUserId(event.state_key);
    if (target) destinations.add(target);
  }
  const origin = serverOfUserId(event.sender);
  if (origin) destinations.delete(origin);
  for (const server of entry.heldBy ?? []) destinations.delete(server);
  destinations.delete(ownServerName);
  return [...destinations].sort();
}

/** The key of a queued item's trace: the destination and the item's key in its queue. */
export function queuedTraceKey(destination: string, itemKey: string): string {
  return `${destination}\n${itemKey}`;
}
