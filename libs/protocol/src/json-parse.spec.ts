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
});
