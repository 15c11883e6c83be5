// A room command reaches the replica that holds its partition, over real NATS (distributed mode). The CI flake
// of test/e2e/elastic-replicas.spec.ts: with one state-resolver SIGSTOPped and the other holding every lease,
// the frozen one stayed a member of the commands' queue group and took about half the requests, each a 504.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PartitionOwnership } from '@fedgate/platform';
import { openSqliteStore, type Store } from '@fedgate/store';
import pino from 'pino';
import { BusRequestError, busOptionsFor, busTopology, JetStreamBus, type Bus, type CommandSpec, type CreateEventCommand, type CreateEventReply, type RequestHandler, type ServeOptions } from '@fedgate/bus';
import { PartitionCommands, type CommandEntry, type PartitionHolder } from './partition-commands';

jest.setTimeout(60_000);

const COMMAND_TIMEOUT_MS = 300;
const P = 1;

/** A holder whose lease the test moves by hand. */
class Lease implements PartitionHolder {
  constructor(public held: boolean) {}
  owns(): boolean {
    return this.held;
  }
  async ownsAfterRenewal(): Promise<boolean> {
    return this.held;
  }
}

const never = () => new Promise<never>(() => undefined);

/**
 * A process paused by SIGSTOP, seen from NATS: its connection and subscriptions stay, but nothing it was handed
 * runs (no ownership check, no handler, no reply) while `frozen.now` is set.
 */
function freezable(bus: Bus, frozen: { now: boolean }): Bus {
  return new Proxy(bus, {
    get: (target, key) => {
      if (key !== 'serve') return Reflect.get(target, key, target) as unknown;
      return (command: CommandSpec<unknown, unknown>, handler: RequestHandler<unknown, unknown>, options?: ServeOptions) => {
        const ownedNow = options?.ownedNow;
        const pausedOptions = ownedNow ? { ...options, ownedNow: () => (frozen.now ? never() : ownedNow()) } : options;
        return target.serve(command, (request, context) => (frozen.now ? never() : handler(request, context)), pausedOptions);
      };
    },
  });
}

