import { MatrixError } from '@fedgate/service-kit';
import { planCreateRoom } from './create-room-plan';

const creator = '@rc_alice:gw.test';
const plan = (body: unknown) => planCreateRoom(body, creator, 'gw.test', { displayname: 'Alice' });
const errcodeOf = (body: unknown) => {
  try {
    plan(body);
  } catch (err) {
    return [(err as MatrixError).status, (err as MatrixError).errcode];
  }
  return null;
};

describe('planCreateRoom', () => {
  it('orders the events as the spec says and applies the preset', () => {
    const p = plan({ preset: 'public_chat', room_alias_name: 'general', name: 'General', topic: 'T', invite: ['@bob:remote.test'], initial_state: [{ type: 'm.room.avatar', content: { url: 'mxc://a/b' } }], room_version: '10' });
    expect(p.events.map((e) => e.type)).toEqual([
      'm.room.member',
      'm.room.power_levels',
      'm.room.canonical_alias',
      'm.room.join_rules',
      'm.room.history_visibility',
      'm.room.guest_access',
      'm.room.avatar',
      'm.room.name',
      'm.room.topic',
      'm.room.member',
    ]);
    expect(p.events[0].content).toEqual({ membership: 'join', displayname: 'Alice' });
    expect(p.events[3].content).toEqual({ join_rule: 'public' });
    expect(p.events[5].content).toEqual({ guest_access: 'forbidden' });
    expect(p.alias).toBe('#general:gw.test');
    expect(p.createContent).toEqual({ room_version: '10', creator });
    expect((p.events[1].content.users as Record<string, number>)[creator]).toBe(100);
  });

  it('default room version (issue 15): a body without room_version gets the configured default, with creator when that version has it; v12 stays available', () => {
    const v10 = planCreateRoom({ preset: 'public_chat' }, creator, 'gw.test', {}, '10');
    expect(v10.roomVersion).toBe('10');
    expect(v10.createContent).toEqual({ room_version: '10', creator });
    expect(planCreateRoom({ room_version: '12' }, creator, 'gw.test', {}, '10').createContent).toEqual({ room_version: '12' });
  });

  it('v12: creators are not listed in power levels; trusted_private_chat invitees become additional creators', () => {
    const p = plan({ preset: 'trusted_private_chat', invite: ['@bob:remote.test'], room_version: '12', is_direct: true });
    expect(p.createContent).toEqual({ room_version: '12', additional_creators: ['@bob:remote.test'] });
    expect(p.events[1].content.users).toEqual({});
    expect((p.events[1].content.events as Record<string, number>)['m.room.tombstone']).toBe(150);
    expect(p.events.at(-1)).toEqual({ type: 'm.room.member', stateKey: '@bob:remote.test', content: { membership: 'invite', is_direct: true } });
  });

  it('power_level_content_override replaces the defaults it names', () => {
    const p = plan({ power_level_content_override: { users_default: 10, events_default: 50 } });
    expect(p.events[1].content).toMatchObject({ users_default: 10, events_default: 50, ban: 50 });
  });

  it.each([
    [[], [400, 'M_BAD_JSON']],
    [{ preset: 'nope' }, [400, 'M_BAD_JSON']],
    [{ visibility: 'secret' }, [400, 'M_BAD_JSON']],
    [{ room_version: '99' }, [400, 'M_UNSUPPORTED_ROOM_VERSION']],
    [{ invite: 'bob' }, [400, 'M_BAD_JSON']],
    [{ invite: ['bob'] }, [400, 'M_INVALID_PARAM']],
    [{ room_alias_name: 'a:b' }, [400, 'M_INVALID_PARAM']],
    [{ initial_state: [{ type: 'x' }] }, [400, 'M_BAD_JSON']],
    [{ name: 5 }, [400, 'M_BAD_JSON']],
  ])('refuses %j', (body, expected) => {
    expect(errcodeOf(body)).toEqual(expected);
  });
});
