// A remote server's key answers are kept only for its own users, the devices asked, and when self-signed.
import { generateSigningKey, signJson, type SigningKey } from '@fedgate/protocol';
import type { KeyQueryAnswer } from '@fedgate/store';
import { keepClaimedKeys, keepRemoteKeys, remoteTimeout } from './remote-keys';

const BOB = '@bob:remote.test';
const deviceKey = generateSigningKey('PHONE');
const keysOf = (userId: string, deviceId: string, key: SigningKey = deviceKey) =>
  signJson({ user_id: userId, device_id: deviceId, algorithms: [], keys: { [`ed25519:${deviceId}`]: key.publicKeyBase64 } }, userId, { keyId: `ed25519:${deviceId}`, sign: (m: Uint8Array) => key.sign(m) } as never);
const empty = (): KeyQueryAnswer => ({ device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {} });

describe('remote key answers (a lying server)', () => {
  it('keeps self-signed device keys of the users asked, and nothing planted for anyone else', () => {
    const into = empty();
    const refused = keepRemoteKeys({ [BOB]: [] }, { device_keys: { [BOB]: { PHONE: keysOf(BOB, 'PHONE') }, '@carol:elsewhere.test': { X: keysOf('@carol:elsewhere.test', 'X') } }, master_keys: { '@carol:elsewhere.test': {} } }, into);
    expect(refused).toEqual([]);
    expect(into.device_keys).toEqual({ [BOB]: { PHONE: keysOf(BOB, 'PHONE') } });
    expect(into.master_keys).toEqual({});
  });

  it('refuses device keys not signed by the device, filed under another device or user, or for devices not asked', () => {
    const into = empty();
    const forged = keysOf(BOB, 'PHONE', generateSigningKey('PHONE'));
    const tampered = { ...keysOf(BOB, 'PHONE'), keys: { 'ed25519:PHONE': generateSigningKey('x').publicKeyBase64 } };
    const refused = keepRemoteKeys({ [BOB]: ['PHONE', 'TABLET', 'LAPTOP'] }, { device_keys: { [BOB]: { PHONE: tampered, TABLET: keysOf(BOB, 'PHONE'), LAPTOP: forged, WATCH: keysOf(BOB, 'WATCH') } } }, into);
    expect(into.device_keys).toEqual({ [BOB]: {} });
    expect(refused).toHaveLength(3);
    expect(refused.join('\n')).toMatch(/PHONE.*not signed/);
  });

  it('keeps one claimed key per device asked, of the algorithm asked', () => {
    const wanted = { [BOB]: { PHONE: 'signed_curve25519', TABLET: 'signed_curve25519' } };
    const body = {
      one_time_keys: {
        [BOB]: { PHONE: { 'signed_curve25519:A': { key: 'a' }, 'signed_curve25519:B': { key: 'b' } }, TABLET: { 'curve25519:C': 'c' }, OTHER: { 'signed_curve25519:D': {} } },
        '@carol:elsewhere.test': { X: { 'signed_curve25519:E': {} } },
      },
    };
    expect(keepClaimedKeys(wanted, body)).toEqual({ [BOB]: { PHONE: { 'signed_curve25519:A': { key: 'a' } } } });
    expect(keepClaimedKeys(wanted, 'garbage')).toEqual({});
  });

  it('waits at most 10 s for a remote server, less when the client asks', () => {
    expect(remoteTimeout({})).toBe(10_000);
    expect(remoteTimeout({ timeout: 2_000 })).toBe(2_000);
    expect(remoteTimeout({ timeout: 1e9 })).toBe(10_000);
    expect(remoteTimeout({ timeout: -5 })).toBe(10_000);
  });
});
