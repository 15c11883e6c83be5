// Issue 11 defect 2: one PDU whose gap must be filled from a server that accepts the request and never
// answers (a tarpit) held its whole room partition for minutes. Such PDUs are parked per room with a
// time budget; other rooms of the partition keep flowing; the parked PDU resumes or is given up with its reason.
import { FederationClientError } from '@fedgate/federation-client';
import type { DeadLetter, InboundPdu } from '@fedgate/bus';
import { TestNetwork, type TestServer, type TestServerOptions } from './testing/test-server';

jest.setTimeout(60_000);

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('room parking: a silent origin does not stall its room partition', () => {
  let network: TestNetwork;
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;
  /** While set, c accepts every request and never answers (until the caller's timeout, as the HTTPS transport does). */
  let tarpit: boolean;
  const tarpitted: string[] = [];
  /** Requests c holds with no timeout; lifting the tarpit fails them as a dropped connection would. */
  const held: Array<(error: Error) => void> = [];
  const liftTarpit = () => {
    tarpit = false;
    for (const fail of held.splice(0)) fail(new FederationClientError('UNREACHABLE', 'c.test closed the connection'));
  };

  async function setUp(options: TestServerOptions) {
    network = new TestNetwork();
    tarpit = false;
    tarpitted.length = 0;
    const route = network.route.bind(network);
    network.route = async (from, to, method, p, body, options) => {
      if (to !== 'c.test' || !tarpit) return route(from, to, method, p, body, options);
      tarpitted.push(`${method} ${p}`);
      return new Promise((_, reject) => {
        if (options.timeoutMs !== undefined) setTimeout(() => reject(new FederationClientError('TIMEOUT', `${to} did not answer in ${options.timeoutMs} ms`)), options.timeoutMs);
        else held.push(reject);
      });
    };
    a = await network.add('a.test', { start: true, ...options });
    b = await network.add('b.test');
    c = await network.add('c.test');
  }
  afterEach(async () => {
    liftTarpit();
    await network.close();
  });

  /** Two rooms of a in the same partition: b is in the first, c in the second. */
  async function twoRoomsInOnePartition() {
    const quiet = await a.createRoom('@alice:a.test');
    let slow = await a.createRoom('@alice:a.test');
    while (a.topology.inboundPdu.partitionOf(slow) !== a.topology.inboundPdu.partitionOf(quiet)) slow = await a.createRoom('@alice:a.test');
    expect(await b.resolver.remoteMembership.onCommand({ roomId: quiet, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
    expect(await c.resolver.remoteMembership.onCommand({ roomId: slow, userId: '@carol:c.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
    return { quiet, slow };
  }

  async function sendFrom(server: TestServer, roomId: string, sender: string, body: string): Promise<string> {
    const reply = await server.send(roomId, sender, 'm.room.message', { msgtype: 'm.text', body });
    if (!reply.ok) throw new Error(reply.error);
    return reply.eventId;
  }

  /** As ingress does after a /send from `from`: the PDU onto a's inbound partition. */
  async function deliver(from: TestServer, eventId: string, txnId = 't') {
    const record = (await from.store.events.get(eventId))!;
    const inbound: InboundPdu = { eventId, roomId: record.roomId, roomVersion: '12', origin: from.name, txnId, receivedAt: Date.now(), redacted: false, pdu: record.pdu as never };
    // As ingress does: one message per (event, origin, transaction), so an event sent again is handled again.
    await a.bus.publish(a.topology.inboundPdu.subjectFor(record.roomId), inbound, { messageId: `${eventId}:${from.name}:${txnId}` });
  }

  const statusAtA = async (eventId: string) => (await a.store.events.get(eventId))?.status;
  const deadLetters = () => a.bus.readStream<DeadLetter>(a.topology.streams.deadLetters.name);

  it('defect 2: another room of the partition flows while a PDU waits on a tarpit, and the parked PDU resumes once the origin answers', async () => {
    await setUp({ parking: { budgetMs: 20_000, perCallMs: 300, retryDelayMs: 100, maxRetryDelayMs: 200 } });
    const { quiet, slow } = await twoRoomsInOnePartition();
    const missed = await sendFrom(c, slow, '@carol:c.test', 'a never heard this');
    const gapped = await sendFrom(c, slow, '@carol:c.test', 'built on what a missed');
    tarpit = true;
    await deliver(c, gapped);
    await waitFor(() => tarpitted.length > 0, 'a to ask c to fill the gap');

    const flowing = await sendFrom(b, quiet, '@bob:b.test', 'the partition still flows');
    await deliver(b, flowing);
    await waitFor(async () => (await statusAtA(flowing)) === 'accepted', "b's event in the other room of the partition");
    expect(a.resolver.parking.parkedRooms()).toEqual([slow]);
    // A later PDU of the parked room queues behind the parked one rather than overtaking it.
    const later = await sendFrom(c, slow, '@carol:c.test', 'later');
    await deliver(c, later);
    expect(await statusAtA(gapped)).toBeUndefined();

    tarpit = false;
    await waitFor(async () => (await statusAtA(later)) === 'accepted', 'the parked events once c answers');
    expect(await statusAtA(missed)).toBe('accepted');
    expect(await statusAtA(gapped)).toBe('accepted');
    expect(await a.store.rooms.getForwardExtremities(slow)).toEqual([later]);
    await waitFor(() => a.resolver.parking.parkedRooms().length === 0, 'the room to be released');
    expect(deadLetters()).toEqual([]);
  });

  it('defect 2: a parked PDU whose origin never answers is given up after its budget, with the reason in dead letters, and the room recovers', async () => {
    await setUp({ parking: { budgetMs: 1_500, perCallMs: 300, retryDelayMs: 100, maxRetryDelayMs: 200 } });
    const { quiet, slow } = await twoRoomsInOnePartition();
    await sendFrom(c, slow, '@carol:c.test', 'a never heard this');
    const gapped = await sendFrom(c, slow, '@carol:c.test', 'built on what a missed');
    tarpit = true;
    await deliver(c, gapped);

    await waitFor(() => deadLetters().length === 1, 'the parked PDU to be given up');
    const [letter] = deadLetters();
    expect(letter.data.consumer).toBe(a.topology.consumers.stateResolverParked(a.topology.inboundPdu.partitionOf(slow)).durable);
    expect(letter.data.reason).toMatch(new RegExp(`gave up on parked \\${gapped} in .* from c\\.test .*budget 1500 ms.*c\\.test did not answer`));
    expect(JSON.parse(Buffer.from(letter.data.dataBase64, 'base64').toString())).toMatchObject({ inbound: { eventId: gapped } });
    expect(await statusAtA(gapped)).toBeUndefined();
    await waitFor(() => a.resolver.parking.parkedRooms().length === 0, 'the room to be released');

    // The partition was never held, and the room itself is not stuck: c's next event closes the gap.
    const flowing = await sendFrom(b, quiet, '@bob:b.test', 'still flowing');
    await deliver(b, flowing);
    tarpit = false;
    const next = await sendFrom(c, slow, '@carol:c.test', 'back again');
    await deliver(c, next);
    await waitFor(async () => (await statusAtA(next)) === 'accepted' && (await statusAtA(flowing)) === 'accepted', 'both rooms to move on');
    expect(await statusAtA(gapped)).toBe('accepted');
  });

  it('a PDU given up after its budget and sent again by its origin in a new transaction is parked again and handled', async () => {
    await setUp({ parking: { budgetMs: 1_000, perCallMs: 300, retryDelayMs: 100, maxRetryDelayMs: 200 } });
    const { slow } = await twoRoomsInOnePartition();
    await sendFrom(c, slow, '@carol:c.test', 'a never heard this');
    const gapped = await sendFrom(c, slow, '@carol:c.test', 'built on what a missed');
    tarpit = true;
    await deliver(c, gapped, 'first');
    await waitFor(() => deadLetters().length === 1, 'the parked PDU to be given up');
    await waitFor(() => a.resolver.parking.parkedRooms().length === 0, 'the room to be released');

    tarpit = false;
    await deliver(c, gapped, 'second');
    await waitFor(async () => (await statusAtA(gapped)) === 'accepted', 'the event sent again to be handled');
  });

  it('defect 2: a room held by a command waiting on a tarpit (a remote invite) does not hold its partition: its PDU is parked', async () => {
    await setUp({ parking: { budgetMs: 20_000, perCallMs: 300, retryDelayMs: 100, maxRetryDelayMs: 200 } });
    const { quiet, slow } = await twoRoomsInOnePartition();
    tarpit = true;
    // alice invites a c.test user: invite v2 to c runs under the room lock, and c never answers.
    const invite = a.send(slow, '@alice:a.test', 'm.room.member', { membership: 'invite' }, { stateKey: '@dave:c.test' });
    await waitFor(() => tarpitted.some((r) => r.includes('/invite/')), 'the invite to reach c');
    const inSlowRoom = await sendFrom(b, quiet, '@bob:b.test', 'unrelated');
    const fromCarol = await sendFrom(c, slow, '@carol:c.test', 'while the room is busy');
    await deliver(c, fromCarol);
    await deliver(b, inSlowRoom);
    await waitFor(async () => (await statusAtA(inSlowRoom)) === 'accepted', 'the other room of the partition');
    expect(a.resolver.parking.parkedRooms()).toEqual([slow]);
    expect(await statusAtA(fromCarol)).toBeUndefined();

    liftTarpit();
    expect(await invite).toMatchObject({ ok: false, errcode: 'M_UNKNOWN' });
    await waitFor(async () => (await statusAtA(fromCarol)) === 'accepted', 'the parked PDU once the room is free');
  });

  it('defect 2: when a parked PDU from a silent origin is given up, the gapped PDUs parked behind it are given up at once, not one budget each', async () => {
    await setUp({ parking: { budgetMs: 1_500, perCallMs: 300, retryDelayMs: 100, maxRetryDelayMs: 200 } });
    const { slow } = await twoRoomsInOnePartition();
    await sendFrom(c, slow, '@carol:c.test', 'a never heard this');
    const batch: string[] = [];
    for (const body of ['gapped one', 'gapped two', 'gapped three']) batch.push(await sendFrom(c, slow, '@carol:c.test', body));
    tarpit = true;
    await deliver(c, batch[0]);
    await waitFor(() => tarpitted.length > 0, 'the first to wait on c');
    await deliver(c, batch[1]);
    await deliver(c, batch[2]);
    await waitFor(() => deadLetters().length >= 1, 'the first to be given up');
    const askedOfC = tarpitted.length;
    await waitFor(() => deadLetters().length === 3, 'all three to be given up');
    const reasons = deadLetters().map((l) => l.data.reason);
    expect(reasons[0]).toMatch(/budget 1500 ms/);
    for (const [i, reason] of reasons.slice(1).entries()) {
      expect(reason).toMatch(new RegExp(`gave up on parked \\${batch[i + 1]} .* at once: .*${batch[0].replace(/[$]/g, '\\$')} in this room ran out of its budget`));
    }
    // Only the first spent a budget on c: nothing more was asked of c once it was given up.
    expect(tarpitted.length).toBe(askedOfC);
  });

  it('defect 2: a partition message redelivered after it was parked (crash before the ack) is parked once and handled once', async () => {
    await setUp({ parking: { budgetMs: 20_000, perCallMs: 300, retryDelayMs: 100, maxRetryDelayMs: 200 } });
    const { slow } = await twoRoomsInOnePartition();
    await sendFrom(c, slow, '@carol:c.test', 'a never heard this');
    const gapped = await sendFrom(c, slow, '@carol:c.test', 'gapped');
    tarpit = true;
    const record = (await c.store.events.get(gapped))!;
    const message = {
      stream: a.topology.streams.inbound.name,
      consumer: 'crash-test',
      subject: a.topology.inboundPdu.subjectFor(slow),
      messageId: gapped,
      sequence: 1,
      deliveryCount: 1,
      headers: {},
      data: { eventId: gapped, roomId: slow, roomVersion: '12', origin: 'c.test', txnId: 't', receivedAt: 0, redacted: false, pdu: record.pdu as never },
      working: () => undefined,
    };
    expect(await a.resolver.parking.onPartitionMessage(message)).toEqual({ kind: 'ack' });
    // The ack was lost: the bus delivers the same message again.
    expect(await a.resolver.parking.onPartitionMessage({ ...message, deliveryCount: 2 })).toEqual({ kind: 'ack' });
    const parkedCopies = a.bus.readStream(a.topology.streams.inbound.name, a.topology.parkedPdu.all);
    expect(parkedCopies.map((m) => m.messageId)).toEqual([`parked:${gapped}:c.test:t`]);
    liftTarpit();
    await waitFor(async () => (await statusAtA(gapped)) === 'accepted', 'the parked PDU');
    await waitFor(() => a.resolver.parking.parkedRooms().length === 0, 'the room to be released');
    expect(a.published.filter((e) => e.eventId === gapped)).toHaveLength(1);
  });

  it('defect 2: stopping while a parked PDU waits on a tarpit does not wait out the budget; the PDU is handled after the restart', async () => {
    await setUp({ parking: { budgetMs: 120_000, perCallMs: 60_000, retryDelayMs: 100, maxRetryDelayMs: 200 } });
    const { slow } = await twoRoomsInOnePartition();
    await sendFrom(c, slow, '@carol:c.test', 'a never heard this');
    const gapped = await sendFrom(c, slow, '@carol:c.test', 'gapped');
    tarpit = true;
    await deliver(c, gapped);
    await waitFor(() => tarpitted.length > 0, 'a to ask c');
    await a.resolver.stop();
    expect(deadLetters()).toEqual([]);
    expect(await statusAtA(gapped)).toBeUndefined();

    liftTarpit();
    await a.resolver.start();
    await waitFor(async () => (await statusAtA(gapped)) === 'accepted', 'the parked PDU after the restart');
  });
});
