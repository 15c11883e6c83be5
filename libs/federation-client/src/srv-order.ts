import type { SrvRecord } from './dns';

/**
 * Orders SRV records as RFC 2782 asks: lowest priority first; within one priority, a weighted
 * random draw (weight-0 records stay eligible but are picked with a tiny chance). A single
 * record whose target is "." means the service is decidedly absent, so it yields nothing.
 * `random` returns a number in [0, 1), injectable for tests.
 */
export function orderSrvRecords(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const usable = records.filter((record) => record.name !== '.' && record.name !== '');
  const byPriority = new Map<number, SrvRecord[]>();
  for (const record of usable) {
    const group = byPriority.get(record.priority) ?? [];
    group.push(record);
    byPriority.set(record.priority, group);
  }
  const ordered: SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    ordered.push(...weightedShuffle(byPriority.get(priority)!, random));
  }
  return ordered;
}

function weightedShuffle(group: SrvRecord[], random: () => number): SrvRecord[] {
  // RFC 2782 puts weight-0 records first so that the running-sum draw can still land on them.
  const remaining = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight !== 0)];
  const out: SrvRecord[] = [];
  while (remaining.length > 0) {
    const total = remaining.reduce((sum, r) => sum + r.weight, 0);
    const draw = total === 0 ? 0 : Math.floor(random() * (total + 1));
    let running = 0;
    let index = remaining.findIndex((r) => (running += r.weight) >= draw);
    if (index < 0) index = remaining.length - 1;
    out.push(remaining.splice(index, 1)[0]);
  }
  return out;
}
