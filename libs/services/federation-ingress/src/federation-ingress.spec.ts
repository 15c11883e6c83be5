import type { InboundPdu, MakeMembershipCommand, MakeMembershipReply, ReceiveInviteCommand, ReceiveInviteReply, SendMembershipCommand, SendMembershipReply, ServerUp } from '@fedgate/bus';
import { buildXMatrixHeader, computeEventId, generateSigningKey, roomVersionRules, signEvent, verifyJsonSignature, verifyServerKeyDocument, type JsonObject } from '@fedgate/protocol';
import { auditOnceRecorded, INGRESS_NAME, refusedWith, ROOM_VERSION, seedRoom, signedEvent, startIngress, type IngressHarness } from './__fixtures__/ingress-harness';
import { IngressMetrics } from './send/ingress-metrics';
import { inboundPduMessageId } from './send/transaction-processor';

const ROOM = '!room:ingress.test';
const ACL_ROOM = '!acl:ingress.test';

const refusal = async (promise: Promise<unknown>) => {
  const error = await refusedWith(promise);
  return { status: error.status, errcode: error.errcode, body: error.body as any };
};

describe('FederationIngressModule over HTTPS', () => {
  let h: IngressHarness;
  let roomEvents: string[];

  beforeAll(async () => {
    h = await startIngress({ maxPdusPerTransaction: 50 });
    ({ eventIds: roomEvents } = await seedRoom(h, ROOM, [h.remote.user('alice')]));
    await seedRoom(h, ACL_ROOM, [h.remote.user('alice'), h.other.user('olga')], [{ type: 'm.room.server_acl', state_key: '', content: { allow: ['*'], deny: ['denied.invalid'] } }]);
  }, 60_000);

  afterAll(() => h.close());

  const inbound = () => h.bus.readStream<InboundPdu>(h.topology.streams.inbound.name, h.topology.inboundPdu.all);
  const message = (body: string, sender = h.remote.user('alice'), room = ROOM) =>
    signedEvent({ room_id: room, type: 'm.room.message', sender, depth: 10, prev_events: [roomEvents.at(-1)!], content: { msgtype: 'm.text', body } }, h.remote.serverName, h.remote.key);

  describe('key endpoints', () => {
    it('serves our key document, signed, valid for about a week', async () => {
      const { body } = await h.remote.client().getJson<Record<string, unknown>>(INGRESS_NAME, '/_matrix/key/v2/server', { signed: false });
      const keys = verifyServerKeyDocument(body, { serverName: INGRESS_NAME });
      expect(keys.verifyKeys.get(h.identity.signingKey.keyId)?.publicKeyBase64).toBe(h.identity.signingKey.publicKeyBase64);
      expect(keys.validUntilTs).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    });

    it('answers notary queries with the origin document and our signature', async () => {
      const { body } = await h.remote.client().postJson<{ server_keys: Record<string, unknown>[] }>(
        INGRESS_NAME,
        '/_matrix/key/v2/query',
        { server_keys: { [h.other.serverName]: {} } },
        { signed: false },
      );
      expect(body.server_keys).toHaveLength(1);
      const document = body.server_keys[0];
      verifyServerKeyDocument(document, { serverName: h.other.serverName });
      verifyJsonSignature(document, INGRESS_NAME, (_s, keyId) => (keyId === h.identity.signingKey.keyId ? h.identity.signingKey.verifyKey() : undefined));
      const { body: single } = await h.remote.client().getJson<{ server_keys: Record<string, unknown>[] }>(INGRESS_NAME, `/_matrix/key/v2/query/${INGRESS_NAME}`, { signed: false });
      expect(single.server_keys.map((d) => d.server_name)).toEqual([INGRESS_NAME]);
    });
  });

  describe('X-Matrix authentication', () => {
    const path = '/_matrix/federation/v1/user/devices/%40bob%3Aingress.test';

    it('accepts a signed request, records it, and tells egress the server is up', async () => {
      const { body } = await h.remote.client().getJson(INGRESS_NAME, path);
      expect(body).toEqual({ user_id: '@bob:ingress.test', stream_id: 0, devices: [] });
      await auditOnceRecorded(h.store, (r) => r.origin === h.remote.serverName && r.path === path && r.status === 200 && r.outcome === 'ok');
      const ups = h.bus.readStream<ServerUp>(h.topology.streams.egress.name, h.topology.serverUp.subject);
      expect(ups.map((m) => m.data.serverName)).toContain(h.remote.serverName);
    });

    it.each([
      ['bad signature', 'bad_signature', (method: string, uri: string, destination: string) => buildXMatrixHeader({ method, uri: uri + '?tampered', origin: h.remote.serverName, destination }, h.remote.key)],
      ['unknown key', 'unknown_key', (method: string, uri: string, destination: string) => buildXMatrixHeader({ method, uri, origin: h.remote.serverName, destination }, generateSigningKey('unknown'))],
      ['wrong destination', 'wrong_destination', (method: string, uri: string) => buildXMatrixHeader({ method, uri, origin: h.remote.serverName, destination: 'elsewhere.test' }, h.remote.key)],
      ['not X-Matrix', 'bad_header', () => 'Bearer abc'],
    ])('refuses a request with a %s: 401 M_UNAUTHORIZED, audited', async (_name, reason, sign) => {
      const uniquePath = `/_matrix/federation/v1/user/devices/%40${reason}%3Aingress.test`;
      const refused = await refusal(h.remote.client(sign).getJson(INGRESS_NAME, uniquePath));
      expect(refused).toMatchObject({ status: 401, errcode: 'M_UNAUTHORIZED' });
      const record = await auditOnceRecorded(h.store, (r) => r.path === uniquePath);
      expect(record).toMatchObject({ status: 401, outcome: 'rejected', reason });
    });

    it('refuses a request without an Authorization header', async () => {
      const uniquePath = '/_matrix/federation/v1/user/devices/%40noauth%3Aingress.test';
      const refused = await refusal(h.remote.client().getJson(INGRESS_NAME, uniquePath, { signed: false }));
      expect(refused).toMatchObject({ status: 401, errcode: 'M_UNAUTHORIZED' });
      expect(await auditOnceRecorded(h.store, (r) => r.path === uniquePath)).toMatchObject({ reason: 'missing_header', origin: 'unknown' });
    });
  });

  describe('PUT /send/{txnId}', () => {
    const send = (txnId: string, body: JsonObject, client = h.remote.client()) => client.putJson<{ pdus: Record<string, JsonObject> }>(INGRESS_NAME, `/_matrix/federation/v1/send/${txnId}`, body);
    const txn = (pdus: unknown[], edus: unknown[] = []) => ({ origin: h.remote.serverName, origin_server_ts: Date.now(), pdus, edus }) as JsonObject;

    it('checks each PDU and publishes it to its room partition (message ID: event, origin, txnId); EDUs to their subject', async () => {
      const { eventId, pdu } = message('one');
      const typing = { edu_type: 'm.typing', content: { room_id: ROOM, user_id: h.remote.user('alice'), typing: true } };
      const { body } = await send('txn-ok', txn([pdu], [typing]));
      expect(body).toEqual({ pdus: { [eventId]: {} } });
      const published = inbound().find((m) => m.messageId === `${eventId}|${h.remote.serverName}|txn-ok`);
      expect(published?.subject).toBe(h.topology.inboundPdu.subjectFor(ROOM));
      expect(published?.data).toMatchObject({ eventId, roomId: ROOM, roomVersion: '10', origin: h.remote.serverName, txnId: 'txn-ok', redacted: false });
      const edus = h.bus.readStream(h.topology.streams.inbound.name, h.topology.inboundEdu.all);
      expect(edus).toContainEqual(expect.objectContaining({ subject: h.topology.inboundEdu.subjectFor('m.typing'), messageId: `${h.remote.serverName}:txn-ok:0` }));
      await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-ok' && r.status === 200 && r.pduCount === 1 && r.eduCount === 1);
    });

    it('gives a retry of the same txnId the same answer without handling it again', async () => {
      const first = message('retry');
      const { body } = await send('txn-retry', txn([first.pdu]));
      const other = message('different');
      const { body: again } = await send('txn-retry', txn([other.pdu]));
      expect(again).toEqual(body);
      expect(inbound().some((m) => m.data.eventId === other.eventId)).toBe(false);
      await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-retry' && (r.details as any)?.replayed === true);
    });

    it('refuses a second concurrent transaction from the same origin with 429 M_LIMIT_EXCEEDED', async () => {
      const original = h.store.receivedTransactions.get.bind(h.store.receivedTransactions);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const firstInside = new Promise<void>((resolve) => (entered = resolve));
      h.store.receivedTransactions.get = async (origin, txnId) => {
        if (txnId === 'txn-slow') {
          entered();
          await gate;
        }
        return original(origin, txnId);
      };
      try {
        const slow = send('txn-slow', txn([message('slow').pdu]));
        await firstInside;
        const refused = await refusal(send('txn-second', txn([message('second').pdu])));
        expect(refused.status).toBe(429);
        expect(refused.body).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: expect.any(Number) });
        release();
        await slow;
        // Another origin is not held up.
        await expect(send('txn-other', txn([]), h.other.client())).resolves.toMatchObject({ status: 200 });
      } finally {
        h.store.receivedTransactions.get = original;
      }
      await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-second' && r.status === 429 && r.reason === 'M_LIMIT_EXCEEDED');
    });

    // Issue 12: with our bus down ingress answered 500 after a hard-coded retry, so the peer backed off too.
    it('answers 503 with retry_after_ms while our bus or store is down, records nothing, and handles the retry in full once it is back', async () => {
      const publish = h.bus.publish.bind(h.bus);
      const publishBatch = h.bus.publishBatch.bind(h.bus);
      const held = message('while-bus-down');
      h.bus.publish = h.bus.publishBatch = async () => {
        throw new Error('nats: connection closed (simulated outage)');
      };
      try {
        const refused = await refusal(send('txn-bus-down', txn([held.pdu])));
        expect(refused).toMatchObject({ status: 503, errcode: 'M_UNKNOWN', body: { retry_after_ms: 5_000 } });
      } finally {
        h.bus.publish = publish;
        h.bus.publishBatch = publishBatch;
      }
      expect(await h.store.receivedTransactions.get(h.remote.serverName, 'txn-bus-down')).toBeFalsy();
      await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-bus-down' && r.status === 503 && r.reason === 'M_UNKNOWN');

      const get = h.store.receivedTransactions.get.bind(h.store.receivedTransactions);
      h.store.receivedTransactions.get = async () => {
        throw new Error('mongo: server selection timed out (simulated outage)');
      };
      try {
        expect(await refusal(send('txn-bus-down', txn([held.pdu])))).toMatchObject({ status: 503, body: { retry_after_ms: 5_000 } });
      } finally {
        h.store.receivedTransactions.get = get;
      }

      const { body } = await send('txn-bus-down', txn([held.pdu]));
      expect(body).toEqual({ pdus: { [held.eventId]: {} } });
      expect(inbound().filter((m) => m.messageId === inboundPduMessageId(held.eventId, h.remote.serverName, 'txn-bus-down'))).toHaveLength(1);
      const metrics = h.app.get(IngressMetrics);
      expect(await metrics.count(metrics.unavailable, { part: 'bus' })).toBe(1);
      expect(await metrics.count(metrics.unavailable, { part: 'store' })).toBe(1);
    });

    it('issue 19: a transaction whose PDUs were published in one commit but whose answer was not recorded (a crash between) hands on nothing twice when retried', async () => {
      const events = [message('batch-1'), message('batch-2'), message('batch-3')];
      const record = h.store.receivedTransactions.record.bind(h.store.receivedTransactions);
      h.store.receivedTransactions.record = async () => {
        throw new Error('process died before the answer was recorded (simulated)');
      };
      try {
        expect(await refusal(send('txn-batch-crash', txn(events.map((e) => e.pdu))))).toMatchObject({ status: 503 });
      } finally {
        h.store.receivedTransactions.record = record;
      }
      const published = () => inbound().filter((m) => m.data.txnId === 'txn-batch-crash');
      expect(published().map((m) => m.data.eventId)).toEqual(events.map((e) => e.eventId));
      const { body } = await send('txn-batch-crash', txn(events.map((e) => e.pdu)));
      expect(body).toEqual({ pdus: Object.fromEntries(events.map((e) => [e.eventId, {}])) });
      expect(published().map((m) => m.data.eventId)).toEqual(events.map((e) => e.eventId));
    });

    it('refuses an oversized transaction before any work: 400 M_TOO_LARGE, audited', async () => {
      const pdus = Array.from({ length: 51 }, (_, i) => message(`many ${i}`).pdu);
      const refused = await refusal(send('txn-huge', txn(pdus)));
      expect(refused).toMatchObject({ status: 400, errcode: 'M_TOO_LARGE' });
      const edus = Array.from({ length: 101 }, () => ({ edu_type: 'm.presence', content: {} }));
      expect(await refusal(send('txn-huge-edus', txn([], edus)))).toMatchObject({ status: 400, errcode: 'M_TOO_LARGE' });
      expect(await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-huge')).toMatchObject({ status: 400, outcome: 'rejected', reason: 'M_TOO_LARGE', pduCount: 51 });
      expect(inbound().some((m) => m.data.txnId === 'txn-huge')).toBe(false);
    });

    it('answers a PDU with a forged signature with a per-PDU error and does not pass it on', async () => {
      const forged = signedEvent({ room_id: ROOM, type: 'm.room.message', sender: h.remote.user('alice'), content: { body: 'forged' } }, h.remote.serverName, generateSigningKey('remote'));
      const good = message('alongside');
      const { body } = await send('txn-forged', txn([forged.pdu, good.pdu]));
      expect(body.pdus[forged.eventId]).toEqual({ error: expect.stringContaining('signature') });
      expect(body.pdus[good.eventId]).toEqual({});
      expect(inbound().some((m) => m.data.eventId === forged.eventId)).toBe(false);
      const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-forged');
      expect((record.details as any).refused).toEqual([expect.objectContaining({ eventId: forged.eventId, errcode: 'M_FORBIDDEN' })]);
    });

    it('passes a PDU whose content hash does not match on in its redacted form', async () => {
      const { eventId, pdu } = message('secret');
      const tampered = { ...pdu, content: { msgtype: 'm.text', body: 'changed' } };
      const { body } = await send('txn-hash', txn([tampered]));
      expect(body.pdus[eventId]).toEqual({});
      const published = inbound().find((m) => m.data.eventId === eventId);
      expect(published?.data.redacted).toBe(true);
      expect(published?.data.pdu.content).toEqual({});
      const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-hash');
      expect((record.details as any).refused).toEqual([expect.objectContaining({ eventId, errcode: 'content_hash' })]);
    });

    it('answers a PDU for an unknown room or a malformed PDU per PDU, not for the whole request', async () => {
      const unknown = signedEvent({ room_id: '!nowhere:ingress.test', type: 'm.room.message', sender: h.remote.user('alice'), content: {} }, h.remote.serverName, h.remote.key);
      const { body } = await send('txn-unknown', txn([unknown.pdu, { room_id: ROOM, type: 'm.room.message' }]));
      expect(body.pdus).toEqual({});
      const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-unknown');
      expect((record.details as any).refused).toEqual([
        expect.objectContaining({ index: 0, errcode: 'M_NOT_FOUND' }),
        expect.objectContaining({ index: 1, errcode: 'M_BAD_JSON' }),
      ]);
    });

    it('issue 16 (bad JSON, v6): a PDU refused for a float is answered under its event ID, not passed on, and the rest of the transaction goes on', async () => {
      const { hashes: _h, signatures: _s, ...fields } = message('float').pdu;
      const withFloat = signEvent({ ...fields, content: { msgtype: 'm.text', body: 'float', bad_val: 1.1 } }, { ...roomVersionRules(ROOM_VERSION), strictCanonicalJson: false }, h.remote.serverName, h.remote.key);
      const floatId = computeEventId(withFloat, ROOM_VERSION);
      const good = message('beside the float');
      const { body } = await send('txn-float', txn([withFloat, good.pdu]));
      expect(body.pdus).toEqual({ [floatId]: { error: expect.stringContaining('content.bad_val') }, [good.eventId]: {} });
      expect(inbound().some((m) => m.data.eventId === floatId)).toBe(false);
      const record = await auditOnceRecorded(h.store, (r) => r.txnId === 'txn-float');
      expect((record.details as any).refused).toEqual([expect.objectContaining({ index: 0, eventId: floatId, errcode: 'M_BAD_JSON' })]);
    });

    it('applies the server ACL to the transaction origin and to each PDU sender', async () => {
      const aclMessage = (sender: string, signer: typeof h.remote) =>
        signedEvent({ room_id: ACL_ROOM, type: 'm.room.message', sender, content: { body: 'acl' } }, signer.serverName, signer.key);
      // Both test servers are 127.0.0.1:<port>; the ACL matches hosts without ports, so this denies them.
      await denyHost(h, ACL_ROOM, '127.0.0.1');
      const fromRemote = aclMessage(h.remote.user('alice'), h.remote);
      const { body } = await send('txn-acl', txn([fromRemote.pdu]));
      expect(body.pdus[fromRemote.eventId]).toEqual({ error: expect.stringContaining('server ACL') });
      expect(inbound().some((m) => m.data.eventId === fromRemote.eventId)).toBe(false);
      const refused = await refusal(h.remote.client().getJson(INGRESS_NAME, `/_matrix/federation/v1/state_ids/${encodeURIComponent(ACL_ROOM)}`, { query: { event_id: roomEvents[0] } }));
      expect(refused).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
      await auditOnceRecorded(h.store, (r) => r.path.includes('state_ids') && r.reason === 'server_acl' && r.status === 403);
    });
  });

  describe('reads', () => {
    const get = (path: string, query?: Record<string, string | string[]>, client = h.remote.client()) => client.getJson<any>(INGRESS_NAME, path, query ? { query } : {});
    const room = encodeURIComponent(ROOM);

    it('serves events, state and auth chains to a server in the room', async () => {
      const last = roomEvents.at(-1)!;
      const { body: event } = await get(`/_matrix/federation/v1/event/${encodeURIComponent(last)}`);
      expect(event).toMatchObject({ origin: INGRESS_NAME, pdus: [expect.objectContaining({ type: 'm.room.message' })] });
      const { body: ids } = await get(`/_matrix/federation/v1/state_ids/${room}`, { event_id: last });
      expect(ids.pdu_ids).toHaveLength(5);
      expect(ids.pdu_ids).toContain(roomEvents[0]);
      const { body: state } = await get(`/_matrix/federation/v1/state/${room}`, { event_id: last });
      expect(state.pdus).toHaveLength(5);
      const { body: auth } = await get(`/_matrix/federation/v1/event_auth/${room}/${encodeURIComponent(roomEvents[2])}`);
      expect(auth.auth_chain.length).toBeGreaterThan(0);
    });

    it('walks backfill and get_missing_events', async () => {
      const last = roomEvents.at(-1)!;
      const { body: backfill } = await get(`/_matrix/federation/v1/backfill/${room}`, { v: last, limit: '3' });
      expect(backfill.pdus).toHaveLength(3);
      const { body: missing } = await h.remote.client().postJson<any>(INGRESS_NAME, `/_matrix/federation/v1/get_missing_events/${room}`, {
        earliest_events: [roomEvents[1]],
        latest_events: [last],
        limit: 10,
      });
      expect(missing.events.map((e: any) => e.type)).toEqual(['m.room.join_rules', 'm.room.history_visibility', 'm.room.member']);
    });

    it('serves a redacted event in its redacted form on every read, signatures kept', async () => {
      const redactedRoom = '!redacted:ingress.test';
      const { stateEventIds } = await seedRoom(h, redactedRoom, [h.remote.user('alice')], [{ type: 'm.room.topic', state_key: '', content: { topic: 'secret' } }]);
      const topic = stateEventIds.get(JSON.stringify(['m.room.topic', '']))!;
      const original = (await h.store.events.get(topic))!.pdu;
      expect(await h.store.redactions.apply({ redactionEventId: '$redaction', targetEventId: topic, roomId: redactedRoom })).toBe(true);
      const { body: event } = await get(`/_matrix/federation/v1/event/${encodeURIComponent(topic)}`);
      expect(event.pdus[0]).toMatchObject({ type: 'm.room.topic', content: {}, hashes: original.hashes, signatures: original.signatures });
      const { body: backfill } = await get(`/_matrix/federation/v1/backfill/${encodeURIComponent(redactedRoom)}`, { v: topic, limit: '1' });
      expect(backfill.pdus[0].content).toEqual({});
      const { body: state } = await get(`/_matrix/federation/v1/state/${encodeURIComponent(redactedRoom)}`, { event_id: topic });
      expect(state.pdus.find((p: any) => p.type === 'm.room.topic')).toBeUndefined();
      expect((await h.store.events.get(topic))!.pdu.content).toEqual({ topic: 'secret' });
    });

    it('refuses reads to a server not in the room', async () => {
      const refused = await refusal(get(`/_matrix/federation/v1/event/${encodeURIComponent(roomEvents.at(-1)!)}`, undefined, h.other.client()));
      expect(refused).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
      expect(await refusal(get(`/_matrix/federation/v1/event/${encodeURIComponent('$nothing')}`))).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
    });
  });

  describe('membership handshakes and queries', () => {
    it('make_join asks state-resolver and maps its refusals to Matrix errors', async () => {
      const seen: MakeMembershipCommand[] = [];
      const sub = await h.bus.serve<MakeMembershipCommand, MakeMembershipReply>(h.topology.makeMembership.command, (command) => {
        seen.push(command);
        if (!command.supportedVersions?.includes('10')) return { ok: false, errcode: 'M_INCOMPATIBLE_ROOM_VERSION', error: 'room is v10' };
        return { ok: true, roomVersion: '10', event: { type: 'm.room.member', state_key: command.userId } };
      });
      try {
        const path = `/_matrix/federation/v1/make_join/${encodeURIComponent(ROOM)}/${encodeURIComponent(h.remote.user('bob'))}`;
        const { body } = await h.remote.client().getJson<any>(INGRESS_NAME, path, { query: { ver: ['9', '10'] } });
        expect(body).toEqual({ room_version: '10', event: { type: 'm.room.member', state_key: h.remote.user('bob') } });
        expect(seen[0]).toMatchObject({ roomId: ROOM, membership: 'join', origin: h.remote.serverName, supportedVersions: ['9', '10'] });
        expect(await refusal(h.remote.client().getJson(INGRESS_NAME, path))).toMatchObject({ status: 400, errcode: 'M_INCOMPATIBLE_ROOM_VERSION' });
        const otherUser = `/_matrix/federation/v1/make_join/${encodeURIComponent(ROOM)}/${encodeURIComponent(h.other.user('bob'))}`;
        expect(await refusal(h.remote.client().getJson(INGRESS_NAME, otherUser, { query: { ver: '10' } }))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
      } finally {
        await sub.stop();
      }
    });

    it('send_join checks the event and answers v2 as an object and v1 as [200, body]; a forged join is refused', async () => {
      const seen: SendMembershipCommand[] = [];
      const sub = await h.bus.serve<SendMembershipCommand, SendMembershipReply>(h.topology.sendMembership.command, (command) => {
        seen.push(command);
        return { ok: true, roomVersion: '10', event: command.event, state: [{ type: 'm.room.create' }], authChain: [], serversInRoom: [INGRESS_NAME] };
      });
      try {
        const bob = h.remote.user('bob');
        const join = signedEvent({ room_id: ROOM, type: 'm.room.member', state_key: bob, sender: bob, content: { membership: 'join' } }, h.remote.serverName, h.remote.key);
        const path = (v: string, id = join.eventId) => `/_matrix/federation/${v}/send_join/${encodeURIComponent(ROOM)}/${encodeURIComponent(id)}`;
        const { body: v2 } = await h.remote.client().putJson<any>(INGRESS_NAME, path('v2'), join.pdu);
        expect(v2).toMatchObject({ origin: INGRESS_NAME, event: join.pdu, state: [{ type: 'm.room.create' }], auth_chain: [], members_omitted: false, servers_in_room: [INGRESS_NAME] });
        expect(seen[0]).toMatchObject({ roomId: ROOM, eventId: join.eventId, membership: 'join', origin: h.remote.serverName });
        expect(seen[0]!.omitMembers).toBeUndefined();
        const { body: v1 } = await h.remote.client().putJson<any>(INGRESS_NAME, path('v1'), join.pdu);
        expect(v1).toEqual([200, expect.objectContaining({ event: join.pdu })]);
        const forged = signedEvent({ room_id: ROOM, type: 'm.room.member', state_key: bob, sender: bob, content: { membership: 'join' } }, h.remote.serverName, generateSigningKey('remote'));
        expect(await refusal(h.remote.client().putJson(INGRESS_NAME, path('v2', forged.eventId), forged.pdu))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
        expect(await refusal(h.remote.client().putJson(INGRESS_NAME, path('v2', '$other'), join.pdu))).toMatchObject({ status: 400, errcode: 'M_BAD_JSON' });
        expect(seen).toHaveLength(2);
      } finally {
        await sub.stop();
      }
    });

    it('send_join v2 with omit_members=true asks state-resolver for the reduced answer and serves members_omitted and servers_in_room', async () => {
      const seen: SendMembershipCommand[] = [];
      const sub = await h.bus.serve<SendMembershipCommand, SendMembershipReply>(h.topology.sendMembership.command, (command) => {
        seen.push(command);
        return { ok: true, roomVersion: '10', event: command.event, state: [], authChain: [], serversInRoom: ['a.test', INGRESS_NAME], membersOmitted: command.omitMembers === true };
      });
      try {
        const bob = h.remote.user('bob');
        const join = signedEvent({ room_id: ROOM, type: 'm.room.member', state_key: bob, sender: bob, content: { membership: 'join' } }, h.remote.serverName, h.remote.key);
        const path = `/_matrix/federation/v2/send_join/${encodeURIComponent(ROOM)}/${encodeURIComponent(join.eventId)}`;
        const { body } = await h.remote.client().putJson<any>(INGRESS_NAME, path, join.pdu, { query: { omit_members: 'true' } });
        expect(body).toMatchObject({ members_omitted: true, servers_in_room: ['a.test', INGRESS_NAME] });
        expect(seen[0]).toMatchObject({ membership: 'join', omitMembers: true });
        const { body: full } = await h.remote.client().putJson<any>(INGRESS_NAME, path, join.pdu, { query: { omit_members: 'false' } });
        expect(full).toMatchObject({ members_omitted: false });
        expect(seen[1]!.omitMembers).toBeUndefined();
      } finally {
        await sub.stop();
      }
    });

    it('invite v2 passes a signed invite for a local user to state-resolver and returns its signed event', async () => {
      const sub = await h.bus.serve<ReceiveInviteCommand, ReceiveInviteReply>(h.topology.receiveInvite.command, (command) => ({ ok: true, event: { ...command.event, signed_here: true } }));
      try {
        const invite = signedEvent({ room_id: '!remote:elsewhere', type: 'm.room.member', state_key: '@carol:ingress.test', sender: h.remote.user('alice'), content: { membership: 'invite' } }, h.remote.serverName, h.remote.key);
        const path = `/_matrix/federation/v2/invite/${encodeURIComponent('!remote:elsewhere')}/${encodeURIComponent(invite.eventId)}`;
        const { body } = await h.remote.client().putJson<any>(INGRESS_NAME, path, { event: invite.pdu, room_version: '10', invite_room_state: [] });
        expect(body.event).toMatchObject({ signed_here: true, state_key: '@carol:ingress.test' });
        expect(await refusal(h.remote.client().putJson(INGRESS_NAME, path, { event: invite.pdu, room_version: '999', invite_room_state: [] }))).toMatchObject({
          status: 400,
          errcode: 'M_INCOMPATIBLE_ROOM_VERSION',
        });
      } finally {
        await sub.stop();
      }
    });

    it('strict origin check: a profile query for `ghost:ingress.test` (no "@") is 400 M_INVALID_PARAM, not a lookup', async () => {
      expect(await refusal(h.remote.client().getJson(INGRESS_NAME, '/_matrix/federation/v1/query/profile', { query: { user_id: 'ghost:ingress.test' } }))).toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM' });
    });

    it('answers profile queries for unknown users with M_NOT_FOUND and lists public rooms', async () => {
      expect(await refusal(h.remote.client().getJson(INGRESS_NAME, '/_matrix/federation/v1/query/profile', { query: { user_id: '@ghost:ingress.test' } }))).toMatchObject({
        status: 404,
        errcode: 'M_NOT_FOUND',
      });
      // Only published rooms are listed (issue 18 defect 7): the seeded rooms are published here.
      for (const roomId of [ROOM, ACL_ROOM]) await h.store.roomDirectory.set({ roomId, visibility: 'public', appServiceId: null, updatedTs: 1 });
      const { body } = await h.remote.client().getJson<any>(INGRESS_NAME, '/_matrix/federation/v1/publicRooms', { query: { limit: 1 } });
      expect(body.chunk).toEqual([expect.objectContaining({ join_rule: 'public', num_joined_members: expect.any(Number) })]);
      const all = (await h.remote.client().getJson<any>(INGRESS_NAME, '/_matrix/federation/v1/publicRooms')).body;
      expect(all.chunk.map((r: any) => r.room_id)).toEqual(expect.arrayContaining([ROOM, ACL_ROOM]));
      expect(body.total_room_count_estimate).toBe(all.chunk.length);
      const next = (await h.remote.client().getJson<any>(INGRESS_NAME, '/_matrix/federation/v1/publicRooms', { query: { limit: 1, since: body.next_batch } })).body;
      expect([...body.chunk, ...next.chunk].map((r: any) => r.room_id)).toEqual(all.chunk.slice(0, 2).map((r: any) => r.room_id));
    });

    // Issue 18 defect 7: every room with a public join rule was listed, published or not, and `limit` had no cap.
    it('lists only rooms published in the directory, and caps limit', async () => {
      const unpublished = '!unpublished:ingress.test';
      await seedRoom(h, unpublished, [h.remote.user('alice')], [{ type: 'm.room.topic', state_key: '', content: { topic: 'not for the directory' } }]);
      const listed = async (query: Record<string, string | number> = {}) => (await h.remote.client().getJson<any>(INGRESS_NAME, '/_matrix/federation/v1/publicRooms', { query })).body;
      expect((await listed()).chunk.map((r: any) => r.room_id)).not.toContain(unpublished);
      await h.store.roomDirectory.set({ roomId: unpublished, visibility: 'public', appServiceId: null, updatedTs: 2 });
      expect((await listed()).chunk.map((r: any) => r.room_id)).toContain(unpublished);
      await h.store.roomDirectory.set({ roomId: unpublished, visibility: 'private', appServiceId: null, updatedTs: 3 });
      expect((await listed()).chunk.map((r: any) => r.room_id)).not.toContain(unpublished);
      for (let i = 0; i < 101; i++) {
        const roomId = `!zz${String(i).padStart(3, '0')}:ingress.test`;
        await seedRoom(h, roomId, []);
        await h.store.roomDirectory.set({ roomId, visibility: 'public', appServiceId: null, updatedTs: 4 });
      }
      const capped = await listed({ limit: 100000 });
      expect(capped.chunk).toHaveLength(100);
      expect(capped.next_batch).toEqual(expect.any(String));
      expect(await refusal(h.remote.client().getJson(INGRESS_NAME, '/_matrix/federation/v1/publicRooms', { query: { since: 'o1' } }))).toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM' });
    });
  });
});

/** Replaces the room's ACL with one that denies `host` (allowing everything else). */
async function denyHost(h: IngressHarness, roomId: string, host: string): Promise<void> {
  const { stateTupleKey } = await import('@fedgate/store');
  const { eventId, pdu } = signedEvent({ room_id: roomId, type: 'm.room.server_acl', state_key: '', sender: `@creator:${INGRESS_NAME}`, content: { allow: ['*'], deny: [host] } }, INGRESS_NAME, h.identity.signingKey);
  await h.store.events.append({ eventId, roomId, type: 'm.room.server_acl', stateKey: '', depth: 99, prevEventIds: [], authEventIds: [], pdu: pdu as never, status: 'accepted', outlier: false, receivedTs: Date.now() });
  const room = await h.store.rooms.get(roomId);
  const state = new Map(await h.store.state.load(room!.currentStateId!));
  state.set(stateTupleKey('m.room.server_acl', ''), eventId);
  await h.store.rooms.setCurrentState(roomId, await h.store.state.save(roomId, state));
}
