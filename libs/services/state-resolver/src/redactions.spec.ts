import { roomVersionRules } from '@fedgate/protocol';
import { EventBuilder } from './event-builder';
import { TestNetwork, type TestServer } from './testing/test-server';

describe('redactions applied to their targets', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test');
    b = await network.add('b.test');
  });
  afterEach(() => network.close());

  const eventIdOf = (reply: { ok: boolean; eventId?: string; error?: string }) => {
    if (!reply.ok) throw new Error(reply.error);
    return reply.eventId!;
  };

  /** An event the server's own software would refuse to make, built, signed and committed there anyway (a hostile server). */
  async function forge(server: TestServer, roomId: string, sender: string, type: string, content: Record<string, unknown>): Promise<string> {
    const rules = roomVersionRules((await server.store.rooms.get(roomId))!.roomVersion);
    const current = (await server.resolver.timeline.currentState(roomId))!;
    const built = await new EventBuilder(server.store, { serverName: server.name, signingKey: server.key }).build({ roomId, sender, type, content }, rules, current);
    const evaluation = await server.resolver.timeline.evaluate(built.eventId, built.pdu, rules);
    return (await server.resolver.timeline.commit(evaluation, { local: true })).eventId;
  }

  async function joinedRoom(version: string) {
    const roomId = await a.createRoom('@alice:a.test', version);
    const joined = await b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] });
    expect(joined).toMatchObject({ ok: true });
    return roomId;
  }

  describe.each(['12', '10', '1'])('in a version %s room', (version) => {
    it('serves the redacted form on every federation read and keeps the stored original', async () => {
      const roomId = await a.createRoom('@alice:a.test', version);
      const message = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.message', { msgtype: 'm.text', body: 'secret' }));
      const redaction = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: message, reason: 'oops' }));

      const stored = (await a.store.events.get(message))!;
      expect(stored.redactedBy).toBe(redaction);
      expect(stored.pdu.content.body).toBe('secret');
      const served = (await a.resolver.reader.event(message))!;
      expect(served.pdu.content).toEqual({});
      expect(served.pdu.hashes).toEqual(stored.pdu.hashes);
      expect(served.pdu.signatures).toEqual(stored.pdu.signatures);
      const backfilled = await a.resolver.reader.backfill(roomId, [redaction], 2);
      expect(backfilled.map((p) => p.content)).toEqual([expect.objectContaining({ redacts: message }), {}]);
      const missing = await a.resolver.reader.missingEvents(roomId, { earliestEvents: [], latestEvents: [redaction], limit: 1 });
      expect(missing[0].content).toEqual({});
    });
  });

  it('serves a redacted state event with the content the algorithm keeps', async () => {
    const roomId = await a.createRoom('@alice:a.test', '10');
    const name = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.name', { name: 'Lobby' }, { stateKey: '' }));
    eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: name }));
    const state = (await a.resolver.reader.stateAt(roomId, eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: 'after' }))))!;
    expect(state.pdus.find((p) => p.type === 'm.room.name')?.content).toEqual({});
    expect(state.pdus.find((p) => p.type === 'm.room.power_levels')?.content).toMatchObject({ redact: 50 });
  });

  it('applies a redaction that arrived before its target once the target is stored', async () => {
    const roomId = await joinedRoom('12');
    const target = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'from bob' }));
    // alice (creator, unlimited power in v12) redacts bob's event that a.test has not received yet
    const redaction = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: target }));
    expect(await a.store.redactions.claimsOn(target)).toEqual([{ redactionEventId: redaction, targetEventId: target, roomId }]);
    await a.receive(b, target);
    expect((await a.store.events.get(target))?.redactedBy).toBe(redaction);
    expect((await a.resolver.reader.event(target))?.pdu.content).toEqual({});
  });

  it("lets a user redact events of their own server's users without the redact power level", async () => {
    const roomId = await joinedRoom('12');
    const target = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'mine' }));
    const redaction = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.redaction', { redacts: target }));
    expect((await b.store.events.get(target))?.redactedBy).toBe(redaction);
    await a.receive(b, redaction);
    expect((await a.store.events.get(target))?.redactedBy).toBe(redaction);
  });

  it("keeps a redaction accepted but unapplied when its sender may not redact another server's event", async () => {
    const roomId = await joinedRoom('10');
    const target = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: "alice's" }));
    await b.receive(a, target);
    const redaction = await forge(b, roomId, '@bob:b.test', 'm.room.redaction', { redacts: target });
    await a.receive(b, redaction);
    expect((await a.store.events.get(redaction))?.status).toBe('accepted');
    expect((await a.store.events.get(target))?.redactedBy).toBeUndefined();
    expect((await b.store.events.get(target))?.redactedBy).toBeUndefined();
    expect((await a.resolver.reader.event(target))?.pdu.content.body).toBe("alice's");
  });

  it('says on the room log whether a redaction applied, and when a held-back one applies on its target (issue 10, defect 5)', async () => {
    const roomId = await joinedRoom('10');
    const entryOf = (server: TestServer, eventId: string) => server.published.filter((e) => e.eventId === eventId).at(-1)!;
    // Not allowed: bob (power 0) may not redact alice's event.
    const alices = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: "alice's" }));
    await b.receive(a, alices);
    const refused = await forge(b, roomId, '@bob:b.test', 'm.room.redaction', { redacts: alices });
    await a.receive(b, refused);
    expect(entryOf(a, refused)).toMatchObject({ outcome: 'accepted', redactionsApplied: [] });
    // Allowed and applied at once.
    const bobs = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: "bob's" }));
    await a.receive(b, bobs);
    const own = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.redaction', { redacts: bobs }));
    await a.receive(b, own);
    expect(entryOf(a, own).redactionsApplied).toEqual([own]);
    // Target unknown when the redaction comes: held back; applied when the target comes.
    const later = eventIdOf(await b.send(roomId, '@bob:b.test', 'm.room.message', { body: 'later' }));
    const early = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: later }));
    expect(entryOf(a, early).redactionsApplied).toEqual([]);
    await a.receive(b, later);
    expect(entryOf(a, later).redactionsApplied).toEqual([early]);
  });

  it('ignores a redaction naming an event of another room (and refuses to make one for a local user)', async () => {
    const first = await a.createRoom('@alice:a.test', '12');
    const second = await a.createRoom('@alice:a.test', '12');
    const target = eventIdOf(await a.send(first, '@alice:a.test', 'm.room.message', { body: 'elsewhere' }));
    expect(await a.send(second, '@alice:a.test', 'm.room.redaction', { redacts: target })).toMatchObject({ ok: false, errcode: 'M_BAD_JSON', status: 400 });
    await forge(a, second, '@alice:a.test', 'm.room.redaction', { redacts: target });
    expect((await a.store.events.get(target))?.redactedBy).toBeUndefined();
  });

  it.each(['12', '10'])("refuses a local user's redaction of someone else's event without the redact power level (version %s)", async (version) => {
    const roomId = await a.createRoom('@alice:a.test', version);
    eventIdOf(await a.send(roomId, '@carol:a.test', 'm.room.member', { membership: 'join' }, { stateKey: '@carol:a.test' }));
    const alices = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.message', { body: "alice's" }));
    const before = a.published.length;
    const refused = await a.send(roomId, '@carol:a.test', 'm.room.redaction', { redacts: alices });
    expect(refused).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN', status: 403 });
    expect(a.published.length).toBe(before);
    const carols = eventIdOf(await a.send(roomId, '@carol:a.test', 'm.room.message', { body: "carol's" }));
    const own = eventIdOf(await a.send(roomId, '@carol:a.test', 'm.room.redaction', { redacts: carols }));
    expect((await a.store.events.get(carols))?.redactedBy).toBe(own);
    const byAdmin = eventIdOf(await a.send(roomId, '@alice:a.test', 'm.room.redaction', { redacts: carols }));
    expect(byAdmin).toBeDefined();
  });
});
