/** FNV-1a 32-bit: stable across processes and versions, so a room always maps to the same partition. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  const bytes = Buffer.from(text, 'utf8');
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export function partitionOf(key: string, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) throw new RangeError(`partition count must be a positive integer, got ${partitionCount}`);
  return fnv1a32(key) % partitionCount;
}

/**
 * Answers already given: the embedded bus asks this for every consumer loop on every publish, and splitting both
 * strings each time was ~3% of the gateway's busy CPU under inbound load (issue 19). Subjects and patterns come
 * from the topology (a few per partition), so the set is small; the bound is for the pathological case.
 */
const matched = new Map<string, boolean>();
/** Past this many pairs the answers are forgotten at once (an LRU's bookkeeping cost more than the matching, measured). */
const MAX_REMEMBERED = 20_000;

/** Whether a NATS subject matches a pattern with `*` (one token) and `>` (the rest) wildcards. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const key = `${pattern}\u0000${subject}`;
  let answer = matched.get(key);
  if (answer === undefined) {
    answer = matchSubject(pattern, subject);
    if (matched.size >= MAX_REMEMBERED) matched.clear();
    matched.set(key, answer);
  }
  return answer;
}

function matchSubject(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Whether some subject matches both patterns. */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === '>' || y[i] === '>') return x[i] !== undefined && y[i] !== undefined;
    if (x[i] === undefined || y[i] === undefined) return false;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
  return true;
}
