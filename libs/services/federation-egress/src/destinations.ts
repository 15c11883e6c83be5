import type { RoomLogEntry } from '@fedgate/bus';

/** Memberships whose target's server must hear of the event even when none of its users is joined. */
const TARGET_MUST_LEARN = new Set(['invite', 'leave', 'ban']);

function serverOfUserId(userId: string): string | undefined {
  const colon = userId.indexOf(':');
  return userId.startsWith('@') && colon > 0 ? userId.slice(colon + 1) : undefined;
}

/**
 * Where a persisted event goes: nowhere unless this server created it and it was accepted; else the servers
 * joined to the room at the event, plus the target's server of an invite, kick, ban or leave.
 */
export function destinationsForEvent(entry: RoomLogEntry, ownServerName: string): string[] {
  if (!entry.local || entry.outcome !== 'accepted') return [];
  const destinations = new Set(entry.joinedServers);
  const event = entry.event as { type?: unknown; state_key?: unknown; content?: { membership?: unknown } };
  if (event.type === 'm.room.member' && typeof event.state_key === 'string' && TARGET_MUST_LEARN.has(String(event.content?.membership))) {
    const target = serverOfUserId(event.state_key);
    if (target) destinations.add(target);
  }
  destinations.delete(ownServerName);
  return [...destinations].sort();
}
