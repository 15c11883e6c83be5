// The load generator's short form (issue 19), so `npm run loadtest` cannot rot: a simulated remote homeserver
// joins rooms on an embedded fedgate over federation HTTPS and runs every workload with small counts (a few
// simulated servers receive one local event; the gateway joins a room the simulator hosts). Asserts that
// nothing is lost and that the report is produced; speed figures belong in docs/benchmarks.md, not here.
import { createTestCa } from '@fedgate/testing';
import { markdownReport } from '../load/src/report';
import { runLoad } from '../load/src/run-load';
import { SpanCollector, untilAnswered } from '../load/src/span-collector';
import { scales } from '../load/src/workloads';

jest.setTimeout(300_000);

describe('load generator, short form (embedded gateway)', () => {
  it('delivers every PDU to the application service in every workload, fans a local event out to every joined server, joins a room the simulator hosts, and reports the figures', async () => {
    const collector = await SpanCollector.start();
    const target = await runLoad('fedgate-embedded', createTestCa(), scales.short, undefined, undefined, { collector }).finally(() => collector.stop());
    expect(target.results.map((r) => r.workload)).toHaveLength(4);
    for (const result of target.results) {
      expect(result).toMatchObject({ lost: 0, errors: [] });
      expect(result.sent).toBeGreaterThan(0);
      expect(result.delivered).toBe(result.sent);
    }
    expect(target.fanOut).toMatchObject({ servers: scales.short.fanOutServers, build: 'relay', received: scales.short.fanOutServers, warm: { received: scales.short.fanOutServers }, firstContact: { received: scales.short.fanOutServers } });
    expect(target.bigJoin).toMatchObject({ members: scales.short.bigRoomMembers, partial: true, joinMs: expect.any(Number), fullStateMs: expect.any(Number) });
    expect(target.bigJoinWholeState).toMatchObject({ members: scales.short.bigRoomMembers, partial: false, joinMs: expect.any(Number), fullStateMs: expect.any(Number) });
    // `--trace`: the partial join's timeline, and what one join asks of the resident before /join answers.
    const named = (prefix: string) => untilAnswered(target.bigJoin!.spans!).filter((s) => s.name.startsWith(prefix));
    expect(named('GET /_matrix/federation/v1/make_join/')).toHaveLength(1);
    expect(named('PUT /_matrix/federation/v2/send_join/')).toHaveLength(1);
    expect(named('GET /_matrix/key/v2/server')).toHaveLength(1);
    expect(named('commit the join')).toHaveLength(1);
    const table = markdownReport({ date: 'test', machine: 'test', scale: 'short', targets: [target] });
    expect(table).toContain('PDUs/s delivered (pushed to the AS)');
    expect(table).toContain('CPU s per 1,000 PDUs delivered');
    // Issue 19: the gateway's own event-loop delay beside the /version probe, so a slow /version can be told from a slow generator.
    for (const result of target.results) expect(result.eventLoopDelayMs).toMatchObject({ p99Ms: expect.any(Number), maxMs: expect.any(Number) });
    expect(table).toContain('gateway event-loop delay p99 / max meanwhile');
  });
});
