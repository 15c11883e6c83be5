// Whether this ingress serves as a policy server, and with what: config `policyServer`, or the module
// options in tests (which have no full config).
import path from 'node:path';
import type { FedgateConfig, PolicyServerConfig } from '@fedgate/config';

export const POLICY_SERVER_SETTINGS = Symbol.for('fedgate.federation-ingress.policy-server-settings');

export type PolicyServerSettings = PolicyServerConfig;

export function policyServerSettings(config: FedgateConfig | undefined, override: Partial<PolicyServerConfig> | undefined): PolicyServerSettings {
  const base: PolicyServerConfig = config?.policyServer ?? { enabled: false, keyPath: path.join(config?.dataDir ?? '.', 'policy_server.key'), reloadIntervalMs: 2_000 };
  return { ...base, ...override };
}
