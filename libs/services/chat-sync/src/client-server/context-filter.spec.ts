// Issue 14: `GET /rooms/{roomId}/context/{eventId}` took a `filter` and ignored it. The RoomEventFilter now applies
// to events_before, events_after and state (not to the event itself); lazy_load_members keeps in `state` only the
// members who sent what is returned; a filter that is not JSON, or whose fields have the wrong types, is a 400.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MatrixError } from '@fedgate/service-kit';
import { openSqliteStore, stateTupleKey, type Store } from '@fedgate/store';
import { RoomVisibility } from '../lifecycle/room-visibility';
import { RoomView } from '../rooms/room-view';
import type { Requester } from './requester';
import { RoomHistoryController } from './room-history.controller';
import { filterMatches, parseRoomEventFilter } from './room-event-filter';

const ROOM = '!context:gw.test';
const ALICE = '@alice:gw.test';
const BOB = '@bob:gw.test';
const CAROL = '@carol:gw.test';

type Fields = { type: string; sender: string; state_key?: string; content: Record<string, unknown> };

/** A shared-history room: alice, bob and carol join; then messages, one with a URL, around `middle`. */
async function seedRoom(store: Store): Promise<Record<string, string>> {
  await store.rooms.ensure({ roomId: ROOM, roomVersion: '10', creator: ALICE, createdTs: 1 });
  const state = new Map<string, string>();
  let prev: string[] = [];
  let depth = 1;
  const append = async (name: string, fields: Fields) => {
    const eventId = `$${name}`;
    const before = await store.state.save(ROOM, new Map(state));
    if (fields.state_key !== undefined) state.set(stateTupleKey(fields.type, fields.state_key), eventId);
    const after = await store.state.save(ROOM, new Map(state));
    const pdu = { room_id: ROOM, depth, prev_events: prev, auth_events: [], origin_server_ts: depth, hashes: { sha256: 'x' }, signatures: {}, ...fields };
    await store.events.append({ eventId, roomId: ROOM, type: fields.type, ...(fields.state_key !== undefined ? { stateKey: fields.state_key } : {}), depth, prevEventIds: prev, authEventIds: [], pdu: pdu as never, status: 'accepted', outlier: false, receivedTs: depth });
    await store.state.setForEvent(eventId, { before, after });
    await store.rooms.setCurrentState(ROOM, after);
    await store.rooms.updateForwardExtremities(ROOM, { add: [eventId], remove: prev });
    prev = [eventId];
    depth++;
    return eventId;
  };
  const join = (user: string) => append(`join-${user.slice(1, user.indexOf(':'))}`, { type: 'm.room.member', sender: user, state_key: user, content: { membership: 'join' } });
  const say = (name: string, sender: string, extra: Record<string, unknown> = {}) => append(name, { type: 'm.room.message', sender, content: { msgtype: 'm.text', body: name, ...extra } });
  await append('create', { type: 'm.room.create', sender: ALICE, state_key: '', content: { room_version: '10' } });
  await join(ALICE);
  await append('visibility', { type: 'm.room.history_visibility', sender: ALICE, state_key: '', content: { history_visibility: 'shared' } });
  await join(BOB);
  await join(CAROL);
  const ids: Record<string, string> = {};
  ids.a1 = await say('a1', ALICE);
  ids.b1 = await say('b1', BOB);
  ids.image = await say('image', CAROL, { msgtype: 'm.image', url: 'mxc://gw.test/abc' });
  ids.reaction = await append('reaction', { type: 'org.example.reaction', sender: BOB, content: {} });
  ids.middle = await say('middle', ALICE);
  ids.a2 = await say('a2', ALICE);
  ids.topic = await append('topic', { type: 'm.room.topic', sender: BOB, state_key: '', content: { topic: 't' } });
  ids.b2 = await say('b2', BOB);
  ids.c2 = await say('c2', CAROL, { msgtype: 'm.file', url: 'mxc://gw.test/def' });
  ids.a3 = await say('a3', ALICE);
  return ids;
}

