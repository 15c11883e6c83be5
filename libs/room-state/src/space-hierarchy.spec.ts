import { childLinks, stateOf, summaryAllowsUser, userMayPeekOrJoin, type SummaryStateEvent } from './space-hierarchy';

const child = (roomId: string, ts: number, content: Record<string, unknown>): SummaryStateEvent => ({ type: 'm.space.child', state_key: roomId, sender: '@a:x', origin_server_ts: ts, content });
const state = (type: string, stateKey: string, content: Record<string, unknown>): SummaryStateEvent => ({ type, state_key: stateKey, sender: '@a:x', origin_server_ts: 1, content });

describe('space hierarchy rules', () => {
  it('orders children as the spec example does', () => {
    const links = childLinks(
      stateOf([
        child('!b:example.org', 1640341000000, { order: ' ', via: ['example.org'] }),
        child('!a:example.org', 1640141000000, { order: 'aaaa', via: ['example.org'] }),
        child('!c:example.org', 1640841000000, { order: 'first', via: ['example.org'] }),
        child('!e:example.org', 1640641000000, { via: ['example.org'] }),
        child('!d:example.org', 1640741000000, { via: ['example.org'] }),
        // An `order` with a character outside \x20-\x7E is no valid order; equal timestamps fall back to the room ID.
        child('!g:example.org', 1640741000000, { order: 'ü', via: ['example.org'] }),
        child('!f:example.org', 1640741000000, { via: [] }),
      ]),
    );
    expect(links.map((l) => l.state_key)).toEqual(['!b:example.org', '!a:example.org', '!c:example.org', '!e:example.org', '!d:example.org', '!g:example.org']);
  });

  it('lets a user see a room they are in, invited to, may join or knock on, or may peek; never when banned', () => {
    const room = (joinRule: string, extra: SummaryStateEvent[] = []) => stateOf([state('m.room.join_rules', '', { join_rule: joinRule, allow: [{ type: 'm.room_membership', room_id: '!parent:x' }] }), ...extra]);
    const may = (s: ReturnType<typeof room>, joined: string[] = []) => userMayPeekOrJoin({ userId: '@u:x', state: s, userJoinedTo: (id) => joined.includes(id) });
    expect(may(room('public'))).toBe(true);
    expect(may(room('knock'))).toBe(true);
    expect(may(room('invite'))).toBe(false);
    expect(may(room('invite', [state('m.room.member', '@u:x', { membership: 'invite' })]))).toBe(true);
    expect(may(room('invite', [state('m.room.history_visibility', '', { history_visibility: 'world_readable' })]))).toBe(true);
    expect(may(room('restricted'))).toBe(false);
    expect(may(room('restricted'), ['!parent:x'])).toBe(true);
    expect(may(room('public', [state('m.room.member', '@u:x', { membership: 'ban' })]))).toBe(false);
    expect(summaryAllowsUser({ join_rule: 'restricted', world_readable: false, allowed_room_ids: ['!parent:x'] }, () => false)).toBe(false);
  });
});
