import fc from 'fast-check';
import { codePointCount, identifierLength } from './identifiers';
import { roomVersionRules } from './room-versions';

describe('codePointCount (issue 19: the 255 limit of v1–10 identifiers counted without an array per identifier)', () => {
  // Strings of any UTF-16 code units: pairs, lone high and lone low surrogates, in any order.
  const codeUnits = fc.array(fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd800, max: 0xdfff })), { maxLength: 40 }).map((units) => String.fromCharCode(...units));

  it('counts what spreading the string counts, surrogate pairs once and lone surrogates once each', () => {
    fc.assert(
      fc.property(fc.oneof(codeUnits, fc.string({ unit: 'grapheme' }), fc.string()), (s) => {
        expect(codePointCount(s)).toBe([...s].length);
      }),
      { numRuns: 2_000 },
    );
    for (const s of ['', '\ud83d', '\ude00', '\ude00\ud83d', '\ud83d\ude00', 'a\ud83d\ude00\ud83d', '\ud83d\ud83d\ude00']) expect(codePointCount(s)).toBe([...s].length);
  });

  it('is the length the limit uses before room version 11, UTF-8 bytes from 11 on', () => {
    const id = `@${'\ud83d\ude00'.repeat(3)}:remote.test`;
    expect(identifierLength(id, roomVersionRules('10'))).toBe(3 + 13);
    expect(identifierLength(id, roomVersionRules('11'))).toBe(12 + 13);
  });
});