describe('issue 14: /context applies its RoomEventFilter', () => {
  let dir: string;
  let store: Store;
  let controller: RoomHistoryController;
  const alice: Requester = { service: {} as never, userId: ALICE };
  type Served = { event_id: string; type: string; sender: string; state_key?: string; content: { body?: string } };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fedgate-cs-context-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    const view = new RoomView(store);
    controller = new RoomHistoryController(store, view, new RoomVisibility(store, view), {} as never);
    await seedRoom(store);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const context = async (filter: Record<string, unknown> | string | undefined, limit = 10) => {
    const query: Record<string, unknown> = { limit: String(limit) };
    if (filter !== undefined) query.filter = typeof filter === 'string' ? filter : JSON.stringify(filter);
    return (await controller.context(alice, ROOM, '$middle', query)) as unknown as { event: Served; events_before: Served[]; events_after: Served[]; state: Served[] };
  };
  const names = (events: Served[]) => events.map((e) => e.event_id.slice(1));
  const failure = (promise: Promise<unknown>) => promise.then(() => 200, (error: unknown) => [(error as MatrixError).status, (error as MatrixError).errcode]);

  it('types: only messages around the event, as many as the limit asks, the event itself always served', async () => {
    const body = await context({ types: ['m.room.message'] }, 4);
    expect(body.event.event_id).toBe('$middle');
    expect(names(body.events_before)).toEqual(['image', 'b1']);
    expect(names(body.events_after)).toEqual(['a2', 'b2']);
    expect(body.state.every((e) => e.type === 'm.room.message')).toBe(true);
  });

  it('not_types (with a wildcard) wins over types', async () => {
    const body = await context({ types: ['m.*', 'org.example.*'], not_types: ['m.room.m*'] }, 20);
    expect(names(body.events_before)).toEqual(['reaction', 'visibility', 'create']);
    expect(names(body.events_after)).toEqual(['topic']);
    expect(names(body.state).sort()).toEqual(['create', 'topic', 'visibility']);
  });

  it('senders and not_senders', async () => {
    const onlyBob = await context({ senders: [BOB] }, 20);
    expect(names(onlyBob.events_before)).toEqual(['reaction', 'b1', 'join-bob']);
    expect(names(onlyBob.events_after)).toEqual(['topic', 'b2']);
    const notAlice = await context({ not_senders: [ALICE], types: ['m.room.message'] }, 20);
    expect(names(notAlice.events_before)).toEqual(['image', 'b1']);
    expect(names(notAlice.events_after)).toEqual(['b2', 'c2']);
  });

  it('contains_url: true keeps events with a URL, false leaves them out', async () => {
    const withUrl = await context({ contains_url: true }, 20);
    expect(names(withUrl.events_before)).toEqual(['image']);
    expect(names(withUrl.events_after)).toEqual(['c2']);
    const withoutUrl = await context({ contains_url: false, types: ['m.room.message'] }, 20);
    expect(names(withoutUrl.events_before)).toEqual(['b1', 'a1']);
    expect(names(withoutUrl.events_after)).toEqual(['a2', 'b2', 'a3']);
  });

  it('the filter’s own limit caps the events too', async () => {
    const body = await context({ types: ['m.room.message'], limit: 2 }, 10);
    expect(names(body.events_before)).toEqual(['image']);
    expect(names(body.events_after)).toEqual(['a2']);
  });

  it('lazy_load_members: state holds only the members who sent what is returned (and the event’s sender)', async () => {
    const body = await context({ types: ['m.room.message'], senders: [ALICE, BOB], lazy_load_members: true }, 2);
    expect(names(body.events_before)).toEqual(['b1']);
    expect(names(body.events_after)).toEqual(['a2']);
    const whole = await context({ lazy_load_members: true }, 2);
    const members = whole.state.filter((e) => e.type === 'm.room.member').map((e) => e.state_key);
    // Around `middle` (alice): `reaction` (bob) before and `a2` (alice) after; carol is left out.
    expect(names(whole.events_before)).toEqual(['reaction']);
    expect(members.sort()).toEqual([ALICE, BOB]);
    expect(whole.state.some((e) => e.type === 'm.room.create')).toBe(true);
    const eager = await context(undefined, 2);
    expect(eager.state.filter((e) => e.type === 'm.room.member')).toHaveLength(3);
  });

  it('a filter that is not a JSON object is an invalid parameter; wrong field types are bad JSON', async () => {
    expect(await failure(context('{not json'))).toEqual([400, 'M_INVALID_PARAM']);
    expect(await failure(context('[1]'))).toEqual([400, 'M_INVALID_PARAM']);
    expect(await failure(context({ types: 'm.room.message' }))).toEqual([400, 'M_BAD_JSON']);
    expect(await failure(context({ senders: [1] }))).toEqual([400, 'M_BAD_JSON']);
    expect(await failure(context({ limit: 0 }))).toEqual([400, 'M_BAD_JSON']);
    expect(await failure(context({ contains_url: 'yes' }))).toEqual([400, 'M_BAD_JSON']);
    expect(await failure(context({ lazy_load_members: 1 }))).toEqual([400, 'M_BAD_JSON']);
  });

  it('contains_url judges the content as served: a redacted event with a URL no longer matches (runs last: it redacts)', async () => {
    await store.redactions.apply({ redactionEventId: '$redacts-image', targetEventId: '$image', roomId: ROOM });
    const withUrl = await context({ contains_url: true }, 20);
    expect(names(withUrl.events_before)).toEqual([]);
    expect(names(withUrl.events_after)).toEqual(['c2']);
  });
});

describe('RoomEventFilter matching', () => {
  it('matches wildcards anywhere in a type pattern, and rooms/not_rooms', () => {
    const filter = parseRoomEventFilter(JSON.stringify({ types: ['m.*.member', 'org.*'], not_rooms: ['!no:x'] }));
    expect(filterMatches(filter, { type: 'm.room.member', room_id: '!a:x' })).toBe(true);
    expect(filterMatches(filter, { type: 'm.room.message', room_id: '!a:x' })).toBe(false);
    expect(filterMatches(filter, { type: 'org.x', room_id: '!a:x' })).toBe(true);
    expect(filterMatches(filter, { type: 'org.x', room_id: '!no:x' })).toBe(false);
    expect(filterMatches(parseRoomEventFilter(JSON.stringify({ rooms: ['!a:x'] })), { type: 't', room_id: '!b:x' })).toBe(false);
  });
});
