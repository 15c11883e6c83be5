import type { Bus, BusTopology } from '@fedgate/bus';
import type { FederationHttpClient } from '@fedgate/federation-client';
import type { ElasticOwnership } from '@fedgate/platform';
import type { Store } from '@fedgate/store';
import type { QueuedWorkTraces } from '@fedgate/telemetry';
import type { EgressSettings } from './egress-settings';

/** The pino subset egress logs through. */
export interface EgressLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Everything egress works with; the Nest module builds it from the platform tokens, tests build it directly. */
export interface EgressContext {
  serverName: string;
  store: Store;
  bus: Bus;
  topology: BusTopology;
  client: Pick<FederationHttpClient, 'putJson'>;
  settings: EgressSettings;
  logger: EgressLogger;
  /** Elastic ownership of room-log and destination partitions (leases); static shares from settings otherwise. */
  elastic?: ElasticOwnership;
  /** Whether this replica may send to a destination now (fencing: checked before every attempt). */
  owns?: (destination: string) => boolean;
  /** Called when a send loop failed on our side (store or bus), for the operator's metric. */
  onOwnFailure?: (destination: string, error: unknown) => void;
  /** Every answer to a transaction: delivered (`ok`), backing off (`retry`), given up (`refused`). */
  onTransaction?: (destination: string, outcome: 'ok' | 'retry' | 'refused') => void;
  /** The trace each queued item came with, so the transaction carrying it joins that trace. */
  traces?: QueuedWorkTraces;
  /** Runs a sender's preparation of its next transaction in a bounded pool shared by all senders. */
  preparing?: <T>(prepare: () => Promise<T>) => Promise<T>;
  /** Waits for this step's turn of the event loop: a bounded number of destination steps go per turn (issue 19). */
  pace?: () => Promise<void>;
  now?: () => number;
  random?: () => number;
}