describe('room commands reach the partition\'s lease holder (NATS, elastic replicas)', () => {
  const topology = busTopology({ prefix: `pc_${randomBytes(4).toString('hex')}`, roomPartitions: 4, commandTimeoutsMs: { createEvent: COMMAND_TIMEOUT_MS } });
  const roomId = [...Array(100).keys()].map((i) => `!room${i}:a.test`).find((r) => topology.createEvent.subjectFor(r).endsWith(`.${P}`))!;
  const buses: JetStreamBus[] = [];
  const open = async () => {
    const bus = await JetStreamBus.connect({ servers: process.env.FEDGATE_TEST_NATS_URL! }, busOptionsFor(topology));
    buses.push(bus);
    return bus;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });

  /** Every (replica, txnId) a handler did the work of: the lease was this replica's when it began. */
  let worked: Array<{ replica: string; txnId: string }>;
  beforeEach(() => (worked = []));

  async function replica(name: string, lease: PartitionHolder, bus: Bus) {
    const entry = {
      command: topology.createEvent.command,
      handler: async (command: CreateEventCommand): Promise<CreateEventReply> => {
        worked.push({ replica: name, txnId: command.txnId ?? '' });
        return { ok: true, eventId: `$${name}-${command.txnId}` };
      },
    } as unknown as CommandEntry;
    const commands = new PartitionCommands(bus, [entry], lease);
    const subscriptions = await commands.serve(P);
    for (const b of buses) await b.connection.flush();
    return { stop: () => Promise.all(subscriptions.map((s) => s.stop())) };
  }

  const send = (bus: Bus, txnId: string) =>
    bus.request(topology.createEvent.subjectFor(roomId), { roomId, sender: '@alice:a.test', type: 'm.room.message', content: {}, txnId }).then(
      (reply) => reply,
      (error: unknown) => (error instanceof BusRequestError ? error.failure : 'failed'),
    );

  /** A client's send: the same txnId again until an event ID comes back. */
  async function sendUntilAnswered(bus: Bus, txnId: string, attempts = 50): Promise<{ reply: CreateEventReply; failures: unknown[] }> {
    const failures: unknown[] = [];
    for (let i = 0; i < attempts; i++) {
      const reply = await send(bus, txnId);
      if (typeof reply === 'object' && reply.ok) return { reply, failures };
      failures.push(reply);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no answer for ${txnId} in ${attempts} attempts: ${JSON.stringify(failures)}`);
  }

  it('the CI flake: a frozen replica that lost the partition takes none of the requests; the owner answers every one at the first try', async () => {
    const caller = await open();
    const frozen = { now: false };
    await replica('paused', new Lease(true), freezable(await open(), frozen));
    frozen.now = true;
    // Its lease ran out while it was frozen; the other replica took the partition.
    await replica('owner', new Lease(true), await open());

    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await send(caller, `t${i}`));
    expect(answers).toEqual([...Array(12).keys()].map((i) => ({ ok: true, eventId: `$owner-t${i}` })));
  });

  it('handover: while the old owner is still subscribed, the new one answers every request; no request is worked by both', async () => {
    const caller = await open();
    const leaseA = new Lease(true);
    const leaseB = new Lease(false);
    const a = await replica('a', leaseA, await open());
    const before = await send(caller, 'before');
    // A gives the lease up; B takes it and serves before A's subscriptions are gone.
    leaseA.held = false;
    leaseB.held = true;
    await replica('b', leaseB, await open());
    const during = [];
    for (let i = 0; i < 12; i++) during.push(await send(caller, `during${i}`));
    await a.stop();
    const after = await sendUntilAnswered(caller, 'after');

    expect(before).toEqual({ ok: true, eventId: '$a-before' });
    expect(during).toEqual([...Array(12).keys()].map((i) => ({ ok: true, eventId: `$b-during${i}` })));
    expect(after.reply).toEqual({ ok: true, eventId: '$b-after' });
    const byTxn = new Map<string, Set<string>>();
    for (const w of worked) byTxn.set(w.txnId, (byTxn.get(w.txnId) ?? new Set()).add(w.replica));
    expect([...byTxn].filter(([, replicas]) => replicas.size > 1)).toEqual([]);
    expect(worked.filter((w) => w.txnId.startsWith('during')).every((w) => w.replica === 'b')).toBe(true);
  });

  it('no owner for a moment: the request times out (nothing worked), and the caller\'s retry with the same txnId is answered once a replica owns the partition', async () => {
    const caller = await open();
    // The old owner, still subscribed, has lost the lease; nobody holds it yet.
    await replica('old', new Lease(false), await open());
    const first = await send(caller, 'retried');
    expect(first).toBe('timeout');
    expect(worked).toEqual([]);

    await replica('new', new Lease(true), await open());
    const retried = await sendUntilAnswered(caller, 'retried');
    expect(retried).toEqual({ reply: { ok: true, eventId: '$new-retried' }, failures: [] });
    expect(worked).toEqual([{ replica: 'new', txnId: 'retried' }]);
  });

  it('no replica subscribed at all: no-responder at once, then the retry is answered by the replica that took the partition', async () => {
    const caller = await open();
    expect(await send(caller, 'unserved')).toBe('no-responder');
    await replica('taker', new Lease(true), await open());
    expect((await sendUntilAnswered(caller, 'unserved')).reply).toEqual({ ok: true, eventId: '$taker-unserved' });
  });
  it('a lease stale for a moment (a slow renewal) is waited out: the holder answers once renewed; one never renewed is declined and reported', async () => {
    const caller = await open();
    const declined: string[] = [];
    let renewed!: () => void;
    const slowRenewal: PartitionHolder = { owns: () => false, ownsAfterRenewal: () => new Promise<boolean>((resolve) => (renewed = () => resolve(true))) };
    const entry = { command: topology.createEvent.command, handler: async () => ({ ok: true, eventId: '$renewed' }) } as unknown as CommandEntry;
    const report = (p: number, subject: string) => declined.push(`${p} ${subject}`);
    const renewing = await new PartitionCommands(await open(), [entry], slowRenewal, report).serve(P);
    const answer = send(caller, 'stale');
    await new Promise((resolve) => setTimeout(resolve, 50));
    renewed();
    expect(await answer).toEqual({ ok: true, eventId: '$renewed' });
    expect(declined).toEqual([]);
    await Promise.all(renewing.map((s) => s.stop()));

    // Lost while waiting (the store away): the requester times out; the replica gives up after the command's timeout.
    const neverRenewed: PartitionHolder = { owns: () => false, ownsAfterRenewal: never };
    await new PartitionCommands(await open(), [entry], neverRenewed, report).serve(P);
    expect(await send(caller, 'unrenewed')).toBe('timeout');
    for (let i = 0; i < 200 && declined.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(declined).toEqual([`${P} ${topology.createEvent.partition(P)}`]);
  });

  it('handover under traffic (real leases): a second replica joins and takes half the partitions while sends flow to all of them; every send is answered, none worked by both', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'partition-commands-'));
    const store: Store = openSqliteStore(path.join(dir, 'leases.sqlite'));
    const owners: PartitionOwnership[] = [];
    const answered = new Map<string, string>();
    let flowing = true;
    try {
      const caller = await open();
      const rooms = [...Array(topology.roomPartitions).keys()].map((p) => [...Array(200).keys()].map((i) => `!r${i}:a.test`).find((r) => topology.createEvent.subjectFor(r).endsWith(`.${p}`))!);
      /** An idempotent handler, as create-event is by txnId: a retry gets the first answer, never a second event. */
      const events = new Map<string, string>();
      const startReplica = async (name: string) => {
        const subscriptions = new Map<number, Array<{ stop(): Promise<void> }>>();
        const entry = {
          command: topology.createEvent.command,
          handler: async (command: CreateEventCommand): Promise<CreateEventReply> => {
            // Every invocation counts: it passed the ownership check, so it would have done the work.
            const key = command.txnId ?? '';
            worked.push({ replica: name, txnId: key });
            if (!events.has(key)) events.set(key, `$${name}-${key}`);
            return { ok: true, eventId: events.get(key)! };
          },
        } as unknown as CommandEntry;
        const bus = await open();
        const commands = new PartitionCommands(bus, [entry], { owns: (p) => ownership.owns(p), ownsAfterRenewal: (p) => ownership.ownsAfterRenewal(p) });
        const ownership: PartitionOwnership = new PartitionOwnership({
          leases: store.leases,
          scope: 'test/state-resolver',
          instanceId: name,
          partitions: topology.roomPartitions,
          ttlMs: 1_500,
          logger: pino({ level: 'silent' }),
          onAcquire: async (p) => void subscriptions.set(p, await commands.serve(p)),
          onRelease: async (p) => {
            await Promise.all((subscriptions.get(p) ?? []).map((s) => s.stop()));
            subscriptions.delete(p);
          },
        });
        owners.push(ownership);
        await ownership.start();
        return ownership;
      };
      const sendsTo = async (roomId: string) => {
        for (let n = 0; flowing; n++) {
          const txnId = `${roomId}#${n}`;
          for (let attempt = 0; ; attempt++) {
            const reply = await caller
              .request(topology.createEvent.subjectFor(roomId), { roomId, sender: '@alice:a.test', type: 'm.room.message', content: {}, txnId }, { timeoutMs: 2_000 })
              .catch(() => undefined);
            if (reply?.ok) {
              answered.set(txnId, reply.eventId);
              break;
            }
            if (attempt > 100) throw new Error(`${txnId} unanswered after ${attempt} attempts`);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      };

      const a = await startReplica('a');
      expect(a.owned()).toHaveLength(topology.roomPartitions);
      const flows = rooms.map((r) => sendsTo(r));
      const b = await startReplica('b');
      const holders = async () => new Set((await store.leases.live('test/state-resolver/partitions/', Date.now())).map((l) => l.holder));
      for (let i = 0; i < 500 && !(b.owned().length > 0 && (await holders()).size === 2); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      const handedOverAt = answered.size;
      for (let i = 0; i < 500 && answered.size < handedOverAt + 40; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      flowing = false;
      await Promise.all(flows);

      expect(b.owned().length).toBeGreaterThan(0);
      expect(a.owned().length + b.owned().length).toBe(topology.roomPartitions);
      const byTxn = new Map<string, string[]>();
      for (const w of worked) byTxn.set(w.txnId, [...(byTxn.get(w.txnId) ?? []), w.replica]);
      expect([...byTxn].filter(([, replicas]) => replicas.length > 1)).toEqual([]);
      expect([...answered.keys()].every((txnId) => byTxn.has(txnId))).toBe(true);
      expect(worked.some((w) => w.replica === 'b')).toBe(true);
    } finally {
      flowing = false;
      await Promise.all(owners.map((o) => o.stop()));
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
