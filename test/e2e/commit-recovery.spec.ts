// Issue 10, defect 3, end to end: fedgate A dies in the middle of committing a local message (everything
// stored, the room log entry not yet published: the half-commit that used to leave an extremity without
// state and every later send failing). After a real restart of A the room is usable, and the message
// reaches B and both chat platforms exactly once, before the next one.
import type { Bus } from '@fedgate/bus';
import { loadConfig } from '@fedgate/config';
import { buildPlatform } from '@fedgate/platform';
import { createLogger, ensureSigningKey } from '@fedgate/service-kit';
import { StateResolver } from '@fedgate/state-resolver';
import { createTestCa, keepLogsAndDestroy, startFedgatePair, type FedgateInstance, type TestBridge } from '@fedgate/testing';

jest.setTimeout(240_000);

const WAIT_MS = 30_000;

/** The bus of a process that dies when it publishes to the room log. */
function dyingAtRoomLogPublish(bus: Bus): Bus {
  return new Proxy(bus, {
    get: (target, key) => {
      const value = (target as unknown as Record<string | symbol, unknown>)[key];
      if (key === 'publish') {
        return async (subject: string, ...rest: unknown[]) => {
          if (subject.includes('.room.log.')) throw new Error('simulated crash before the room log entry');
          return (value as (...args: unknown[]) => unknown).apply(target, [subject, ...rest]);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('a fedgate dying mid-commit, then restarted (issue 10, defect 3)', () => {
  let a: FedgateInstance;
  let b: FedgateInstance;

  beforeAll(async () => {
    const ca = createTestCa();
    [a, b] = await startFedgatePair({ shape: 'embedded', ca, name: 'a' }, { shape: 'embedded', ca, name: 'b' });
  }, 240_000);

  afterAll(() => keepLogsAndDestroy('commit-recovery', [a, b]), 60_000);

  it('finishes the cut-short commit on start: the room is usable and the message is delivered once', async () => {
    const bridgeA = a.bridge as TestBridge;
    const bridgeB = b.bridge as TestBridge;
    const alice = await bridgeA.registerVirtualUser(`${a.name}chat_alice`);
    const bob = await bridgeB.registerVirtualUser(`${b.name}chat_bob`);
    const { room_id: roomId } = await bridgeA.asUser(alice).createRoom({ preset: 'public_chat' as never, name: 'crash mid-commit' });
    await bridgeB.asUser(bob).joinRoom(roomId, { viaServers: [a.serverName] });
    await bridgeA.waitForEvent((e) => e.type === 'm.room.member' && e.state_key === bob && e.content?.membership === 'join', WAIT_MS);

    // A stops; a state-resolver process over A's data sends Alice's message and dies before the room log entry.
    await a.stop();
    const config = loadConfig({ argv: [], env: { FEDGATE_CONFIG: a.configPath }, cwd: a.dataDir });
    const logger = createLogger('commit-recovery-e2e', 'silent');
    const platform = await buildPlatform({ config, logger, signingKey: await ensureSigningKey(config.signingKey.path) });
    let crashedEventId: string;
    try {
      const dying = new StateResolver({ ...platform, bus: dyingAtRoomLogPublish(platform.bus), federation: platform.federationClient });
      const content = { msgtype: 'm.text', body: 'sent as A died' };
      await expect(dying.localEvents.create({ roomId, sender: alice, type: 'm.room.message', content, txnId: `send/${roomId}/crash-1` })).rejects.toThrow('simulated crash');
      // Stored and already the room's forward extremity: what every later send builds on.
      const extremities = await platform.store.rooms.getForwardExtremities(roomId);
      expect(extremities).toHaveLength(1);
      crashedEventId = extremities[0];
      expect((await platform.store.events.get(crashedEventId))?.pdu.content.body).toBe('sent as A died');
    } finally {
      await platform.close();
    }

    await a.start();
    const atB = await bridgeB.waitForEvent((e) => e.event_id === crashedEventId, WAIT_MS);
    expect(atB).toMatchObject({ sender: alice, content: { body: 'sent as A died' } });
    await bridgeA.waitForEvent((e) => e.event_id === crashedEventId, WAIT_MS);

    // The client retries its send: same transaction, same event. And the room goes on.
    const retried = await bridgeA.asUser(alice).sendEvent(roomId, 'm.room.message' as never, { msgtype: 'm.text', body: 'sent as A died' } as never, 'crash-1');
    expect(retried.event_id).toBe(crashedEventId);
    const next = await bridgeA.asUser(alice).sendTextMessage(roomId, 'after the restart');
    await bridgeB.waitForEvent((e) => e.event_id === next.event_id, WAIT_MS);
    const reply = await bridgeB.asUser(bob).sendTextMessage(roomId, 'reply from B');
    await bridgeA.waitForEvent((e) => e.event_id === reply.event_id, WAIT_MS);

    for (const bridge of [bridgeA, bridgeB]) {
      expect(bridge.received.events((e) => e.content?.body === 'sent as A died').map((e) => e.event_id)).toEqual([crashedEventId]);
    }
  });
});
