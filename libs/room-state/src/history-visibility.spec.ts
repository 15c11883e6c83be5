import { historyVisibilityOf, mayViewEvent, type HistoryVisibility, type VisibilityFacts } from './history-visibility';

const at = (visibility: HistoryVisibility, ...memberships: string[]) => ({ visibility, memberships });
const same = (visibility: HistoryVisibility, memberships: string[], inRoomNow: boolean): VisibilityFacts => ({ before: at(visibility, ...memberships), after: at(visibility, ...memberships), inRoomNow });

describe('history visibility (spec: client-server Room History Visibility, server behaviour)', () => {
  const cases: Array<[string, VisibilityFacts, boolean]> = [
    ['world_readable: anyone, never a member', same('world_readable', [], false), true],
    ['shared: a viewer in the room now sees earlier events', same('shared', [], true), true],
    ['shared: a viewer never in the room does not', same('shared', [], false), false],
    ['shared: a viewer who has left sees what it saw as a member', same('shared', ['join'], false), true],
    ['shared: a viewer who left since does not see events from before it joined', same('shared', ['leave'], false), false],
    ['invited: an invitee at the event sees it', same('invited', ['invite'], true), true],
    ['invited: joined now, not invited at the event', same('invited', [], true), false],
    ['joined: an invitee at the event does not see it', same('joined', ['invite'], true), false],
    ['joined: a member at the event sees it', same('joined', ['join'], false), true],
    ['joined: left at the event, back in the room now', same('joined', ['leave'], true), false],
    ['joined: a server with one joined user among others', same('joined', ['leave', 'join', 'ban'], true), true],
    ['joined: a server whose users were all invited', same('joined', ['invite', 'invite'], true), false],
    ['history visibility change world_readable → joined, seen by a non-member', { before: at('world_readable'), after: at('joined'), inRoomNow: false }, true],
    ['history visibility change joined → world_readable, seen by a non-member', { before: at('joined'), after: at('world_readable'), inRoomNow: false }, true],
    ['history visibility change joined → invited, not seen by a non-member', { before: at('joined'), after: at('invited'), inRoomNow: true }, false],
    ["the viewer's own join under joined", { before: at('joined', 'invite'), after: at('joined', 'join'), inRoomNow: true }, true],
    ["the viewer's own leave under joined", { before: at('joined', 'join'), after: at('joined', 'leave'), inRoomNow: false }, true],
    ["the viewer's own ban while invited under joined", { before: at('joined', 'invite'), after: at('joined', 'ban'), inRoomNow: false }, false],
  ];
  it.each(cases)('%s', (_name, facts, expected) => {
    expect(mayViewEvent(facts)).toBe(expected);
  });

  it.each([
    [{ history_visibility: 'joined' }, 'joined'],
    [{ history_visibility: 'world_readable' }, 'world_readable'],
    [{ history_visibility: 'secret' }, 'shared'],
    [{ history_visibility: 3 }, 'shared'],
    [{}, 'shared'],
    [undefined, 'shared'],
  ])('reads %j as %s (absent or not understood is shared)', (content, expected) => {
    expect(historyVisibilityOf(content)).toBe(expected);
  });
});
