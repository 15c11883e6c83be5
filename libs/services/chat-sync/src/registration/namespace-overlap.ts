// Two exclusive claims on the same identifier leave nobody its owner: registrations whose exclusive
// namespaces may overlap are refused at start. Whether two regexes share a match is not decidable in
// general, so the test is conservative: the literal text each must start with (up to the first regex
// operator) — two patterns whose prefixes are not prefixes of each other cannot match the same string.
// A pattern that is all literal text is tested exactly against the other pattern.
import { compileNamespaceRegex } from './namespace-matcher';

const OPERATORS = new Set(['.', '[', '(', ')', '*', '+', '?', '{', '|', '^', '$']);
const OPTIONAL_AFTER = new Set(['*', '?', '{']);

interface Literal {
  prefix: string;
  /** The whole pattern is this literal text. */
  complete: boolean;
}

/** The literal text every match of the (Python-style, anchored) pattern starts with. */
export function literalPrefix(regex: string): Literal {
  if (regex.includes('|')) return { prefix: '', complete: false };
  let prefix = '';
  for (let i = 0; i < regex.length; i++) {
    const char = regex[i];
    if (char === '\\') {
      const next = regex[i + 1];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) return { prefix, complete: false };
      if (OPTIONAL_AFTER.has(regex[i + 2] ?? '')) return { prefix, complete: false };
      prefix += next;
      i++;
      continue;
    }
    if (OPERATORS.has(char)) return { prefix, complete: false };
    if (OPTIONAL_AFTER.has(regex[i + 1] ?? '')) return { prefix, complete: false };
    prefix += char;
  }
  return { prefix, complete: true };
}

/** Whether some identifier may match both patterns (never false when one does). */
export function mayOverlap(a: string, b: string): boolean {
  const left = literalPrefix(a);
  const right = literalPrefix(b);
  if (left.complete) return compileNamespaceRegex(b).test(left.prefix);
  if (right.complete) return compileNamespaceRegex(a).test(right.prefix);
  return left.prefix.startsWith(right.prefix) || right.prefix.startsWith(left.prefix);
}
