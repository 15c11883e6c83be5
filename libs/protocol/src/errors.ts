// Every error this library throws carries a machine-readable `code` (what went wrong, specific) and the
// Matrix `errcode` a server would answer with, so callers can map failures to responses without parsing text.

export type MatrixErrcode = 'M_BAD_JSON' | 'M_NOT_JSON' | 'M_INVALID_PARAM' | 'M_UNAUTHORIZED' | 'M_FORBIDDEN' | 'M_TOO_LARGE' | 'M_UNKNOWN';

export abstract class ProtocolError extends Error {
  abstract readonly errcode: MatrixErrcode;
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A JSON path such as `$.content["m.relates_to"].rel_type` or `$.prev_events[3]`. */
export function formatJsonPath(segments: ReadonlyArray<string | number>): string {
  let out = '$';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** A short, safe rendering of a bad value for an error message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const shown = value.length > 64 ? `${value.slice(0, 61)}...` : value;
    return JSON.stringify(shown.toWellFormed());
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return Object.is(value, -0) ? '-0' : String(value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object (${Object.getPrototypeOf(value)?.constructor?.name ?? 'null prototype'})`;
  return `a ${typeof value}`;
}
