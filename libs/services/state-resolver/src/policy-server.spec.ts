// Honouring a room's policy server (issue 17): our events are signed by it before they are kept or sent, and
// received events without its valid signature are soft-failed. The policy server is an in-test one on b.test,
// which also has a joined user, as the spec requires for the room to be using it.
import { encodeUnpaddedBase64, generateSigningKey, POLICY_SERVER_KEY_ID, redactedSigningText, roomVersionRules, verifyPolicyServerSignature, type Pdu, type SigningKey } from '@fedgate/protocol';
import { Registry } from 'prom-client';
import { busTopology, type InboundPdu } from '@fedgate/bus';
import { EventBuilder } from './event-builder';
import { DEFAULT_OUTBOUND_POLICY_LIMITS, withinCommandTimeout } from './policy-server-limits';
import type { PeerRequest } from './testing/test-server';
import { TestNetwork, type TestServer } from './testing/test-server';

type Answer = { status: number; body: unknown };

describe('policy servers (participant)', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;
  const psKey = generateSigningKey('policy_server');
  const psPublic = encodeUnpaddedBase64(psKey.publicKey);
  let behaviour: (request: PeerRequest) => Promise<Answer>;
  let metrics: Registry;
  const counted = async (labels: { event: string; outcome: string }) =>
    (await metrics.getSingleMetricAsString('fedgate_room_policy_server_events_total')).split('\n').find((l) => l.includes(`event="${labels.event}"`) && l.includes(`outcome="${labels.outcome}"`))?.split(' ')[1];
  const asked: PeerRequest[] = [];

  const signatureOf = (event: Record<string, unknown>, key: SigningKey = psKey) => encodeUnpaddedBase64(key.sign(Buffer.from(redactedSigningText(event, '12'), 'utf8')));
  const signs = async (request: PeerRequest): Promise<Answer> => ({ status: 200, body: { 'b.test': { [POLICY_SERVER_KEY_ID]: signatureOf(request.body as Record<string, unknown>) } } });

  beforeEach(async () => {
    network = new TestNetwork();
    metrics = new Registry();
    a = await network.add('a.test', { metrics, policyServer: { outbound: { timeoutMs: 200, retryDelayMs: 10 }, inbound: { timeoutMs: 200 }, inboundQuietMs: 60_000 } });
    b = await network.add('b.test');
    asked.length = 0;
    behaviour = signs;
    network.policyServers.set('b.test', async (request) => {
      asked.push(request);
      return behaviour(request);
    });
  });
  afterEach(() => network.close());

  /** A room on a.test where b.test has a joined user and is named the policy server. */
  async function policedRoom(content: Record<string, unknown> = { via: 'b.test', public_keys: { ed25519: psPublic } }) {
    const roomId = await a.createRoom('@alice:a.test', '12');
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
    const policy = await a.send(roomId, '@alice:a.test', 'm.room.policy', content, { stateKey: '' });
    expect(policy.ok).toBe(true);
    return roomId;
  }

  const stored = async (eventId: string) => (await a.store.events.get(eventId))!;
  const signAudits = async () => (await a.store.audit.query({ direction: 'out', destination: 'b.test' })).filter((r) => r.path.startsWith('/_matrix/policy/'));

  describe('our events (outbound)', () => {
    it('asks nothing in a room without a policy server, nor for the m.room.policy state event that names one', async () => {
      const roomId = await policedRoom();
      expect(await a.send(roomId, '@alice:a.test', 'm.room.topic', { topic: 'free' }, { stateKey: '' })).toMatchObject({ ok: true });
      const plain = await a.createRoom('@alice:a.test', '12');
      asked.length = 0;
      expect(await a.send(plain, '@alice:a.test', 'm.room.message', { body: 'hi' })).toMatchObject({ ok: true });
      expect(asked).toHaveLength(0);
      expect((await signAudits()).length).toBe(1);
    });

    it('attaches the policy server signature before the event is kept and sent', async () => {
      const roomId = await policedRoom();
      const reply = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'fine' }, { txnId: 't1' });
      expect(reply.ok).toBe(true);
      const eventId = reply.ok ? reply.eventId : '';
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatchObject({ from: 'a.test', method: 'POST', path: '/_matrix/policy/v1/sign' });
      expect(asked[0].body).not.toHaveProperty('unsigned');
      const record = await stored(eventId);
      expect(verifyPolicyServerSignature(record.pdu, '12', 'b.test', psPublic)).toEqual({ valid: true });
      expect(record.pdu.signatures['a.test']).toBeDefined();
      expect(a.published.find((e) => e.eventId === eventId)!.event.signatures).toHaveProperty(['b.test', POLICY_SERVER_KEY_ID]);
      expect(await signAudits()).toEqual([expect.objectContaining({ outcome: 'ok', reason: 'policy_server_signed' })]);
      expect(await counted({ event: 'ours', outcome: 'signed' })).toBe('1');
    });

    it('signs membership and other state events too (all but the m.room.policy state event)', async () => {
      const roomId = await policedRoom();
      expect(await a.send(roomId, '@alice:a.test', 'm.room.name', { name: 'Policed' }, { stateKey: '' })).toMatchObject({ ok: true });
      expect(await a.send(roomId, '@alice:a.test', 'm.room.policy', { note: 'not the state one' })).toMatchObject({ ok: true });
      expect(await a.send(roomId, '@alice:a.test', 'm.room.policy', {}, { stateKey: 'other' })).toMatchObject({ ok: true });
      expect(asked.map((r) => (r.body as Pdu).type)).toEqual(['m.room.name', 'm.room.policy', 'm.room.policy']);
    });

    it('refuses the request with the policy server error verbatim and keeps nothing; the same txnId goes through once it signs', async () => {
      const roomId = await policedRoom();
      behaviour = async () => ({ status: 400, body: { errcode: 'M_FORBIDDEN', error: 'The message appears to contain possible spam' } });
      const before = a.published.length;
      const extremities = await a.store.rooms.getForwardExtremities(roomId);
      const refused = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'spam' }, { txnId: 't-spam' });
      expect(refused).toEqual({ ok: false, errcode: 'M_FORBIDDEN', error: 'The message appears to contain possible spam', status: 400 });
      expect(asked).toHaveLength(1);
      expect(a.published.length).toBe(before);
      expect(await a.store.rooms.getForwardExtremities(roomId)).toEqual(extremities);
      expect(await a.store.pendingCommits.list(roomId)).toEqual([]);
      expect(await signAudits()).toEqual([expect.objectContaining({ outcome: 'rejected', reason: 'M_FORBIDDEN', status: 400 })]);
      behaviour = signs;
      const retried = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'spam' }, { txnId: 't-spam' });
      expect(retried.ok).toBe(true);
    });

    it('relays a rate limit with its retry_after_ms', async () => {
      const roomId = await policedRoom();
      behaviour = async () => ({ status: 429, body: { errcode: 'M_LIMIT_EXCEEDED', error: 'slow down', retry_after_ms: 1500 } });
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' })).toEqual({ ok: false, errcode: 'M_LIMIT_EXCEEDED', error: 'slow down', status: 429, retry_after_ms: 1500 });
    });

    it.each([
      ['a signature by another key', async (r: PeerRequest): Promise<Answer> => ({ status: 200, body: { 'b.test': { [POLICY_SERVER_KEY_ID]: signatureOf(r.body as Record<string, unknown>, generateSigningKey()) } } })],
      ['the signature of a different event', async (r: PeerRequest): Promise<Answer> => ({ status: 200, body: { 'b.test': { [POLICY_SERVER_KEY_ID]: signatureOf({ ...(r.body as Record<string, unknown>), content: { body: 'else' }, type: 'm.room.topic' }) } } })],
      ['a signature under another server name', async (r: PeerRequest): Promise<Answer> => ({ status: 200, body: { 'evil.test': { [POLICY_SERVER_KEY_ID]: signatureOf(r.body as Record<string, unknown>) } } })],
      ['an empty answer', async (): Promise<Answer> => ({ status: 200, body: {} })],
    ])('refuses our event when the policy server answers with %s, once, and keeps nothing', async (_name, lie) => {
      const roomId = await policedRoom();
      behaviour = lie;
      const before = a.published.length;
      const reply = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' });
      expect(reply).toMatchObject({ ok: false, errcode: 'M_UNKNOWN', status: 502 });
      expect(!reply.ok && reply.error).toMatch(/without a valid signature/);
      expect(asked).toHaveLength(1);
      expect(a.published.length).toBe(before);
      expect(await signAudits()).toEqual([expect.objectContaining({ outcome: 'rejected', reason: 'policy_signature_invalid' })]);
    });

    it('a policy server that never answers: bounded attempts, then the request is refused (502) with nothing kept', async () => {
      const roomId = await policedRoom();
      behaviour = () => new Promise<Answer>(() => undefined);
      const before = a.published.length;
      const reply = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' }, { txnId: 't-hang' });
      expect(reply).toMatchObject({ ok: false, errcode: 'M_UNKNOWN', status: 502 });
      expect(!reply.ok && reply.error).toMatch(/gave no answer/);
      expect(asked).toHaveLength(2);
      expect(a.published.length).toBe(before);
      expect((await signAudits()).map((r) => [r.outcome, r.reason])).toEqual([
        ['error', 'TIMEOUT'],
        ['error', 'TIMEOUT'],
      ]);
      // The client retries with the same txnId once the policy server is back: one event.
      behaviour = signs;
      const again = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' }, { txnId: 't-hang' });
      expect(again.ok).toBe(true);
      expect(a.published.filter((e) => e.event.type === 'm.room.message')).toHaveLength(1);
    });

    it('retries a 5xx once and then uses the signature', async () => {
      const roomId = await policedRoom();
      let calls = 0;
      behaviour = async (r) => (++calls === 1 ? { status: 503, body: { errcode: 'M_UNKNOWN', error: 'busy' } } : signs(r));
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' })).toMatchObject({ ok: true });
      expect(asked).toHaveLength(2);
    });

    it('an emptied m.room.policy (the room turning its policy server off) goes through while the policy server is down, and nothing is asked after', async () => {
      const roomId = await policedRoom();
      network.down.add('b.test');
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' })).toMatchObject({ ok: false, status: 502 });
      expect(await a.send(roomId, '@alice:a.test', 'm.room.policy', {}, { stateKey: '' })).toMatchObject({ ok: true });
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' })).toMatchObject({ ok: true });
    });
  });

  it("an invite to another server's user is signed before the invitee sees it, and keeps the signature whatever the invitee answers with", async () => {
    const roomId = await policedRoom();
    const c = await network.add('c.test');
    const honest = c.resolver.handshakes.receiveInvite.bind(c.resolver.handshakes);
    let seenByInvitee: Pdu | undefined;
    c.resolver.handshakes.receiveInvite = async (command) => {
      seenByInvitee = command.event as unknown as Pdu;
      const reply = await honest(command);
      if (!reply.ok) return reply;
      const { 'b.test': _dropped, ...others } = (reply.event as { signatures: Record<string, unknown> }).signatures;
      return { ...reply, event: { ...reply.event, signatures: others } as never };
    };
    const invite = await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@carol:c.test' });
    expect(invite.ok).toBe(true);
    expect(verifyPolicyServerSignature(seenByInvitee!, '12', 'b.test', psPublic)).toEqual({ valid: true });
    const record = await stored(invite.ok ? invite.eventId : '');
    expect(verifyPolicyServerSignature(record.pdu, '12', 'b.test', psPublic)).toEqual({ valid: true });
    expect(record.pdu.signatures['c.test']).toBeDefined();
  });

  it('an invite the policy server refuses never reaches the invitee', async () => {
    const roomId = await policedRoom();
    const c = await network.add('c.test');
    let invited = false;
    c.resolver.handshakes.receiveInvite = async () => {
      invited = true;
      return { ok: false, errcode: 'M_FORBIDDEN', error: 'unexpected', status: 403 };
    };
    behaviour = async () => ({ status: 400, body: { errcode: 'M_FORBIDDEN', error: 'no invites from here' } });
    expect(await a.send(roomId, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@carol:c.test' })).toEqual({ ok: false, errcode: 'M_FORBIDDEN', error: 'no invites from here', status: 400 });
    expect(invited).toBe(false);
  });

  it('a redacted m.room.policy turns the policy server off (redaction keeps none of its content)', async () => {
    const roomId = await policedRoom();
    const policyId = (await a.resolver.reader.currentState(roomId))!.get('m.room.policy\u0000')!;
    expect(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: policyId })).toMatchObject({ ok: true });
    asked.length = 0;
    network.down.add('b.test');
    expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' })).toMatchObject({ ok: true });
    expect(asked).toHaveLength(0);
  });

  describe('older policy servers and the command timeout', () => {
    it("asks MSC4284's unstable path when the stable one is unknown there, and uses its signature", async () => {
      const roomId = await policedRoom();
      behaviour = async (r) => (r.path === '/_matrix/policy/v1/sign' ? { status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } } : signs(r));
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' })).toMatchObject({ ok: true });
      expect(asked.map((r) => r.path)).toEqual(['/_matrix/policy/v1/sign', '/_matrix/policy/unstable/org.matrix.msc4284/sign']);
      // Newest first.
      expect((await signAudits()).map((r) => [r.path, r.reason])).toEqual([
        ['/_matrix/policy/unstable/org.matrix.msc4284/sign', 'policy_server_signed'],
        ['/_matrix/policy/v1/sign', 'M_UNRECOGNIZED'],
      ]);
    });

    it('a server that serves neither is answered for with its stable answer, verbatim', async () => {
      const roomId = await policedRoom();
      behaviour = async () => ({ status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } });
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' })).toEqual({ ok: false, errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request', status: 404 });
      expect(asked).toHaveLength(2);
      // Both records may carry the same millisecond, so the audit query's order between them is not fixed.
      expect((await signAudits()).map((r) => [r.path, r.reason]).sort()).toEqual([
        ['/_matrix/policy/unstable/org.matrix.msc4284/sign', 'M_UNRECOGNIZED'],
        ['/_matrix/policy/v1/sign', 'M_UNRECOGNIZED'],
      ]);
    });

    it('every attempt timing out still ends well before the create-event command times out (the client gets 502, not 504)', () => {
      const commandTimeoutMs = busTopology({}).createEvent.command.timeoutMs;
      for (const limits of [DEFAULT_OUTBOUND_POLICY_LIMITS, { timeoutMs: 30_000, attempts: 3, retryDelayMs: 1_000 }]) {
        const fitted = withinCommandTimeout(limits, commandTimeoutMs);
        expect(fitted.attempts * fitted.timeoutMs + (fitted.attempts - 1) * fitted.retryDelayMs).toBeLessThan(commandTimeoutMs);
      }
      expect(withinCommandTimeout(DEFAULT_OUTBOUND_POLICY_LIMITS, 60_000)).toEqual(DEFAULT_OUTBOUND_POLICY_LIMITS);
    });
  });

  describe('received events (inbound)', () => {
    /** An event of @bob:b.test built on a.test's view of the room, as b.test would send it. */
    async function fromBob(roomId: string, content: Record<string, unknown>, extraSignature?: (pdu: Pdu) => Pdu): Promise<InboundPdu> {
      const rules = roomVersionRules('12');
      const state = (await a.resolver.reader.currentState(roomId))!;
      const built = await new EventBuilder(a.store, { serverName: 'b.test', signingKey: b.key }).build({ roomId, sender: '@bob:b.test', type: 'm.room.message', content }, rules, state);
      const pdu = extraSignature ? extraSignature(built.pdu) : built.pdu;
      return { eventId: built.eventId, roomId, roomVersion: '12', origin: 'b.test', txnId: `t-${built.eventId}`, receivedAt: Date.now(), redacted: false, pdu: pdu as never };
    }
    const withPolicySignature = (key: SigningKey) => (pdu: Pdu) => ({ ...pdu, signatures: { ...pdu.signatures, 'b.test': { ...pdu.signatures['b.test'], [POLICY_SERVER_KEY_ID]: signatureOf(pdu, key) } } }) as Pdu;

    it('accepts an event carrying a valid signature without asking', async () => {
      const roomId = await policedRoom();
      asked.length = 0;
      const inbound = await fromBob(roomId, { body: 'signed' }, withPolicySignature(psKey));
      expect(await a.resolver.inbound.handle(inbound)).toMatchObject({ status: 'accepted' });
      expect(asked).toHaveLength(0);
    });

    it('asks for a missing signature and keeps the event with it when the policy server signs', async () => {
      const roomId = await policedRoom();
      asked.length = 0;
      const inbound = await fromBob(roomId, { body: 'unsigned' });
      expect(await a.resolver.inbound.handle(inbound)).toMatchObject({ status: 'accepted' });
      expect(asked).toHaveLength(1);
      expect(verifyPolicyServerSignature((await stored(inbound.eventId)).pdu, '12', 'b.test', psPublic)).toEqual({ valid: true });
    });

    it('soft-fails an event the policy server refuses to sign, with the reason kept on the event', async () => {
      const roomId = await policedRoom();
      behaviour = async () => ({ status: 400, body: { errcode: 'M_FORBIDDEN', error: 'spam' } });
      const inbound = await fromBob(roomId, { body: 'spam' });
      expect(await a.resolver.inbound.handle(inbound)).toMatchObject({ status: 'soft_failed' });
      const record = await stored(inbound.eventId);
      expect(record.status).toBe('soft_failed');
      expect(record.reason).toMatch(/^policy_server: no ed25519:policy_server signature from b\.test, and asked again b\.test refused: M_FORBIDDEN spam$/);
      expect(a.published.find((e) => e.eventId === inbound.eventId)!.outcome).toBe('soft-failed');
      expect(await a.store.rooms.getForwardExtremities(roomId)).not.toContain(inbound.eventId);
      expect(await counted({ event: 'received', outcome: 'refused' })).toBe('1');
      expect(await a.store.audit.query({ decision: 'soft_failed' })).toEqual([
        expect.objectContaining({ roomId, eventId: inbound.eventId, sender: '@bob:b.test', server: 'b.test', rule: 'policy_server/M_FORBIDDEN', reason: 'policy_server_refused', outcome: 'rejected' }),
      ]);
    });

    it('an invalid signature and a policy server that never answers: asked once, bounded, then soft-failed', async () => {
      const roomId = await policedRoom();
      behaviour = () => new Promise<Answer>(() => undefined);
      asked.length = 0;
      const inbound = await fromBob(roomId, { body: 'forged' }, withPolicySignature(generateSigningKey()));
      expect(await a.resolver.inbound.handle(inbound)).toMatchObject({ status: 'soft_failed' });
      expect(asked).toHaveLength(1);
      expect((await stored(inbound.eventId)).reason).toMatch(/does not verify with the room's key, and asked again b\.test gave none: M_UNKNOWN .*no answer within 200 ms/);
    });

    it('a policy server that left a request unanswered is not asked again for a while: the next events are soft-failed at once, even on the partition path', async () => {
      const roomId = await policedRoom();
      behaviour = () => new Promise<Answer>(() => undefined);
      asked.length = 0;
      const first = await fromBob(roomId, { body: 'first' });
      expect(await a.resolver.inbound.handle(first)).toMatchObject({ status: 'soft_failed' });
      const second = await fromBob(roomId, { body: 'second' });
      const outcome = await a.resolver.parking.onPartitionMessage({ data: second, deliveryCount: 1, working: () => undefined } as never);
      expect(outcome).toMatchObject({ kind: 'ack' });
      expect(asked).toHaveLength(1);
      expect(await stored(second.eventId)).toMatchObject({ status: 'soft_failed', reason: expect.stringMatching(/b\.test left a signing request unanswered within the last 60000 ms: not asked again yet$/) });
    });

    it('soft-fails when the policy server answers with a signature that does not verify', async () => {
      const roomId = await policedRoom();
      behaviour = async (r) => ({ status: 200, body: { 'b.test': { [POLICY_SERVER_KEY_ID]: signatureOf(r.body as Record<string, unknown>, generateSigningKey()) } } });
      const inbound = await fromBob(roomId, { body: 'x' });
      expect(await a.resolver.inbound.handle(inbound)).toMatchObject({ status: 'soft_failed' });
    });

    it('on the room partition path an event needing a new signature is parked, not waited on', async () => {
      const roomId = await policedRoom();
      asked.length = 0;
      const inbound = await fromBob(roomId, { body: 'unsigned' });
      const outcome = await a.resolver.parking.onPartitionMessage({ data: inbound, deliveryCount: 1, working: () => undefined } as never);
      expect(outcome).toMatchObject({ kind: 'ack' });
      expect(asked).toHaveLength(0);
      expect(a.resolver.parking.parkedRooms()).toContain(roomId);
      expect(await a.store.events.get(inbound.eventId)).toBeUndefined();
    });

    it('does nothing in a room whose policy server has no joined user', async () => {
      const roomId = await policedRoom({ via: 'c.test', public_keys: { ed25519: psPublic } });
      asked.length = 0;
      const inbound = await fromBob(roomId, { body: 'x' });
      expect(await a.resolver.inbound.handle(inbound)).toMatchObject({ status: 'accepted' });
      expect(asked).toHaveLength(0);
    });
  });

  describe('handshakes received as the resident (send_join, send_knock, send_leave)', () => {
    it('a join through send_join is asked about once and kept with the signature the joiner gets back', async () => {
      const roomId = await policedRoom();
      const c = await network.add('c.test');
      asked.length = 0;
      expect(await c.resolver.remoteMembership.onCommand({ roomId, userId: '@carol:c.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
      expect(asked.map((r) => [r.from, (r.body as Pdu).sender, (r.body as Pdu).type])).toEqual([['a.test', '@carol:c.test', 'm.room.member']]);
      const joinId = (await a.resolver.reader.currentState(roomId))!.get('m.room.member\u0000@carol:c.test')!;
      expect(await stored(joinId)).toMatchObject({ status: 'accepted' });
      expect(verifyPolicyServerSignature((await stored(joinId)).pdu, '12', 'b.test', psPublic)).toEqual({ valid: true });
    });

    it('a join the policy server refuses is soft-failed with the reason and the audit record, and send_join refuses the joiner', async () => {
      const roomId = await policedRoom();
      const c = await network.add('c.test');
      behaviour = async () => ({ status: 400, body: { errcode: 'M_FORBIDDEN', error: 'c.test is not a partner' } });
      const reply = await c.resolver.remoteMembership.onCommand({ roomId, userId: '@carol:c.test', membership: 'join', via: ['a.test'] });
      expect(reply).toMatchObject({ ok: false });
      expect((await a.resolver.reader.currentState(roomId))!.has('m.room.member\u0000@carol:c.test')).toBe(false);
      const [record] = await a.store.audit.query({ decision: 'soft_failed' });
      expect(record).toMatchObject({ roomId, sender: '@carol:c.test', server: 'c.test', rule: 'policy_server/M_FORBIDDEN' });
      expect(await stored(record!.eventId!)).toMatchObject({ status: 'soft_failed', reason: expect.stringMatching(/asked again b\.test refused: M_FORBIDDEN c\.test is not a partner$/) });
      expect(await a.store.rooms.getJoinedServers(roomId)).not.toContain('c.test');
    });
  });

  it('a knock through send_knock the policy server refuses: soft-failed with the reason, the knocker refused', async () => {
    const roomId = await policedRoom();
    expect(await a.send(roomId, '@alice:a.test', 'm.room.join_rules', { join_rule: 'knock' }, { stateKey: '' })).toMatchObject({ ok: true });
    const c = await network.add('c.test');
    behaviour = async () => ({ status: 400, body: { errcode: 'M_FORBIDDEN', error: 'no knocking from c.test' } });
    asked.length = 0;
    expect(await c.resolver.remoteMembership.onCommand({ roomId, userId: '@carol:c.test', membership: 'knock', via: ['a.test'] })).toMatchObject({ ok: false });
    expect(asked.map((r) => (r.body as Pdu).content.membership)).toEqual(['knock']);
    const [record] = await a.store.audit.query({ decision: 'soft_failed' });
    expect(await stored(record!.eventId!)).toMatchObject({ status: 'soft_failed', reason: expect.stringContaining('no knocking from c.test') });
    expect((await a.resolver.reader.currentState(roomId))!.has('m.room.member\u0000@carol:c.test')).toBe(false);
  });

  describe('a room naming this server itself as its policy server', () => {
    const selfSigns = async (request: PeerRequest): Promise<Answer> => ({ status: 200, body: { 'a.test': { [POLICY_SERVER_KEY_ID]: signatureOf(request.body as Record<string, unknown>) } } });

    it('our events are asked of our own /sign over federation (the same engine and audit as for other servers), and kept with its signature', async () => {
      const selfAsked: PeerRequest[] = [];
      network.policyServers.set('a.test', async (request) => (selfAsked.push(request), selfSigns(request)));
      const roomId = await policedRoom({ via: 'a.test', public_keys: { ed25519: psPublic } });
      const reply = await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'ours' });
      expect(reply.ok).toBe(true);
      expect(selfAsked.map((r) => [r.from, r.path])).toEqual([['a.test', '/_matrix/policy/v1/sign']]);
      expect(verifyPolicyServerSignature((await stored(reply.ok ? reply.eventId : '')).pdu, '12', 'a.test', psPublic)).toEqual({ valid: true });
    });

    it('with our own federation listener down, our users get 502 and nothing is kept; the same txnId goes through once it is back', async () => {
      network.policyServers.set('a.test', selfSigns);
      const roomId = await policedRoom({ via: 'a.test', public_keys: { ed25519: psPublic } });
      const before = a.published.length;
      network.down.add('a.test');
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' }, { txnId: 't-self' })).toMatchObject({ ok: false, errcode: 'M_UNKNOWN', status: 502 });
      expect(a.published.length).toBe(before);
      network.down.delete('a.test');
      expect(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'x' }, { txnId: 't-self' })).toMatchObject({ ok: true });
    });
  });
});
