// Canonical JSON as the spec's appendix defines it: the shortest UTF-8 encoding, object keys sorted by
// Unicode code point, no insignificant whitespace. In strict mode (room versions 6+) numbers must be
// integers in ±(2^53−1) and -0 may not appear; in lenient mode (v1–5) any finite number is written the way
// JavaScript prints it (-0 as 0). Lone surrogates cannot be encoded as UTF-8 and are always refused.
import { describeValue, formatJsonPath, ProtocolError } from './errors';

export type CanonicalJsonProblem = 'float' | 'integer_out_of_range' | 'negative_zero' | 'non_finite' | 'lone_surrogate' | 'not_json' | 'too_deep';

export class CanonicalJsonError extends ProtocolError {
  readonly errcode = 'M_BAD_JSON';
  constructor(
    readonly problem: CanonicalJsonProblem,
    readonly path: string,
    detail: string,
  ) {
    super(problem, `cannot encode canonical JSON at ${path}: ${detail}`);
  }
}

export interface CanonicalJsonOptions {
  /** Room versions 6+: reject floats, -0 and integers outside ±(2^53−1). Default true. */
  strict?: boolean;
}

/** Nesting deeper than this is refused rather than risking the stack. */
export const MAX_CANONICAL_JSON_DEPTH = 512;

export function canonicalJson(value: unknown, options?: CanonicalJsonOptions): string {
  const strict = options?.strict ?? true;
  try {
    return write(value, 0, strict ? strictNumber : lenientNumber);
  } catch (e) {
    if (e === PROBLEM) throw locateProblem(value, strict);
    throw e;
  }
}

/**
 * Each member of an object as canonical JSON (`"key":value`), in canonical key order: what canonicalJson(object)
 * writes between its braces, so `'{' + [...members.values()].join(',') + '}'` is that text. Lets a caller build
 * several canonical texts of one object (with members left out or replaced) from one serialisation of its members.
 * Throws the CanonicalJsonError canonicalJson(object) would.
 */
export function canonicalMembers(object: Record<string, unknown>, options?: CanonicalJsonOptions): Map<string, string> {
  const strict = options?.strict ?? true;
  const writeNumber = strict ? strictNumber : lenientNumber;
  const members = new Map<string, string>();
  try {
    if (!isPlainObject(object)) throw PROBLEM;
    for (const k of sortedKeys(object)) {
      const v = object[k];
      if (v !== undefined) members.set(k, writeString(k) + ':' + write(v, 1, writeNumber));
    }
  } catch (e) {
    if (e === PROBLEM) throw locateProblem(object, strict);
    throw e;
  }
  return members;
}

/** Keys in canonical order (by code point). */
export function canonicalKeyOrder(keys: readonly string[]): string[] {
  const sorted = [...keys].sort();
  for (const k of sorted) if (SURROGATE.test(k)) return sorted.sort(compareCodePoints);
  return sorted;
}

export function canonicalJsonBytes(value: unknown, options?: CanonicalJsonOptions): Buffer {
  return Buffer.from(canonicalJson(value, options), 'utf8');
}

// One writer; the room version's number rule is passed in, so only numbers pay for the mode.
// Writers throw a bare sentinel; the slow locator then walks the value again to name the offending path.
const PROBLEM = Symbol('canonical-json-problem');

type NumberWriter = (value: number) => string;

/** Room versions 6+: integers in ±(2^53−1), no -0. */
function strictNumber(value: number): string {
  if (!Number.isSafeInteger(value) || Object.is(value, -0)) throw PROBLEM;
  return '' + value;
}

/** Room versions 1–5: any finite number, as JavaScript prints it (-0 as 0). */
function lenientNumber(value: number): string {
  if (!Number.isFinite(value)) throw PROBLEM;
  return JSON.stringify(value);
}

function write(value: unknown, depth: number, writeNumber: NumberWriter): string {
  switch (typeof value) {
    case 'string':
      return writeString(value);
    case 'number':
      return writeNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_CANONICAL_JSON_DEPTH) throw PROBLEM;
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + write(value[i], depth + 1, writeNumber);
        return out + ']';
      }
      if (!isPlainObject(value)) throw PROBLEM;
      const keys = sortedKeys(value);
      let out = '{';
      let first = true;
      for (const k of keys) {
        const v = (value as Record<string, unknown>)[k];
        if (v === undefined) continue;
        out += (first ? '' : ',') + writeString(k) + ':' + write(v, depth + 1, writeNumber);
        first = false;
      }
      return out + '}';
    }
    default:
      throw PROBLEM;
  }
}

// Characters that need escaping (controls, quote, backslash) or care (surrogates).
const NEEDS_CARE = /[\u0000-\u001f"\\\ud800-\udfff]/;
const SURROGATE = /[\ud800-\udfff]/;

function writeString(s: string): string {
  if (!NEEDS_CARE.test(s)) return '"' + s + '"';
  if (!s.isWellFormed()) throw PROBLEM;
  // JSON.stringify writes exactly the spec's escapes: \b \t \n \f \r \" \\ and \u00XX in lower case.
  return JSON.stringify(s);
}

/** Keys sorted by code point. UTF-16 order agrees with it unless a key holds a surrogate. */
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj).sort();
  for (const k of keys) if (SURROGATE.test(k)) return keys.sort(compareCodePoints);
  return keys;
}

export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca - cb;
    if (ca > 0xffff) i++;
  }
  return a.length - b.length;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function locateProblem(root: unknown, strict: boolean): CanonicalJsonError {
  const path: Array<string | number> = [];
  const fail = (problem: CanonicalJsonProblem, detail: string) => new CanonicalJsonError(problem, formatJsonPath(path), detail);
  const visit = (value: unknown, depth: number): CanonicalJsonError | undefined => {
    switch (typeof value) {
      case 'string':
        return value.isWellFormed() ? undefined : fail('lone_surrogate', `string ${describeValue(value)} contains a lone surrogate`);
      case 'number':
        if (!Number.isFinite(value)) return fail('non_finite', `${value} is not a JSON number`);
        if (!strict) return undefined;
        if (Object.is(value, -0)) return fail('negative_zero', '-0 is not allowed');
        if (!Number.isInteger(value)) return fail('float', `${value} is not an integer`);
        if (!Number.isSafeInteger(value)) return fail('integer_out_of_range', `${value} is outside ±(2^53−1)`);
        return undefined;
      case 'boolean':
        return undefined;
      case 'object': {
        if (value === null) return undefined;
        if (depth >= MAX_CANONICAL_JSON_DEPTH) return fail('too_deep', `nesting deeper than ${MAX_CANONICAL_JSON_DEPTH}`);
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            path.push(i);
            const found = visit(value[i], depth + 1);
            if (found) return found;
            path.pop();
          }
          return undefined;
        }
        if (!isPlainObject(value)) return fail('not_json', `${describeValue(value)} is not a JSON value`);
        for (const k of Object.keys(value)) {
          path.push(k);
          if (!k.isWellFormed()) return fail('lone_surrogate', `key ${describeValue(k)} contains a lone surrogate`);
          const v = (value as Record<string, unknown>)[k];
          const found = v === undefined ? undefined : visit(v, depth + 1);
          if (found) return found;
          path.pop();
        }
        return undefined;
      }
      default:
        return fail('not_json', `${describeValue(value)} is not a JSON value`);
    }
  };
  return visit(root, 0) ?? fail('not_json', 'value cannot be encoded');
}
