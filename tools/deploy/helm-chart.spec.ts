// Issue 18 defect 12: the Helm chart exposed the client-server listener (the application services'
// private API) to every pod of the cluster. There is no helm binary in the test environment, so these
// checks read the chart's files; the template is kept simple enough for that to be meaningful.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const chart = path.resolve(__dirname, '../../deploy/helm/fedgate');
const read = (file: string) => readFileSync(path.join(chart, file), 'utf8');

describe('Helm chart: the client-server listener', () => {
  const values = parse(read('values.yaml')) as { networkPolicy?: { enabled?: boolean; clientServer?: { allowedFrom?: unknown[] } } };
  const policy = read('templates/networkpolicy.yaml');

  it('ships a NetworkPolicy, on by default, admitting nobody until the chat platform is named', () => {
    expect(values.networkPolicy?.enabled).toBe(true);
    expect(values.networkPolicy?.clientServer?.allowedFrom).toEqual([]);
    expect(policy).toContain('kind: NetworkPolicy');
    expect(policy).toMatch(/podSelector:\s*\n\s*matchLabels:\s*\n(?:.*\n)*?\s*app\.kubernetes\.io\/component: chat-sync/);
    expect(policy).toContain('policyTypes: [Ingress]');
    expect(policy).toContain('ingress: []');
    expect(policy).toContain('port: {{ $.Values.services.chatSync.port }}');
  });

  it('keeps unauthenticated legacy media downloads off (the setting is never turned on by the chart)', () => {
    for (const file of ['templates/configmap.yaml', 'templates/deployments.yaml']) expect(read(file)).not.toMatch(/UNAUTHENTICATED_LEGACY_MEDIA/);
  });
});
