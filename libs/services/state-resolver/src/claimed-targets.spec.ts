// Issue 19: an accepted event costs no read of the redaction claims on it unless a claim can name it (the embedded
// gateway, the only writer of its store, keeps which events its rooms' claims name); a claim written before a restart
// still applies when its target comes after it.
import { StateResolver } from './state-resolver';
import { TestNetwork, type TestServer } from './testing/test-server';

const eventIdOf = (reply: { ok: boolean; eventId?: string; error?: string }) => {
  if (!reply.ok) throw new Error(reply.error);
  return reply.eventId!;
};

describe('redaction claims kept by the only writer (issue 19)', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
    b = await network.add('b.test');
  });
  afterEach(() => network.close());

  async function joinedRoom(): Promise<string> {
    const roomId = await a.createRoom('@alice:a.test', '12');
    expect(await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
    return roomId;
  }

  /** The same store and bus, a new process (a restart): it knows nothing of what the last one remembered. */
  function restartOf(server: TestServer): StateResolver {
    return server.offlineProcess(network, { soleWriter: true });
  }

  async function receiveWith(resolver: StateResolver, from: TestServer, eventId: string) {
    const record = (await from.store.events.get(eventId))!;
    return resolver.inbound.handle({ eventId, roomId: record.roomId, roomVersion: '12', origin: from.name, txnId: 't1', receivedAt: Date.now(), redacted: false, pdu: record.pdu as never });
  }

  it('issue 19: accepted events no claim names cost no read of their claims (one read of the room\'s open claims instead)', async () => {
    const roomId = await joinedRoom();
    const messages: string[] = [];
    for (let i = 0; i < 5; i++) messages.push(eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: `m${i}` })));
    const claimsOn = jest.spyOn(a.store.redactions, 'claimsOn');
    const openClaimTargets = jest.spyOn(a.store.redactions, 'openClaimTargets');
    for (const id of messages) await a.receive(b, id);
    expect(messages.every((id) => a.published.some((e) => e.eventId === id && e.outcome === 'accepted'))).toBe(true);
    expect(claimsOn).not.toHaveBeenCalled();
    expect(openClaimTargets.mock.calls.length).toBeLessThanOrEqual(1);
  });

  it('issue 19: a redaction that came before its target, then a restart: the target is redacted when it comes', async () => {
    const roomId = await joinedRoom();
    const target = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'from bob' }));
    const redaction = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: target }));
    await a.resolver.stop();
    const restarted = restartOf(a);
    const claimsOn = jest.spyOn(a.store.redactions, 'claimsOn');
    const committed = await receiveWith(restarted, b, target);
    expect(committed?.entry.redactionsApplied).toEqual([redaction]);
    expect((await a.store.events.get(target))?.redactedBy).toBe(redaction);
    expect(claimsOn).toHaveBeenCalledWith(target);
    await restarted.stop();
  });

  it('issue 19: a claim made after the room\'s claims were read (same process) still applies; the redacted target is read no more', async () => {
    const roomId = await joinedRoom();
    const first = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'first' }));
    await a.receive(b, first);
    const target = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'later' }));
    const redaction = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: target }));
    await a.receive(b, target);
    expect((await a.store.events.get(target))?.redactedBy).toBe(redaction);
    expect(a.published.filter((e) => e.eventId === target).at(-1)?.redactionsApplied).toEqual([redaction]);
  });
});
