import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { AuditEntry, AuditQuery, AuditRecord, AuditRepository } from '@fedgate/store';
import { AppServiceRequestError } from './app-service-client';
import { PushHealth, pushStateWithQueue, readPushState } from './push-health';

class FakeAudit implements AuditRepository {
  readonly records: AuditRecord[] = [];
  async append(entry: AuditEntry): Promise<AuditRecord> {
    const record = { ...entry, id: String(this.records.length + 1) };
    this.records.push(record);
    return record;
  }
  async query(query: AuditQuery): Promise<AuditRecord[]> {
    return this.records
      .filter((r) => (query.direction === undefined || r.direction === query.direction) && (query.destination === undefined || r.destination === query.destination))
      .reverse()
      .slice(0, query.limit ?? 100);
  }
  async pruneBefore(): Promise<number> {
    return 0;
  }
}

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const refused = () => new AppServiceRequestError('rc', 403, 'M_FORBIDDEN', 'transaction 1 to rc answered 403 (M_FORBIDDEN Bad token supplied,)');
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('PushHealth: an application service refusing pushes is loud (issue 15)', () => {
  it('logs an error with status and errcode, counts it, sets the failing gauge and writes a rejected audit record; the ping state reads failing', async () => {
    const audit = new FakeAudit();
    const registry = new Registry();
    const { logger, lines } = capturingLogger();
    const health = new PushHealth({ audit, serverName: 'gw.test', logger, registry });

    await health.failed({ appServiceId: 'rc', txnId: '1', attempt: 1, error: refused(), retryInMs: 1000 });
    await health.failed({ appServiceId: 'rc', txnId: '1', attempt: 2, error: refused(), retryInMs: 2000 });
    await flush();

    const errors = lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(2);
    expect(errors[1]).toMatchObject({ appService: 'rc', txnId: '1', attempt: 2, status: 403, errcode: 'M_FORBIDDEN', msg: expect.stringMatching(/refused/) });
    const metrics = await registry.metrics();
    expect(metrics).toContain('fedgate_appservice_push_failures_total{appservice="rc",status="403",errcode="M_FORBIDDEN"} 2');
    expect(metrics).toContain('fedgate_appservice_push_failing{appservice="rc"} 1');
    expect(audit.records).toHaveLength(2);
    expect(audit.records[1]).toMatchObject({ direction: 'out', origin: 'gw.test', destination: 'appservice:rc', status: 403, outcome: 'rejected', reason: 'M_FORBIDDEN', txnId: '1' });
    expect(await readPushState(audit, 'rc')).toMatchObject({ state: 'failing', txn_id: '1', attempt: 2, last_status: 403, last_errcode: 'M_FORBIDDEN', retry_in_ms: 2000 });
    expect(await readPushState(audit, 'other')).toEqual({ state: 'ok' });
  });

  it('errcodes the AS makes up do not become new metric series', async () => {
    const registry = new Registry();
    const health = new PushHealth({ audit: new FakeAudit(), serverName: 'gw.test', logger: capturingLogger().logger, registry });
    for (const errcode of ['nonsense-1', 'nonsense-2', 'M_lower']) {
      await health.failed({ appServiceId: 'rc', txnId: '1', attempt: 1, error: new AppServiceRequestError('rc', 400, errcode, 'x'), retryInMs: 10 });
    }
    expect(await registry.metrics()).toContain('fedgate_appservice_push_failures_total{appservice="rc",status="400",errcode="other"} 3');
  });

  it('an unreachable AS is an error outcome with status 0', async () => {
    const audit = new FakeAudit();
    const health = new PushHealth({ audit, serverName: 'gw.test', logger: capturingLogger().logger });
    await health.failed({ appServiceId: 'rc', txnId: '7', attempt: 1, error: new AppServiceRequestError('rc', null, null, 'fetch failed'), retryInMs: 10 });
    expect(audit.records[0]).toMatchObject({ status: 0, outcome: 'error', reason: 'unreachable' });
  });

  it('records that delivery resumed once, also after a restart that only the audit remembers', async () => {
    const audit = new FakeAudit();
    const registry = new Registry();
    const before = new PushHealth({ audit, serverName: 'gw.test', logger: capturingLogger().logger, registry });
    await before.failed({ appServiceId: 'rc', txnId: '1', attempt: 1, error: refused(), retryInMs: 10 });

    const { logger, lines } = capturingLogger();
    const after = new PushHealth({ audit, serverName: 'gw.test', logger, registry: new Registry() });
    await after.delivered({ appServiceId: 'rc', txnId: '1', attempts: 1, durationMs: 5, events: 3, ephemeral: 0 });
    await after.delivered({ appServiceId: 'rc', txnId: '2', attempts: 1, durationMs: 5, events: 1, ephemeral: 0 });
    await flush();

    expect(audit.records.map((r) => [r.outcome, r.reason])).toEqual([
      ['rejected', 'M_FORBIDDEN'],
      ['ok', 'delivery_resumed'],
    ]);
    expect(lines.filter((l) => /resumed/.test(String(l.msg)))).toHaveLength(1);
    expect(await readPushState(audit, 'rc')).toEqual({ state: 'ok' });
  });
});

describe('pushStateWithQueue', () => {
  it('issue 12: AS push latency and events pushed are measured per application service', async () => {
    const registry = new Registry();
    const health = new PushHealth({ audit: new FakeAudit(), serverName: 'gw.test', logger: capturingLogger().logger, registry });
    await health.delivered({ appServiceId: 'rc', txnId: '1', attempts: 1, durationMs: 40, events: 3, ephemeral: 0 });
    await health.delivered({ appServiceId: 'rc', txnId: '2', attempts: 2, durationMs: 700, events: 2, ephemeral: 1 });
    const text = await registry.metrics();
    expect(text).toContain('fedgate_appservice_push_duration_seconds_count{appservice="rc"} 2');
    expect(text).toContain('fedgate_appservice_push_duration_seconds_bucket{le="0.05",appservice="rc"} 1');
    expect(text).toContain('fedgate_appservice_pushed_events_total{appservice="rc"} 5');
  });

  it('a failure record with nothing left queued is stale (crash between the ack and the resumed record): ok', () => {
    const failing = { state: 'failing' as const, txn_id: '1', last_status: 403 };
    expect(pushStateWithQueue(failing, 0)).toEqual({ state: 'ok', pending: 0 });
    expect(pushStateWithQueue(failing, 2)).toEqual({ ...failing, pending: 2 });
    expect(pushStateWithQueue({ state: 'ok' }, 5)).toEqual({ state: 'ok', pending: 5 });
  });
});
