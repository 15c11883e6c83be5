import { applyDeviceListUpdate, applySigningKeyUpdate } from './device-list-updates';

describe('device list EDUs: whose user the origin may speak for', () => {
  // A user ID with no `:server` has no server: the origin cannot own it. It once passed, since the server part
  // was read as "everything after the first colon", which without a colon is the whole ID.
  it('refuses an update whose user_id is the bare origin name (regression: a colon-less ID read as its own server)', () => {
    expect(applyDeviceListUpdate(null, { user_id: 'remote.test', device_id: 'PHONE', stream_id: 1 }, 'remote.test', 0)).toEqual({ kind: 'refused', reason: 'not_origin_user' });
    expect(applySigningKeyUpdate(null, { user_id: 'remote.test' }, 'remote.test', 0)).toEqual({ kind: 'refused', reason: 'not_origin_user' });
  });

  it('refuses an update whose user_id lacks the "@" sigil (`x:<origin>`): no user of the origin (strict origin check)', () => {
    expect(applyDeviceListUpdate(null, { user_id: 'x:remote.test', device_id: 'PHONE', stream_id: 1 }, 'remote.test', 0)).toEqual({ kind: 'refused', reason: 'not_origin_user' });
    expect(applySigningKeyUpdate(null, { user_id: 'x:remote.test' }, 'remote.test', 0)).toEqual({ kind: 'refused', reason: 'not_origin_user' });
  });

  it("takes an update about the origin's own user (a resync with nothing cached)", () => {
    expect(applyDeviceListUpdate(null, { user_id: '@bob:remote.test', device_id: 'PHONE', stream_id: 1 }, 'remote.test', 0)).toEqual({ kind: 'resync' });
    expect(applySigningKeyUpdate(null, { user_id: '@bob:remote.test' }, 'remote.test', 0)).toEqual({ kind: 'resync' });
  });
});
