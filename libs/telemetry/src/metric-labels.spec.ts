// Issue 18 defect 1, "bound label values everywhere": a remote chooses the EDU type, which becomes a
// bus subject (`inbound.edu.<type>`) and so a label value of the published counter.
import { createMetricsRegistry, prometheusBusObserver } from './metrics';

describe('bus metric labels', () => {
  it('keep at most the configured number of subjects; the rest are counted as other', async () => {
    const registry = createMetricsRegistry('test', false);
    const observer = prometheusBusObserver(registry, 10);
    for (let i = 0; i < 1000; i++) observer.published(`fedgate.inbound.edu.x_made_up_${i}`, false);
    observer.published('fedgate.inbound.edu.x_made_up_3', false);
    const lines = (await registry.metrics()).split('\n').filter((line) => line.startsWith('fedgate_bus_published_total{'));
    expect(lines).toHaveLength(11);
    expect(lines.find((line) => line.includes('subject="other"'))).toMatch(/ 990$/);
    expect(lines.find((line) => line.includes('x_made_up_3"'))).toMatch(/ 2$/);
  });
});
