// fedgate against a live Synapse when things go wrong or were before: history on request, events whose
// prev events fedgate never saw, each side down for a while, and server ACLs set on one side honoured by
// the other (tested with a third server named by an IP literal, since both peers are `localhost:<port>`
// and ACLs match host names without ports). docs/interop.md lists the scenarios.
import { Preset, type MatrixClient } from 'matrix-js-sdk';
import { readFileSync } from 'node:fs';
import { FakeRemoteServer, type SynapseUser } from '@fedgate/testing';
import { registerAliceAndBob, synapseRoomWithBob as roomOnSynapseWithBob } from './support/alice-and-bob';
import { eventSeenBy, eventually, currentStateIds, membershipIs, startPeers, stopPeers, synapseHasFullState, timelineBodies, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(180_000);

const NAME = 'resilience';

describe('fedgate and Synapse: history, gaps, outages, ACLs', () => {
  let peers: Peers;
  let alice: SynapseUser;
  let aliceClient: MatrixClient;
  let bob: string;
  let bobClient: MatrixClient;

  beforeAll(async () => {
    peers = await startPeers(NAME, {
      synapseConfig: {
        // A transaction to an unreachable fedgate fails at once (no in-request retries), so Synapse marks
        // it down and later catches up with the newest event only: the gap fedgate has to fill.
        federation: { max_short_retries: 0, max_long_retries: 0 },
        // Lets Synapse dial the ACL tests' third server, which is named by an IP literal. (Set, this
        // list replaces ip_range_blacklist for federation; empty, nothing on loopback is refused.)
        federation_ip_range_blacklist: [],
      },
    });
    ({ alice, aliceClient, bob, bobClient } = await registerAliceAndBob(peers, NAME));
  }, 600_000);

  afterAll(async () => {
    await stopPeers(NAME, peers ?? {});
  }, 60_000);

  const synapseRoomWithBob = () => roomOnSynapseWithBob(peers, { aliceClient, bob, bobClient }, '12');

  function synapseLogHas(text: string): boolean {
    return readFileSync(peers.synapse.logPath, 'utf8').includes(text);
  }

  /** How often Synapse served fedgate a federation request on this path so far. */
  function synapseServed(pathPart: string): number {
    return readFileSync(peers.synapse.logPath, 'utf8').split('\n').filter((line) => line.includes('Processed request') && line.includes(pathPart) && line.includes('" "fedgate')).length;
  }

  it('backfill: a fedgate user joining a Synapse room with history sees that history on request (fedgate asks Synapse /backfill)', async () => {
    const { room_id: roomId } = await aliceClient.createRoom({ room_version: '12', preset: Preset.PublicChat });
    for (let i = 0; i < 8; i++) await aliceClient.sendTextMessage(roomId, `history ${i}`);
    await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
    const backfillsBefore = synapseServed('/backfill/');
    const bodies = await eventually(() => timelineBodies(bobClient, roomId), (b) => b.length >= 8);
    expect(bodies.slice(0, 8)).toEqual(Array.from({ length: 8 }, (_, i) => `history ${i}`));
    expect(synapseServed('/backfill/')).toBeGreaterThan(backfillsBefore);
    // History is not new: the bridge was never pushed the messages from before the join.
    expect(peers.bridge.received.events((e) => e.room_id === roomId && e.type === 'm.room.message')).toEqual([]);
  });

  it('gaps: Synapse sends an event whose prev events fedgate has not seen; fedgate fetches them (get_missing_events)', async () => {
    const roomId = await synapseRoomWithBob();
    const missingEventsBefore = synapseServed('/get_missing_events/');
    await peers.fedgate.stop();
    const sent = [(await aliceClient.sendTextMessage(roomId, 'while fedgate was away 0')).event_id];
    for (let i = 1; i < 4; i++) sent.push((await aliceClient.sendTextMessage(roomId, `while fedgate was away ${i}`)).event_id);
    await eventually(async () => synapseLogHas(`TX [${peers.fedgate.serverName}] Failed to send transaction`), (failed) => failed);
    // Synapse keeps the PDUs for a destination that failed in memory and resends them all when it is back.
    // A restart loses that queue, and what it catches up with later is not the messages above.
    await peers.synapse.restart();
    await peers.fedgate.start();
    // An inbound transaction from fedgate takes it out of Synapse's backoff…
    const back = await bobClient.sendTextMessage(roomId, 'fedgate is back');
    await eventSeenBy(aliceClient, roomId, back.event_id);
    // …and the next event from Synapse names prev events fedgate never received.
    sent.push((await aliceClient.sendTextMessage(roomId, 'after the gap')).event_id);
    for (const eventId of sent) await peers.bridge.waitForEvent((e) => e.event_id === eventId, 60_000);
    expect(sent.map((eventId) => peers.bridge.received.events((e) => e.event_id === eventId).length)).toEqual([1, 1, 1, 1, 1]);
    expect(synapseServed('/get_missing_events/')).toBeGreaterThan(missingEventsBefore);
    const bodies = (await timelineBodies(bobClient, roomId)).filter((b) => b.startsWith('while fedgate was away'));
    expect(bodies).toEqual(['while fedgate was away 0', 'while fedgate was away 1', 'while fedgate was away 2', 'while fedgate was away 3']);
  });

  it('outage: fedgate stopped while Synapse users talk and change state; Synapse\'s queue drains into it when it returns, everything once', async () => {
    const roomId = await synapseRoomWithBob();
    await peers.fedgate.stop();
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) sent.push((await aliceClient.sendTextMessage(roomId, `queued at Synapse ${i}`)).event_id);
    sent.push((await aliceClient.setRoomTopic(roomId, 'topic set during the outage')).event_id);
    await peers.fedgate.start();
    await bobClient.sendTextMessage(roomId, 'fedgate is back again');
    for (const eventId of sent) await peers.bridge.waitForEvent((e) => e.event_id === eventId, 60_000);
    expect(sent.map((eventId) => peers.bridge.received.events((e) => e.event_id === eventId).length)).toEqual(sent.map(() => 1));
    const bodies = (await timelineBodies(bobClient, roomId)).filter((b) => b.startsWith('queued at Synapse'));
    expect(bodies).toEqual(Array.from({ length: 10 }, (_, i) => `queued at Synapse ${i}`));
    const states = await eventually(
      async () => ({ synapse: await currentStateIds(aliceClient, roomId), fedgate: await currentStateIds(bobClient, roomId) }),
      (s) => JSON.stringify(s.synapse) === JSON.stringify(s.fedgate),
    );
    expect(states.fedgate).toEqual(states.synapse);
  });

  it('outage: Synapse stopped while fedgate users talk, then started; everything arrives once', async () => {
    const roomId = await synapseRoomWithBob();
    const sent: string[] = [];
    await peers.synapse.restart(async () => {
      for (let i = 0; i < 10; i++) sent.push((await bobClient.sendTextMessage(roomId, `sent while Synapse was down ${i}`)).event_id);
      sent.push((await bobClient.sendEvent(roomId, 'm.reaction' as never, { 'm.relates_to': { rel_type: 'm.annotation', event_id: sent[0], key: '⏳' } } as never)).event_id);
    });
    for (const eventId of sent) expect(await eventSeenBy(aliceClient, roomId, eventId, 60_000)).toBeDefined();
    const bodies = await timelineBodies(aliceClient, roomId);
    expect(bodies.filter((b) => b.startsWith('sent while Synapse was down'))).toEqual(Array.from({ length: 10 }, (_, i) => `sent while Synapse was down ${i}`));
    // And the room still works both ways.
    const after = await aliceClient.sendTextMessage(roomId, 'Synapse is back');
    await peers.bridge.waitForEvent((e) => e.event_id === after.event_id, WAIT_MS);
  });

  describe('server ACLs', () => {
    let denied: FakeRemoteServer;
    beforeAll(async () => {
      // Named by an IP literal, so `allow_ip_literals: false` denies it and neither peer.
      denied = await FakeRemoteServer.start(peers.ca, '127.0.0.1');
    });
    afterAll(async () => {
      await denied?.stop();
    });
    const acl = { allow: ['*'], deny: [], allow_ip_literals: false };
    const makeJoin = (destination: string, roomId: string) =>
      denied.send(destination, 'GET', `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(`@mallory:${denied.serverName}`)}?ver=12`);

    it('an ACL set on Synapse is honoured by fedgate: the denied server may not join through fedgate', async () => {
      const { room_id: roomId } = await aliceClient.createRoom({ room_version: '12', preset: Preset.PublicChat });
      await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
      await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => bob in (r?.joined ?? {}));
      const before = await makeJoin(peers.fedgate.serverName, roomId);
      expect(before.status).toBe(200);
      const set = await aliceClient.sendStateEvent(roomId, 'm.room.server_acl' as never, acl as never, '');
      await peers.bridge.waitForEvent((e) => e.event_id === set.event_id, WAIT_MS);
      const after = await makeJoin(peers.fedgate.serverName, roomId);
      expect(after).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
      // The peers themselves are still allowed.
      const message = await bobClient.sendTextMessage(roomId, 'still allowed');
      expect(await eventSeenBy(aliceClient, roomId, message.event_id)).toBeDefined();
    });

    it('an ACL set on fedgate is honoured by Synapse: the denied server may not join through Synapse', async () => {
      const { room_id: roomId } = await bobClient.createRoom({ room_version: '12', preset: Preset.PublicChat });
      await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(alice.userId, 'join')(e), WAIT_MS);
      // Synapse joined with partial state: it serves make_join only once its resync is done.
      await synapseHasFullState(aliceClient, roomId);
      const before = await makeJoin(peers.synapse.serverName, roomId);
      expect(before.status).toBe(200);
      const set = await bobClient.sendStateEvent(roomId, 'm.room.server_acl' as never, acl as never, '');
      expect(await eventSeenBy(aliceClient, roomId, set.event_id)).toBeDefined();
      const after = await makeJoin(peers.synapse.serverName, roomId);
      expect(after).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
      const message = await aliceClient.sendTextMessage(roomId, 'still allowed');
      await peers.bridge.waitForEvent((e) => e.event_id === message.event_id, WAIT_MS);
    });
  });
});
