// A fedgate state-resolver ("fg.test", user alice) and a malicious homeserver ("evil.test") on one in-memory network.
import { MaliciousServer } from '@fedgate/testing';
import { TestNetwork, type TestServer } from '@fedgate/state-resolver';
import { roomOfEvent, toRoomEvent } from '@fedgate/room-state';

export const ALICE = '@alice:fg.test';

export interface Arena {
  network: TestNetwork;
  fedgate: TestServer;
  evil: MaliciousServer;
}

export async function arena(): Promise<Arena> {
  const network = new TestNetwork();
  const fedgate = await network.add('fg.test');
  const evil = MaliciousServer.on(network, 'evil.test');
  return { network, fedgate, evil };
}

/** The usual opening: a fresh arena, a version-10 room of Alice's, and evil.test joined to it (as @mallory). */
export async function arenaWithEvilJoined(): Promise<{ t: Arena; roomId: string }> {
  const t = await arena();
  const roomId = await t.fedgate.createRoom(ALICE, '10');
  await t.evil.joinRoom(t.fedgate, roomId);
  return { t, roomId };
}

export async function currentState(server: TestServer, roomId: string): Promise<Map<string, string>> {
  return (await server.resolver.timeline.currentState(roomId))!;
}

/** The rooms the events of a room's current state belong to (must be exactly that room). */
export async function roomsInState(server: TestServer, roomId: string): Promise<Set<string | undefined>> {
  const ids = [...(await currentState(server, roomId)).values()];
  const records = await server.store.events.getMany(ids);
  return new Set(ids.map((id) => roomOfEvent(toRoomEvent(records.get(id)!.pdu, id))));
}

/** Whether a local user can still send in the room (the room is not bricked). */
export async function aliceCanSend(server: TestServer, roomId: string): Promise<boolean> {
  const reply = await server.send(roomId, ALICE, 'm.room.message', { msgtype: 'm.text', body: 'still here' });
  return reply.ok;
}
