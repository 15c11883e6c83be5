// The two users most interop scenarios start with: Alice on Synapse and Bob, a virtual user of fedgate's test
// bridge, each with a client; and a room on Synapse the two share.
import { Preset, type MatrixClient } from 'matrix-js-sdk';
import type { SynapseUser } from '@fedgate/testing';
import { matrixClientFor } from './matrix-client';
import { eventually, membershipIs, startPeers, WAIT_MS, type Peers } from './peers';

export interface AliceAndBob {
  alice: SynapseUser;
  aliceClient: MatrixClient;
  /** Bob's user ID on fedgate. */
  bob: string;
  bobClient: MatrixClient;
}

/** Registers Alice on Synapse and Bob (`<name>chat_bob`) on the bridge. */
export async function registerAliceAndBob(peers: Peers, name: string): Promise<AliceAndBob> {
  const alice = await peers.synapse.registerUser('alice');
  const bob = await peers.bridge.registerVirtualUser(`${name}chat_bob`);
  return { alice, aliceClient: matrixClientFor(peers.synapse, alice), bob, bobClient: peers.bridge.asUser(bob) };
}

/** The peers of a test file (startPeers), then Alice and Bob registered on them. */
export async function startPeersWithAliceAndBob(name: string, options?: Parameters<typeof startPeers>[1]): Promise<AliceAndBob & { peers: Peers }> {
  const peers = await startPeers(name, options);
  return { peers, ...(await registerAliceAndBob(peers, name)) };
}

/** A private room Alice creates on Synapse, Bob invited and joined (Synapse sees him joined). */
export async function synapseRoomWithBob(peers: Peers, users: Omit<AliceAndBob, 'alice'>, roomVersion: string, options: Record<string, unknown> = {}): Promise<string> {
  const { aliceClient, bob, bobClient } = users;
  const { room_id: roomId } = await aliceClient.createRoom({ room_version: roomVersion, preset: Preset.PrivateChat, ...options });
  await aliceClient.invite(roomId, bob);
  await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
  await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
  await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => bob in (r?.joined ?? {}));
  return roomId;
}
