// Issue 18 defect 8: client-server /messages and /event apply history visibility for the requesting user, by
// their membership at each event, not only their current membership.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MatrixError } from '@fedgate/service-kit';
import { openSqliteStore, stateTupleKey, type Store } from '@fedgate/store';
import { RoomVisibility } from '../lifecycle/room-visibility';
import { RoomView } from '../rooms/room-view';
import type { Requester } from './requester';
import { RoomsController } from './rooms.controller';

const CREATOR = '@creator:gw.test';
const BOB = '@bridge_bob:gw.test';

/** A room under `visibility`: a message before Bob's invite, one while he is invited, his join, one after. */
async function seedRoom(store: Store, roomId: string, visibility: string): Promise<Record<string, string>> {
  await store.rooms.ensure({ roomId, roomVersion: '10', creator: CREATOR, createdTs: 1 });
  const state = new Map<string, string>();
  let prev: string[] = [];
  let depth = 1;
  const append = async (name: string, fields: { type: string; sender: string; state_key?: string; content: Record<string, unknown> }) => {
    const eventId = `$${name}-${roomId}`;
    const before = await store.state.save(roomId, new Map(state));
    if (fields.state_key !== undefined) state.set(stateTupleKey(fields.type, fields.state_key), eventId);
    const after = await store.state.save(roomId, new Map(state));
    const pdu = { room_id: roomId, depth, prev_events: prev, auth_events: [], origin_server_ts: depth, hashes: { sha256: 'x' }, signatures: {}, ...fields };
    await store.events.append({ eventId, roomId, type: fields.type, ...(fields.state_key !== undefined ? { stateKey: fields.state_key } : {}), depth, prevEventIds: prev, authEventIds: [], pdu: pdu as never, status: 'accepted', outlier: false, receivedTs: depth });
    await store.state.setForEvent(eventId, { before, after });
    await store.rooms.setCurrentState(roomId, after);
    await store.rooms.updateForwardExtremities(roomId, { add: [eventId], remove: prev });
    prev = [eventId];
    depth++;
    return eventId;
  };
  const message = (name: string) => append(name, { type: 'm.room.message', sender: CREATOR, content: { msgtype: 'm.text', body: name } });
  await append('create', { type: 'm.room.create', sender: CREATOR, state_key: '', content: { room_version: '10' } });
  await append('creator', { type: 'm.room.member', sender: CREATOR, state_key: CREATOR, content: { membership: 'join' } });
  await append('visibility', { type: 'm.room.history_visibility', sender: CREATOR, state_key: '', content: { history_visibility: visibility } });
  return {
    before: await message('before the invite'),
    invite: await append('invite', { type: 'm.room.member', sender: CREATOR, state_key: BOB, content: { membership: 'invite' } }),
    whileInvited: await message('while invited'),
    join: await append('join', { type: 'm.room.member', sender: BOB, state_key: BOB, content: { membership: 'join' } }),
    after: await message('after the join'),
  };
}

describe('issue 18 defect 8: client-server reads apply history visibility per event', () => {
  let dir: string;
  let store: Store;
  let controller: RoomsController;
  const bob: Requester = { service: {} as never, userId: BOB };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-cs-visibility-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    const view = new RoomView(store);
    controller = new RoomsController(store, {} as never, {} as never, view, new RoomVisibility(store, view), {} as never);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const bodies = async (roomId: string, dir: 'b' | 'f') => ((await controller.messages(bob, roomId, { dir, limit: '50' })).chunk as Array<{ type: string; content: { body?: string } }>).filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
  const status = async (promise: Promise<unknown>) => promise.then(() => 200, (error: unknown) => [(error as MatrixError).status, (error as MatrixError).errcode]);

  it('under joined, /messages leaves out what was said before the user joined, both directions', async () => {
    await seedRoom(store, '!joined:gw.test', 'joined');
    expect(await bodies('!joined:gw.test', 'b')).toEqual(['after the join']);
    expect(await bodies('!joined:gw.test', 'f')).toEqual(['after the join']);
  });

  it('under invited, /messages includes what was said while the user was invited', async () => {
    await seedRoom(store, '!invited:gw.test', 'invited');
    expect(await bodies('!invited:gw.test', 'b')).toEqual(['after the join', 'while invited']);
  });

  it('under shared, /messages serves the whole history to a joined user', async () => {
    await seedRoom(store, '!shared:gw.test', 'shared');
    expect(await bodies('!shared:gw.test', 'b')).toEqual(['after the join', 'while invited', 'before the invite']);
  });

  it('/event answers 404 for an event the user may not see, and serves the ones they may', async () => {
    const ids = await seedRoom(store, '!event:gw.test', 'joined');
    expect(await status(controller.event(bob, '!event:gw.test', ids.before))).toEqual([404, 'M_NOT_FOUND']);
    expect(await status(controller.event(bob, '!event:gw.test', ids.whileInvited))).toEqual([404, 'M_NOT_FOUND']);
    expect(await controller.event(bob, '!event:gw.test', ids.after)).toMatchObject({ event_id: ids.after, content: { body: 'after the join' } });
    expect(await controller.event(bob, '!event:gw.test', ids.join)).toMatchObject({ event_id: ids.join });
  });
});
