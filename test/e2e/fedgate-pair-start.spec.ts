// The e2e harness itself: a pair of gateways whose second fails to start leaves nothing of the first running
// (a leaked gateway kept a whole test run alive after its summary).
import { execFileSync } from 'node:child_process';
import { createTestCa, startFedgatePair } from '@fedgate/testing';

jest.setTimeout(120_000);

const gatewayChildren = () =>
  execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)])
    .toString()
    .split('\n')
    .filter((line) => line.includes('dist/apps/'));

describe('startFedgatePair', () => {
  it('destroys the gateway that started when the other one fails to start', async () => {
    const ca = createTestCa();
    const before = gatewayChildren();
    await expect(
      startFedgatePair({ shape: 'embedded', ca, name: 'fine' }, { shape: 'embedded', ca, name: 'broken', config: { log: { level: 'shouting' } } }),
    ).rejects.toThrow(/broken \(embedded\) did not start/);
    expect(gatewayChildren()).toEqual(before);
  });
});
