// Issue 17: the Helm chart and the compose file can run federation-ingress as a room policy server (its policy file
// and its own key mounted, off by default), and only federation-ingress gets the policy key. There is no helm binary
// in the test environment, so these checks read the chart's files, like helm-chart.spec.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const deploy = path.resolve(__dirname, '../../deploy');
const read = (file: string) => readFileSync(path.join(deploy, file), 'utf8');

describe('deploy: fedgate as a room policy server', () => {
  it('helm: off by default; when on, the settings name the mounted policy file and key, mounted in federation-ingress alone', () => {
    const values = parse(read('helm/fedgate/values.yaml')) as { policyServer: { enabled: boolean; policyConfigMap: string; keySecret: string }; keysSecret: string };
    expect(values.policyServer).toEqual({ enabled: false, policyConfigMap: expect.any(String), keySecret: expect.any(String) });
    expect(values.policyServer.keySecret).not.toBe(values.keysSecret);
    const configMap = read('helm/fedgate/templates/configmap.yaml');
    expect(configMap).toMatch(/\{\{- if \.Values\.policyServer\.enabled \}\}\n\s+FEDGATE_POLICY_SERVER__ENABLED: "true"\n\s+FEDGATE_POLICY_SERVER__POLICY_FILE: \/etc\/fedgate\/policy\/policy\.yaml\n\s+FEDGATE_POLICY_SERVER__KEY_PATH: \/etc\/fedgate\/policy-key\/policy_server\.key\n\s+\{\{- end \}\}/);
    const helpers = read('helm/fedgate/templates/_helpers.tpl');
    expect(helpers).toMatch(/if and \(eq \.app "federation-ingress"\) \.root\.Values\.policyServer\.enabled \}\}\n\s+- \{ name: policy, mountPath: \/etc\/fedgate\/policy, readOnly: true \}\n\s+- \{ name: policy-key, mountPath: \/etc\/fedgate\/policy-key, readOnly: true \}/);
    expect(read('helm/fedgate/templates/deployments.yaml')).toMatch(/if and \(eq \.app "federation-ingress"\) \$root\.Values\.policyServer\.enabled \}\}\n\s+\{\{- include "fedgate\.policyVolumes"/);
  });

  it('compose: off unless FEDGATE_POLICY_SERVER is set, the policy file and the key directory mounted in federation-ingress alone', () => {
    const compose = parse(read('compose.yaml')) as { services: Record<string, { environment?: Record<string, string>; volumes?: string[] }> };
    const ingress = compose.services['federation-ingress']!;
    expect(ingress.environment).toMatchObject({
      FEDGATE_POLICY_SERVER__ENABLED: '${FEDGATE_POLICY_SERVER:-false}',
      FEDGATE_POLICY_SERVER__POLICY_FILE: '/etc/fedgate/policy/policy.yaml',
      FEDGATE_POLICY_SERVER__KEY_PATH: '/etc/fedgate/policy-key/policy_server.key',
    });
    expect(ingress.volumes).toEqual(expect.arrayContaining(['./policy:/etc/fedgate/policy:ro', './secrets/policy:/etc/fedgate/policy-key']));
    for (const [name, service] of Object.entries(compose.services)) {
      if (name === 'federation-ingress') continue;
      expect(JSON.stringify(service)).not.toMatch(/policy-key|POLICY_SERVER/);
    }
  });
});
