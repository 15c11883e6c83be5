// fedgate against a live Synapse: keys and signed requests, rooms of versions 10/11/12 created on either
// side, messages of every common shape, membership changes, concurrent state, EDUs, profile and alias
// queries, media; and, on the same peers, spaces and room upgrades (fedgate-synapse-spaces-scenarios.ts). Synapse
// users act through Synapse's client-server API (matrix-js-sdk); fedgate users are the test bridge's virtual users
// on fedgate's application-service API. docs/interop.md lists the scenarios.
import { Method, Preset, type MatrixClient } from 'matrix-js-sdk';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { verifyServerKeyDocument } from '@fedgate/protocol';
import { openInstanceStore, type SynapseUser } from '@fedgate/testing';
import { describeSpacesAndUpgrades } from './fedgate-synapse-spaces-scenarios';
import { startPeersWithAliceAndBob, synapseRoomWithBob as roomOnSynapseWithBob } from './support/alice-and-bob';
import { currentStateIds, eventSeenBy, eventually, federationGet, fromNowOn, initialSync, membershipIs, stopPeers, synapseHasFullState, timelineBodies, WAIT_MS, type Peers } from './support/peers';

jest.setTimeout(120_000);

const NAME = 'rooms';
const ROOM_VERSIONS = ['10', '11', '12'] as const;

