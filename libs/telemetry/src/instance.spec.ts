// Issue 12: operators could not tell replicas apart — logs and metrics carried only `service`.
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { createLogger } from './logger';
import { createMetricsRegistry } from './metrics';
import { compactPartitions, serviceInstanceId, setOwnedPartitions, setServiceInstanceId } from './instance';

describe('service instance and partitions on logs and metrics', () => {
  it('an instance ID by default is host and pid; a configured one wins', () => {
    expect(serviceInstanceId()).toBe(`${hostname()}-${process.pid}`);
    setServiceInstanceId('state-resolver-1');
    expect(serviceInstanceId()).toBe('state-resolver-1');
  });

  it('every log line carries service.instance.id and the partitions owned now', () => {
    setServiceInstanceId('sr-a');
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const logger = createLogger({ service: 'state-resolver', destination });
    setOwnedPartitions('state-resolver', [7, 0, 1, 2, 3]);
    logger.info('one');
    setOwnedPartitions('state-resolver', [4]);
    logger.child({ component: 'x' }).warn('two');
    expect(lines.map((l) => [l['service.instance.id'], l.partitions])).toEqual([
      ['sr-a', { 'state-resolver': '0-3,7' }],
      ['sr-a', { 'state-resolver': '4' }],
    ]);
  });

  it('every metric carries service_instance_id, and fedgate_partition_owned lists the partitions owned', async () => {
    setServiceInstanceId('egress-b');
    const registry = createMetricsRegistry('federation-egress', false);
    setOwnedPartitions('federation-egress', [2, 5]);
    const text = await registry.metrics();
    expect(text).toContain('fedgate_partition_owned{stage="federation-egress",partition="2",service="federation-egress",service_instance_id="egress-b"} 1');
    expect(text).toContain('partition="5"');
    setOwnedPartitions('federation-egress', [5]);
    expect(await registry.metrics()).not.toContain('stage="federation-egress",partition="2"');
  });

  it('writes partition lists compactly', () => {
    expect(compactPartitions([])).toBe('');
    expect(compactPartitions([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
  });
});
