// Which process this is among the replicas of a service, and which partitions it works on now: on every
// log line (`service.instance.id`, `partitions`), metric (`service_instance_id` label, the
// `fedgate_partition_owned` gauge) and span (resource attribute `service.instance.id`).
import { hostname } from 'node:os';

let instanceId: string | undefined;
const ownedByStage = new Map<string, readonly number[]>();

/**
 * This process's instance ID: configured (`replicas.instanceId`), else `<hostname>-<pid>`: unique among live
 * processes (no two live processes share a pid on one host), and the same again for a container restarted
 * in its pod (same hostname, pid 1), which then takes its own partition leases back without waiting for them
 * to expire. A process paused is alive, so its ID is never reused while it could wake.
 */
export function serviceInstanceId(): string {
  instanceId ??= `${hostname()}-${process.pid}`;
  return instanceId;
}

/** Sets the instance ID before the first logger, registry or tracer is made. */
export function setServiceInstanceId(id: string): void {
  instanceId = id;
}

/** Records the partitions a stage of this process works on now (its static share, or its leases). */
export function setOwnedPartitions(stage: string, partitions: readonly number[]): void {
  ownedByStage.set(stage, [...partitions].sort((a, b) => a - b));
}

export function ownedPartitions(): ReadonlyMap<string, readonly number[]> {
  return ownedByStage;
}

/** `0-3,7`: a partition list short enough for every log line. */
export function compactPartitions(partitions: readonly number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < partitions.length; ) {
    let j = i;
    while (j + 1 < partitions.length && partitions[j + 1] === partitions[j]! + 1) j++;
    ranges.push(i === j ? String(partitions[i]) : `${partitions[i]}-${partitions[j]}`);
    i = j + 1;
  }
  return ranges.join(',');
}

/** The `partitions` log field: `{stage: "0-3,7"}`, absent while no stage has recorded any. */
export function partitionFields(): { partitions?: Record<string, string> } {
  if (ownedByStage.size === 0) return {};
  return { partitions: Object.fromEntries([...ownedByStage].map(([stage, list]) => [stage, compactPartitions(list)])) };
}
