// Issue 15: Rocket.Chat's own bridge library works against fedgate, unmodified. Each library drives
// fedgate through its own objects (AppServiceRegistration, Bridge, Intent) the way Rocket.Chat's Matrix
// Bridge does, and receives through its controller's onEvent / onEphemeralEvent:
//   rocketchat — @rocket.chat/forked-matrix-appservice-bridge 4.0.2 (registration with
//                use_appservice_legacy_authorization, since its matrix-appservice 0.10 reads ?access_token=);
//   upstream   — matrix-appservice-bridge 12 (native crypto binding stubbed in jest.config.cjs).
// One fedgate A (both bridges, Rocket.Chat's catch-all registration shape), a second fedgate B (both
// bridges) and one Synapse for the whole file; the scenarios share them.
import { Method } from 'matrix-js-sdk';
import sharp from 'sharp';
import { createTestCa, startFedgate, startSynapse, startTogether, type FedgateInstance, type SynapseHandle, type SynapseUser } from '@fedgate/testing';
import * as rocketChatLibrary from '@rocket.chat/forked-matrix-appservice-bridge';
import * as upstreamLibrary from 'matrix-appservice-bridge';
import { LibraryBridge, type BridgeLibraryName, type LibraryIntent } from '../support/src/bridge/library-bridge';
import { eventually, matrixClientFor } from '../interop/support/matrix-client';

jest.setTimeout(180_000);
const WAIT_MS = 30_000;
const libraries: BridgeLibraryName[] = ['rocketchat', 'upstream'];
const prefixes: Record<BridgeLibraryName, string> = { rocketchat: 'rc', upstream: 'mx' };

let synapse: SynapseHandle;
let a: FedgateInstance;
let b: FedgateInstance;
const bridgesA = {} as Record<BridgeLibraryName, LibraryBridge>;
const bridgesB = {} as Record<BridgeLibraryName, LibraryBridge>;

async function prepareBridges(side: string, into: Record<BridgeLibraryName, LibraryBridge>): Promise<string[]> {
  for (const library of libraries) {
    into[library] = await LibraryBridge.prepare({
      library,
      id: `${prefixes[library]}-${side}`,
      prefix: `${prefixes[library]}${side}`,
      catchAllNamespaces: true,
      legacyAuthorization: library === 'rocketchat',
    });
  }
  return libraries.map((library) => into[library].registrationPath);
}

beforeAll(async () => {
  const ca = createTestCa();
  const registrationsA = await prepareBridges('a', bridgesA);
  const registrationsB = await prepareBridges('b', bridgesB);
  // Rocket.Chat's bridge reads m.room.create's `creator`, which room versions after 10 leave out.
  const fedgateConfig = (registrationFiles: string[]) => ({ appServices: { registrationFiles }, rooms: { defaultVersion: '10' } });
  [synapse, a, b] = await startTogether([
    startSynapse({ ca, name: 'bridge-libraries', extraConfig: { caches: { sync_response_cache_duration: 0 } } }),
    startFedgate({ shape: 'embedded', ca, name: 'a', bridgePrefix: false, config: fedgateConfig(registrationsA) }),
    startFedgate({ shape: 'embedded', ca, name: 'b', bridgePrefix: false, config: fedgateConfig(registrationsB) }),
  ] as const);
  for (const library of libraries) {
    await bridgesA[library].start({ homeserverUrl: a.clientServerUrl, domain: a.serverName });
    await bridgesB[library].start({ homeserverUrl: b.clientServerUrl, domain: b.serverName });
  }
});

afterAll(async () => {
  for (const bridge of [...Object.values(bridgesA), ...Object.values(bridgesB)]) await bridge.stop();
  await Promise.all([synapse?.stop(), a?.destroy(), b?.destroy()]);
});

