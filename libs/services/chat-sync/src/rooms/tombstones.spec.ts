// Issue 14, following a remote room upgrade: a local user joins the new room through the server that sent the
// tombstone (a v12 room ID names no server), with no `via` from the bridge.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore, stateTupleKey, type Store } from '@fedgate/store';
import { RoomActions } from './room-actions';
import { RoomView } from './room-view';

const USER = '@bridge_u:fg.test';
/** A room version 12 room ID: the create event's reference hash, no server name. */
const NEW_ROOM = '!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM';

async function roomWithTombstone(store: Store, roomId: string, replacement: string, sender: string): Promise<void> {
  await store.rooms.ensure({ roomId, roomVersion: '10', creator: sender, createdTs: 1 });
  const state = new Map<string, string>();
  let n = 0;
  for (const [type, stateKey, content, from] of [
    ['m.room.create', '', { room_version: '10' }, sender],
    ['m.room.member', USER, { membership: 'join' }, USER],
    ['m.room.tombstone', '', { body: 'replaced', replacement_room: replacement }, sender],
  ] as const) {
    const eventId = `$${roomId}-${++n}`;
    const pdu = { room_id: roomId, type, state_key: stateKey, sender: from, content, depth: n, prev_events: [], auth_events: [], origin_server_ts: n, hashes: { sha256: 'x' }, signatures: {} };
    await store.events.append({ eventId, roomId, type, stateKey, depth: n, prevEventIds: [], authEventIds: [], pdu: pdu as never, status: 'accepted', outlier: false, receivedTs: n });
    state.set(stateTupleKey(type, stateKey), eventId);
  }
  await store.rooms.setCurrentState(roomId, await store.state.save(roomId, state));
  await store.rooms.setJoinedServers(roomId, ['fg.test', 'remote.test']);
  await store.memberships.set(USER, roomId, 'join', `$${roomId}-2`);
}

describe('following a tombstone sent by another server', () => {
  let dir: string;
  let store: Store;
  let asked: string[][];
  let actions: RoomActions;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-tombstones-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    asked = [];
    const commands = {
      remoteMembership: async (roomId: string, _user: string, _membership: string, via: string[]) => {
        asked.push(via);
        return { roomId, eventId: '$joined' };
      },
    };
    actions = new RoomActions(store, { serverName: 'fg.test' } as never, commands as never, new RoomView(store), {} as never, { rooms: {} } as never);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('joins the replacement room through the tombstone sender server', async () => {
    await roomWithTombstone(store, '!old:remote.test', NEW_ROOM, '@carol:upgrader.test');
    await actions.join({ service: {} as never, userId: USER }, NEW_ROOM, [], {});
    expect(asked).toEqual([['upgrader.test']]);
    expect(await store.memberships.roomsOf(USER, 'join')).toContain(NEW_ROOM);
  });

  it('asks the via servers first, and uses no tombstone of a room the user is not in', async () => {
    await roomWithTombstone(store, '!old:remote.test', NEW_ROOM, '@carol:upgrader.test');
    await store.memberships.set(USER, '!old:remote.test', 'leave', '$left');
    await actions.join({ service: {} as never, userId: USER }, NEW_ROOM, ['via.test'], {});
    expect(asked).toEqual([['via.test']]);
  });

  it('defect: a join read every state event of each room the user is in (the tombstone check loaded whole current states); now one event per room', async () => {
    await roomWithTombstone(store, '!old:remote.test', NEW_ROOM, '@carol:upgrader.test');
    // A big room the user is in: 300 members.
    const big = '!big:remote.test';
    await store.rooms.ensure({ roomId: big, roomVersion: '10', creator: '@carol:upgrader.test', createdTs: 1 });
    const state = new Map<string, string>();
    for (let i = 0; i < 300; i++) {
      const member = `@m${i}:remote.test`;
      const eventId = `$big-${i}`;
      const pdu = { room_id: big, type: 'm.room.member', state_key: member, sender: member, content: { membership: 'join' }, depth: i, prev_events: [], auth_events: [], origin_server_ts: i, hashes: { sha256: 'x' }, signatures: {} };
      await store.events.append({ eventId, roomId: big, type: 'm.room.member', stateKey: member, depth: i, prevEventIds: [], authEventIds: [], pdu: pdu as never, status: 'accepted', outlier: false, receivedTs: i });
      state.set(stateTupleKey('m.room.member', member), eventId);
    }
    await store.rooms.setCurrentState(big, await store.state.save(big, state));
    await store.memberships.set(USER, big, 'join', '$big-0');
    let eventsRead = 0;
    const { get, getMany } = store.events;
    store.events.get = (id) => ((eventsRead += 1), get.call(store.events, id));
    store.events.getMany = (ids) => ((eventsRead += ids.length), getMany.call(store.events, ids));

    await actions.join({ service: {} as never, userId: USER }, NEW_ROOM, [], {});
    expect(asked).toEqual([['upgrader.test']]);
    // The tombstone of each of the two rooms (one found, one absent), nothing of the 300 members.
    expect(eventsRead).toBeLessThanOrEqual(2);
  });
});
