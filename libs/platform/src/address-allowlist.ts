import type { FederationConfig } from '@fedgate/config';

/** Every address: what `federation.allowPrivateAddresses: true` means (private deployments). */
const EVERY_ADDRESS = ['0.0.0.0/0', '::/0'];

/** The outbound address policy's allowlist: explicit entries, or everything when private addresses are allowed. */
export function addressAllowlist(federation: Pick<FederationConfig, 'allowPrivateAddresses' | 'addressAllowlist'>): string[] {
  return federation.allowPrivateAddresses ? [...EVERY_ADDRESS, ...federation.addressAllowlist] : [...federation.addressAllowlist];
}
