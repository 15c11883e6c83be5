// Egress catch-up and the reads share one visibility rule (EventVisibility over room-state's mayViewEvent);
// for sending, an event whose state is not known is withheld rather than judged as `shared`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../sqlite/store';
import { stateTupleKey } from '../ports/state';
import type { Store } from '../ports/store';
import { EventVisibility } from './event-visibility';

const ROOM = '!v:own.test';
const REMOTE = 'remote.test';

describe('EventVisibility for a server (egress catch-up)', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'event-visibility-'));
    store = openSqliteStore(path.join(dir, 'store.sqlite'));
    await store.rooms.setJoinedServers(ROOM, ['own.test', REMOTE]);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function event(eventId: string, type: string, stateKey: string | undefined, content: Record<string, unknown>): Promise<void> {
    await store.events.append({
      eventId, roomId: ROOM, type, stateKey, depth: 1, prevEventIds: [], authEventIds: [],
      pdu: { room_id: ROOM, type, sender: '@a:own.test', ...(stateKey === undefined ? {} : { state_key: stateKey }), content, depth: 1, prev_events: [], auth_events: [], origin_server_ts: 1 } as never,
      status: 'accepted', outlier: false, receivedTs: 1,
    });
  }

  async function withState(eventId: string, visibility: string, membership: string): Promise<void> {
    await event(`${eventId}-hv`, 'm.room.history_visibility', '', { history_visibility: visibility });
    await event(`${eventId}-m`, 'm.room.member', `@r:${REMOTE}`, { membership });
    await event(eventId, 'm.room.message', undefined, { body: eventId });
    const snapshot = await store.state.save(ROOM, new Map([
      [stateTupleKey('m.room.history_visibility', ''), `${eventId}-hv`],
      [stateTupleKey('m.room.member', `@r:${REMOTE}`), `${eventId}-m`],
    ]));
    await store.state.setForEvent(eventId, { before: snapshot, after: snapshot });
  }

  it('judges by history visibility and the server\'s memberships at the event', async () => {
    await withState('$joined-member', 'joined', 'join');
    await withState('$joined-left', 'joined', 'leave');
    await withState('$shared-left', 'shared', 'leave');
    const v = new EventVisibility(store, { serverName: REMOTE });
    expect(await v.sendable('$joined-member', ROOM)).toBe('visible');
    expect(await v.sendable('$joined-left', ROOM)).toBe('not_visible');
    expect(await v.sendable('$shared-left', ROOM)).toBe('visible'); // in the room now
  });

  it('an event with no known state is not sendable (state_unknown), though a read counts it as shared', async () => {
    await event('$no-state', 'm.room.message', undefined, { body: 'x' });
    const v = new EventVisibility(store, { serverName: REMOTE });
    expect(await v.sendable('$no-state', ROOM)).toBe('state_unknown');
    expect(await v.mayView((await store.events.get('$no-state'))!)).toBe(true);
  });
});
