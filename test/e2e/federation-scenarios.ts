// The two-fedgate end-to-end scenarios, run once per deployment shape (federation-embedded.spec.ts,
// federation-distributed.spec.ts, on the pair those files share with the chat-features scenarios). Each fedgate has a TestBridge as its chat platform: matrix-js-sdk
// acting as the bridge's virtual users on fedgate's client-server API, matrix-appservice receiving
// what fedgate pushes. Scenarios build on each other (one room, in order), like a conversation.
import { Agent, request } from 'undici';
import { computeEventId, signEvent } from '@fedgate/protocol';
import type { Store } from '@fedgate/store';
import {
  FakeRemoteServer,
  openInstanceStore,
  type FedgateInstance,
  type FedgateShape,
  type TestBridge,
  type TestCertificateAuthority,
} from '@fedgate/testing';
import type { FedgatePair } from './fedgate-pair-for-file';

/**
 * What a scenario still waits for, by helper. A scenario listing a missing piece is registered as
 * skipped with the reason in its name (never silently); empty it as the pieces land.
 */
export const MISSING: Record<string, string> = {
};

/** What a whole shape still waits for. */
export const SHAPE_MISSING: Partial<Record<FedgateShape, string>> = {
};

type Piece = keyof typeof MISSING;
let currentShape: FedgateShape = 'embedded';

function scenario(name: string, needs: Piece[], fn: () => Promise<void>, timeoutMs = 120_000): void {
  const missing = [SHAPE_MISSING[currentShape], ...needs.map((piece) => MISSING[piece])].filter((reason): reason is string => reason !== undefined);
  if (missing.length) it.skip(`${name} — blocked: ${missing.join('; ')}`, () => undefined);
  else it(name, fn, timeoutMs);
}

const EVENT_WAIT_MS = 30_000;

/** Awaits `promise`; a failure says which step of the scenario it was. */
async function step<T>(label: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw new Error(`${label}: ${(err as Error).message}`, { cause: err });
  }
}

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = EVENT_WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch((err: unknown) => err as T);
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** `(type, state_key) → event_id` of the room's current state as one fedgate reports it to its bridge. */
async function stateIds(bridge: TestBridge, userId: string, roomId: string): Promise<Record<string, string>> {
  const events = (await bridge.asUser(userId).roomState(roomId)) as unknown as Array<{ type: string; state_key: string; event_id: string }>;
  return Object.fromEntries(events.map((e) => [`${e.type}|${e.state_key}`, e.event_id]).sort(([x], [y]) => (x! < y! ? -1 : 1)));
}

function bridgeOf(instance: FedgateInstance): TestBridge {
  if (!instance.bridge) throw new Error(`${instance.name} has no bridge`);
  return instance.bridge;
}

