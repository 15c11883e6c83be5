import { stateMapKey, type RoomEvent } from '../event';
import { policyServerOf, roomPolicyServer } from './room-policy-server';

const KEY = '6yhHGKhCiXTSEN2ksjV7kX_N6rBQZ3Xb-M7LlC6NS-s';

function event(id: string, type: string, stateKey: string | undefined, content: Record<string, unknown>, sender = '@admin:hs.test'): RoomEvent {
  return { event_id: id, room_id: '!r:hs.test', sender, type, state_key: stateKey, content: content as never, prev_events: [], auth_events: [], origin_server_ts: 0 };
}

const policy = (content: Record<string, unknown>, stateKey: string | null = '') => event('$policy', 'm.room.policy', stateKey ?? undefined, content);
const member = (userId: string, membership: string) => event(`$m-${userId}`, 'm.room.member', userId, { membership }, userId);

describe('policy server detection (spec: Determining if a Policy Server is enabled in a room)', () => {
  const cases: Array<{ name: string; policy: RoomEvent | undefined; joined: string[]; enabled: boolean; reason?: string }> = [
    { name: 'valid event, via joined', policy: policy({ via: 'ps.test', public_keys: { ed25519: KEY } }), joined: ['hs.test', 'ps.test'], enabled: true },
    { name: 'extra keys and fields are ignored', policy: policy({ via: 'ps.test', public_keys: { ed25519: KEY, curve: 'x' }, note: 1 }), joined: ['ps.test'], enabled: true },
    { name: 'no policy event', policy: undefined, joined: ['ps.test'], enabled: false, reason: 'no_policy_event' },
    { name: 'policy event with a non-empty state key', policy: policy({ via: 'ps.test', public_keys: { ed25519: KEY } }, 'x'), joined: ['ps.test'], enabled: false, reason: 'no_policy_event' },
    { name: 'non-state m.room.policy', policy: policy({ via: 'ps.test', public_keys: { ed25519: KEY } }, null), joined: ['ps.test'], enabled: false, reason: 'no_policy_event' },
    { name: 'emptied content (a room disabling its policy server)', policy: policy({}), joined: ['ps.test'], enabled: false, reason: 'invalid_policy_event' },
    { name: 'via not a string', policy: policy({ via: ['ps.test'], public_keys: { ed25519: KEY } }), joined: ['ps.test'], enabled: false, reason: 'invalid_policy_event' },
    { name: 'public_keys missing', policy: policy({ via: 'ps.test' }), joined: ['ps.test'], enabled: false, reason: 'invalid_policy_event' },
    { name: 'public_keys not an object', policy: policy({ via: 'ps.test', public_keys: KEY }), joined: ['ps.test'], enabled: false, reason: 'invalid_policy_event' },
    { name: 'ed25519 missing', policy: policy({ via: 'ps.test', public_keys: { curve25519: KEY } }), joined: ['ps.test'], enabled: false, reason: 'invalid_policy_event' },
    { name: 'ed25519 not a string', policy: policy({ via: 'ps.test', public_keys: { ed25519: 5 } }), joined: ['ps.test'], enabled: false, reason: 'invalid_policy_event' },
    { name: 'unstable MSC4284 shape (public_key) is not the stable event', policy: policy({ via: 'ps.test', public_key: KEY }), joined: ['ps.test'], enabled: false, reason: 'invalid_policy_event' },
    { name: 'via with no joined user', policy: policy({ via: 'ps.test', public_keys: { ed25519: KEY } }), joined: ['hs.test'], enabled: false, reason: 'policy_server_not_joined' },
    { name: 'a key the spec accepts as a string even if unusable still enables it', policy: policy({ via: 'ps.test', public_keys: { ed25519: 'not base64!' } }), joined: ['ps.test'], enabled: true },
  ];
  it.each(cases)('$name', ({ policy: p, joined, enabled, reason }) => {
    const verdict = policyServerOf(p, joined);
    expect(verdict.enabled).toBe(enabled);
    if (verdict.enabled) expect(verdict).toMatchObject({ via: 'ps.test', policyEventId: '$policy' });
    else expect(verdict.reason).toBe(reason);
  });

  describe('from a current state', () => {
    const valid = policy({ via: 'ps.test', public_keys: { ed25519: KEY } });
    const build = (members: RoomEvent[], p: RoomEvent | null = valid) => {
      const events = new Map<string, RoomEvent>();
      const state = new Map<string, string>();
      for (const e of [...members, ...(p ? [p] : [])]) {
        events.set(e.event_id, e);
        state.set(stateMapKey(e.type, e.state_key!), e.event_id);
      }
      return roomPolicyServer(state, (id) => events.get(id));
    };
    it('is enabled when a user of via is joined', () => {
      expect(build([member('@a:hs.test', 'join'), member('@bot:ps.test', 'join')])).toMatchObject({ enabled: true, via: 'ps.test', publicKey: KEY });
    });
    it.each(['invite', 'leave', 'ban', 'knock'])('is not enabled when the only user of via is in membership %s', (membership) => {
      expect(build([member('@a:hs.test', 'join'), member('@bot:ps.test', membership)])).toMatchObject({ enabled: false, reason: 'policy_server_not_joined' });
    });
    it('a user whose localpart merely mentions via does not count', () => {
      expect(build([member('@ps.test:hs.test', 'join')])).toMatchObject({ enabled: false, reason: 'policy_server_not_joined' });
    });
    it('is not enabled without the state event', () => {
      expect(build([member('@bot:ps.test', 'join')], null)).toMatchObject({ enabled: false, reason: 'no_policy_event' });
    });
  });
});
