// Defect 2 (engine side): state resolution refuses any event of another room, whichever way it is reached.
import { roomVersionRules } from '@fedgate/protocol';
import { stateMapKey, toRoomEvent, type RoomEvent } from './event';
import { resolveState } from './resolve';
import { ForeignEventError } from './room-guard';

const A = '@a:x';
function room(version: string, roomId: string, prefix: string) {
  const v12 = version === '12';
  const createId = v12 ? '$' + roomId.slice(1) : `$${prefix}create`;
  const events = new Map<string, RoomEvent>();
  const add = (raw: Record<string, unknown>) => {
    const e = toRoomEvent({ room_id: roomId, prev_events: [], origin_server_ts: events.size, sender: A, ...raw });
    events.set(e.event_id, e);
    return e;
  };
  const auth = v12 ? [] : [createId];
  add({ event_id: createId, room_id: v12 ? undefined : roomId, type: 'm.room.create', state_key: '', content: { creator: A, room_version: version }, auth_events: [] });
  add({ event_id: `$${prefix}join`, type: 'm.room.member', state_key: A, content: { membership: 'join' }, auth_events: auth });
  add({ event_id: `$${prefix}pl`, type: 'm.room.power_levels', state_key: '', content: { users: v12 ? {} : { [A]: 100 } }, auth_events: [...auth, `$${prefix}join`] });
  add({ event_id: `$${prefix}topic1`, type: 'm.room.topic', state_key: '', content: { topic: '1' }, auth_events: [...auth, `$${prefix}join`, `$${prefix}pl`] });
  add({ event_id: `$${prefix}topic2`, type: 'm.room.topic', state_key: '', content: { topic: '2' }, auth_events: [...auth, `$${prefix}join`, `$${prefix}pl`] });
  const state = (topic: string) =>
    new Map([
      [stateMapKey('m.room.create', ''), createId],
      [stateMapKey('m.room.member', A), `$${prefix}join`],
      [stateMapKey('m.room.power_levels', ''), `$${prefix}pl`],
      [stateMapKey('m.room.topic', ''), `$${prefix}${topic}`],
    ]);
  return { events, state };
}

describe.each(['1', '2', '10', '12'])('defect 2: resolveState refuses events of another room (v%s)', (version) => {
  const a = room(version, version === '12' ? '!aroom' : '!a:x', 'a');
  const b = room(version, version === '12' ? '!broom' : '!b:x', 'b');
  const all = new Map([...a.events, ...b.events]);
  const opts = { rules: roomVersionRules(version), lookup: (id: string) => all.get(id), roomId: version === '12' ? '!aroom' : '!a:x' };

  it('resolves the room own state sets', () => {
    expect(resolveState([a.state('topic1'), a.state('topic2')], opts).size).toBe(4);
  });

  it('throws ForeignEventError when a state set names another room event', () => {
    const poisoned = new Map(a.state('topic1')).set(stateMapKey('m.room.power_levels', ''), '$bpl');
    expect(() => resolveState([a.state('topic2'), poisoned], opts)).toThrow(ForeignEventError);
    expect(() => resolveState([poisoned], opts)).toThrow(ForeignEventError);
  });

  it('throws when the room is not given and the sets mix rooms', () => {
    const { roomId: _roomId, ...noRoom } = opts;
    expect(() => resolveState([a.state('topic1'), b.state('topic2')], noRoom)).toThrow(ForeignEventError);
  });
});
