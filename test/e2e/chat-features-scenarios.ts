// Issue 6's proof: every chat feature a bridge uses, from a bridge on one fedgate to a bridge on
// another, through federation, in both directions. Run once per deployment shape, on the pair of
// federation-embedded.spec.ts and federation-distributed.spec.ts. What the receiving side gets is
// read from its bridge's AS transactions (matrix-appservice), so "arrived" means "arrived at the chat
// platform", content and relations intact. Scenarios build on one shared room, in order.
import { request as httpsRequest } from 'node:https';
import sharp from 'sharp';
import { Method } from 'matrix-js-sdk';
import type { FedgateInstance, FedgateShape, TestBridge, TestCertificateAuthority } from '@fedgate/testing';
import type { FedgatePair } from './fedgate-pair-for-file';

/**
 * Scenarios that cannot pass yet, by name, with the reason: registered as skipped with the reason in
 * their name (never silently). Empty it as the causes are fixed.
 */
export const PENDING: Record<string, string> = {};

const EVENT_WAIT_MS = 30_000;

interface Side {
  name: 'A' | 'B';
  instance: FedgateInstance;
  bridge: TestBridge;
  /** Two virtual users on this side: `first` talks in the shared room, `second` joins multi-user DMs. */
  first: string;
  second: string;
}

type Direction = { from: Side; to: Side; label: string };

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = EVENT_WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch((err: unknown) => err as T);
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Awaits `promise`; a failure says which step of the scenario it was. */
async function step<T>(label: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw new Error(`${label}: ${(err as Error).message}`, { cause: err });
  }
}

const membership = (userId: string, value: string, roomId?: string) => (e: Record<string, any>) =>
  e.type === 'm.room.member' && e.state_key === userId && e.content?.membership === value && (roomId === undefined || e.room_id === roomId);

/** GET on a side's own client-server API as its AS (media endpoints are not all in matrix-js-sdk). */
async function fetchAs(side: Side, pathAndQuery: string): Promise<Response> {
  return fetch(`${side.instance.clientServerUrl}${pathAndQuery}`, { headers: { authorization: `Bearer ${side.bridge.registration.as_token}` } });
}

