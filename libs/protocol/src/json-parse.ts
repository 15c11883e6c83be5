// Parsing JSON from the network. JSON.parse does the syntax; on top of it we refuse what would later make
// canonical JSON (and so signatures) ambiguous or impossible: invalid UTF-8, lone surrogates, nesting too
// deep, and — for room versions 6+ — number literals that are not plain integers in ±(2^53−1).
import { describeValue, formatJsonPath, ProtocolError } from './errors';
import type { JsonValue } from './pdu';

export type JsonParseProblem = 'invalid_utf8' | 'malformed_json' | 'lone_surrogate' | 'too_deep' | 'float' | 'integer_out_of_range' | 'negative_zero';

export class JsonParseError extends ProtocolError {
  readonly errcode: 'M_NOT_JSON' | 'M_BAD_JSON';
  constructor(
    readonly problem: JsonParseProblem,
    /** JSON path of the bad value, or `offset N` when only its position in the text is known. */
    readonly location: string,
    detail: string,
  ) {
    super(problem, `bad JSON at ${location}: ${detail}`);
    this.errcode = problem === 'invalid_utf8' || problem === 'malformed_json' ? 'M_NOT_JSON' : 'M_BAD_JSON';
  }
}

export interface ParseJsonOptions {
  /** Room versions 6+ rules for numbers. Default false: events of v1–5 rooms may carry floats and big integers. */
  strict?: boolean;
  /** Default 128. */
  maxDepth?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function parseJson(input: string | Uint8Array, options?: ParseJsonOptions): JsonValue {
  const maxDepth = options?.maxDepth ?? 128;
  // Before JSON.parse: a body of nested `[` costs it seconds and hundreds of MB, and only then would the
  // depth be seen. The scan is linear and allocates nothing.
  checkNesting(input, maxDepth);
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = utf8.decode(input);
    } catch {
      throw new JsonParseError('invalid_utf8', 'offset 0', 'input is not valid UTF-8');
    }
  }
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (e) {
    throw new JsonParseError('malformed_json', 'input', (e as Error).message);
  }
  const strict = options?.strict ?? false;
  checkValue(value, maxDepth, strict);
  if (strict) checkNumberLiterals(text);
  return value;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Refuses nesting deeper than `maxDepth` from the raw text, skipping strings. Works on UTF-8 bytes as well as
 * on UTF-16 text: no byte of a multi-byte UTF-8 sequence is ASCII. Malformed input is left to JSON.parse.
 * A string is skipped by searching for its closing quote (most of a PDU's bytes are in strings: issue 19).
 */
function checkNesting(input: string | Uint8Array, maxDepth: number): void {
  if (typeof input === 'string') checkNestingOf(input, (i) => input.charCodeAt(i), (from) => input.indexOf('"', from), maxDepth);
  else checkNestingOf(input, (i) => input[i]!, (from) => input.indexOf(QUOTE, from), maxDepth);
}

function checkNestingOf(input: { length: number }, at: (i: number) => number, nextQuote: (from: number) => number, maxDepth: number): void {
  const length = input.length;
  let depth = 0;
  for (let i = 0; i < length; i++) {
    const c = at(i);
    if (c === QUOTE) {
      i = closingQuote(at, nextQuote, i);
      if (i < 0) return;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) throw new JsonParseError('too_deep', `offset ${i}`, `nesting deeper than ${maxDepth}`);
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
}

/** The index of the quote closing the string opened at `open` (one not escaped by an odd run of backslashes), or -1. */
function closingQuote(at: (i: number) => number, nextQuote: (from: number) => number, open: number): number {
  for (let q = nextQuote(open + 1); q >= 0; q = nextQuote(q + 1)) {
    let backslashes = 0;
    while (q - 1 - backslashes > open && at(q - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q;
  }
  return -1;
}

function checkValue(root: JsonValue, maxDepth: number, strict: boolean): void {
  const path: Array<string | number> = [];
  const fail = (problem: JsonParseProblem, detail: string) => new JsonParseError(problem, formatJsonPath(path), detail);
  const visit = (value: JsonValue, depth: number): void => {
    if (typeof value === 'string') {
      if (!value.isWellFormed()) throw fail('lone_surrogate', `string ${describeValue(value)} contains a lone surrogate`);
    } else if (typeof value === 'number') {
      if (!strict) return;
      if (Object.is(value, -0)) throw fail('negative_zero', '-0 is not allowed');
      if (!Number.isInteger(value)) throw fail('float', `${value} is not an integer`);
      if (!Number.isSafeInteger(value)) throw fail('integer_out_of_range', `${value} is outside ±(2^53−1)`);
    } else if (value !== null && typeof value === 'object') {
      if (depth >= maxDepth) throw fail('too_deep', `nesting deeper than ${maxDepth}`);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          path.push(i);
          visit(value[i], depth + 1);
          path.pop();
        }
      } else {
        for (const k of Object.keys(value)) {
          path.push(k);
          if (!k.isWellFormed()) throw fail('lone_surrogate', `key ${describeValue(k)} contains a lone surrogate`);
          visit(value[k], depth + 1);
          path.pop();
        }
      }
    }
  };
  visit(root, 0);
}

// Strings (skipped whole, so their contents are never mistaken for numbers) or number literals.
const STRING_OR_NUMBER = /"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** Values like `1e5` or `2.0` parse to integers; the canonical grammar still forbids writing them so. */
function checkNumberLiterals(text: string): void {
  STRING_OR_NUMBER.lastIndex = 0;
  for (let m = STRING_OR_NUMBER.exec(text); m !== null; m = STRING_OR_NUMBER.exec(text)) {
    const lexeme = m[0];
    if (lexeme.charCodeAt(0) === 0x22) continue;
    if (/[.eE]/.test(lexeme)) throw new JsonParseError('float', `offset ${m.index}`, `number ${lexeme} has a fraction or exponent`);
    if (lexeme === '-0') throw new JsonParseError('negative_zero', `offset ${m.index}`, '-0 is not allowed');
  }
}
