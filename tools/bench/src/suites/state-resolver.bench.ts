// The state-resolver's own cost per event, embedded shape (SQLite store, embedded bus), no network:
// local events (build, sign, authorize, persist, publish) and inbound remote events (verify is ingress's;
// here: state before, both auth checks, soft-fail, persist, publish), plus a remote join's state import.
import { TestNetwork } from '@fedgate/state-resolver';
import { fmt, percentile, type BenchSection, type BenchSuite } from '../harness';

const LOCAL_EVENTS = 500;
const INBOUND_EVENTS = 500;
const MEMBERS = 200;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

const suite: BenchSuite = {
  name: 'state-resolver',
  async run() {
    const network = new TestNetwork();
    try {
      const a = await network.add('a.test');
      const b = await network.add('b.test');
      const roomId = await a.createRoom('@alice:a.test');

      const local: number[] = [];
      for (let i = 0; i < LOCAL_EVENTS; i++) {
        const [reply, ms] = await timed(() => a.send(roomId, '@alice:a.test', 'm.room.message', { msgtype: 'm.text', body: `message ${i}` }));
        if (!reply.ok) throw new Error(reply.error);
        local.push(ms);
      }
      for (let i = 0; i < MEMBERS; i++) await a.send(roomId, `@user${i}:a.test`, 'm.room.member', { membership: 'join' }, { stateKey: `@user${i}:a.test` });

      const [, joinMs] = await timed(() => b.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] }));
      const ids: string[] = [];
      for (let i = 0; i < INBOUND_EVENTS; i++) {
        const reply = await b.send(roomId, '@bob:b.test', 'm.room.message', { msgtype: 'm.text', body: `from b ${i}` });
        if (reply.ok) ids.push(reply.eventId);
      }
      const inbound: number[] = [];
      for (const id of ids) {
        const [, ms] = await timed(() => a.receive(b, id));
        inbound.push(ms);
      }
      local.sort((x, y) => x - y);
      inbound.sort((x, y) => x - y);
      const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
      const section: BenchSection = {
        title: 'embedded (SQLite store, embedded bus), room version 12',
        rows: [
          { name: `local event (create-event, ${LOCAL_EVENTS} messages)`, value: `${Math.round((LOCAL_EVENTS / sum(local)) * 1000)} events/s`, note: `p50 ${fmt.ms(percentile(local, 50))}, p99 ${fmt.ms(percentile(local, 99))}` },
          { name: `inbound remote event (${INBOUND_EVENTS} messages, ${MEMBERS + 2} members)`, value: `${Math.round((INBOUND_EVENTS / sum(inbound)) * 1000)} events/s`, note: `p50 ${fmt.ms(percentile(inbound, 50))}, p99 ${fmt.ms(percentile(inbound, 99))}` },
          { name: `remote join importing ${MEMBERS + 5} state events`, value: fmt.ms(joinMs), note: 'in-memory federation: verify, auth, store' },
        ],
      };
      return [section];
    } finally {
      await network.close();
    }
  },
};
export default suite;
