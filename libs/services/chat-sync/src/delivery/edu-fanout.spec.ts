// Issue 11 defect 6 (the typing map in chat-sync never shrank) and issue 16 defect 9 (remote typing never
// timed out towards the bridge).
import type { InboundEdu } from '@fedgate/bus';
import { busTopology } from '@fedgate/bus';
import type { Bus, Store } from '@fedgate/platform';
import { ApplicationServiceRegistry } from '../registration';
import { EduFanout } from './edu-fanout';

const REMOTE = 'remote.test';
const registry = new ApplicationServiceRegistry(
  [
    {
      id: 'bridge',
      url: 'http://bridge.invalid',
      asToken: 'as',
      hsToken: 'hs',
      senderLocalpart: 'bridge',
      namespaces: { users: [], aliases: [], rooms: [{ regex: '!.*', exclusive: false }] },
      rateLimited: false,
      receiveEphemeral: true,
      protocols: [],
      source: 'test',
    },
  ],
  'gw.test',
);
// No room state is needed: the service is interested in every room ID.
const store = { rooms: { get: async () => undefined }, aliases: { forRoom: async () => [] } } as unknown as Store;

function fanoutWithClock(options: { typingLimits?: { maxRooms: number; maxUsersPerRoom: number; maxTimeoutMs: number } } = {}) {
  const published: Array<{ room_id: string; content: { user_ids: string[] } }> = [];
  const bus = { publish: async (_subject: string, data: { event: any }) => void published.push(data.event) } as unknown as Bus;
  let now = 1_000_000;
  const fanout = new EduFanout(store, bus, busTopology({ prefix: 'edutest' }), registry, { now: () => now, ...options });
  let n = 0;
  const typing = (roomId: string, user: string, typingNow: boolean, timeout?: number) =>
    fanout.handle({ origin: REMOTE, txnId: 't', eduType: 'm.typing', receivedAt: now, content: { room_id: roomId, user_id: `@${user}:${REMOTE}`, typing: typingNow, ...(timeout !== undefined ? { timeout } : {}) } } as InboundEdu, `m${n++}`);
  return { fanout, published, typing, advance: (ms: number) => (now += ms) };
}

describe('chat-sync typing', () => {
  it('keeps the typing map bounded however many rooms a peer names, and forgets rooms nobody types in', async () => {
    const { fanout, typing } = fanoutWithClock({ typingLimits: { maxRooms: 5, maxUsersPerRoom: 3, maxTimeoutMs: 60_000 } });
    for (let i = 0; i < 50; i++) await typing(`!room${i}:${REMOTE}`, 'alice', true);
    expect(fanout.typingRoomCount).toBe(5);
    for (let i = 45; i < 50; i++) await typing(`!room${i}:${REMOTE}`, 'alice', false);
    expect(fanout.typingRoomCount).toBe(0);
    fanout.stop();
  });

  it('bounds the users typing in one room', async () => {
    const { fanout, typing, published } = fanoutWithClock({ typingLimits: { maxRooms: 5, maxUsersPerRoom: 3, maxTimeoutMs: 60_000 } });
    for (let i = 0; i < 10; i++) await typing(`!one:${REMOTE}`, `user${i}`, true);
    expect(published.at(-1)!.content.user_ids).toEqual([`@user7:${REMOTE}`, `@user8:${REMOTE}`, `@user9:${REMOTE}`]);
    fanout.stop();
  });

  it('tells the bridge a remote user stopped typing when the notice times out (the remote sends no typing: false)', async () => {
    const { fanout, typing, published, advance } = fanoutWithClock();
    await typing(`!t:${REMOTE}`, 'alice', true, 5_000);
    expect(published.at(-1)).toMatchObject({ type: 'm.typing', room_id: `!t:${REMOTE}`, content: { user_ids: [`@alice:${REMOTE}`] } });
    advance(4_999);
    await fanout.expireTyping();
    expect(published).toHaveLength(1);
    advance(1);
    await fanout.expireTyping();
    expect(published.at(-1)).toMatchObject({ type: 'm.typing', room_id: `!t:${REMOTE}`, content: { user_ids: [] } });
    expect(fanout.typingRoomCount).toBe(0);
    fanout.stop();
  });

  it('caps the timeout a remote announces', async () => {
    const { fanout, typing, published, advance } = fanoutWithClock();
    await typing(`!cap:${REMOTE}`, 'alice', true, 10 ** 12);
    advance(60_000);
    await fanout.expireTyping();
    expect(published.at(-1)!.content.user_ids).toEqual([]);
    fanout.stop();
  });

  it('fires the timeout on its own timer', async () => {
    jest.useFakeTimers();
    try {
      const published: any[] = [];
      const bus = { publish: async (_subject: string, data: { event: any }) => void published.push(data.event) } as unknown as Bus;
      const fanout = new EduFanout(store, bus, busTopology({ prefix: 'edutest' }), registry);
      await fanout.handle({ origin: REMOTE, txnId: 't', eduType: 'm.typing', receivedAt: Date.now(), content: { room_id: `!timer:${REMOTE}`, user_id: `@alice:${REMOTE}`, typing: true, timeout: 2_000 } } as InboundEdu, 'm');
      await jest.advanceTimersByTimeAsync(2_000);
      expect(published.map((e) => e.content.user_ids)).toEqual([[`@alice:${REMOTE}`], []]);
      fanout.stop();
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('chat-sync ephemeral EDUs: strict origin check', () => {
  it('hands on no typing or receipt whose user lacks the "@" sigil (`x:<origin>`)', async () => {
    const { fanout, published } = fanoutWithClock();
    await fanout.handle({ origin: REMOTE, txnId: 't', eduType: 'm.typing', receivedAt: 0, content: { room_id: `!s:${REMOTE}`, user_id: `x:${REMOTE}`, typing: true } } as InboundEdu, 'sigil-typing');
    await fanout.handle({ origin: REMOTE, txnId: 't', eduType: 'm.receipt', receivedAt: 0, content: { [`!s:${REMOTE}`]: { 'm.read': { [`x:${REMOTE}`]: { event_ids: ['$e'] } } } } } as InboundEdu, 'sigil-receipt');
    expect(published).toEqual([]);
    fanout.stop();
  });
});
