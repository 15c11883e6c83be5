import { ROOM_VERSIONS, roomVersionRules, UnsupportedRoomVersionError, DEFAULT_ROOM_VERSION } from './room-versions';

describe('room version registry', () => {
  it('knows versions 1 to 12', () => {
    expect([...ROOM_VERSIONS.keys()]).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']);
    expect(DEFAULT_ROOM_VERSION).toBe('12');
  });

  it.each([
    ['1', 'server-generated', 'v1'],
    ['2', 'server-generated', 'v2'],
    ['3', 'base64', 'v2'],
    ['4', 'url-safe-base64', 'v2'],
    ['11', 'url-safe-base64', 'v2'],
    ['12', 'url-safe-base64', 'v2.1'],
  ])('version %s: event IDs %s, state resolution %s', (v, ids, res) => {
    const r = roomVersionRules(v);
    expect(r.eventIdFormat).toBe(ids);
    expect(r.stateResolution).toBe(res);
  });

  it('matches the spec feature matrix', () => {
    const has = (flag: 'knock' | 'restrictedJoin' | 'knockRestrictedJoin' | 'additionalCreators') =>
      [...ROOM_VERSIONS.values()].filter((r) => r[flag]).map((r) => r.id);
    expect(has('knock')).toEqual(['7', '8', '9', '10', '11', '12']);
    expect(has('restrictedJoin')).toEqual(['8', '9', '10', '11', '12']);
    expect(has('knockRestrictedJoin')).toEqual(['10', '11', '12']);
    expect(has('additionalCreators')).toEqual(['12']);
  });

  it('refuses unknown versions with M_UNSUPPORTED_ROOM_VERSION', () => {
    expect(() => roomVersionRules('13')).toThrow(UnsupportedRoomVersionError);
    try {
      roomVersionRules('org.example.custom');
    } catch (e) {
      expect((e as UnsupportedRoomVersionError).errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
    }
  });
});
