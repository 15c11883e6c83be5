// Joining a room through a resident server (make_join, send_join): what the join waits on before the room is usable.
import type { KeyRing } from '@fedgate/federation-client';
import { TestNetwork } from './testing/test-server';

const ALICE = '@alice:fg.test';
const BOB = '@bob:b.test';

describe('remote join: round trips before the room is usable', () => {
  let network: TestNetwork;
  afterEach(() => network.close());

  it("asks for the resident's keys while make_join is in flight, not after send_join answered (one round trip less)", async () => {
    network = new TestNetwork();
    const order: string[] = [];
    const ring = network.keyRing();
    network.keyRing = (): KeyRing => ({
      prepare: async (requests, caller) => {
        if (requests.some((r) => r.serverName === 'fg.test')) order.push('keys of fg.test asked');
        return ring.prepare(requests, caller);
      },
    });
    const route = network.route.bind(network);
    network.route = async (from, to, method, path, body, options) => {
      const answer = await route(from, to, method, path, body, options);
      const handshake = /\/(make_join|send_join)\//.exec(path)?.[1];
      if (from === 'b.test' && handshake) order.push(`${handshake} answered`);
      return answer;
    };
    const resident = await network.add('fg.test');
    const joiner = await network.add('b.test');
    joiner.resolver.resync.stop();
    const roomId = await resident.createRoom(ALICE, '10');

    const reply = await joiner.resolver.remoteMembership.onCommand({ roomId, userId: BOB, membership: 'join', via: ['fg.test'] });

    expect(reply.ok).toBe(true);
    expect(order.indexOf('keys of fg.test asked')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('keys of fg.test asked')).toBeLessThan(order.indexOf('make_join answered'));
    expect(order.indexOf('make_join answered')).toBeLessThan(order.indexOf('send_join answered'));
  });

  it('publishes our join as held by the resident already, so egress does not send it back there', async () => {
    network = new TestNetwork();
    const resident = await network.add('fg.test');
    const joiner = await network.add('b.test');
    joiner.resolver.resync.stop();
    const roomId = await resident.createRoom(ALICE, '10');

    const reply = await joiner.resolver.remoteMembership.onCommand({ roomId, userId: BOB, membership: 'join', via: ['fg.test'] });

    if (!reply.ok) throw new Error(reply.error);
    expect(joiner.published.find((e) => e.eventId === reply.eventId)).toMatchObject({ local: true, heldBy: ['fg.test'] });
  });
});
