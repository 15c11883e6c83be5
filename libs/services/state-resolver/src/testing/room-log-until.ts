import type { Bus, BusTopology, RoomLogEntry } from '@fedgate/bus';

/** The room log entries of `roomId` a chat-sync consumer sees, up to and including `lastEventId`. */
export async function roomLogUntil(bus: Bus, topology: BusTopology, roomId: string, lastEventId: string): Promise<RoomLogEntry[]> {
  const seen: RoomLogEntry[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const subscription = await bus.consume(topology.consumers.chatSyncRoomLog(topology.roomLog.partitionOf(roomId)), async (m) => {
    if (m.data.roomId === roomId) seen.push(m.data);
    if (m.data.eventId === lastEventId) done();
  });
  await finished;
  await subscription.stop();
  return seen;
}