describe('fedgate and Synapse: rooms, messages, membership, EDUs', () => {
  let peers: Peers;
  let alice: SynapseUser; // a Synapse user
  let aliceClient: MatrixClient;
  let bob: string; // a fedgate user (bridge virtual user)
  let bobClient: MatrixClient;

  beforeAll(async () => {
    ({ peers, alice, aliceClient, bob, bobClient } = await startPeersWithAliceAndBob(NAME));
  }, 600_000);

  afterAll(() => stopPeers(NAME, peers ?? {}), 60_000);

  /** A Synapse-hosted room of that version with bob (fedgate) invited and joined. */
  const synapseRoomWithBob = (roomVersion: string, options: Record<string, unknown> = {}) => roomOnSynapseWithBob(peers, { aliceClient, bob, bobClient }, roomVersion, options);

  /** A fedgate-hosted room of that version with alice (Synapse) invited and joined. */
  async function fedgateRoomWithAlice(roomVersion: string, options: Record<string, unknown> = {}): Promise<string> {
    const { room_id: roomId } = await bobClient.createRoom({ room_version: roomVersion, preset: Preset.PrivateChat, ...options });
    await bobClient.invite(roomId, alice.userId);
    const sync = await eventually(() => initialSync(aliceClient), (s) => roomId in (s?.rooms?.invite ?? {}));
    expect(Object.keys(sync.rooms?.invite ?? {})).toContain(roomId);
    await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
    await synapseHasFullState(aliceClient, roomId);
    await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(alice.userId, 'join')(e), WAIT_MS);
    return roomId;
  }

  describe('keys, request signing, discovery with explicit ports', () => {
    it('fedgate fetches Synapse\'s key document (as a notary for it) and the origin signature verifies', async () => {
      const { status, json } = await federationGet(peers.ca, `${peers.fedgate.federationUrl}/_matrix/key/v2/query/${encodeURIComponent(peers.synapse.serverName)}`);
      expect(status).toBe(200);
      const document = json.server_keys.find((k: { server_name: string }) => k.server_name === peers.synapse.serverName);
      expect(verifyServerKeyDocument(document, { serverName: peers.synapse.serverName }).verifyKeys.size).toBeGreaterThan(0);
    });

    it('signed requests are accepted both ways: profile queries over federation, audited as ok by fedgate', async () => {
      await aliceClient.setDisplayName('Alice on Synapse');
      await bobClient.setDisplayName('Bob on fedgate');
      // fedgate → Synapse (signed by fedgate, verified by Synapse).
      const aliceProfile = await bobClient.getProfileInfo(alice.userId);
      expect(aliceProfile).toMatchObject({ displayname: 'Alice on Synapse' });
      // Synapse → fedgate (signed by Synapse, verified by fedgate's key ring).
      const bobProfile = await aliceClient.getProfileInfo(bob);
      expect(bobProfile).toMatchObject({ displayname: 'Bob on fedgate' });
      const store = await openInstanceStore(peers.fedgate);
      try {
        // The audit record is written once the answer is out, so it may trail the response a little.
        const profileQueries = await eventually(
          async () => (await store.audit.query({ direction: 'in', origin: peers.synapse.serverName, limit: 100 })).filter((r) => r.outcome === 'ok' && r.path.includes('/query/profile')),
          (records) => Array.isArray(records) && records.length > 0,
        );
        expect(profileQueries.length).toBeGreaterThan(0);
      } finally {
        await store.close();
      }
    });

    it('Synapse, as a notary, serves fedgate\'s key document it fetched, and fedgate\'s own signature on it verifies', async () => {
      // Synapse's notary endpoint answers from its cache only; the profile query above made it fetch.
      const url = `${peers.synapse.federationUrl}/_matrix/key/v2/query/${encodeURIComponent(peers.fedgate.serverName)}`;
      const { status, json } = await eventually(() => federationGet(peers.ca, url), (r) => r.json?.server_keys?.length > 0);
      expect(status).toBe(200);
      const document = json.server_keys.find((k: { server_name: string }) => k.server_name === peers.fedgate.serverName);
      expect(verifyServerKeyDocument(document, { serverName: peers.fedgate.serverName }).verifyKeys.size).toBeGreaterThan(0);
      expect(Object.keys(document.signatures)).toContain(peers.synapse.serverName);
    });
  });

  describe.each(ROOM_VERSIONS)('room version %s', (roomVersion) => {
    it(`Synapse user creates a v${roomVersion} room and invites a fedgate user, who joins; a message each way`, async () => {
      const roomId = await synapseRoomWithBob(roomVersion);
      const fromAlice = await aliceClient.sendTextMessage(roomId, `hello from Synapse v${roomVersion}`);
      const atFedgate = await peers.bridge.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS);
      expect(atFedgate).toMatchObject({ room_id: roomId, sender: alice.userId, content: { body: `hello from Synapse v${roomVersion}` } });
      const fromBob = await bobClient.sendTextMessage(roomId, `hello from fedgate v${roomVersion}`);
      expect(await eventSeenBy(aliceClient, roomId, fromBob.event_id)).toMatchObject({ sender: bob, content: { body: `hello from fedgate v${roomVersion}` } });
      const create = await aliceClient.getStateEvent(roomId, 'm.room.create', '');
      expect(create.room_version).toBe(roomVersion);
    });

    it(`fedgate user creates a v${roomVersion} room and invites a Synapse user, who joins; a message each way`, async () => {
      const roomId = await fedgateRoomWithAlice(roomVersion);
      const fromBob = await bobClient.sendTextMessage(roomId, `hello from fedgate v${roomVersion}`);
      expect(await eventSeenBy(aliceClient, roomId, fromBob.event_id)).toMatchObject({ sender: bob, content: { body: `hello from fedgate v${roomVersion}` } });
      const fromAlice = await aliceClient.sendTextMessage(roomId, `hello from Synapse v${roomVersion}`);
      await peers.bridge.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS);
      expect((await aliceClient.getStateEvent(roomId, 'm.room.create', '')).room_version).toBe(roomVersion);
    });
  });

  describe('messages', () => {
    let roomId: string;
    beforeAll(async () => {
      roomId = await synapseRoomWithBob('12');
    });

    it('arrive in the order sent, both ways', async () => {
      const fromAlice: string[] = [];
      for (let i = 0; i < 5; i++) fromAlice.push((await aliceClient.sendTextMessage(roomId, `synapse ${i}`)).event_id);
      await peers.bridge.waitForEvent((e) => e.event_id === fromAlice[4], WAIT_MS);
      const order = peers.bridge.received.events((e) => fromAlice.includes(e.event_id)).map((e) => e.content.body);
      expect(order).toEqual(['synapse 0', 'synapse 1', 'synapse 2', 'synapse 3', 'synapse 4']);

      const fromBob: string[] = [];
      for (let i = 0; i < 5; i++) fromBob.push((await bobClient.sendTextMessage(roomId, `fedgate ${i}`)).event_id);
      await eventSeenBy(aliceClient, roomId, fromBob[4]!);
      const atSynapse = await eventually(() => timelineBodies(aliceClient, roomId), (b) => b.filter((x) => x.startsWith('fedgate ')).length === 5);
      expect(atSynapse.filter((x) => x.startsWith('fedgate '))).toEqual(['fedgate 0', 'fedgate 1', 'fedgate 2', 'fedgate 3', 'fedgate 4']);
      // And fedgate's own timeline interleaves both in the same order Synapse shows.
      const atFedgate = await timelineBodies(bobClient, roomId);
      expect(atFedgate.filter((x) => /^(synapse|fedgate) \d$/.test(x))).toEqual(atSynapse.filter((x) => /^(synapse|fedgate) \d$/.test(x)));
    });

    const formatted = (who: string) => ({ msgtype: 'm.text', body: `**bold** from ${who}`, format: 'org.matrix.custom.html', formatted_body: `<strong>bold</strong> from ${who}` });

    it('formatted bodies, replies, edits, reactions and mentions from Synapse reach fedgate intact', async () => {
      const original = await aliceClient.sendMessage(roomId, formatted('synapse') as never);
      const reply = await aliceClient.sendMessage(roomId, { msgtype: 'm.text', body: 'a reply', 'm.relates_to': { 'm.in_reply_to': { event_id: original.event_id } } } as never);
      const edit = await aliceClient.sendMessage(roomId, {
        msgtype: 'm.text',
        body: '* edited',
        'm.new_content': { msgtype: 'm.text', body: 'edited' },
        'm.relates_to': { rel_type: 'm.replace', event_id: original.event_id },
      } as never);
      const reaction = await aliceClient.sendEvent(roomId, 'm.reaction' as never, { 'm.relates_to': { rel_type: 'm.annotation', event_id: original.event_id, key: '👍' } } as never);
      const mention = await aliceClient.sendMessage(roomId, { msgtype: 'm.text', body: `hey ${bob}`, 'm.mentions': { user_ids: [bob] } } as never);

      const seen = async (eventId: string) => peers.bridge.waitForEvent((e) => e.event_id === eventId, WAIT_MS);
      expect((await seen(original.event_id)).content).toEqual(formatted('synapse'));
      expect((await seen(reply.event_id)).content['m.relates_to']).toEqual({ 'm.in_reply_to': { event_id: original.event_id } });
      expect((await seen(edit.event_id)).content).toMatchObject({ 'm.new_content': { body: 'edited' }, 'm.relates_to': { rel_type: 'm.replace', event_id: original.event_id } });
      expect(await seen(reaction.event_id)).toMatchObject({ type: 'm.reaction', content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: original.event_id, key: '👍' } } });
      expect((await seen(mention.event_id)).content['m.mentions']).toEqual({ user_ids: [bob] });
    });

    it('formatted bodies, replies, edits, reactions and mentions from fedgate reach Synapse intact', async () => {
      const original = await bobClient.sendMessage(roomId, formatted('fedgate') as never);
      const reply = await bobClient.sendMessage(roomId, { msgtype: 'm.text', body: 'a reply', 'm.relates_to': { 'm.in_reply_to': { event_id: original.event_id } } } as never);
      const edit = await bobClient.sendMessage(roomId, {
        msgtype: 'm.text',
        body: '* edited',
        'm.new_content': { msgtype: 'm.text', body: 'edited' },
        'm.relates_to': { rel_type: 'm.replace', event_id: original.event_id },
      } as never);
      const reaction = await bobClient.sendEvent(roomId, 'm.reaction' as never, { 'm.relates_to': { rel_type: 'm.annotation', event_id: original.event_id, key: '🎉' } } as never);
      const mention = await bobClient.sendMessage(roomId, { msgtype: 'm.text', body: `hey ${alice.userId}`, 'm.mentions': { user_ids: [alice.userId] } } as never);

      const seen = async (eventId: string) => (await eventSeenBy(aliceClient, roomId, eventId)) ?? {};
      expect((await seen(original.event_id)).content).toEqual(formatted('fedgate'));
      expect((await seen(reply.event_id)).content?.['m.relates_to']).toEqual({ 'm.in_reply_to': { event_id: original.event_id } });
      expect((await seen(edit.event_id)).content).toMatchObject({ 'm.new_content': { body: 'edited' } });
      expect(await seen(reaction.event_id)).toMatchObject({ type: 'm.reaction', content: { 'm.relates_to': { key: '🎉' } } });
      expect((await seen(mention.event_id)).content?.['m.mentions']).toEqual({ user_ids: [alice.userId] });
      // Synapse aggregates the relations it accepted: the edit and the reaction hang off the original.
      const relations = await aliceClient.http.authedRequest<{ chunk: Array<{ event_id: string }> }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(original.event_id)}`, undefined, undefined, { prefix: '/_matrix/client/v1' } as never);
      expect(relations.chunk.map((e) => e.event_id).sort()).toEqual([edit.event_id, reaction.event_id].sort());
    });

    it('redactions both ways: the redacted content is gone on the other side', async () => {
      const fromAlice = await aliceClient.sendTextMessage(roomId, 'synapse secret');
      await peers.bridge.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS);
      const aliceRedaction = await aliceClient.redactEvent(roomId, fromAlice.event_id);
      const atFedgate = await peers.bridge.waitForEvent((e) => e.event_id === aliceRedaction.event_id, WAIT_MS);
      expect(atFedgate.redacts ?? atFedgate.content?.redacts).toBe(fromAlice.event_id);

      const fromBob = await bobClient.sendTextMessage(roomId, 'fedgate secret');
      await eventSeenBy(aliceClient, roomId, fromBob.event_id);
      const bobRedaction = await bobClient.redactEvent(roomId, fromBob.event_id);
      await eventSeenBy(aliceClient, roomId, bobRedaction.event_id);
      const redactedAtSynapse = await eventually(() => aliceClient.fetchRoomEvent(roomId, fromBob.event_id), (e) => e?.content?.body === undefined);
      expect(redactedAtSynapse.content).toEqual({});
      expect(redactedAtSynapse.unsigned?.redacted_because?.event_id).toBe(bobRedaction.event_id);
    });

    it('redactions: fedgate serves the redacted event without its content afterwards, with redacted_because', async () => {
      const fromAlice = await aliceClient.sendTextMessage(roomId, 'synapse secret, later redacted');
      await peers.bridge.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS);
      const aliceRedaction = await aliceClient.redactEvent(roomId, fromAlice.event_id);
      await peers.bridge.waitForEvent((e) => e.event_id === aliceRedaction.event_id, WAIT_MS);
      const atFedgate = await eventually(() => bobClient.fetchRoomEvent(roomId, fromAlice.event_id), (e) => e?.content?.body === undefined);
      expect(atFedgate).toMatchObject({ content: {}, unsigned: { redacted_because: { event_id: aliceRedaction.event_id } } });

      const fromBob = await bobClient.sendTextMessage(roomId, 'fedgate secret, later redacted');
      const bobRedaction = await bobClient.redactEvent(roomId, fromBob.event_id);
      expect(await bobClient.fetchRoomEvent(roomId, fromBob.event_id)).toMatchObject({ content: {}, unsigned: { redacted_because: { event_id: bobRedaction.event_id } } });
    });
  });

  describe('membership', () => {
    it('in a Synapse room: fedgate user leaves, is re-invited and rejoins, is kicked, banned (join refused), unbanned and rejoins', async () => {
      const roomId = await synapseRoomWithBob('12');
      const atSynapse = (membership: string) =>
        eventually(() => aliceClient.getStateEvent(roomId, 'm.room.member', bob), (c) => c?.membership === membership).then((c) => c?.membership);

      await bobClient.leave(roomId);
      expect(await atSynapse('leave')).toBe('leave');
      const invited = (e: Record<string, any>) => e.room_id === roomId && membershipIs(bob, 'invite')(e);
      // fedgate is out of the room after bob left: the invite comes through /invite, as an outlier.
      let nextInvite = fromNowOn(peers.bridge, invited);
      await aliceClient.invite(roomId, bob);
      await peers.bridge.waitForEvent(nextInvite, WAIT_MS);
      await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
      expect(await atSynapse('join')).toBe('join');

      await aliceClient.kick(roomId, bob, 'kicked by Synapse');
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'leave')(e) && e.sender === alice.userId, WAIT_MS);
      // fedgate has no member left in the room: the ban and unban are Synapse's alone; the refusal shows it.
      await aliceClient.ban(roomId, bob, 'banned by Synapse');
      expect(await atSynapse('ban')).toBe('ban');
      await expect(bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] })).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });

      await aliceClient.unban(roomId, bob);
      expect(await atSynapse('leave')).toBe('leave');
      nextInvite = fromNowOn(peers.bridge, invited);
      await aliceClient.invite(roomId, bob);
      await peers.bridge.waitForEvent(nextInvite, WAIT_MS);
      await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
      expect(await atSynapse('join')).toBe('join');
    });

    it('in a fedgate room: Synapse user leaves, is re-invited and rejoins, is kicked, banned (join refused), unbanned and rejoins', async () => {
      const roomId = await fedgateRoomWithAlice('12');
      const atFedgate = (membership: string) =>
        eventually(() => bobClient.getStateEvent(roomId, 'm.room.member', alice.userId), (c) => c?.membership === membership).then((c) => c?.membership);
      const atSynapse = (membership: string) =>
        eventually(() => aliceClient.getStateEvent(roomId, 'm.room.member', alice.userId), (c) => c?.membership === membership).then((c) => c?.membership);

      await aliceClient.leave(roomId);
      expect(await atFedgate('leave')).toBe('leave');
      await bobClient.invite(roomId, alice.userId);
      await eventually(() => initialSync(aliceClient), (s) => roomId in (s?.rooms?.invite ?? {}));
      await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
      await synapseHasFullState(aliceClient, roomId);
      expect(await atFedgate('join')).toBe('join');

      await bobClient.kick(roomId, alice.userId, 'kicked by fedgate');
      expect(await eventually(() => initialSync(aliceClient), (s) => roomId in (s?.rooms?.leave ?? {})).then((s) => roomId in (s?.rooms?.leave ?? {}))).toBe(true);
      await bobClient.ban(roomId, alice.userId, 'banned by fedgate');
      expect(await atFedgate('ban')).toBe('ban');
      await expect(aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] })).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });

      await bobClient.unban(roomId, alice.userId);
      await bobClient.invite(roomId, alice.userId);
      await eventually(() => initialSync(aliceClient), (s) => roomId in (s?.rooms?.invite ?? {}));
      await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
      await synapseHasFullState(aliceClient, roomId);
      expect(await atFedgate('join')).toBe('join');
      expect(await atSynapse('join')).toBe('join');
    });

    it('invites rejected both ways: the inviter\'s server sees the leave', async () => {
      const { room_id: synapseRoom } = await aliceClient.createRoom({ room_version: '12', preset: Preset.PrivateChat });
      await aliceClient.invite(synapseRoom, bob);
      await peers.bridge.waitForEvent((e) => e.room_id === synapseRoom && membershipIs(bob, 'invite')(e), WAIT_MS);
      await bobClient.leave(synapseRoom);
      const atSynapse = await eventually(() => aliceClient.getStateEvent(synapseRoom, 'm.room.member', bob), (c) => c?.membership === 'leave');
      expect(atSynapse?.membership).toBe('leave');

      const { room_id: fedgateRoom } = await bobClient.createRoom({ room_version: '12', preset: Preset.PrivateChat });
      await bobClient.invite(fedgateRoom, alice.userId);
      await eventually(() => initialSync(aliceClient), (s) => fedgateRoom in (s?.rooms?.invite ?? {}));
      await aliceClient.leave(fedgateRoom);
      await peers.bridge.waitForEvent((e) => e.room_id === fedgateRoom && membershipIs(alice.userId, 'leave')(e), WAIT_MS);
    });

    it('issue 16 defect 5: a Synapse user\'s profile change reaches the bridge with unsigned.prev_content (a profile change, not a join)', async () => {
      const roomId = await synapseRoomWithBob('10');
      await aliceClient.sendStateEvent(roomId, 'm.room.member' as never, { membership: 'join', displayname: 'Alice the Second' } as never, alice.userId);
      const changed = await peers.bridge.waitForEvent((e) => e.room_id === roomId && e.state_key === alice.userId && e.content?.displayname === 'Alice the Second', WAIT_MS);
      expect(changed.unsigned).toMatchObject({ prev_content: { membership: 'join' }, prev_sender: alice.userId, replaces_state: expect.stringMatching(/^\$/) });
    });

    it('issue 16 defect 4: a Synapse user rescinds a fedgate user\'s invite (kick while invited): the leave reaches the bridge', async () => {
      const { room_id: roomId } = await aliceClient.createRoom({ room_version: '10', preset: Preset.PrivateChat });
      await aliceClient.invite(roomId, bob);
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
      await aliceClient.kick(roomId, bob, 'changed my mind');
      const rescinded = await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'leave')(e), WAIT_MS);
      expect(rescinded.sender).toBe(alice.userId);
    });

    it('complement "reject invite for empty room": a fedgate user rejects an invite after the inviter left (Synapse still serves make_leave; the local fallback is pinned in test/adversarial/complement-invites.spec.ts)', async () => {
      const { room_id: roomId } = await aliceClient.createRoom({ room_version: '12', preset: Preset.PrivateChat });
      await aliceClient.invite(roomId, bob);
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
      await aliceClient.leave(roomId);
      await bobClient.leave(roomId);
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'leave')(e), WAIT_MS);
    });

    it('a Synapse user knocks on a fedgate room with join_rule knock; the knock is seen and answered with an invite', async () => {
      const { room_id: roomId } = await bobClient.createRoom({ room_version: '12', preset: Preset.PrivateChat, initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] } as never);
      await aliceClient.knockRoom(roomId, { viaServers: [peers.fedgate.serverName], reason: 'let me in' } as never);
      const knock = await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(alice.userId, 'knock')(e), WAIT_MS);
      expect(knock.content.reason).toBe('let me in');
      await bobClient.invite(roomId, alice.userId);
      await eventually(() => initialSync(aliceClient), (s) => roomId in (s?.rooms?.invite ?? {}));
      await aliceClient.joinRoom(roomId, { viaServers: [peers.fedgate.serverName] });
      await synapseHasFullState(aliceClient, roomId);
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(alice.userId, 'join')(e), WAIT_MS);
    });

    it('a fedgate user knocks on a Synapse room with join_rule knock; Synapse sees the knock and the invite lets them join', async () => {
      const { room_id: roomId } = await aliceClient.createRoom({ room_version: '12', preset: Preset.PrivateChat, initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] } as never);
      await bobClient.knockRoom(roomId, { viaServers: [peers.synapse.serverName], reason: 'knock knock' } as never);
      const knock = await eventually(() => aliceClient.getStateEvent(roomId, 'm.room.member', bob), (c) => c?.membership === 'knock');
      expect(knock).toMatchObject({ membership: 'knock', reason: 'knock knock' });
      await aliceClient.invite(roomId, bob);
      await peers.bridge.waitForEvent((e) => e.room_id === roomId && membershipIs(bob, 'invite')(e), WAIT_MS);
      await bobClient.joinRoom(roomId, { viaServers: [peers.synapse.serverName] });
      const members = await eventually(() => aliceClient.getJoinedRoomMembers(roomId), (r) => bob in (r?.joined ?? {}));
      expect(Object.keys(members.joined)).toContain(bob);
    });
  });

  it('power levels, topic and name changed on both sides at once converge: both servers report the same state', async () => {
    const roomId = await synapseRoomWithBob('12');
    // Bob gets moderator rights to change state; wait until fedgate has applied that.
    const levels = await aliceClient.getStateEvent(roomId, 'm.room.power_levels', '');
    const raised = await aliceClient.sendStateEvent(roomId, 'm.room.power_levels' as never, { ...levels, users: { ...levels.users, [bob]: 100 } } as never, '');
    await peers.bridge.waitForEvent((e) => e.event_id === raised.event_id, WAIT_MS);

    const [fromAlice, fromBob] = await Promise.all([
      Promise.all([
        aliceClient.setRoomTopic(roomId, 'topic from Synapse'),
        aliceClient.setRoomName(roomId, 'name from Synapse'),
        aliceClient.sendStateEvent(roomId, 'm.room.power_levels' as never, { ...levels, users: { ...levels.users, [bob]: 100 }, events_default: 1 } as never, ''),
      ]),
      Promise.all([
        bobClient.setRoomTopic(roomId, 'topic from fedgate'),
        bobClient.setRoomName(roomId, 'name from fedgate'),
        bobClient.sendStateEvent(roomId, 'm.room.power_levels' as never, { ...levels, users: { ...levels.users, [bob]: 100 }, state_default: 60 } as never, ''),
      ]),
    ]);
    for (const sent of fromBob) await eventSeenBy(aliceClient, roomId, sent.event_id);
    for (const sent of fromAlice) await peers.bridge.waitForEvent((e) => e.event_id === sent.event_id, WAIT_MS);
    // Anything after the fork makes both sides merge it; then the states must be identical.
    await aliceClient.sendTextMessage(roomId, 'merge from Synapse');
    await bobClient.sendTextMessage(roomId, 'merge from fedgate');
    const states = await eventually(
      async () => ({ synapse: await currentStateIds(aliceClient, roomId), fedgate: await currentStateIds(bobClient, roomId) }),
      (s) => JSON.stringify(s.synapse) === JSON.stringify(s.fedgate),
    );
    expect(states.fedgate).toEqual(states.synapse);
    expect([...fromAlice, ...fromBob].map((e) => e.event_id)).toContain(states.synapse['m.room.topic|']);
  });

  describe('EDUs both ways', () => {
    let roomId: string;
    beforeAll(async () => {
      roomId = await synapseRoomWithBob('12');
    });

    it('typing: Synapse → fedgate and fedgate → Synapse', async () => {
      await aliceClient.sendTyping(roomId, true, 20_000);
      const typing = await peers.bridge.received.waitForEphemeral((e) => e.type === 'm.typing' && e.room_id === roomId && e.content?.user_ids?.includes(alice.userId), WAIT_MS);
      expect(typing.content.user_ids).toContain(alice.userId);

      await bobClient.sendTyping(roomId, true, 20_000);
      const sync = await eventually(() => initialSync(aliceClient), (s) => typingIn(s, roomId).includes(bob));
      expect(typingIn(sync, roomId)).toContain(bob);
    });

    it('read receipts: Synapse → fedgate and fedgate → Synapse', async () => {
      const fromBob = await bobClient.sendTextMessage(roomId, 'read me');
      await eventSeenBy(aliceClient, roomId, fromBob.event_id);
      await aliceClient.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(fromBob.event_id)}`, undefined, {});
      const receipt = await peers.bridge.received.waitForEphemeral((e) => e.type === 'm.receipt' && e.content?.[fromBob.event_id]?.['m.read']?.[alice.userId] !== undefined, WAIT_MS);
      expect(receipt.content[fromBob.event_id]['m.read'][alice.userId]).toHaveProperty('ts');

      const fromAlice = await aliceClient.sendTextMessage(roomId, 'read me too');
      await peers.bridge.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS);
      await bobClient.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(fromAlice.event_id)}`, undefined, {});
      const sync = await eventually(() => initialSync(aliceClient), (s) => readersOf(s, roomId, fromAlice.event_id).includes(bob));
      expect(readersOf(sync, roomId, fromAlice.event_id)).toContain(bob);
    });

    it('presence: Synapse → fedgate and fedgate → Synapse', async () => {
      await aliceClient.setPresence({ presence: 'online', status_msg: 'on Synapse' });
      const presence = await peers.bridge.received.waitForEphemeral((e) => e.type === 'm.presence' && e.sender === alice.userId && e.content?.status_msg === 'on Synapse', WAIT_MS);
      expect(presence.content.presence).toBe('online');

      await bobClient.setPresence({ presence: 'online', status_msg: 'on fedgate' });
      const atSynapse = await eventually(
        () => aliceClient.http.authedRequest<Record<string, any>>(Method.Get, `/presence/${encodeURIComponent(bob)}/status`),
        (p) => p?.status_msg === 'on fedgate',
      );
      expect(atSynapse).toMatchObject({ presence: 'online', status_msg: 'on fedgate' });
    });
  });

  describe('profile and alias queries both ways', () => {
    it('profiles: each side reads the other\'s display name over federation', async () => {
      await aliceClient.setDisplayName('Alice, queried');
      await bobClient.setDisplayName('Bob, queried');
      expect(await bobClient.getProfileInfo(alice.userId)).toMatchObject({ displayname: 'Alice, queried' });
      expect(await aliceClient.getProfileInfo(bob)).toMatchObject({ displayname: 'Bob, queried' });
    });

    it('aliases: each side resolves the other\'s room alias over federation, and joins by it', async () => {
      const synapseRoom = (await aliceClient.createRoom({ room_version: '12', preset: Preset.PublicChat, room_alias_name: 'interop-lobby' })).room_id;
      const synapseAlias = `#interop-lobby:${peers.synapse.serverName}`;
      const resolvedAtFedgate = await bobClient.getRoomIdForAlias(synapseAlias);
      expect(resolvedAtFedgate).toMatchObject({ room_id: synapseRoom, servers: expect.arrayContaining([peers.synapse.serverName]) });
      await bobClient.joinRoom(synapseAlias);
      await eventually(() => aliceClient.getJoinedRoomMembers(synapseRoom), (r) => bob in (r?.joined ?? {}));

      const fedgateRoom = (await bobClient.createRoom({ room_version: '12', preset: Preset.PublicChat })).room_id;
      const fedgateAlias = peers.bridge.aliasFor('lobby');
      await bobClient.createAlias(fedgateAlias, fedgateRoom);
      const resolvedAtSynapse = await aliceClient.getRoomIdForAlias(fedgateAlias);
      expect(resolvedAtSynapse).toMatchObject({ room_id: fedgateRoom, servers: expect.arrayContaining([peers.fedgate.serverName]) });
      await aliceClient.joinRoom(fedgateAlias);
      await peers.bridge.waitForEvent((e) => e.room_id === fedgateRoom && membershipIs(alice.userId, 'join')(e), WAIT_MS);
    });
  });

  describe('media', () => {
    let image: Buffer;
    beforeAll(async () => {
      image = await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 200, g: 40, b: 40 } } }).png().toBuffer();
    });

    /** A client-server media call with a bearer token; the bytes and the content type. */
    async function media(url: string, token: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; bytes: Buffer }> {
      const res = await fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
      return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
    }
    const asBob = (url: string) => `${url}${url.includes('?') ? '&' : '?'}user_id=${encodeURIComponent(bob)}`;
    const mediaPath = (mxc: string) => mxc.slice('mxc://'.length);

    it('uploaded on fedgate: Synapse downloads it and makes a thumbnail of it over federation', async () => {
      const uploaded = await media(asBob(`${peers.fedgate.clientServerUrl}/_matrix/media/v3/upload?filename=red.png`), peers.bridge.registration.as_token, {
        method: 'POST',
        body: image,
        headers: { 'content-type': 'image/png' },
      });
      expect(uploaded.status).toBe(200);
      const mxc = JSON.parse(uploaded.bytes.toString('utf8')).content_uri as string;
      expect(mxc.startsWith(`mxc://${peers.fedgate.serverName}/`)).toBe(true);

      const downloaded = await media(`${peers.synapse.clientUrl}/_matrix/client/v1/media/download/${mediaPath(mxc)}`, alice.accessToken);
      expect(downloaded).toMatchObject({ status: 200, type: 'image/png' });
      expect(downloaded.bytes.equals(image)).toBe(true);
      const thumbnail = await media(`${peers.synapse.clientUrl}/_matrix/client/v1/media/thumbnail/${mediaPath(mxc)}?width=32&height=32&method=scale`, alice.accessToken);
      expect(thumbnail.status).toBe(200);
      expect(thumbnail.type).toMatch(/^image\//);
      expect((await sharp(thumbnail.bytes).metadata()).width).toBeLessThanOrEqual(96);
    });

    it('uploaded on Synapse: fedgate downloads it and makes a thumbnail of it over federation', async () => {
      const uploaded = await media(`${peers.synapse.clientUrl}/_matrix/media/v3/upload?filename=red.png`, alice.accessToken, { method: 'POST', body: image, headers: { 'content-type': 'image/png' } });
      expect(uploaded.status).toBe(200);
      const mxc = JSON.parse(uploaded.bytes.toString('utf8')).content_uri as string;

      const downloaded = await media(asBob(`${peers.fedgate.clientServerUrl}/_matrix/client/v1/media/download/${mediaPath(mxc)}`), peers.bridge.registration.as_token);
      expect(downloaded).toMatchObject({ status: 200, type: 'image/png' });
      expect(downloaded.bytes.equals(image)).toBe(true);
      const thumbnail = await media(asBob(`${peers.fedgate.clientServerUrl}/_matrix/client/v1/media/thumbnail/${mediaPath(mxc)}?width=32&height=32&method=scale`), peers.bridge.registration.as_token);
      expect(thumbnail.status).toBe(200);
      expect(thumbnail.type).toMatch(/^image\//);
      const size = await sharp(thumbnail.bytes).metadata();
      expect(size.width).toBeLessThanOrEqual(96);
    });
  });

  // Last, so it covers every request the scenarios above made.
  it('discovery used the explicit ports: neither side asked the other for /.well-known/matrix/server', async () => {
    const fedgateServed = peers.fedgate.logs().split('\n').filter((line) => line.includes('"url":"/.well-known/matrix/server'));
    const synapseServed = readFileSync(peers.synapse.logPath, 'utf8').split('\n').filter((line) => line.includes('Processed request') && line.includes('/.well-known/matrix/server'));
    expect([...fedgateServed, ...synapseServed]).toEqual([]);
    // …while each did reach the other on its port (requests both ways were answered above).
    expect(peers.fedgate.logs()).toContain('"url":"/_matrix/federation/v1/send/');
    expect(readFileSync(peers.synapse.logPath, 'utf8')).toMatch(/\{localhost:\d+\} Processed request: .* 200 "PUT \/_matrix\/federation\/v1\/send\//);
  });

  describeSpacesAndUpgrades(() => ({ peers, alice, aliceClient, bob, bobClient }));
});

function typingIn(sync: Record<string, any>, roomId: string): string[] {
  const events: Array<Record<string, any>> = sync?.rooms?.join?.[roomId]?.ephemeral?.events ?? [];
  return events.find((e) => e.type === 'm.typing')?.content?.user_ids ?? [];
}

function readersOf(sync: Record<string, any>, roomId: string, eventId: string): string[] {
  const events: Array<Record<string, any>> = sync?.rooms?.join?.[roomId]?.ephemeral?.events ?? [];
  const receipt = events.find((e) => e.type === 'm.receipt');
  return Object.keys(receipt?.content?.[eventId]?.['m.read'] ?? {});
}
