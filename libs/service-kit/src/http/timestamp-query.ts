import { MatrixError } from './matrix-error';

/** `ts` (ms, required) and `dir` (`f` or `b`, required) of `timestamp_to_event`, as both the client-server and the federation API take them. */
export function parseTimestampQuery(query: Record<string, unknown>): { ts: number; dir: 'f' | 'b' } {
  if (query.ts === undefined) throw MatrixError.missingParam('ts is required');
  if (query.dir === undefined) throw MatrixError.missingParam('dir is required');
  const ts = typeof query.ts === 'string' && /^\d{1,16}$/.test(query.ts) ? Number(query.ts) : NaN;
  if (!Number.isSafeInteger(ts)) throw MatrixError.invalidParam('ts must be a timestamp in milliseconds');
  if (query.dir !== 'f' && query.dir !== 'b') throw MatrixError.invalidParam('dir must be f or b');
  return { ts, dir: query.dir };
}
