// Injection tokens for what every service shares. Embedded mode provides one instance of each for the
// whole process; distributed mode builds them per process from the same config (see docs/architecture.md).
import type { BusTopology, Bus } from '@fedgate/bus';
import type { Store } from '@fedgate/store';
import type { FederationHttpClient, KeyRing } from '@fedgate/federation-client';
import type { SigningKey } from '@fedgate/protocol';

/** This server's name and signing key. */
export interface ServerIdentity {
  serverName: string;
  signingKey: SigningKey;
  /** Every key in the key file, newest first (old ones still verify what they signed). */
  allKeys: SigningKey[];
}

export const STORE = Symbol.for('fedgate.store');
export const BUS = Symbol.for('fedgate.bus');
export const BUS_TOPOLOGY = Symbol.for('fedgate.bus-topology');
export const SERVER_IDENTITY = Symbol.for('fedgate.server-identity');
/** A FederationHttpClient that signs requests with X-Matrix as this server. */
export const FEDERATION_CLIENT = Symbol.for('fedgate.federation-client');
export const KEY_RING = Symbol.for('fedgate.key-ring');
/** The process's Prometheus registry (served at /metrics), or null where no telemetry was set up. */
export const METRICS_REGISTRY = Symbol.for('fedgate.metrics-registry');

export type { Bus, BusTopology, Store, FederationHttpClient, KeyRing };
