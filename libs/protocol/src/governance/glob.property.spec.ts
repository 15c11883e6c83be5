import fc from 'fast-check';
import { globMatches } from './glob';

/** The obvious (backtracking) meaning of a Matrix glob, to check the linear-time matcher against. */
function byRegExp(pattern: string, text: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(text);
}

describe('globMatches', () => {
  it('agrees with the regular-expression meaning of * and ? on random patterns and names', () => {
    const alphabet = fc.constantFrom('a', 'b', '.', ':', '*', '?');
    const pattern = fc.array(alphabet, { maxLength: 10 }).map((chars) => chars.join(''));
    const text = fc.array(fc.constantFrom('a', 'b', '.', ':'), { maxLength: 12 }).map((chars) => chars.join(''));
    fc.assert(fc.property(pattern, text, (p, t) => globMatches(p, t) === byRegExp(p, t)), { numRuns: 5000, seed: 17 });
  });
});
