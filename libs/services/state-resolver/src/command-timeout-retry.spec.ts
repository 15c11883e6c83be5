// Issue 11 defect 4, with the caller's side: a create-event command that outlives its declared timeout
// is reported to the caller as a timeout; the caller retries with the same txnId and must get the one event,
// never a second copy made by the retry while the first was still being committed.
import { BusRequestError, type CreateEventCommand, type CreateEventReply } from '@fedgate/bus';
import { TestNetwork, type TestServer } from './testing/test-server';

jest.setTimeout(20_000);

describe('a create-event command that times out and is retried', () => {
  let network: TestNetwork;
  let a: TestServer;

  beforeEach(async () => {
    network = new TestNetwork();
    a = await network.add('a.test', { start: true, topology: { commandTimeoutsMs: { createEvent: 300 } } });
  });
  afterEach(() => network.close());

  // The retry must not run beside the first send nor make a second event: sends with one txnId run one at a
  // time and the txnId is reserved before the event enters the room (local-events.ts, client-transactions.ts).
  it('defect 4: the timeout reaches the caller, and its retries with the same txnId yield one event', async () => {
    const roomId = await a.createRoom('@alice:a.test');
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const commit = a.resolver.timeline.commit.bind(a.resolver.timeline);
    let held = false;
    a.resolver.timeline.commit = async (evaluation, options) => {
      if (!held && evaluation.pdu.type === 'm.room.message') {
        held = true;
        await gate;
      }
      return commit(evaluation, options);
    };
    const command: CreateEventCommand = { roomId, sender: '@alice:a.test', type: 'm.room.message', content: { body: 'once' }, txnId: 'tx1' };
    const send = () => a.bus.request<CreateEventCommand, CreateEventReply>(a.topology.createEvent.subjectFor(roomId), command);

    await expect(send()).rejects.toMatchObject({ failure: 'timeout', timeoutMs: 300 });
    const retried = send().catch((error: unknown) => error);
    expect(await retried).toBeInstanceOf(BusRequestError);
    open();
    let reply: CreateEventReply | undefined;
    while (!reply) reply = await send().catch(() => undefined);
    expect(reply).toMatchObject({ ok: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const messages = a.published.filter((e) => e.event.type === 'm.room.message');
    expect(messages.map((e) => e.eventId)).toEqual([reply.ok && reply.eventId]);
  });
});
