// One parser for boolean query parameters (federation and client `suggested_only`, media `allow_remote`).
import { parseBooleanFlag } from './boolean-query';

describe('parseBooleanFlag', () => {
  it('reads "true" and "false", and absent as the default given', () => {
    expect(parseBooleanFlag('true', 'x')).toBe(true);
    expect(parseBooleanFlag('false', 'x', true)).toBe(false);
    expect(parseBooleanFlag(undefined, 'x')).toBe(false);
    expect(parseBooleanFlag(undefined, 'x', true)).toBe(true);
  });

  it.each(['1', 'yes', 'TRUE', '', ['true']])('refuses %j with 400 M_INVALID_PARAM naming the parameter', (value) => {
    expect(() => parseBooleanFlag(value, 'suggested_only')).toThrow(expect.objectContaining({ status: 400, errcode: 'M_INVALID_PARAM', message: expect.stringContaining('suggested_only') }));
  });
});
