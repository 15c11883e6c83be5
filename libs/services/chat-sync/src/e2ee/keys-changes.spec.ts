// Issue 13: /keys/changes reads the device-list change log between two tokens, for the users the requester
// shares a room with (changed) and those who joined or left rooms and share none with them now (left).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore, type Store } from '@fedgate/store';
import { RoomView } from '../rooms/room-view';
import { KeysController } from './keys.controller';

const ALICE = '@chat_alice:gw.test';
const BOB = '@bob:remote.test';
const CAROL = '@carol:remote.test';

describe('/keys/changes (issue 13)', () => {
  let dir: string;
  let store: Store;
  let controller: KeysController;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'keys-changes-'));
    store = openSqliteStore(path.join(dir, 'store.db'));
    // Alice shares one room with Bob (the rooms' current state, as the room view reads it).
    const view = {
      ...store,
      memberships: { roomsOf: async (userId: string) => (userId === ALICE ? ['!room:gw.test'] : []) },
    } as unknown as Store;
    controller = new KeysController(view, { serverName: 'gw.test' } as never, {} as never, {} as never, {} as never);
    jest.spyOn(RoomView.prototype, 'joinedMembers').mockImplementation(async () => [ALICE, BOB]);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists users sharing a room whose lists changed, and users who left and share none, between the tokens', async () => {
    await store.deviceLists.recordChange(BOB, 'remote');
    const middle = await store.deviceLists.latestPosition();
    await store.deviceLists.recordChange(CAROL, 'remote');
    await store.deviceLists.recordChange(CAROL, 'membership');
    await store.deviceKeys.putDevice(ALICE, 'PHONE');
    await store.deviceLists.recordChange(BOB, 'membership');
    const changes = (query: Record<string, unknown>) => controller.changes({ userId: ALICE } as never, query);
    expect(await changes({ from: 'dl0' })).toEqual({ changed: [BOB, ALICE].sort(), left: [CAROL] });
    expect(await changes({ from: `dl${middle}` })).toEqual({ changed: [BOB, ALICE].sort(), left: [CAROL] });
    expect(await changes({ from: 'dl0', to: `dl${middle}` })).toEqual({ changed: [BOB], left: [] });
    await expect(changes({})).rejects.toMatchObject({ errcode: 'M_MISSING_PARAM' });
    await expect(changes({ from: 's72594_4483' })).rejects.toMatchObject({ errcode: 'M_INVALID_PARAM' });
  });
});
