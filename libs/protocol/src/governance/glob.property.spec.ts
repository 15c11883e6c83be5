import fc from 'fast-check';
import { GlobList, globMatches } from './glob';

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

describe('GlobList', () => {
  it('finds a match exactly when some glob of the list matches, whatever the glob shapes', () => {
    const alphabet = fc.constantFrom('a', 'b', '.', '*', '?');
    const glob = fc.array(alphabet, { minLength: 1, maxLength: 6 }).map((chars) => chars.join(''));
    const text = fc.array(fc.constantFrom('a', 'b', '.', 'A'), { maxLength: 8 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(fc.array(glob, { maxLength: 8 }), text, fc.boolean(), (globs, t, caseInsensitive) => {
        const found = new GlobList(globs, caseInsensitive).match(t);
        const subject = caseInsensitive ? t.toLowerCase() : t;
        const expected = globs.some((g) => globMatches(caseInsensitive ? g.toLowerCase() : g, subject));
        return (found !== undefined) === expected && (found === undefined || globMatches(found, subject));
      }),
      { numRuns: 5000, seed: 23 },
    );
  });
});
