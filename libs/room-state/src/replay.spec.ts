// replayRoom's forward extremities around rejected events.
import { replayRoom } from './replay';

const ALICE = '@alice:a';
const MALLORY = '@mallory:m';
const ROOM = '!room:a';

let ts = 0;
const pdu = (event_id: string, type: string, sender: string, prev: string[], auth: string[], content: Record<string, unknown>, state_key?: string) =>
  ({ event_id, room_id: ROOM, type, sender, state_key, content, prev_events: prev, auth_events: auth, origin_server_ts: ++ts });

/** A v10 room: create, Alice joins, power levels, public join rule. */
const room = () => [
  pdu('$create', 'm.room.create', ALICE, [], [], { creator: ALICE, room_version: '10' }, ''),
  pdu('$alice', 'm.room.member', ALICE, ['$create'], ['$create'], { membership: 'join' }, ALICE),
  pdu('$pl', 'm.room.power_levels', ALICE, ['$alice'], ['$create', '$alice'], { users: { [ALICE]: 100 } }, ''),
  pdu('$rules', 'm.room.join_rules', ALICE, ['$pl'], ['$create', '$alice', '$pl'], { join_rule: 'public' }, ''),
];

describe('replayRoom forward extremities', () => {
  it('a rejected tip is not an extremity; its parent stays one', () => {
    const result = replayRoom([...room(), pdu('$spam', 'm.room.message', MALLORY, ['$rules'], ['$create', '$pl'], { body: 'x' })]);
    expect(result.rejected.map((r) => [r.event_id, r.reason.code])).toEqual([['$spam', 'sender_not_joined']]);
    expect(result.forwardExtremities).toEqual(['$rules']);
  });

  it('an accepted event built on a rejected one covers what the rejected one built on', () => {
    const result = replayRoom([
      ...room(),
      pdu('$spam', 'm.room.message', MALLORY, ['$rules'], ['$create', '$pl'], { body: 'x' }),
      pdu('$reply', 'm.room.message', ALICE, ['$spam'], ['$create', '$pl', '$alice'], { body: 'y' }),
    ]);
    expect(result.rejected.map((r) => r.event_id)).toEqual(['$spam']);
    expect(result.forwardExtremities).toEqual(['$reply']);
    expect(result.state.map((s) => s.event_id).sort()).toEqual(['$alice', '$create', '$pl', '$rules']);
  });

  it('forks stay forks', () => {
    const result = replayRoom([
      ...room(),
      pdu('$x', 'm.room.message', ALICE, ['$rules'], ['$create', '$pl', '$alice'], { body: 'x' }),
      pdu('$y', 'm.room.message', ALICE, ['$rules'], ['$create', '$pl', '$alice'], { body: 'y' }),
    ]);
    expect(result.forwardExtremities).toEqual(['$x', '$y']);
  });
});
