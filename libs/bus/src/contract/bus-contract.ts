// One behavioural contract for every Bus adapter; each adapter's spec calls describeBusContract.
import { ack, BusRequestError, nak, notOwned, term, type Bus, type DeadLetterAdmin, type BusSubscription, type ReceivedMessage } from '../bus';
import type { DeadLetter, InboundPdu } from '../messages';
import { busTopology, type BusTopology } from '../subjects';
import { waitFor } from './wait-for';

export interface ContractHarness {
  bus: Bus & DeadLetterAdmin;
  /** Closes the bus and opens a new one on the same durable storage. */
  reopen(): Promise<Bus>;
  readStream<T>(streamName: string): Promise<{ subject: string; data: T }[]>;
  close(): Promise<void>;
}

export type HarnessFactory = (topology: BusTopology) => Promise<ContractHarness>;

let counter = 0;
const uniquePrefix = () => `ct${process.pid}x${Date.now().toString(36)}x${counter++}`;

const pdu = (roomId: string, n: number): InboundPdu => ({
  eventId: `$${roomId}-${n}`,
  roomId,
  roomVersion: '10',
  origin: 'remote.example',
  txnId: 't1',
  receivedAt: 0,
  redacted: false,
  pdu: { n },
});

export function describeBusContract(adapterName: string, createHarness: HarnessFactory): void {
  describe(`Bus contract: ${adapterName}`, () => {
    jest.setTimeout(30_000);
    let topology: BusTopology;
    let harness: ContractHarness;
    let subscriptions: BusSubscription[];

    beforeEach(async () => {
      topology = busTopology({ prefix: uniquePrefix(), roomPartitions: 4, maxDeliver: 3 });
      harness = await createHarness(topology);
      await harness.bus.start();
      subscriptions = [];
    });
    afterEach(async () => {
      await Promise.all(subscriptions.map((s) => s.stop()));
      await harness.close();
    });

    const publishPdu = (bus: Bus, p: InboundPdu) => bus.publish(topology.inboundPdu.subjectFor(p.roomId), p, { messageId: p.eventId });

    it('keeps order within a partition, also when messages are redelivered', async () => {
      const rooms = ['!a:x', '!b:x', '!c:x', '!d:x', '!e:x'];
      const seen = new Map<string, number[]>();
      const nakedOnce = new Set<string>();
      for (let p = 0; p < topology.roomPartitions; p++) {
        subscriptions.push(
          await harness.bus.consume(topology.consumers.stateResolverInbound(p), (m: ReceivedMessage<InboundPdu>) => {
            if (Number(m.data.pdu.n) % 4 === 1 && !nakedOnce.has(m.messageId)) {
              nakedOnce.add(m.messageId);
              return nak(5);
            }
            seen.set(m.data.roomId, [...(seen.get(m.data.roomId) ?? []), Number(m.data.pdu.n)]);
            return ack();
          }),
        );
      }
      for (let n = 0; n < 12; n++) for (const room of rooms) await publishPdu(harness.bus, pdu(room, n));
      await waitFor(() => rooms.every((r) => (seen.get(r)?.length ?? 0) === 12), 'all events handled');
      for (const room of rooms) expect(seen.get(room)).toEqual([...Array(12).keys()]);
    });

    it('drops a second publish with the same message ID', async () => {
      const first = await publishPdu(harness.bus, pdu('!a:x', 1));
      const second = await publishPdu(harness.bus, pdu('!a:x', 1));
      expect(first.duplicate).toBe(false);
      expect(second.duplicate).toBe(true);
      const handled: string[] = [];
      const p = topology.inboundPdu.partitionOf('!a:x');
      subscriptions.push(await harness.bus.consume(topology.consumers.stateResolverInbound(p), (m) => void handled.push(m.messageId)));
      await publishPdu(harness.bus, pdu('!a:x', 2));
      await waitFor(() => handled.length >= 2, 'both distinct events');
      expect(handled).toEqual(['$!a:x-1', '$!a:x-2']);
    });

    it('issue 19: a batch publish keeps order per subject, deduplicates each message by its ID (a retried batch adds nothing), and delivers each once', async () => {
      const batch = (ns: number[]) => ns.map((n) => ({ subject: topology.inboundPdu.subjectFor('!batch:x'), data: pdu('!batch:x', n), options: { messageId: `$!batch:x-${n}` } }));
      const first = await harness.bus.publishBatch(batch([0, 1, 2, 3, 4]));
      expect(first.map((r) => r.duplicate)).toEqual([false, false, false, false, false]);
      // The caller died before recording its answer and sends the batch again, with one message more.
      const again = await harness.bus.publishBatch(batch([0, 1, 2, 3, 4, 5]));
      expect(again.map((r) => r.duplicate)).toEqual([true, true, true, true, true, false]);
      expect(await harness.bus.publishBatch([])).toEqual([]);
      const seen: number[] = [];
      const p = topology.inboundPdu.partitionOf('!batch:x');
      subscriptions.push(await harness.bus.consume(topology.consumers.stateResolverInbound(p), (m) => void seen.push(Number(m.data.pdu.n))));
      await waitFor(() => seen.length >= 6, 'the batch handled');
      expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it('redelivers after nak and after a thrown error, counting deliveries', async () => {
      const counts: number[] = [];
      const p = topology.inboundPdu.partitionOf('!a:x');
      subscriptions.push(
        await harness.bus.consume(topology.consumers.stateResolverInbound(p), (m) => {
          counts.push(m.deliveryCount);
          if (m.deliveryCount === 1) return nak(1);
          if (m.deliveryCount === 2) throw new Error('transient');
          return ack();
        }),
      );
      await publishPdu(harness.bus, pdu('!a:x', 1));
      await waitFor(() => counts.length === 3, 'three deliveries');
      const stats = async () => harness.bus.consumerStats(topology.consumers.stateResolverInbound(p));
      await waitFor(async () => (await stats()).ackPending === 0, 'settled');
      expect(counts).toEqual([1, 2, 3]);
      expect(await stats()).toEqual({ pending: 0, ackPending: 0, oldestUnsettledAgeMs: 0 });
    });

    // as-queue-safety: a partition handler naked entries of a partition it did not (or no longer) own, each nak a
    // delivery: a lease lost or stale for ten of them dead-lettered the entry (a room-log entry never pushed to the AS).
    it('a message answered "not owned" 20 times (max deliveries 3) is still handled once owned, never dead-lettered', async () => {
      let notOwnedAnswers = 0;
      const handled: number[] = [];
      const consumer = topology.consumers.stateResolverInbound(topology.inboundPdu.partitionOf('!a:x'));
      subscriptions.push(
        await harness.bus.consume(consumer, (m) => {
          if (notOwnedAnswers < 20) {
            notOwnedAnswers++;
            return notOwned(1);
          }
          handled.push(m.deliveryCount);
          return ack();
        }),
      );
      await publishPdu(harness.bus, pdu('!a:x', 1));
      await waitFor(() => handled.length === 1, 'handled once owned');
      await waitFor(async () => (await harness.bus.consumerStats(consumer)).ackPending === 0, 'settled');
      expect(notOwnedAnswers).toBe(20);
      expect(handled).toEqual([1]);
      expect(await harness.readStream<DeadLetter>(topology.streams.deadLetters.name)).toEqual([]);
    });

    it('sends a message to dead letters after max deliveries, with the reason and count', async () => {
      let attempts = 0;
      const consumer = topology.consumers.stateResolverInbound(topology.inboundPdu.partitionOf('!a:x'));
      subscriptions.push(
        await harness.bus.consume(consumer, () => {
          attempts++;
          throw new Error('signature check service down');
        }),
      );
      await publishPdu(harness.bus, pdu('!a:x', 1));
      const letters = () => harness.readStream<DeadLetter>(topology.streams.deadLetters.name);
      await waitFor(async () => (await letters()).length === 1, 'a dead letter');
      const [letter] = await letters();
      expect(attempts).toBe(3);
      expect(letter.subject).toBe(topology.deadLetters.subjectFor(consumer.durable));
      expect(letter.data).toMatchObject({ consumer: consumer.durable, messageId: '$!a:x-1', deliveryCount: 3 });
      expect(letter.data.reason).toMatch(/max deliveries \(3\).*signature check service down/);
      expect(JSON.parse(Buffer.from(letter.data.dataBase64, 'base64').toString())).toMatchObject({ eventId: '$!a:x-1' });
    });

    it('sends a terminated message to dead letters with the handler reason, and goes on', async () => {
      const handled: number[] = [];
      const consumer = topology.consumers.stateResolverInbound(topology.inboundPdu.partitionOf('!a:x'));
      subscriptions.push(
        await harness.bus.consume(consumer, (m: ReceivedMessage<InboundPdu>) => {
          if (m.data.pdu.n === 1) return term('bad signature');
          handled.push(Number(m.data.pdu.n));
        }),
      );
      await publishPdu(harness.bus, pdu('!a:x', 1));
      await publishPdu(harness.bus, pdu('!a:x', 2));
      await waitFor(() => handled.length === 1, 'the next message');
      const letters = await harness.readStream<DeadLetter>(topology.streams.deadLetters.name);
      expect(letters.map((l) => [l.data.messageId, l.data.reason, l.data.deliveryCount])).toEqual([['$!a:x-1', 'handler terminated: bad signature', 1]]);
      expect(handled).toEqual([2]);
    });

    it('defect 7: lists dead letters for the operator and removes one by its sequence, keeping the others', async () => {
      const consumer = topology.consumers.stateResolverInbound(topology.inboundPdu.partitionOf('!a:x'));
      subscriptions.push(await harness.bus.consume(consumer, (m: ReceivedMessage<InboundPdu>) => term(`refused ${m.data.pdu.n}`)));
      for (const n of [1, 2, 3]) await publishPdu(harness.bus, pdu('!a:x', n));
      await waitFor(async () => (await harness.bus.listDeadLetters()).length === 3, 'three dead letters');
      const listed = await harness.bus.listDeadLetters();
      expect(listed.map((d) => [d.letter.messageId, d.letter.reason])).toEqual([
        ['$!a:x-1', 'handler terminated: refused 1'],
        ['$!a:x-2', 'handler terminated: refused 2'],
        ['$!a:x-3', 'handler terminated: refused 3'],
      ]);
      expect(await harness.bus.removeDeadLetter(listed[1].sequence)).toBe(true);
      expect(await harness.bus.removeDeadLetter(listed[1].sequence)).toBe(false);
      expect((await harness.bus.listDeadLetters()).map((d) => d.letter.messageId)).toEqual(['$!a:x-1', '$!a:x-3']);
    });

    it('answers a command over request/reply', async () => {
      subscriptions.push(
        await harness.bus.serve(topology.createEvent.command, async (command, context) => ({
          ok: true as const,
          eventId: `$${command.type}:${context.subject.split('.').pop()}`,
        })),
      );
      const roomId = '!room:x';
      const reply = await harness.bus.request(topology.createEvent.subjectFor(roomId), { roomId, sender: '@u:x', type: 'm.room.message', content: {} });
      expect(reply).toEqual({ ok: true, eventId: `$m.room.message:${topology.inboundPdu.partitionOf(roomId)}` });
    });

    // Issue 11 defect 4: JetStream requests always timed out at 10 s and the embedded bus never did.
    it('defect 4: a request times out after its command\'s declared timeout, with a timeout error', async () => {
      await harness.close();
      topology = busTopology({ prefix: uniquePrefix(), roomPartitions: 4, maxDeliver: 3, commandTimeoutsMs: { createEvent: 200 } });
      harness = await createHarness(topology);
      await harness.bus.start();
      let finished = false;
      subscriptions.push(
        await harness.bus.serve(topology.createEvent.command, async () => {
          await new Promise((resolve) => setTimeout(resolve, 1_500));
          finished = true;
          return { ok: true as const, eventId: '$late' };
        }),
      );
      const roomId = '!slow:x';
      const outcome = await harness.bus
        .request(topology.createEvent.subjectFor(roomId), { roomId, sender: '@u:x', type: 'm.room.message', content: {} })
        .then((reply) => ({ reply }), (error: unknown) => ({ error }));
      expect(finished).toBe(false);
      expect('error' in outcome && outcome.error).toBeInstanceOf(BusRequestError);
      expect(outcome).toMatchObject({ error: { failure: 'timeout', timeoutMs: 200 } });
      await waitFor(() => finished, 'the slow handler to end before the bus closes');
    });

    // JetStream gave up every request at 10 s, whatever its command declared (remote joins 120 s).
    it('defect 4: answers a remote-membership command that takes longer than 10 s, within its 120 s budget', async () => {
      subscriptions.push(
        await harness.bus.serve(topology.remoteMembership.command, async (command) => {
          await new Promise((resolve) => setTimeout(resolve, 10_500));
          return { ok: true as const, roomId: command.roomId, eventId: '$joined' };
        }),
      );
      const roomId = '!far:remote.example';
      const reply = await harness.bus.request(topology.remoteMembership.subjectFor(roomId), { roomId, userId: '@u:x', membership: 'join', via: ['remote.example'] });
      expect(reply).toEqual({ ok: true, roomId, eventId: '$joined' });
    });

    // The elastic-replicas CI flake: a frozen state-resolver stayed in the commands' queue group and took half the requests.
    it('owner routing: every subscriber gets the request, only the owner answers; the others send nothing, not even an error', async () => {
      const calls = { owner: 0, lost: 0, failing: 0 };
      subscriptions.push(
        await harness.bus.serve(topology.createEvent.command, async () => (calls.lost++, { ok: true as const, eventId: '$lost' }), { ownedNow: () => false }),
        await harness.bus.serve(topology.createEvent.command, async () => (calls.failing++, { ok: true as const, eventId: '$failing' }), {
          ownedNow: async () => {
            throw new Error('store unreachable');
          },
        }),
        await harness.bus.serve(topology.createEvent.command, async () => (calls.owner++, { ok: true as const, eventId: '$owner' }), { ownedNow: async () => true }),
      );
      const roomId = '!owned:x';
      const replies = [];
      for (let i = 0; i < 8; i++) replies.push(await harness.bus.request(topology.createEvent.subjectFor(roomId), { roomId, sender: '@u:x', type: 'm.room.message', content: {} }));
      expect(replies).toEqual(Array(8).fill({ ok: true, eventId: '$owner' }));
      expect(calls).toEqual({ owner: 8, lost: 0, failing: 0 });
    });

    it('owner routing: with no owner the request fails (timeout, or no-responder where the bus sees every subscriber) and no handler runs; the retry reaches a new owner', async () => {
      let worked = 0;
      let owner = false;
      subscriptions.push(await harness.bus.serve(topology.createEvent.command, async () => (worked++, { ok: true as const, eventId: '$late-owner' }), { ownedNow: () => owner }));
      const roomId = '!unowned:x';
      const send = () => harness.bus.request(topology.createEvent.subjectFor(roomId), { roomId, sender: '@u:x', type: 'm.room.message', content: {}, txnId: 't' }, { timeoutMs: 200 });
      const failed = await send().then(() => undefined, (error: unknown) => error);
      expect(failed).toBeInstanceOf(BusRequestError);
      expect(['timeout', 'no-responder']).toContain((failed as BusRequestError).failure);
      expect(worked).toBe(0);
      owner = true;
      expect(await send()).toEqual({ ok: true, eventId: '$late-owner' });
      expect(worked).toBe(1);
    });

    it('defect 4: a request without a responder fails at once as no-responder', async () => {
      const roomId = '!nobody:x';
      await expect(harness.bus.request(topology.backfill.subjectFor(roomId), { roomId, atOrBelowDepth: 1, limit: 1 })).rejects.toMatchObject({
        failure: 'no-responder',
      });
    });

    it('runs handlers at once on a concurrent consumer: one waiting does not hold up the next (parked PDUs)', async () => {
      const consumer = topology.consumers.stateResolverParked(0);
      let releaseFirst!: () => void;
      const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
      const handled: string[] = [];
      subscriptions.push(
        await harness.bus.consume(consumer, async (m) => {
          if (m.messageId === 'parked:1') await firstHeld;
          handled.push(m.messageId);
        }),
      );
      const parked = (n: number) => ({ inbound: pdu('!a:x', n), parkedAt: 0, reason: 'test' });
      await harness.bus.publish(topology.parkedPdu.partition(0), parked(1), { messageId: 'parked:1' });
      await harness.bus.publish(topology.parkedPdu.partition(0), parked(2), { messageId: 'parked:2' });
      await waitFor(() => handled.includes('parked:2'), 'the second message while the first waits');
      releaseFirst();
      await waitFor(() => handled.length === 2, 'both');
      expect(handled).toEqual(['parked:2', 'parked:1']);
      await waitFor(async () => (await harness.bus.consumerStats(consumer)).ackPending === 0, 'both settled');
    });

    it('delivers what was queued before the consumer existed', async () => {
      await publishPdu(harness.bus, pdu('!a:x', 1));
      const handled: string[] = [];
      subscriptions.push(
        await harness.bus.consume(topology.consumers.stateResolverInbound(topology.inboundPdu.partitionOf('!a:x')), (m) => void handled.push(m.messageId)),
      );
      await waitFor(() => handled.length === 1, 'the backlog');
      expect(handled).toEqual(['$!a:x-1']);
    });

    it('keeps unacknowledged work across a restart and does not redeliver acknowledged work', async () => {
      const consumer = topology.consumers.stateResolverInbound(topology.inboundPdu.partitionOf('!a:x'));
      const before: number[] = [];
      const sub = await harness.bus.consume(consumer, (m: ReceivedMessage<InboundPdu>) => {
        before.push(Number(m.data.pdu.n));
      });
      for (let n = 0; n < 5; n++) await publishPdu(harness.bus, pdu('!a:x', n));
      await waitFor(() => before.length === 5, 'first batch');
      await waitFor(async () => (await harness.bus.consumerStats(consumer)).ackPending === 0, 'acks recorded');
      await sub.stop();
      for (let n = 5; n < 10; n++) await publishPdu(harness.bus, pdu('!a:x', n));
      const reopened = await harness.reopen();
      await reopened.start();
      const after: number[] = [];
      subscriptions.push(await reopened.consume(consumer, (m: ReceivedMessage<InboundPdu>) => void after.push(Number(m.data.pdu.n))));
      await waitFor(() => after.length === 5, 'queued work after restart');
      expect(after).toEqual([5, 6, 7, 8, 9]);
      expect(before).toEqual([0, 1, 2, 3, 4]);
    });
  });
}