describe.each(libraries)('%s bridge library against fedgate', (library) => {
  const p = prefixes[library];
  let bridge: LibraryBridge;
  let alice: LibraryIntent;
  let bob: LibraryIntent;
  let carol: LibraryIntent;
  let publicRoom: string;
  let alias: string;
  let dm: string;
  let hello: string;
  const event = (eventId: string) => bridge.received.waitForEvent((e) => e.event_id === eventId, WAIT_MS);
  const membership = (roomId: string, userId: string, state: string) => (e: Record<string, any>) =>
    e.type === 'm.room.member' && e.room_id === roomId && e.state_key === userId && e.content?.membership === state;
  const fresh = (predicate: (e: Record<string, any>) => boolean) => {
    const before = new Set(bridge.received.events(predicate).map((e) => e.event_id));
    return (e: Record<string, any>) => predicate(e) && !before.has(e.event_id);
  };

  beforeAll(() => {
    bridge = bridgesA[library];
    alice = bridge.intent(`@${p}a_alice:${a.serverName}`);
    bob = bridge.intent(`@${p}a_bob:${a.serverName}`);
    carol = bridge.intent(`@${p}a_carol:${a.serverName}`);
    alias = `#${p}a_general:${a.serverName}`;
  });

  it('provisions virtual users with display names and avatars, and reads profiles back', async () => {
    for (const [intent, name] of [[alice, 'Alice'], [bob, 'Bob'], [carol, 'Carol']] as const) {
      await intent.ensureRegistered();
      await intent.setDisplayName(name);
    }
    const avatar = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#c00' } }).png().toBuffer();
    const avatarUrl = await alice.uploadContent(avatar, { name: 'alice.png', type: 'image/png' });
    expect(avatarUrl).toMatch(new RegExp(`^mxc://${a.serverName}/`));
    await alice.setAvatarUrl(avatarUrl);
    expect(await bob.getProfileInfo(alice.userId, undefined, false)).toMatchObject({ displayname: 'Alice', avatar_url: avatarUrl });
    expect(await alice.getProfileInfo(bob.userId, 'displayname', false)).toMatchObject({ displayname: 'Bob' });
  });

  it('creates a public room with an alias whose m.room.create names its creator, and users join by alias', async () => {
    ({ room_id: publicRoom } = await alice.createRoom({
      createAsClient: true,
      options: { visibility: 'public', preset: 'public_chat', room_alias_name: `${p}a_general`, name: 'General', topic: 'Everything' },
    }));
    const create = await alice.getStateEvent(publicRoom, 'm.room.create', '');
    expect(create).toMatchObject({ room_version: '10', creator: alice.userId });
    expect(await bob.resolveRoom(alias)).toBe(publicRoom);
    expect(await bob.join(alias)).toBe(publicRoom);
    await bridge.received.waitForEvent(membership(publicRoom, bob.userId, 'join'), WAIT_MS);
    const createEvent = await bridge.received.waitForEvent((e) => e.type === 'm.room.create' && e.room_id === publicRoom, WAIT_MS);
    expect(createEvent.content.creator).toBe(alice.userId);
  });

  it('creates a private direct chat with an invite the invitee accepts', async () => {
    ({ room_id: dm } = await alice.createRoom({ createAsClient: true, options: { preset: 'trusted_private_chat', is_direct: true, invite: [carol.userId] } }));
    const invite = await bridge.received.waitForEvent(membership(dm, carol.userId, 'invite'), WAIT_MS);
    expect(invite.content.is_direct).toBe(true);
    await carol.join(dm);
    await bridge.received.waitForEvent(membership(dm, carol.userId, 'join'), WAIT_MS);
    const sent = await carol.sendText(dm, 'just us');
    expect((await event(sent.event_id)).content).toEqual({ msgtype: 'm.text', body: 'just us' });
  });

  it('text, formatted text, a reply, a thread, an edit, a reaction and a redaction reach onEvent with their content', async () => {
    hello = (await alice.sendText(publicRoom, 'hello')).event_id;
    const formatted = await bob.sendMessage(publicRoom, { msgtype: 'm.text', body: '*hi*', format: 'org.matrix.custom.html', formatted_body: '<em>hi</em>' });
    const reply = await bob.sendMessage(publicRoom, { msgtype: 'm.text', body: '> hello\n\nhi back', 'm.relates_to': { 'm.in_reply_to': { event_id: hello } } });
    const thread = await alice.sendMessage(publicRoom, {
      msgtype: 'm.text',
      body: 'in a thread',
      'm.relates_to': { rel_type: 'm.thread', event_id: hello, is_falling_back: true, 'm.in_reply_to': { event_id: hello } },
    });
    const edit = await alice.sendMessage(publicRoom, {
      msgtype: 'm.text',
      body: '* hello everyone',
      'm.new_content': { msgtype: 'm.text', body: 'hello everyone' },
      'm.relates_to': { rel_type: 'm.replace', event_id: hello },
    });
    const reaction = await bob.sendEvent(publicRoom, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: hello, key: '👍' } });
    const redactionId: string = await bob.matrixClient.redactEvent(publicRoom, reaction.event_id, 'misclick');

    expect((await event(hello)).content.body).toBe('hello');
    expect((await event(formatted.event_id)).content).toMatchObject({ format: 'org.matrix.custom.html', formatted_body: '<em>hi</em>' });
    expect((await event(reply.event_id)).content['m.relates_to']).toEqual({ 'm.in_reply_to': { event_id: hello } });
    expect((await event(thread.event_id)).content['m.relates_to']).toMatchObject({ rel_type: 'm.thread', event_id: hello });
    expect((await event(edit.event_id)).content['m.new_content']).toEqual({ msgtype: 'm.text', body: 'hello everyone' });
    expect((await event(reaction.event_id)).content['m.relates_to']).toEqual({ rel_type: 'm.annotation', event_id: hello, key: '👍' });
    const redaction = await event(redactionId);
    expect(redaction).toMatchObject({ type: 'm.room.redaction', sender: bob.userId });
    expect(redaction.redacts ?? redaction.content.redacts).toBe(reaction.event_id);
    expect(redaction.content.reason).toBe('misclick');
    expect((await alice.getEvent(publicRoom, hello, false)).content.body).toBe('hello');
  });

  it('uploads an image and a file, sends them, and downloads them byte for byte', async () => {
    const image = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#0a0' } }).png().toBuffer();
    const file = Buffer.from(`%PDF-1.4 bridged by ${library}\n`.repeat(64));
    const imageUrl = await alice.uploadContent(image, { name: 'picture.png', type: 'image/png' });
    const fileUrl = await bob.uploadContent(file, { name: 'notes.pdf', type: 'application/pdf' });
    const sentImage = await alice.sendMessage(publicRoom, { msgtype: 'm.image', body: 'picture.png', url: imageUrl, info: { mimetype: 'image/png', size: image.length, w: 8, h: 6 } });
    const sentFile = await bob.sendMessage(publicRoom, { msgtype: 'm.file', body: 'notes.pdf', url: fileUrl, info: { mimetype: 'application/pdf', size: file.length } });
    expect((await event(sentImage.event_id)).content).toMatchObject({ msgtype: 'm.image', url: imageUrl });
    expect((await event(sentFile.event_id)).content).toMatchObject({ msgtype: 'm.file', url: fileUrl });
    const downloadedImage = await bob.matrixClient.downloadContent(imageUrl);
    const downloadedFile = await alice.matrixClient.downloadContent(fileUrl);
    expect(Buffer.compare(downloadedImage.data, image)).toBe(0);
    expect(Buffer.compare(downloadedFile.data, file)).toBe(0);
    expect(downloadedFile.contentType).toMatch(/^application\/pdf/);
  });

  it('typing and read receipts reach onEphemeralEvent', async () => {
    await bob.sendTyping(publicRoom, true);
    await bridge.received.waitForEphemeral((e) => e.type === 'm.typing' && e.room_id === publicRoom && e.content.user_ids?.includes(bob.userId), WAIT_MS);
    await bob.sendTyping(publicRoom, false);
    await bridge.received.waitForEphemeral((e) => e.type === 'm.typing' && e.room_id === publicRoom && !e.content.user_ids?.includes(bob.userId), WAIT_MS);
    await bob.sendReadReceipt(publicRoom, hello);
    const receipt = await bridge.received.waitForEphemeral((e) => e.type === 'm.receipt' && e.room_id === publicRoom && e.content[hello]?.['m.read']?.[bob.userId] !== undefined, WAIT_MS);
    expect(typeof receipt.content[hello]['m.read'][bob.userId].ts).toBe('number');
  });

  it('state and room lookups: name, topic, members, alias', async () => {
    expect(await bob.getStateEvent(publicRoom, 'm.room.name', '')).toEqual({ name: 'General' });
    await alice.setRoomTopic(publicRoom, 'Bridged talk');
    expect(await bob.getStateEvent(publicRoom, 'm.room.topic', '')).toMatchObject({ topic: 'Bridged talk' });
    const state = (await bob.roomState(publicRoom, false)) as Array<{ type: string; state_key: string; content: Record<string, unknown> }>;
    const joined = state.filter((e) => e.type === 'm.room.member' && e.content.membership === 'join').map((e) => e.state_key);
    expect(joined).toEqual(expect.arrayContaining([alice.userId, bob.userId]));
    expect(await bob.getStateEvent(publicRoom, 'm.room.canonical_alias', '')).toMatchObject({ alias });
    expect(await alice.getStateEvent(publicRoom, 'm.room.member', `@${p}a_nobody:${a.serverName}`, true)).toBeNull();
  });

  it('leave, kick, ban and unban are membership events the bridge receives', async () => {
    await carol.join(alias);
    await bridge.received.waitForEvent(membership(publicRoom, carol.userId, 'join'), WAIT_MS);
    const left = fresh(membership(publicRoom, carol.userId, 'leave'));
    await carol.leave(publicRoom);
    await bridge.received.waitForEvent(left, WAIT_MS);
    const rejoined = fresh(membership(publicRoom, carol.userId, 'join'));
    await carol.join(alias);
    await bridge.received.waitForEvent(rejoined, WAIT_MS);
    const kicked = fresh(membership(publicRoom, carol.userId, 'leave'));
    await alice.kick(publicRoom, carol.userId, 'calm down');
    expect((await bridge.received.waitForEvent(kicked, WAIT_MS)).content).toMatchObject({ membership: 'leave', reason: 'calm down' });
    await alice.ban(publicRoom, carol.userId, 'enough');
    expect((await bridge.received.waitForEvent(membership(publicRoom, carol.userId, 'ban'), WAIT_MS)).sender).toBe(alice.userId);
    await expect(carol.join(alias)).rejects.toBeDefined();
    const unbanned = fresh(membership(publicRoom, carol.userId, 'leave'));
    await alice.unban(publicRoom, carol.userId);
    await bridge.received.waitForEvent(unbanned, WAIT_MS);
  });

  it('through federation: a user of a second fedgate joins by alias, and each bridge receives the other side', async () => {
    const remoteBridge = bridgesB[library];
    const dave = remoteBridge.intent(`@${p}b_dave:${b.serverName}`);
    await dave.ensureRegistered();
    await dave.setDisplayName('Dave');
    expect(await dave.join(alias)).toBe(publicRoom);
    await bridge.received.waitForEvent(membership(publicRoom, dave.userId, 'join'), WAIT_MS);
    const fromDave = await dave.sendMessage(publicRoom, { msgtype: 'm.text', body: 'hello from B', format: 'org.matrix.custom.html', formatted_body: '<b>hello</b> from B' });
    expect((await event(fromDave.event_id)).content.formatted_body).toBe('<b>hello</b> from B');
    const fromAlice = await alice.sendText(publicRoom, 'welcome, Dave');
    expect((await remoteBridge.received.waitForEvent((e) => e.event_id === fromAlice.event_id, WAIT_MS)).content.body).toBe('welcome, Dave');
    const reaction = await dave.sendEvent(publicRoom, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: fromAlice.event_id, key: '🎉' } });
    expect((await event(reaction.event_id)).sender).toBe(dave.userId);
    const redactionId: string = await alice.matrixClient.redactEvent(publicRoom, fromAlice.event_id);
    await remoteBridge.received.waitForEvent((e) => e.event_id === redactionId, WAIT_MS);
    expect((await alice.getProfileInfo(dave.userId, 'displayname', false)).displayname).toBe('Dave');
    await dave.sendTyping(publicRoom, true);
    await bridge.received.waitForEphemeral((e) => e.type === 'm.typing' && e.room_id === publicRoom && e.content.user_ids?.includes(dave.userId), WAIT_MS);
    await dave.sendReadReceipt(publicRoom, fromAlice.event_id);
    await bridge.received.waitForEphemeral((e) => e.type === 'm.receipt' && e.room_id === publicRoom && e.content[fromAlice.event_id]?.['m.read']?.[dave.userId] !== undefined, WAIT_MS);
  });

  it('through federation with Synapse: a Synapse user joins by alias, and messages cross both ways', async () => {
    const user: SynapseUser = await synapse.registerUser(`${p}_sam`);
    const client = matrixClientFor(synapse, user);
    const joined = await eventually(
      () => client.joinRoom(alias).then((room) => room.roomId, (err: Error) => err.message),
      (value) => value === publicRoom,
    );
    expect(joined).toBe(publicRoom);
    await bridge.received.waitForEvent(membership(publicRoom, user.userId, 'join'), WAIT_MS);
    const fromSam = await client.sendMessage(publicRoom, { msgtype: 'm.text', body: 'hello from Synapse' } as never);
    expect((await event(fromSam.event_id)).content.body).toBe('hello from Synapse');
    const fromBob = await bob.sendText(publicRoom, 'hi Sam');
    const seen = await eventually(
      () => client.fetchRoomEvent(publicRoom, fromBob.event_id).then((e) => e as Record<string, any>, () => null),
      (e) => e !== null,
    );
    expect(seen?.content?.body).toBe('hi Sam');
    await client.sendTyping(publicRoom, true, 20_000);
    await bridge.received.waitForEphemeral((e) => e.type === 'm.typing' && e.room_id === publicRoom && e.content.user_ids?.includes(user.userId), WAIT_MS);
    await client.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(publicRoom)}/receipt/m.read/${encodeURIComponent(fromBob.event_id)}`, undefined, {});
    await bridge.received.waitForEphemeral((e) => e.type === 'm.receipt' && e.room_id === publicRoom && e.content[fromBob.event_id]?.['m.read']?.[user.userId] !== undefined, WAIT_MS);
  });

  it("user ID escaping: Rocket.Chat's library drops a server name's port by default, and fedgate refuses the user that makes (docs/chat-platform.md)", async () => {
    const { MatrixUser } = library === 'rocketchat' ? rocketChatLibrary : upstreamLibrary;
    const escaped = new MatrixUser(`@${p}a_erin:${a.serverName}`).getId();
    if (library === 'upstream') {
      expect(escaped).toBe(`@${p}a_erin:${a.serverName}`); // fixed upstream: the port is kept
      return;
    }
    expect(escaped).toBe(`@${p}a_erin:localhost`);
    const response = await fetch(`${a.clientServerUrl}/_matrix/client/v3/profile/${encodeURIComponent(escaped)}/displayname?user_id=${encodeURIComponent(escaped)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${bridge.registration.as_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ displayname: 'Erin' }),
    });
    expect({ status: response.status, body: await response.json() }).toEqual({ status: 403, body: expect.objectContaining({ errcode: 'M_FORBIDDEN' }) });
  });

  it('every event and every read receipt reached each bridge exactly once', () => {
    expect(bridge.duplicateEventIds()).toEqual([]);
    expect(bridgesB[library].duplicateEventIds()).toEqual([]);
    const receipts = bridge.received
      .ephemeral((e) => e.type === 'm.receipt' && e.room_id === publicRoom)
      .flatMap((e) => Object.entries(e.content as Record<string, { 'm.read'?: Record<string, unknown> }>).flatMap(([eventId, r]) => Object.keys(r['m.read'] ?? {}).map((u) => `${eventId} ${u}`)));
    expect(receipts.length).toBeGreaterThanOrEqual(3);
    expect(new Set(receipts).size).toBe(receipts.length);
    expect(bridge.received.events((e) => e.room_id === publicRoom).length).toBeGreaterThan(20);
  });
});
