import fc from 'fast-check';
import { canonicalJson, CanonicalJsonError, compareCodePoints } from './canonical-json';
import { JsonParseError, parseJson } from './json-parse';

// Integers only and well-formed strings (fast-check's default string generator may include surrogate pairs).
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.maxSafeInteger(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 5 }),
})).value;

function shuffledCopy(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffledCopy(v, seed));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    entries.sort((a, b) => ((a[0].length * 31 + seed) % 7) - ((b[0].length * 31 + seed) % 7));
    return Object.fromEntries(entries.reverse().map(([k, v]) => [k, shuffledCopy(v, seed)]));
  }
  return value;
}

describe('canonicalJson properties', () => {
  it('round-trips through JSON.parse and is idempotent', () => {
    fc.assert(
      fc.property(jsonValue, (v) => {
        const c = canonicalJson(v);
        expect(JSON.parse(c)).toEqual(v);
        expect(canonicalJson(JSON.parse(c))).toBe(c);
        expect(canonicalJson(parseJson(c, { strict: true }))).toBe(c);
      }),
    );
  });

  it('does not depend on key order', () => {
    fc.assert(fc.property(jsonValue, fc.nat(), (v, seed) => expect(canonicalJson(shuffledCopy(v, seed))).toBe(canonicalJson(v))));
  });

  it('sorts keys by code point, which is UTF-8 byte order', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 8 }), (keys) => {
        const sorted = [...new Set(keys)].sort(compareCodePoints);
        const bytes = sorted.map((k) => Buffer.from(k, 'utf8'));
        for (let i = 1; i < bytes.length; i++) expect(Buffer.compare(bytes[i - 1], bytes[i])).toBeLessThan(0);
      }),
    );
    // U+FF61 sorts before U+1F408 by code point, after it by UTF-16 code unit.
    expect(canonicalJson({ '\u{1F408}': 1, '\uFF61': 2 })).toBe('{"\uFF61":2,"\u{1F408}":1}');
  });

  it('writes non-ASCII as UTF-8 and keeps surrogate pairs whole', () => {
    expect(canonicalJson({ a: '日本語', b: '\u{1F408}' })).toBe('{"a":"日本語","b":"🐈"}');
    expect(canonicalJson({ 10: 1, 9: 2, a: 3 })).toBe('{"10":1,"9":2,"a":3}');
  });

  it.each([
    [{ a: 1.5 }, 'float', '$.a'],
    [{ a: [1, 2 ** 53] }, 'integer_out_of_range', '$.a[1]'],
    [{ 'b c': { d: -0 } }, 'negative_zero', '$["b c"].d'],
    [{ a: NaN }, 'non_finite', '$.a'],
    [{ a: '\ud800x' }, 'lone_surrogate', '$.a'],
    [{ ['\udc00']: 1 }, 'lone_surrogate', '$["\\udc00"]'],
    [{ a: new Date(0) }, 'not_json', '$.a'],
    [{ a: [undefined] }, 'not_json', '$.a[0]'],
    [{ a: 10n }, 'not_json', '$.a'],
  ])('strict mode refuses %p with %s at %s', (value, problem, path) => {
    try {
      canonicalJson(value);
      throw new Error('expected a CanonicalJsonError');
    } catch (e) {
      expect(e).toBeInstanceOf(CanonicalJsonError);
      expect((e as CanonicalJsonError).code).toBe(problem);
      expect((e as CanonicalJsonError).path).toBe(path);
      expect((e as CanonicalJsonError).message).toContain(path);
    }
  });

  it('lenient mode writes floats and big integers as JavaScript does, -0 as 0', () => {
    expect(canonicalJson({ a: 1.5, b: -0, c: 2 ** 60 }, { strict: false })).toBe('{"a":1.5,"b":0,"c":1152921504606847000}');
    expect(() => canonicalJson({ a: Infinity }, { strict: false })).toThrow(CanonicalJsonError);
  });

  it('skips undefined object properties like JSON.stringify', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
  });

  it('refuses nesting deeper than the limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 600; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrow(expect.objectContaining({ code: 'too_deep' }));
  });
});

describe('parseJson', () => {
  it.each([
    ['{"a":', 'malformed_json'],
    ['{"a":"\\ud800"}', 'lone_surrogate'],
    ['{"\\udfff":1}', 'lone_surrogate'],
    ['['.repeat(200) + ']'.repeat(200), 'too_deep'],
  ])('refuses %j with %s', (text, problem) => {
    expect(() => parseJson(text)).toThrow(expect.objectContaining({ code: problem }));
    expect(() => parseJson(text)).toThrow(JsonParseError);
  });

  it('refuses invalid UTF-8 bytes', () => {
    expect(() => parseJson(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).toThrow(expect.objectContaining({ code: 'invalid_utf8', errcode: 'M_NOT_JSON' }));
    expect(parseJson(Buffer.from('{"a":"日"}', 'utf8'))).toEqual({ a: '日' });
  });

  it('names the JSON path of a strict-mode violation', () => {
    expect(() => parseJson('{"x":[1,{"y":9007199254740992}]}', { strict: true })).toThrow('$.x[1].y');
    expect(() => parseJson('{"x":"1.5e3","y":2.0}', { strict: true })).toThrow(expect.objectContaining({ code: 'float', location: 'offset 17' }));
  });

  it('does not mistake numbers inside strings for number literals', () => {
    expect(parseJson('{"a":"1e5 \\" 2.5","b":3}', { strict: true })).toEqual({ a: '1e5 " 2.5', b: 3 });
  });

  it('accepts any well-formed string fast-check makes', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => expect(parseJson(JSON.stringify({ s }))).toEqual({ s })));
  });

  it('keeps a "__proto__" key as a plain property', () => {
    const parsed = parseJson('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(canonicalJson(parsed)).toBe('{"__proto__":{"polluted":true}}');
  });
});
