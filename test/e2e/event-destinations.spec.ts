// Issue 10, defect 10 (found with a Dendrite peer), end to end between two fedgates: an invite reaches a
// server that is not in the room by the invite API only, never in a /send (it would ask for events it may
// not read and store the invite as rejected), and the join a server made through send_join is not sent back
// to it. What B got from A in each /send is read from B's audit records (the answer lists every PDU).
import { createTestCa, keepLogsAndDestroy, openInstanceStore, startFedgatePair, type FedgateInstance, type TestBridge } from '@fedgate/testing';

jest.setTimeout(180_000);

const WAIT_MS = 30_000;

describe('which events a server is sent (issue 10, defect 10)', () => {
  let a: FedgateInstance;
  let b: FedgateInstance;

  beforeAll(async () => {
    const ca = createTestCa();
    [a, b] = await startFedgatePair({ shape: 'embedded', ca, name: 'a' }, { shape: 'embedded', ca, name: 'b' });
  }, 180_000);

  afterAll(() => keepLogsAndDestroy('event-destinations', [a, b]), 60_000);

  /** What B got from A in /send transactions so far: the PDU count, and the IDs of those B could name (answered or refused). */
  async function sentToB(): Promise<{ pduCount: number; eventIds: string[] }> {
    const store = await openInstanceStore(b);
    try {
      const records = (await store.audit.query({ direction: 'in', origin: a.serverName, limit: 1000 })).filter((r) => r.path.startsWith('/_matrix/federation/v1/send/'));
      const eventIds = records.flatMap((r) => {
        const details = r.details as { response?: { pdus?: Record<string, unknown> }; refused?: Array<{ kind: string; eventId?: string }> } | undefined;
        const refused = (details?.refused ?? []).filter((x) => x.kind === 'pdu').flatMap((x) => (x.eventId ? [x.eventId] : []));
        return [...new Set([...Object.keys(details?.response?.pdus ?? {}), ...refused])];
      });
      return { pduCount: records.reduce((n, r) => n + (r.pduCount ?? 0), 0), eventIds };
    } finally {
      await store.close();
    }
  }

  it('sends an invite to a server outside the room by the invite API only, and never echoes its send_join join back', async () => {
    const bridgeA = a.bridge as TestBridge;
    const bridgeB = b.bridge as TestBridge;
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice`);
    const carol = await bridgeB.registerVirtualUser(`${b.name}chat_carol`);
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'private_chat' as never, name: 'invite only' });

    await bridgeA.asUser(alice).invite(roomId, carol);
    const invite = await bridgeB.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === carol && e.content?.membership === 'invite', WAIT_MS);
    await bridgeB.asUser(carol).joinRoom(roomId, { viaServers: [a.serverName] });
    const join = await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === carol && e.content?.membership === 'join', WAIT_MS);

    const message = await bridgeA.asUser(alice).sendTextMessage(roomId, 'now that B is in');
    await bridgeB.waitForEvent((e) => e.event_id === message.event_id, WAIT_MS);

    const received = await sentToB();
    expect(received.eventIds).toContain(message.event_id);
    expect(received.eventIds).not.toContain(invite.event_id);
    expect(received.eventIds).not.toContain(join.event_id);
    // Nothing else either: a PDU of a room B is not in (the invite) is refused by B without an ID it can name.
    expect(received.pduCount).toBe(received.eventIds.length);
  });
});
