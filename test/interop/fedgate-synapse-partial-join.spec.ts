// Issue 14: fedgate joins a Synapse room of many members with a partial-state join (send_join v2,
// omit_members=true; Synapse as the resident serves it), sends and receives before its resync ends, and its
// state matches Synapse's after. One Synapse and one embedded fedgate for the file.
import { Preset, type MatrixClient } from 'matrix-js-sdk';
import { readFileSync } from 'node:fs';
import { openInstanceStore } from '@fedgate/testing';
import type { Store } from '@fedgate/store';
import { matrixClientFor } from './support/matrix-client';
import { registerAliceAndBob } from './support/alice-and-bob';
import { currentStateIds, eventually, membershipIs, startPeers, stopPeers, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(180_000);

const NAME = 'pjoin';
const MEMBERS = 40;

describe('fedgate joins a Synapse room with partial state', () => {
  let peers: Peers;
  let aliceClient: MatrixClient;
  let bobClient: MatrixClient;
  let store: Store;
  let roomId: string;

  beforeAll(async () => {
    peers = await startPeers(NAME);
    ({ aliceClient, bobClient } = await registerAliceAndBob(peers, NAME));
    store = await openInstanceStore(peers.fedgate);
    // A named public room (no heroes: the partial state holds no member but the joiner's) with MEMBERS users.
    ({ room_id: roomId } = await aliceClient.createRoom({ room_version: '10', preset: Preset.PublicChat, name: 'many members' }));
    for (let i = 0; i < MEMBERS; i++) {
      const member = await peers.synapse.registerUser(`member${i}`);
      await matrixClientFor(peers.synapse, member).joinRoom(roomId);
    }
  }, 600_000);

  afterAll(async () => {
    await store?.close();
    await stopPeers(NAME, peers ?? {});
  }, 60_000);

  it('joins with omit_members, is usable before the resync ends, and ends with the state Synapse has', async () => {
    await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    // The join went out as a partial-state join, and Synapse answered it so.
    const log = readFileSync(peers.synapse.logPath, 'utf8');
    expect(log).toMatch(/PUT \/_matrix\/federation\/v2\/send_join\/[^ ]*\?omit_members=true/);
    // Usable at once: bob sends, alice reads it; alice sends, the bridge receives it.
    const sent = await bobClient.sendTextMessage(roomId, 'hello from a partial-state room');
    await eventually(() => aliceClient.fetchRoomEvent(roomId, sent.event_id).catch(() => undefined), (e) => e !== undefined);
    const fromAlice = await aliceClient.sendTextMessage(roomId, 'welcome bob');
    await peers.bridge.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS);
    // The resync ends: no partial record, every member known, the same state as Synapse's.
    await eventually(() => store.partialStateRooms.get(roomId), (r) => r === undefined);
    const synapseState = await currentStateIds(aliceClient, roomId);
    const fedgateState = await eventually(() => currentStateIds(bobClient, roomId), (s) => JSON.stringify(s) === JSON.stringify(synapseState));
    expect(Object.keys(fedgateState).filter((k) => k.startsWith('m.room.member|'))).toHaveLength(MEMBERS + 2);
    expect(await store.rooms.getJoinedServers(roomId)).toEqual([peers.fedgate.serverName, peers.synapse.serverName].sort());
    // A member's leave after the resync reaches the bridge as any membership change does.
    const leaver = await peers.synapse.registerUser('leaver');
    const leaverClient = matrixClientFor(peers.synapse, leaver);
    await leaverClient.joinRoom(roomId);
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(leaver.userId, 'join')(e), WAIT_MS);
    await leaverClient.leave(roomId);
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(leaver.userId, 'leave')(e), WAIT_MS);
  });
});