async function bytesOf(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

/** A 64x48 PNG, left half red, right half blue. */
async function testImage(): Promise<Buffer> {
  const left = await sharp({ create: { width: 32, height: 48, channels: 3, background: '#ff0000' } }).png().toBuffer();
  return sharp({ create: { width: 64, height: 48, channels: 3, background: '#0000ff' } }).composite([{ input: left, left: 0, top: 0 }]).png().toBuffer();
}

export function describeChatFeatureScenarios(shape: FedgateShape, pair: () => FedgatePair): void {
  describe(`chat features bridge to bridge through federation (${shape})`, () => {
    let ca: TestCertificateAuthority;
    let a: Side;
    let b: Side;
    /** The shared room, created on A, both `first` users joined. */
    let roomId: string;

    const directions = (): Direction[] => [
      { from: a, to: b, label: 'A→B' },
      { from: b, to: a, label: 'B→A' },
    ];

    /** One test per direction; a PENDING entry for `name` skips both with its reason in the name. */
    const bothWays = (name: string, fn: (d: Direction) => Promise<void>, timeoutMs = 120_000) => {
      for (const label of ['A→B', 'B→A'] as const) {
        const title = `${label}: ${name}`;
        const pending = PENDING[name] ?? PENDING[title];
        if (pending) it.skip(`${title} — pending: ${pending}`, () => undefined);
        else it(title, () => fn(directions().find((d) => d.label === label)!), timeoutMs);
      }
    };

    /** Sends `content` from the sender side's first user; returns the event as the other bridge got it. */
    const across = async (d: Direction, content: Record<string, unknown>, type = 'm.room.message') => {
      const { event_id } = await d.from.bridge.asUser(d.from.first).sendEvent(roomId, type as never, content as never);
      const received = await step(`${d.to.name}'s bridge receives ${type} ${event_id}`, d.to.bridge.waitForEvent((e) => e.event_id === event_id, EVENT_WAIT_MS));
      expect(received).toMatchObject({ room_id: roomId, sender: d.from.first, type });
      return received;
    };

    beforeAll(async () => {
      const { ca: pairCa, a: instanceA, b: instanceB } = pair();
      ca = pairCa;
      const sideOf = async (name: 'A' | 'B', instance: FedgateInstance): Promise<Side> => {
        const bridge = instance.bridge!;
        const first = await bridge.registerVirtualUser(`${instance.name}chat_first`);
        const second = await bridge.registerVirtualUser(`${instance.name}chat_second`);
        return { name, instance, bridge, first, second };
      };
      [a, b] = await Promise.all([sideOf('A', instanceA), sideOf('B', instanceB)]);
    }, 60_000);

    describe('direct messages', () => {
      bothWays('a DM: is_direct createRoom with a remote invitee, invite marked direct, a message each way', async ({ from, to }) => {
        const { room_id: dm } = await from.bridge.asUser(from.first).createRoom({ preset: 'trusted_private_chat' as never, is_direct: true, invite: [to.first] });
        const invite = await step('the invitee\'s bridge gets the invite', to.bridge.waitForEvent(membership(to.first, 'invite', dm), EVENT_WAIT_MS));
        expect(invite).toMatchObject({ sender: from.first, content: { membership: 'invite', is_direct: true } });
        expect(invite.unsigned?.invite_room_state).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'm.room.create' })]));

        await to.bridge.asUser(to.first).joinRoom(dm, { viaServers: [from.instance.serverName] });
        await step('the inviter\'s bridge sees the join', from.bridge.waitForEvent(membership(to.first, 'join', dm), EVENT_WAIT_MS));

        const there = await from.bridge.asUser(from.first).sendTextMessage(dm, `dm from ${from.name}`);
        expect(await to.bridge.waitForEvent((e) => e.event_id === there.event_id, EVENT_WAIT_MS)).toMatchObject({ room_id: dm, content: { body: `dm from ${from.name}` } });
        const back = await to.bridge.asUser(to.first).sendTextMessage(dm, `dm reply from ${to.name}`);
        expect(await from.bridge.waitForEvent((e) => e.event_id === back.event_id, EVENT_WAIT_MS)).toMatchObject({ room_id: dm, sender: to.first });

        // Both servers agree on who is in the DM.
        for (const side of [from, to]) {
          const joined = await eventually(
            async () => Object.keys((await side.bridge.asUser(side.first).getJoinedRoomMembers(dm)).joined).sort(),
            (members) => Array.isArray(members) && members.length === 2,
          );
          expect(joined).toEqual([from.first, to.first].sort());
        }
      });

      bothWays('a multi-user DM: three users on two servers, everyone gets everyone\'s messages', async ({ from, to }) => {
        // The creator, a second user on its own server, and one on the other server.
        const { room_id: dm } = await from.bridge.asUser(from.first).createRoom({ preset: 'trusted_private_chat' as never, is_direct: true, invite: [from.second, to.first] });
        await step('the remote invitee\'s bridge gets the invite', to.bridge.waitForEvent(membership(to.first, 'invite', dm), EVENT_WAIT_MS));
        expect(to.bridge.received.events(membership(to.first, 'invite', dm))[0]?.content?.is_direct).toBe(true);
        // The remote invitee first: membership that happened before a server joined reaches its bridge
        // only as room state (as from any homeserver), so the local invitee's join comes after it.
        await to.bridge.asUser(to.first).joinRoom(dm, { viaServers: [from.instance.serverName] });
        await step('the creator side sees the remote join', from.bridge.waitForEvent(membership(to.first, 'join', dm), EVENT_WAIT_MS));
        await from.bridge.asUser(from.second).joinRoom(dm);
        await step('the remote side sees the local invitee join', to.bridge.waitForEvent(membership(from.second, 'join', dm), EVENT_WAIT_MS));

        const senders: Array<[Side, string]> = [
          [from, from.first],
          [from, from.second],
          [to, to.first],
        ];
        const sent: string[] = [];
        for (const [side, user] of senders) sent.push((await side.bridge.asUser(user).sendTextMessage(dm, `group dm from ${user}`)).event_id);
        for (const side of [from, to]) {
          for (const eventId of sent) await step(`${side.name}'s bridge gets ${eventId}`, side.bridge.waitForEvent((e) => e.event_id === eventId, EVENT_WAIT_MS));
        }
        const joined = Object.keys((await to.bridge.asUser(to.first).getJoinedRoomMembers(dm)).joined).sort();
        expect(joined).toEqual([from.first, from.second, to.first].sort());
      });
    });

    describe('in a shared room', () => {
      beforeAll(async () => {
        if (!a || !b) return;
        ({ room_id: roomId } = await a.bridge.asUser(a.first).createRoom({ preset: 'public_chat' as never, name: 'chat features' }));
        await b.bridge.asUser(b.first).joinRoom(roomId, { viaServers: [a.instance.serverName] });
        await a.bridge.waitForEvent(membership(b.first, 'join', roomId), EVENT_WAIT_MS);
        await b.bridge.waitForEvent(membership(b.first, 'join', roomId), EVENT_WAIT_MS);
        // B's user may invite too (the preset's invite level is 50), so invites go both ways.
        const levels = (await a.bridge.asUser(a.first).getStateEvent(roomId, 'm.room.power_levels', '')) as { users?: Record<string, number> };
        const raised = await a.bridge.asUser(a.first).sendStateEvent(roomId, 'm.room.power_levels' as never, { ...levels, users: { ...levels.users, [b.first]: 50 } } as never, '');
        await b.bridge.waitForEvent((e) => e.event_id === raised.event_id, EVENT_WAIT_MS);
      }, 120_000);

      bothWays('a formatted (markdown → HTML) body arrives with format and formatted_body', async (d) => {
        const content = { msgtype: 'm.text', body: `**bold** from ${d.from.name} and \`code\``, format: 'org.matrix.custom.html', formatted_body: `<strong>bold</strong> from ${d.from.name} and <code>code</code>` };
        expect((await across(d, content)).content).toEqual(content);
      });

      bothWays('a mention carries m.mentions user_ids and the HTML pill', async (d) => {
        const content = {
          msgtype: 'm.text',
          body: `${d.to.first}: look at this`,
          format: 'org.matrix.custom.html',
          formatted_body: `<a href="https://matrix.to/#/${d.to.first}">${d.to.first}</a>: look at this`,
          'm.mentions': { user_ids: [d.to.first] },
        };
        expect((await across(d, content)).content).toEqual(content);
      });

      bothWays('a reply quoting a message from the other side keeps m.in_reply_to', async (d) => {
        const { event_id: original } = await d.to.bridge.asUser(d.to.first).sendTextMessage(roomId, `quote me, ${d.from.name}`);
        await step('the replying side has the original', d.from.bridge.waitForEvent((e) => e.event_id === original, EVENT_WAIT_MS));
        const content = {
          msgtype: 'm.text',
          body: `> <${d.to.first}> quote me, ${d.from.name}\n\nquoted`,
          format: 'org.matrix.custom.html',
          formatted_body: `<mx-reply><blockquote>quote me, ${d.from.name}</blockquote></mx-reply>quoted`,
          'm.relates_to': { 'm.in_reply_to': { event_id: original } },
        };
        expect((await across(d, content)).content).toEqual(content);
      });

      bothWays('a reaction (m.annotation) on the other side\'s message', async (d) => {
        const { event_id: target } = await d.to.bridge.asUser(d.to.first).sendTextMessage(roomId, 'react to me');
        await step('the reacting side has the target', d.from.bridge.waitForEvent((e) => e.event_id === target, EVENT_WAIT_MS));
        const content = { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '👍' } };
        expect((await across(d, content, 'm.reaction')).content).toEqual(content);
      });

      bothWays('an edit (m.replace with m.new_content) of an earlier message', async (d) => {
        const original = await across(d, { msgtype: 'm.text', body: 'tpyo' });
        const content = {
          msgtype: 'm.text',
          body: '* typo',
          'm.new_content': { msgtype: 'm.text', body: 'typo' },
          'm.relates_to': { rel_type: 'm.replace', event_id: original.event_id },
        };
        expect((await across(d, content)).content).toEqual(content);
      });

      bothWays('a delete (redaction) arrives with its reason and its target', async (d) => {
        const original = await across(d, { msgtype: 'm.text', body: 'delete me' });
        const { event_id: redactionId } = await d.from.bridge.asUser(d.from.first).redactEvent(roomId, original.event_id, undefined, { reason: 'deleted in chat' });
        const redaction = await step('the redaction arrives', d.to.bridge.waitForEvent((e) => e.event_id === redactionId, EVENT_WAIT_MS));
        expect(redaction).toMatchObject({ type: 'm.room.redaction', sender: d.from.first, content: { reason: 'deleted in chat' } });
        expect(redaction.redacts ?? redaction.content?.redacts).toBe(original.event_id);
      });

      bothWays('a deleted message is served redacted by the receiving server', async (d) => {
        const original = await across(d, { msgtype: 'm.text', body: 'delete me too' });
        const { event_id: redactionId } = await d.from.bridge.asUser(d.from.first).redactEvent(roomId, original.event_id);
        await step('the redaction arrives', d.to.bridge.waitForEvent((e) => e.event_id === redactionId, EVENT_WAIT_MS));
        const served = await eventually(
          () => d.to.bridge.asUser(d.to.first).fetchRoomEvent(roomId, original.event_id),
          (event) => (event as { content?: Record<string, unknown> })?.content !== undefined && Object.keys((event as { content: object }).content).length === 0,
        );
        expect(served).toMatchObject({ content: {}, unsigned: { redacted_because: { event_id: redactionId, type: 'm.room.redaction' } } });
        const own = await d.from.bridge.asUser(d.from.first).fetchRoomEvent(roomId, original.event_id);
        expect(own).toMatchObject({ content: {}, unsigned: { redacted_because: { event_id: redactionId } } });
      });

      describe('attachments: uploaded on one side, the event across, downloaded on the other through its own server', () => {
        let image: Buffer;
        beforeAll(async () => {
          image = await testImage();
        });
        const kinds = [
          { msgtype: 'm.file', name: 'notes.pdf', mimetype: 'application/pdf', bytes: () => Buffer.from('%PDF-1.4 not really a pdf\n') },
          { msgtype: 'm.image', name: 'picture.png', mimetype: 'image/png', bytes: () => image, info: { w: 64, h: 48 } },
          { msgtype: 'm.audio', name: 'voice.ogg', mimetype: 'audio/ogg', bytes: () => Buffer.from('OggS fake audio bytes'), info: { duration: 1200 } },
          { msgtype: 'm.video', name: 'clip.mp4', mimetype: 'video/mp4', bytes: () => Buffer.from('\0\0\0\x18ftypmp42 fake video'), info: { duration: 3400, w: 320, h: 240 } },
        ];
        for (const kind of kinds) {
          bothWays(`${kind.msgtype}: content intact, the remote mxc downloads byte-identical${kind.msgtype === 'm.image' ? ', with a thumbnail' : ''}`, async (d) => {
            const bytes = kind.bytes();
            const { content_uri: url } = await d.from.bridge.asUser(d.from.first).uploadContent(bytes, { name: kind.name, type: kind.mimetype });
            expect(url).toMatch(new RegExp(`^mxc://${d.from.instance.serverName}/`));
            const content = { msgtype: kind.msgtype, body: kind.name, filename: kind.name, url, info: { mimetype: kind.mimetype, size: bytes.length, ...kind.info } };
            expect((await across(d, content)).content).toEqual(content);

            const download = await fetchAs(d.to, `/_matrix/client/v1/media/download/${url.slice('mxc://'.length)}`);
            expect(download.status).toBe(200);
            expect(download.headers.get('content-type')).toBe(kind.mimetype);
            expect((await bytesOf(download)).equals(bytes)).toBe(true);
            if (kind.msgtype === 'm.image') {
              const thumbnail = await fetchAs(d.to, `/_matrix/client/v1/media/thumbnail/${url.slice('mxc://'.length)}?width=32&height=32&method=crop`);
              expect(thumbnail.status).toBe(200);
              const meta = await sharp(await bytesOf(thumbnail)).metadata();
              expect([meta.width, meta.height]).toEqual([32, 32]);
            }
          });
        }
      });

      bothWays('an avatar: set on one side, in the member event and the profile the other side queries', async (d) => {
        const client = d.from.bridge.asUser(d.from.first);
        const { content_uri: avatar } = await client.uploadContent(await testImage(), { name: 'avatar.png', type: 'image/png' });
        await client.setAvatarUrl(avatar);
        const member = await step(
          'the member event with the avatar arrives',
          d.to.bridge.waitForEvent((e) => membership(d.from.first, 'join', roomId)(e) && e.content?.avatar_url === avatar, EVENT_WAIT_MS),
        );
        expect(member.sender).toBe(d.from.first);
        const profile = await d.to.bridge.asUser(d.to.first).getProfileInfo(d.from.first);
        expect(profile.avatar_url).toBe(avatar);
        const picture = await fetchAs(d.to, `/_matrix/client/v1/media/download/${avatar.slice('mxc://'.length)}`);
        expect(picture.status).toBe(200);
      });

      bothWays('a display name: set on one side, the other side\'s profile query answers it over federation', async (d) => {
        const displayname = `First of ${d.from.name} ${Date.now()}`;
        await d.from.bridge.asUser(d.from.first).setDisplayName(displayname);
        await step('the member event with the name arrives', d.to.bridge.waitForEvent((e) => membership(d.from.first, 'join', roomId)(e) && e.content?.displayname === displayname, EVENT_WAIT_MS));
        const answer = await d.to.bridge.asUser(d.to.first).getProfileInfo(d.from.first, 'displayname');
        expect(answer).toEqual({ displayname });
        // A remote user who shares no room with the asker: the profile still comes over federation.
        expect(await d.to.bridge.asUser(d.to.first).getProfileInfo(d.from.second, 'displayname')).toEqual({ displayname: expect.any(String) });
      });

      bothWays('typing arrives as an ephemeral m.typing, and its end too', async (d) => {
        await d.from.bridge.asUser(d.from.first).sendTyping(roomId, true, 20_000);
        await step('typing starts', d.to.bridge.received.waitForEphemeral((e) => e.type === 'm.typing' && e.room_id === roomId && e.content?.user_ids?.includes(d.from.first), EVENT_WAIT_MS));
        const countBefore = d.to.bridge.received.ephemeral((e) => e.type === 'm.typing' && e.room_id === roomId).length;
        await d.from.bridge.asUser(d.from.first).sendTyping(roomId, false, 0);
        const stopped = await eventually(
          async () => d.to.bridge.received.ephemeral((e) => e.type === 'm.typing' && e.room_id === roomId).slice(countBefore),
          (later) => later.some((e) => !e.content?.user_ids?.includes(d.from.first)),
        );
        expect(stopped.some((e) => !e.content.user_ids.includes(d.from.first))).toBe(true);
      });

      bothWays('a read receipt on the other side\'s message arrives as an ephemeral m.receipt', async (d) => {
        const { event_id: target } = await d.to.bridge.asUser(d.to.first).sendTextMessage(roomId, 'read me');
        await step('the reader has the message', d.from.bridge.waitForEvent((e) => e.event_id === target, EVENT_WAIT_MS));
        await d.from.bridge.asUser(d.from.first).http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(target)}`, undefined, {});
        const receipt = await step(
          'the receipt arrives',
          d.to.bridge.received.waitForEphemeral((e) => e.type === 'm.receipt' && e.room_id === roomId && e.content?.[target]?.['m.read']?.[d.from.first] !== undefined, EVENT_WAIT_MS),
        );
        expect(receipt.content[target]['m.read'][d.from.first]).toEqual({ ts: expect.any(Number) });
      });

      bothWays('presence arrives as an ephemeral m.presence', async (d) => {
        const status = `busy on ${d.from.name}`;
        await d.from.bridge.asUser(d.from.first).setPresence({ presence: 'unavailable', status_msg: status });
        const presence = await step(
          'the presence arrives',
          d.to.bridge.received.waitForEphemeral((e) => e.type === 'm.presence' && e.sender === d.from.first && e.content?.status_msg === status, EVENT_WAIT_MS),
        );
        expect(presence.content).toMatchObject({ presence: 'unavailable', status_msg: status });
      });

      bothWays('an invite for a never-registered user in the bridge\'s namespace: its server asks the AS, creates the user, and the user joins', async (d) => {
        const localpart = `${d.to.instance.name}chat_lazy_${Date.now()}`;
        const invitee = `@${localpart}:${d.to.instance.serverName}`;
        const userQueries: string[] = [];
        // The bridge's own HTTP server: what fedgate asked the AS, beside what matrix-appservice answers.
        const bridgeServer = (d.to.bridge as unknown as { server: import('node:http').Server }).server;
        const recordQuery = (request: import('node:http').IncomingMessage) => {
          if (request.method === 'GET' && request.url?.startsWith('/_matrix/app/v1/users/')) userQueries.push(decodeURIComponent(request.url.slice('/_matrix/app/v1/users/'.length).split('?')[0]!));
        };
        bridgeServer.on('request', recordQuery);
        try {
          await d.to.bridge.asUser(d.to.first).getProfileInfo(invitee).then(
            () => {
              throw new Error(`${invitee} exists before the invite`);
            },
            (err: { errcode?: string }) => expect(err.errcode).toBe('M_NOT_FOUND'),
          );
          await d.from.bridge.asUser(d.from.first).invite(roomId, invitee);
          const invite = await step('the invite reaches the invitee\'s bridge', d.to.bridge.waitForEvent(membership(invitee, 'invite', roomId), EVENT_WAIT_MS));
          expect(invite.sender).toBe(d.from.first);
          expect(userQueries).toContain(invitee);
          expect(await d.to.bridge.asUser(d.to.first).getProfileInfo(invitee)).toEqual({ displayname: localpart });
          await d.to.bridge.asUser(invitee).joinRoom(roomId, { viaServers: [d.from.instance.serverName] });
          await step('the inviting side sees the join', d.from.bridge.waitForEvent(membership(invitee, 'join', roomId), EVENT_WAIT_MS));
        } finally {
          bridgeServer.off('request', recordQuery);
        }
      });

      bothWays('an alias on one server resolves on the other and a user joins through it', async (d) => {
        const localpart = `${d.from.instance.name}chat_alias_${Date.now()}`;
        const alias = `#${localpart}:${d.from.instance.serverName}`;
        const { room_id: aliased } = await d.from.bridge.asUser(d.from.first).createRoom({ preset: 'public_chat' as never, room_alias_name: localpart, name: 'aliased' });
        const resolved = await d.to.bridge.asUser(d.to.first).getRoomIdForAlias(alias);
        expect(resolved.room_id).toBe(aliased);
        expect(resolved.servers).toContain(d.from.instance.serverName);
        const joined = await d.to.bridge.asUser(d.to.first).joinRoom(alias);
        expect(joined.roomId).toBe(aliased);
        await step('the alias room\'s server sees the join', d.from.bridge.waitForEvent(membership(d.to.first, 'join', aliased), EVENT_WAIT_MS));
        const { event_id } = await d.to.bridge.asUser(d.to.first).sendTextMessage(aliased, 'joined by alias');
        await d.from.bridge.waitForEvent((e) => e.event_id === event_id, EVENT_WAIT_MS);
      });
    });

    describe('issue 14: openid and jump to date', () => {
      /** An unsigned federation GET, as an integration manager makes it. */
      const federationGet = (side: Side, pathAndQuery: string) =>
        new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
          const req = httpsRequest(new URL(pathAndQuery, side.instance.federationUrl), { ca: ca.certPem }, (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
          });
          req.once('error', reject);
          req.end();
        });

      bothWays("an OpenID token of one side's user is answered by that side's federation userinfo, and only there", async ({ from, to }) => {
        const token = await from.bridge.asUser(from.first).getOpenIdToken();
        expect(token.matrix_server_name).toBe(from.instance.serverName);
        expect(await federationGet(from, `/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token.access_token)}`)).toEqual({ status: 200, body: { sub: from.first } });
        expect(await federationGet(to, `/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token.access_token)}`)).toMatchObject({ status: 401, body: { errcode: 'M_UNKNOWN_TOKEN' } });
      });

      bothWays('timestamp_to_event: both sides answer the same event of the shared room', async (d) => {
        const sent = await across(d, { msgtype: 'm.text', body: `jump here ${d.label}` });
        const jump = (side: Side, ts: number, dir: 'f' | 'b') =>
          side.bridge.asUser(side.first).http.authedRequest<{ event_id: string }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/timestamp_to_event`, { ts: String(ts), dir }, undefined, { prefix: '/_matrix/client/v1' } as never);
        for (const dir of ['f', 'b'] as const) {
          const [there, here] = await Promise.all([jump(d.from, sent.origin_server_ts as number, dir), jump(d.to, sent.origin_server_ts as number, dir)]);
          expect(here).toEqual(there);
          expect(here.event_id).toBe(sent.event_id);
        }
      });
    });
  });
}