export function describeFederationScenarios(shape: FedgateShape, pair: () => FedgatePair): void {
  currentShape = shape;
  const shapeBlocked = SHAPE_MISSING[shape];
  if (shapeBlocked) {
    describe(`two fedgates federating (${shape})`, () => {
      it.skip(`every scenario — blocked: ${shapeBlocked}`, () => undefined);
    });
    return;
  }
  describe(`two fedgates federating (${shape})`, () => {
    let ca: TestCertificateAuthority;
    let a: FedgateInstance;
    let b: FedgateInstance;
    let alice: string; // A's virtual user
    let bob: string; // B's virtual user
    let carol: string; // B's second virtual user (invited, kicked, banned)
    let roomId: string;

    beforeAll(() => {
      ({ ca, a, b } = pair());
    });

    it('serves discovery over TLS from the shared CA on IPv4 and IPv6 loopback, under its own name', async () => {
      for (const instance of [a, b]) {
        const port = instance.serverName.split(':')[1];
        for (const host of ['127.0.0.1', '[::1]']) {
          const dispatcher = new Agent({ connect: { ca: ca.certPem, servername: 'localhost' } });
          try {
            const res = await request(`https://${host}:${port}/_matrix/federation/v1/version`, { dispatcher });
            expect(res.statusCode).toBe(200);
            expect(await res.body.json()).toEqual({ server: { name: 'fedgate', version: expect.any(String) } });
          } finally {
            await dispatcher.close();
          }
        }
      }
      expect(a.serverName).not.toBe(b.serverName);
    });

    scenario('create a room on A; B\'s user joins over federation; a message each way', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
      const bridgeA = bridgeOf(a);
      const bridgeB = bridgeOf(b);
      alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice`);
      bob = await bridgeB.registerVirtualUser(`${b.name}chat_bob`);
      carol = await bridgeB.registerVirtualUser(`${b.name}chat_carol`);
      ({ room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'fedgate e2e' }));
      expect(roomId).toMatch(new RegExp(`^!.+:${a.serverName.replace('.', '\\.')}$|^![^:]+$`));

      await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
      await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', EVENT_WAIT_MS);

      const fromA = await bridgeA.asUser(alice).sendTextMessage(roomId, 'hello from A');
      const atB = await bridgeB.waitForEvent((e) => e.event_id === fromA.event_id, EVENT_WAIT_MS);
      expect(atB).toMatchObject({ room_id: roomId, sender: alice, content: { body: 'hello from A' } });

      const fromB = await bridgeB.asUser(bob).sendTextMessage(roomId, 'hello from B');
      const atA = await bridgeA.waitForEvent((e) => e.event_id === fromB.event_id, EVENT_WAIT_MS);
      expect(atA).toMatchObject({ room_id: roomId, sender: bob, content: { body: 'hello from B' } });
    });

    scenario('invite a remote user; the invite reaches their bridge and they join', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
      const bridgeA = bridgeOf(a);
      const bridgeB = bridgeOf(b);
      await bridgeA.asUser(alice).invite(roomId, carol);
      await bridgeB.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === carol && e.content?.membership === 'invite', EVENT_WAIT_MS);
      await bridgeB.asUser(carol).joinRoom(roomId, { viaServers: [a.serverName] });
      await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === carol && e.content?.membership === 'join', EVENT_WAIT_MS);
    });

    scenario('a state change on one side reaches the other', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
      // Bob has power 0: first A's admin raises him, and B must have that before Bob's change passes auth there.
      const bridgeA = bridgeOf(a);
      const levels = (await bridgeA.asUser(alice).getStateEvent(roomId, 'm.room.power_levels', '')) as { users?: Record<string, number> };
      const raised = await bridgeA.asUser(alice).sendStateEvent(roomId, 'm.room.power_levels' as never, { ...levels, users: { ...levels.users, [bob]: 50 } } as never, '');
      await step('B receives the power levels', bridgeOf(b).waitForEvent((e) => e.event_id === raised.event_id, EVENT_WAIT_MS));

      const sent = await bridgeOf(b).asUser(bob).setRoomTopic(roomId, 'topic from B');
      const atA = await step('A receives the topic', bridgeA.waitForEvent((e) => e.event_id === sent.event_id, EVENT_WAIT_MS));
      expect(atA).toMatchObject({ type: 'm.room.topic', state_key: '', content: { topic: 'topic from B' } });
    });

    scenario('concurrent state changes on both sides converge: both servers report the same state', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
      const [fromA, fromB] = await Promise.all([
        bridgeOf(a).asUser(alice).sendStateEvent(roomId, 'm.room.name' as never, { name: 'named on A' } as never, ''),
        bridgeOf(b).asUser(bob).sendStateEvent(roomId, 'm.room.name' as never, { name: 'named on B' } as never, ''),
      ]);
      await bridgeOf(a).waitForEvent((e) => e.event_id === fromB.event_id, EVENT_WAIT_MS);
      await bridgeOf(b).waitForEvent((e) => e.event_id === fromA.event_id, EVENT_WAIT_MS);
      const stateAtB = await eventually(
        async () => ({ a: await stateIds(bridgeOf(a), alice, roomId), b: await stateIds(bridgeOf(b), bob, roomId) }),
        (s) => JSON.stringify(s.a) === JSON.stringify(s.b),
      );
      expect(stateAtB.b).toEqual(stateAtB.a);
      expect([fromA.event_id, fromB.event_id]).toContain(stateAtB.a['m.room.name|']);
    });

    scenario('a redaction reaches the other side', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
      const message = await bridgeOf(b).asUser(bob).sendTextMessage(roomId, 'to be redacted');
      await bridgeOf(a).waitForEvent((e) => e.event_id === message.event_id, EVENT_WAIT_MS);
      const redaction = await bridgeOf(b).asUser(bob).redactEvent(roomId, message.event_id);
      const atA = await bridgeOf(a).waitForEvent((e) => e.event_id === redaction.event_id, EVENT_WAIT_MS);
      expect(atA.type).toBe('m.room.redaction');
      expect(atA.redacts ?? atA.content?.redacts).toBe(message.event_id);
    });

    scenario('kick, ban and leave are seen on both sides', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
      const bridgeA = bridgeOf(a);
      const bridgeB = bridgeOf(b);
      const membership = (userId: string, value: string) => (e: Record<string, any>) =>
        e.type === 'm.room.member' && e.state_key === userId && e.content?.membership === value;

      await bridgeA.asUser(alice).kick(roomId, carol, 'kicked in e2e');
      await step('B sees Carol kicked', bridgeB.waitForEvent(membership(carol, 'leave'), EVENT_WAIT_MS));
      await bridgeA.asUser(alice).ban(roomId, carol, 'banned in e2e');
      await step('B sees Carol banned', bridgeB.waitForEvent(membership(carol, 'ban'), EVENT_WAIT_MS));
      await expect(bridgeB.asUser(carol).joinRoom(roomId, { viaServers: [a.serverName] })).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });

      await bridgeB.asUser(bob).leave(roomId);
      await step('A sees Bob leave', bridgeA.waitForEvent(membership(bob, 'leave'), EVENT_WAIT_MS));
      // Rejoin for the outage scenario.
      const joinsBefore = bridgeA.received.events(membership(bob, 'join')).length;
      await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
      const joins = await eventually(async () => bridgeA.received.events(membership(bob, 'join')).length, (n) => n > joinsBefore);
      expect(joins).toBe(joinsBefore + 1);
    });

    scenario('spaces and upgrades across the two: a space on A with a room on B served by both; A upgrades a room to v12 and B\'s user follows the tombstone', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
      const bridgeA = bridgeOf(a);
      const bridgeB = bridgeOf(b);
      const ids = (h: { rooms: Array<{ room_id: string }> }) => h.rooms.map((r) => r.room_id);
      // Version 11: the room IDs name their server, the way in for the side not in the room.
      const { room_id: space } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'space on A', room_version: '11', creation_content: { type: 'm.space' } });
      const { room_id: child } = await bridgeB.asUser(bob).createRoom({ preset: 'public_chat' as never, name: 'room on B', room_version: '11' });
      await bridgeA.asUser(alice).sendStateEvent(space, 'm.space.child' as never, { via: [b.serverName] } as never, child);
      expect(ids(await step('A asks B about the child', bridgeA.asUser(alice).getRoomHierarchy(space)))).toEqual([space, child]);
      expect(ids(await step('B asks A about the space', bridgeB.asUser(bob).getRoomHierarchy(space)))).toEqual([space, child]);

      const { room_id: old } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'to upgrade', room_version: '10' });
      await bridgeB.asUser(bob).joinRoom(old, { viaServers: [a.serverName] });
      await step('A sees Bob join', bridgeA.waitForEvent((e) => e.room_id === old && e.type === 'm.room.member' && e.state_key === bob, EVENT_WAIT_MS));
      const { replacement_room: replacement } = await bridgeA.asUser(alice).upgradeRoom(old, '12');
      const tombstone = await step('B\'s bridge gets the tombstone', bridgeB.waitForEvent((e) => e.room_id === old && e.type === 'm.room.tombstone', EVENT_WAIT_MS));
      expect(tombstone.content).toMatchObject({ replacement_room: replacement });
      await bridgeB.asUser(bob).joinRoom(replacement);
      await step('A sees Bob join the new room', bridgeA.waitForEvent((e) => e.room_id === replacement && e.type === 'm.room.member' && e.state_key === bob, EVENT_WAIT_MS));
    });

    const outage = (signal: NodeJS.Signals, label: string) =>
      scenario(`B ${label} for a while and back: every event sent meanwhile is delivered once`, ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
        await b.stop(signal);
        const sent: string[] = [];
        for (let i = 0; i < 12; i++) sent.push((await bridgeOf(a).asUser(alice).sendTextMessage(roomId, `while B was ${label} ${i}`)).event_id);
        await b.start();
        for (const eventId of sent) await step(`B receives ${eventId}`, bridgeOf(b).waitForEvent((e) => e.event_id === eventId, 60_000));
        const counts = sent.map((eventId) => bridgeOf(b).received.events((e) => e.event_id === eventId).length);
        expect(counts).toEqual(sent.map(() => 1));
      }, 240_000);
    outage('SIGTERM', 'down');
    outage('SIGKILL', 'killed');

    describe('refused over the wire, with a reason in the audit store', () => {
      let remote: FakeRemoteServer;
      let auditStore: Store;
      let roomVersion = '10';
      let anchors: { create: string; latest: string } | undefined;
      beforeAll(async () => {
        if (roomId) {
          const create = await bridgeOf(a).asUser(alice).getStateEvent(roomId, 'm.room.create', '').catch(() => undefined);
          roomVersion = (create as { room_version?: string } | undefined)?.room_version ?? '1';
          const inRoom = bridgeOf(a).received.events((e) => e.room_id === roomId);
          const createEvent = inRoom.find((e) => e.type === 'm.room.create');
          if (createEvent && inRoom.length) anchors = { create: createEvent.event_id, latest: inRoom[inRoom.length - 1]!.event_id };
        }
        // An IP-literal name, so a room ACL can deny it (allow_ip_literals: false) without denying B on localhost.
        remote = await FakeRemoteServer.start(ca, '127.0.0.1');
        if (!MISSING.ingress) auditStore = await openInstanceStore(a);
      }, 60_000);
      afterAll(async () => {
        await remote?.stop();
        await auditStore?.close();
      });

      /** The rejected inbound audit records from the fake remote whose reason or details match. */
      const audited = async (reasonLike: RegExp) => {
        const matching = async () =>
          (await auditStore.audit.query({ direction: 'in', origin: remote.serverName, limit: 100 })).filter(
            (r) => r.outcome === 'rejected' && reasonLike.test(`${r.reason} ${JSON.stringify(r.details ?? {})}`),
          );
        return eventually(matching, (records) => Array.isArray(records) && records.length > 0);
      };
      /** The audit record of transaction `txnId` from the fake remote; per-PDU refusals are in its details. */
      const auditedTransaction = async (txnId: string) => {
        const records = await eventually(
          async () => (await auditStore.audit.query({ direction: 'in', origin: remote.serverName, limit: 100 })).filter((r) => r.txnId === txnId),
          (found) => Array.isArray(found) && found.length > 0,
        );
        expect(records).toHaveLength(1);
        return { ...records[0]!, detailsText: JSON.stringify(records[0]!.details ?? {}) };
      };
      const send = (txnId: string, body: unknown, options = {}) => remote.send(a.serverName, 'PUT', `/_matrix/federation/v1/send/${txnId}`, body, options);
      const remotePdu = (content: Record<string, unknown>) =>
        signEvent(
          {
            room_id: roomId,
            sender: `@mallory:${remote.serverName}`,
            type: 'm.room.message',
            content,
            origin_server_ts: Date.now(),
            depth: 100,
            prev_events: anchors ? [anchors.latest] : [],
            auth_events: anchors ? [anchors.create] : [],
          },
          roomVersion,
          remote.serverName,
          remote.signingKey,
        );

      scenario('a bad X-Matrix signature: 401 M_UNAUTHORIZED', ['ingress'], async () => {
        const res = await send('bad-sig', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [] }, { corruptSignature: true });
        expect(res).toMatchObject({ status: 401, json: { errcode: 'M_UNAUTHORIZED' } });
        expect(await audited(/M_UNAUTHORIZED|signature/i)).not.toHaveLength(0);
      });

      scenario('a key the origin never published: 401 M_UNAUTHORIZED', ['ingress'], async () => {
        const { generateSigningKey } = await import('@fedgate/protocol');
        const res = await send('unknown-key', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [] }, { key: generateSigningKey('unpublished') });
        expect(res).toMatchObject({ status: 401, json: { errcode: 'M_UNAUTHORIZED' } });
        expect(await audited(/M_UNAUTHORIZED|key/i)).not.toHaveLength(0);
      });

      scenario('more than 50 PDUs in one transaction: refused before any work', ['ingress'], async () => {
        const pdus = Array.from({ length: 51 }, (_, i) => remotePdu({ msgtype: 'm.text', body: `${i}` }));
        const res = await send('too-many', { origin: remote.serverName, origin_server_ts: Date.now(), pdus });
        expect(res.status).toBe(400);
        expect(['M_BAD_JSON', 'M_TOO_LARGE']).toContain(res.json.errcode);
        expect(await audited(/M_BAD_JSON|M_TOO_LARGE|pdus/i)).not.toHaveLength(0);
      });

      scenario('a forged event signature: the PDU is refused, the transaction answered', ['chatSync', 'stateResolver', 'ingress'], async () => {
        const pdu = remotePdu({ msgtype: 'm.text', body: 'forged' });
        const forged = { ...pdu, signatures: { [remote.serverName]: { [remote.signingKey.keyId]: 'A'.repeat(86) } } };
        const res = await send('forged', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [forged] });
        expect(res.status).toBe(200);
        const eventId = computeEventId(forged, roomVersion);
        expect(res.json.pdus[eventId]).toEqual({ error: expect.stringMatching(/signature/i) });
        const record = await auditedTransaction('forged');
        expect(record.detailsText).toContain(eventId);
        expect(record.detailsText).toMatch(/signature/i);
      });

      scenario('a bad content hash: kept only in redacted form', ['chatSync', 'stateResolver', 'ingress'], async () => {
        const pdu = remotePdu({ msgtype: 'm.text', body: 'original' });
        const tampered = { ...pdu, content: { msgtype: 'm.text', body: 'tampered after signing' } };
        const res = await send('bad-hash', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [tampered] });
        expect(res.status).toBe(200);
        const eventId = computeEventId(tampered, roomVersion);
        // Never delivered with the tampered body.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        expect(bridgeOf(a).received.events((e) => e.event_id === eventId && e.content?.body === 'tampered after signing')).toEqual([]);
        const record = await auditedTransaction('bad-hash');
        expect(record.detailsText).toContain(eventId);
        expect(record.detailsText).toMatch(/content hash/i);
      });

      scenario('an origin the room ACL denies: its PDUs are refused', ['chatSync', 'stateResolver', 'ingress', 'egress'], async () => {
        await bridgeOf(a).asUser(alice).sendStateEvent(roomId, 'm.room.server_acl' as never, { allow: ['*'], deny: [], allow_ip_literals: false } as never, '');
        const pdu = remotePdu({ msgtype: 'm.text', body: 'from a denied server' });
        const res = await send('acl', { origin: remote.serverName, origin_server_ts: Date.now(), pdus: [pdu] });
        const eventId = computeEventId(pdu, roomVersion);
        expect(res.status).toBe(200);
        expect(res.json.pdus[eventId]).toEqual({ error: expect.stringMatching(/server ACL/) });
        const record = await auditedTransaction('acl');
        expect(record.detailsText).toContain(eventId);
        expect(record.detailsText).toMatch(/M_FORBIDDEN/);
      });

      scenario('inviting a user on a private address: refused before connecting, the reason given to the caller', ['chatSync', 'stateResolver'], async () => {
        const refusal = await bridgeOf(a).asUser(alice).invite(roomId, '@someone:10.255.255.1:8448').then(
          () => undefined,
          (err: unknown) => err as { errcode?: string; data?: { error?: string } },
        );
        expect(refusal).toBeDefined();
        expect(refusal?.data?.error ?? String(refusal)).toMatch(/ADDRESS_REFUSED|not public/);
      });

      scenario('inviting a user on a private address: the refusal is in the audit store', ['chatSync', 'stateResolver', 'ingress'], async () => {
        await bridgeOf(a).asUser(alice).invite(roomId, '@audited:10.255.255.2:8448').catch(() => undefined);
        const records = await eventually(
          async () => (await auditStore.audit.query({ direction: 'out', destination: '10.255.255.2:8448', limit: 10 })).filter((r) => /invite/.test(r.path)),
          (found) => Array.isArray(found) && found.length > 0,
        );
        expect(records[0]).toMatchObject({ outcome: 'error', reason: 'ADDRESS_REFUSED', status: 0 });
      });
    });
  });
}
