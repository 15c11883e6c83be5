import fc from 'fast-check';
import { parseJson } from './json-parse';

describe('parseJson depth limit (issue 11 defect 1: deep JSON before authentication)', () => {
  afterEach(() => jest.restoreAllMocks());

  it('refuses nesting deeper than maxDepth from the raw bytes, before JSON.parse builds anything', () => {
    const parse = jest.spyOn(JSON, 'parse');
    const body = Buffer.from('['.repeat(1_000_000));
    expect(() => parseJson(body, { maxDepth: 64 })).toThrow(expect.objectContaining({ code: 'too_deep', errcode: 'M_BAD_JSON', location: 'offset 64' }));
    expect(() => parseJson('{"a":'.repeat(100_000), { maxDepth: 64 })).toThrow(expect.objectContaining({ code: 'too_deep' }));
    expect(parse).not.toHaveBeenCalled();
  });

  it('counts only brackets outside strings, escaped quotes included', () => {
    const deepString = JSON.stringify({ s: '[{'.repeat(500) + '\\"[[' });
    expect(parseJson(deepString, { maxDepth: 2 })).toEqual({ s: '[{'.repeat(500) + '\\"[[' });
    expect(parseJson(Buffer.from('[[[{"日本":"[["}]]]'), { maxDepth: 4 })).toEqual([[[{ 日本: '[[' }]]]);
    expect(() => parseJson('[[[[[]]]]]', { maxDepth: 4 })).toThrow(expect.objectContaining({ code: 'too_deep' }));
  });

  it('issue 19 (strings skipped by searching for their closing quote): refuses exactly what a scan of every character refuses, at the same offset', () => {
    // The scan of every character the search replaced: a backslash in a string skips the next character.
    const deepestAt = (text: string, maxDepth: number): number | undefined => {
      let depth = 0;
      let inString = false;
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (inString) {
          if (c === '\\') i++;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === '[' || c === '{') {
          if (++depth > maxDepth) return i;
        } else if (c === ']' || c === '}') depth--;
      }
      return undefined;
    };
    const text = fc.array(fc.constantFrom('[', '{', ']', '}', '"', '\\', 'a', ',', '日'), { maxLength: 60 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 6 }), fc.boolean(), (json, maxDepth, asBytes) => {
        const offset = deepestAt(json, maxDepth);
        let thrown: unknown;
        try {
          parseJson(asBytes ? Buffer.from(json) : json, { maxDepth });
        } catch (e) {
          thrown = e;
        }
        if (offset === undefined) expect((thrown as { code?: string } | undefined)?.code).not.toBe('too_deep');
        // Byte offsets and character offsets differ once a multi-byte character came before.
        else expect(thrown).toMatchObject({ code: 'too_deep', ...(asBytes ? {} : { location: `offset ${offset}` }) });
      }),
      { numRuns: 3_000 },
    );
  });
});
