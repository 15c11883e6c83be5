// Issue 14 against a live Synapse: space hierarchies across the two servers, both ways (each server asks the
// other's federation /hierarchy for the rooms it is not in), and room upgrades followed across federation both
// ways (to room version 12, whose room IDs name no server: the tombstone's sender is the way in). They run on the
// peers of fedgate-synapse-rooms.spec.ts: a Synapse and a fedgate of their own would cost a start-up for 4 tests.
import { Preset, type MatrixClient } from 'matrix-js-sdk';
import type { SynapseUser } from '@fedgate/testing';
import type { AliceAndBob } from './support/alice-and-bob';
import { eventually, initialSync, membershipIs, WAIT_MS, type Peers } from './support/peers';

/** The scenarios on `the()` peers and users, read once the including file's beforeAll has set them. */
export function describeSpacesAndUpgrades(the: () => AliceAndBob & { peers: Peers }): void {
  describe('fedgate and Synapse: spaces and room upgrades', () => {
    let peers: Peers;
    let alice: SynapseUser; // a Synapse user
    let aliceClient: MatrixClient;
    let bob: string; // a fedgate user (bridge virtual user)
    let bobClient: MatrixClient;

    beforeAll(() => {
      ({ peers, alice, aliceClient, bob, bobClient } = the());
    });

    const publicRoom = (client: MatrixClient, name: string, space = false) =>
      client.createRoom({ preset: Preset.PublicChat, name, room_version: '11', ...(space ? { creation_content: { type: 'm.space' } } : {}) }).then((r) => r.room_id);
    const roomIds = (rooms: Array<{ room_id: string }>) => rooms.map((r) => r.room_id);

    it('a Synapse space with a child room on fedgate: both servers serve the hierarchy, each asking the other for what it is not in', async () => {
      const space = await publicRoom(aliceClient, 'Synapse space', true);
      const child = await publicRoom(bobClient, 'Subspace on fedgate', true);
      const grandchild = await publicRoom(bobClient, 'Room on fedgate');
      const secret = (await bobClient.createRoom({ preset: Preset.PrivateChat, name: 'Closed room on fedgate', room_version: '11' })).room_id;
      await aliceClient.sendStateEvent(space, 'm.space.child' as never, { via: [peers.fedgate.serverName], suggested: true } as never, child);
      await bobClient.sendStateEvent(child, 'm.space.child' as never, { via: [peers.fedgate.serverName], order: 'a' } as never, grandchild);
      await bobClient.sendStateEvent(child, 'm.space.child' as never, { via: [peers.fedgate.serverName], order: 'b' } as never, secret);

      // Synapse is in neither fedgate room: it asks fedgate's federation /hierarchy, which names the closed room inaccessible.
      const atSynapse = await eventually(() => aliceClient.getRoomHierarchy(space), (h) => roomIds(h?.rooms ?? []).includes(grandchild));
      expect(roomIds(atSynapse.rooms)).toEqual([space, child, grandchild]);
      expect(atSynapse.rooms[1]).toMatchObject({ name: 'Subspace on fedgate', room_type: 'm.space', join_rule: 'public' });
      expect(atSynapse.rooms[2]).toMatchObject({ name: 'Room on fedgate' });

      // fedgate is not in the space: it asks Synapse's federation /hierarchy; the rest are its own rooms.
      const atFedgate = await bobClient.getRoomHierarchy(space);
      expect(roomIds(atFedgate.rooms)).toEqual([space, child, grandchild, secret]);
      expect(atFedgate.rooms[0]).toMatchObject({ name: 'Synapse space', room_type: 'm.space' });
      expect(atFedgate.rooms[0].children_state.map((c) => c.state_key)).toEqual([child]);
      expect(roomIds((await bobClient.getRoomHierarchy(space, undefined, 1)).rooms)).toEqual([space, child]);
      expect(roomIds((await bobClient.getRoomHierarchy(space, undefined, undefined, true)).rooms)).toEqual([space, child]);
    });

    it('a fedgate space with a child room on Synapse: both servers serve the hierarchy', async () => {
      const space = await publicRoom(bobClient, 'fedgate space', true);
      const child = await publicRoom(aliceClient, 'Room on Synapse');
      const closed = (await aliceClient.createRoom({ preset: Preset.PrivateChat, name: 'Closed room on Synapse', room_version: '11' })).room_id;
      await bobClient.sendStateEvent(space, 'm.space.child' as never, { via: [peers.synapse.serverName], order: 'a' } as never, child);
      await bobClient.sendStateEvent(space, 'm.space.child' as never, { via: [peers.synapse.serverName], order: 'b' } as never, closed);

      // fedgate asks Synapse about the children; the closed one is not served to bob.
      const atFedgate = await bobClient.getRoomHierarchy(space);
      expect(roomIds(atFedgate.rooms)).toEqual([space, child]);
      expect(atFedgate.rooms[1]).toMatchObject({ name: 'Room on Synapse' });

      // Synapse serves the hierarchy of rooms it is in only: alice joins the space first.
      await aliceClient.joinRoom(space, { viaServers: [peers.fedgate.serverName] });
      const atSynapse = await eventually(() => aliceClient.getRoomHierarchy(space), (h) => roomIds(h?.rooms ?? []).includes(space));
      expect(roomIds(atSynapse.rooms)).toEqual([space, child, closed]);
      expect(atSynapse.rooms[0]).toMatchObject({ name: 'fedgate space', room_type: 'm.space' });
      // Pagination on fedgate: one room a page.
      const first = await bobClient.getRoomHierarchy(space, 1);
      expect(roomIds(first.rooms)).toEqual([space]);
      const second = await bobClient.getRoomHierarchy(space, 1, undefined, undefined, first.next_batch);
      expect(roomIds(second.rooms)).toEqual([child]);
    });

    it('Synapse upgrades a shared room to v12: the bridge is told by the tombstone, and the fedgate user follows it', async () => {
      const oldRoom = (await aliceClient.createRoom({ preset: Preset.PublicChat, room_version: '10', name: 'To upgrade on Synapse' })).room_id;
      await bobClient.joinRoom(oldRoom, { viaServers: [peers.synapse.serverName] });
      await eventually(() => aliceClient.getJoinedRoomMembers(oldRoom), (r) => bob in (r?.joined ?? {}));

      const { replacement_room: newRoom } = await aliceClient.upgradeRoom(oldRoom, '12');
      const tombstone = await peers.bridge.waitForEvent((e) => e.room_id === oldRoom && e.type === 'm.room.tombstone', WAIT_MS);
      expect(tombstone.content).toMatchObject({ replacement_room: newRoom });
      // A v12 room ID names no server: no via given, fedgate joins through the tombstone's sender.
      await bobClient.joinRoom(newRoom);
      await eventually(() => aliceClient.getJoinedRoomMembers(newRoom), (r) => bob in (r?.joined ?? {}));
      const create = await bobClient.getStateEvent(newRoom, 'm.room.create', '');
      expect(create).toMatchObject({ room_version: '12', predecessor: { room_id: oldRoom } });
    });

    it('fedgate upgrades a shared room to v12: the Synapse user sees the tombstone and follows it', async () => {
      const oldRoom = (await bobClient.createRoom({ preset: Preset.PrivateChat, room_version: '10', name: 'To upgrade on fedgate' })).room_id;
      await bobClient.invite(oldRoom, alice.userId);
      await eventually(() => initialSync(aliceClient), (s) => oldRoom in (s?.rooms?.invite ?? {}));
      await aliceClient.joinRoom(oldRoom, { viaServers: [peers.fedgate.serverName] });
      await peers.bridge.waitForEvent((e) => e.room_id === oldRoom && membershipIs(alice.userId, 'join')(e), WAIT_MS);

      const { replacement_room: newRoom } = await bobClient.upgradeRoom(oldRoom, '12');
      const tombstone = await eventually(() => aliceClient.getStateEvent(oldRoom, 'm.room.tombstone', '').catch(() => undefined), (t) => t?.replacement_room === newRoom);
      expect(tombstone).toMatchObject({ replacement_room: newRoom });
      // The old room was invite-only: Synapse's user is not local to fedgate, so it joins by the new room's rule;
      // bob invites alice as a bridge would, and she joins through fedgate.
      await bobClient.invite(newRoom, alice.userId);
      await eventually(() => initialSync(aliceClient), (s) => newRoom in (s?.rooms?.invite ?? {}));
      await aliceClient.joinRoom(newRoom, { viaServers: [peers.fedgate.serverName] });
      await peers.bridge.waitForEvent((e) => e.room_id === newRoom && membershipIs(alice.userId, 'join')(e), WAIT_MS);
      const create = await aliceClient.getStateEvent(newRoom, 'm.room.create', '');
      expect(create).toMatchObject({ room_version: '12', predecessor: { room_id: oldRoom } });
      expect(await aliceClient.getStateEvent(newRoom, 'm.room.name', '')).toEqual({ name: 'To upgrade on fedgate' });
      // The old room is closed to ordinary members now.
      await expect(aliceClient.sendTextMessage(oldRoom, 'still here?')).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    });
  });
}
