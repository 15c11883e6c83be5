import { compilePolicy, evaluatePolicy, PolicyError, RateWindows, type PolicyDocument, type PolicyEvent } from './index';

const ROOM = '!shared:fg.example';
const policy: PolicyDocument = {
  version: 7,
  servers: [
    { id: 'deny-spam', action: 'deny', servers: ['*.spam.example', 'evil.example'], reason: 'known spam source' },
    { id: 'partners', action: 'allow', servers: ['*.partner.example'] },
  ],
  rooms: [
    {
      id: 'shared',
      rooms: ['!shared:*'],
      reason: 'partner room policy',
      servers: { deny: ['blocked.example'] },
      join: { servers: ['fg.example', '*.partner.example'], users: ['@guest:other.example'] },
      eventTypes: { deny: ['m.call.*'] },
      attachments: { mimetypes: ['image/*', 'application/pdf'], maxBytes: 1000 },
      links: { deny: ['*.phish.example', 'phish.example'] },
      keywords: { deny: ['buy now'] },
      rate: { perSender: { events: 2, perSeconds: 60 } },
    },
    { id: 'announcements', rooms: ['!news:*'], eventTypes: { allow: ['m.room.message', 'm.room.member'] } },
  ],
};
const compiled = compilePolicy(policy);

const message = (sender: string, content: Record<string, unknown>, roomId = ROOM): PolicyEvent => ({ room_id: roomId, sender, type: 'm.room.message', content });
const member = (sender: string, target: string, membership: string): PolicyEvent => ({ room_id: ROOM, sender, type: 'm.room.member', state_key: target, content: { membership } });
const image = (mimetype: string | undefined, size: number | undefined) => ({ msgtype: 'm.image', body: 'pic', url: 'mxc://a/b', info: { ...(mimetype ? { mimetype } : {}), ...(size !== undefined ? { size } : {}) } });

// One row per rule and per way round it: [what, event, outcome, deciding rule]
const cases: Array<[string, PolicyEvent, 'sign' | 'refuse', string]> = [
  ['a plain message from a partner', message('@a:hq.partner.example', { msgtype: 'm.text', body: 'hi' }), 'sign', 'shared'],
  ['a denied server, by glob', message('@a:x.spam.example', { body: 'hi' }), 'refuse', 'deny-spam'],
  ['a denied server, with a port', message('@a:evil.example:8448', { body: 'hi' }), 'refuse', 'deny-spam'],
  ['a denied server, in upper case', message('@a:EVIL.example', { body: 'hi' }), 'refuse', 'deny-spam'],
  ['a server denied in the room only', message('@a:blocked.example', { body: 'hi' }), 'refuse', 'shared/servers'],
  ['the same server elsewhere', message('@a:blocked.example', { body: 'hi' }, '!other:fg.example'), 'sign', 'default'],
  ['a join from a partner server', member('@b:hq.partner.example', '@b:hq.partner.example', 'join'), 'sign', 'shared'],
  ['a join from a stranger', member('@c:stranger.example', '@c:stranger.example', 'join'), 'refuse', 'shared/join'],
  ['a join by a listed user', member('@guest:other.example', '@guest:other.example', 'join'), 'sign', 'shared'],
  ['an invite of a stranger', member('@a:fg.example', '@c:stranger.example', 'invite'), 'refuse', 'shared/join'],
  ['a stranger leaving', member('@c:stranger.example', '@c:stranger.example', 'leave'), 'sign', 'shared'],
  ['a denied event type', { room_id: ROOM, sender: '@a:fg.example', type: 'm.call.invite', content: {} }, 'refuse', 'shared/eventTypes'],
  ['an allowed image', message('@a:fg.example', image('image/png', 500)), 'sign', 'shared'],
  ['a forbidden attachment type', message('@a:fg.example', image('application/x-msdownload', 500)), 'refuse', 'shared/attachments'],
  ['a mimetype in odd case', message('@a:fg.example', image('IMAGE/PNG', 10)), 'sign', 'shared'],
  ['an attachment too large', message('@a:fg.example', image('image/png', 5000)), 'refuse', 'shared/attachments'],
  ['an attachment without a mimetype', message('@a:fg.example', image(undefined, 10)), 'refuse', 'shared/attachments'],
  ['an attachment without a size', message('@a:fg.example', image('image/png', undefined)), 'refuse', 'shared/attachments'],
  ['a forbidden attachment smuggled in an edit', message('@a:fg.example', { msgtype: 'm.text', body: '* x', 'm.new_content': image('application/zip', 10) }), 'refuse', 'shared/attachments'],
  ['a sticker of a forbidden type', { room_id: ROOM, sender: '@a:fg.example', type: 'm.sticker', content: { body: 's', info: { mimetype: 'video/mp4', size: 1 } } }, 'refuse', 'shared/attachments'],
  ['a denied link', message('@a:fg.example', { body: 'see https://login.phish.example/x' }), 'refuse', 'shared/links'],
  ['a denied link with user info and port', message('@a:fg.example', { body: 'see http://me@PHISH.example:8080/' }), 'refuse', 'shared/links'],
  ['a denied link in formatted_body', message('@a:fg.example', { body: 'x', formatted_body: '<a href="https://phish.example">x</a>' }), 'refuse', 'shared/links'],
  ['a harmless link', message('@a:fg.example', { body: 'see https://matrix.org' }), 'sign', 'shared'],
  ['a denied keyword', message('@a:fg.example', { body: 'BUY NOW while it lasts' }), 'refuse', 'shared/keywords'],
  ['a denied keyword in full-width letters', message('@a:fg.example', { body: 'ｂｕｙ ｎｏｗ' }), 'refuse', 'shared/keywords'],
  ['an allow-listed type in an announcements room', message('@a:fg.example', { body: 'hi' }, '!news:fg.example'), 'sign', 'announcements'],
  ['another type in an announcements room', { room_id: '!news:fg.example', sender: '@a:fg.example', type: 'm.reaction', content: {} }, 'refuse', 'announcements/eventTypes'],
  ['an event without a sender', { room_id: ROOM, type: 'm.room.message', content: {} }, 'refuse', 'default'],
];

describe('policy engine', () => {
  it.each(cases)('%s', (_what, event, outcome, rule) => {
    const decision = evaluatePolicy(compiled, event, { now: 0 });
    expect({ outcome: decision.outcome, rule: decision.rule }).toEqual({ outcome, rule });
    expect(decision.policyVersion).toBe(compiled.policyVersion);
    expect(decision.reason.length).toBeGreaterThan(0);
  });

  it('evaluates a local sender with the same rules as a remote one', () => {
    const local = evaluatePolicy(compiled, message('@a:fg.example', image('application/zip', 1)), { now: 0 });
    const remote = evaluatePolicy(compiled, message('@a:hq.partner.example', image('application/zip', 1)), { now: 0 });
    expect([local.rule, remote.rule]).toEqual(['shared/attachments', 'shared/attachments']);
  });

  it('counts senders against the rate rule per window, and only with rate windows', () => {
    const rates = new RateWindows();
    const send = (now: number) => evaluatePolicy(compiled, message('@fast:fg.example', { body: 'x' }), { now, rates }).rule;
    expect([send(0), send(1), send(2)]).toEqual(['shared', 'shared', 'shared/rate']);
    expect(send(60_000)).toBe('shared');
    expect(evaluatePolicy(compiled, message('@fast:fg.example', { body: 'x' }), { now: 3 }).rule).toBe('shared');
  });

  it('with default: deny, signs only for servers some rule allows', () => {
    const strict = compilePolicy({ version: 1, default: 'deny', servers: [{ id: 'partners', action: 'allow', servers: ['*.partner.example'] }], rooms: [{ id: 'open', rooms: ['!open:*'], servers: { allow: ['guest.example'] } }] });
    expect(evaluatePolicy(strict, message('@a:stranger.example', { body: 'x' }), { now: 0 }).rule).toBe('default');
    expect(evaluatePolicy(strict, message('@a:stranger.example', { body: 'x' }), { now: 0 }).outcome).toBe('refuse');
    expect(evaluatePolicy(strict, message('@a:x.partner.example', { body: 'x' }), { now: 0 }).outcome).toBe('sign');
    expect(evaluatePolicy(strict, message('@a:guest.example', { body: 'x' }, '!open:fg.example'), { now: 0 }).outcome).toBe('sign');
  });

  it('a glob with many stars does not backtrack on a long hostile server name', () => {
    const p = compilePolicy({ version: 1, servers: [{ id: 'stars', action: 'deny', servers: ['*a*a*a*a*a*a*a*a*a*a*b'] }] });
    const decision = evaluatePolicy(p, message(`@x:${'a'.repeat(250)}`, {}), { now: 0 });
    expect(decision.outcome).toBe('sign');
  });
});

describe('policy validation and versions', () => {
  const problemsOf = (document: unknown): string[] => {
    try {
      compilePolicy(document);
    } catch (error) {
      if (error instanceof PolicyError) return error.problems;
      throw error;
    }
    return [];
  };

  it.each<[string, unknown, string]>([
    ['no version', { servers: [] }, 'version is required'],
    ['a misspelt key', { version: 1, room: [] }, 'unknown key room'],
    ['a bad action', { version: 1, servers: [{ id: 'x', action: 'block', servers: ['a'] }] }, 'servers.0.action must be one of allow, deny'],
    ['a rule ID used twice', { version: 1, servers: [{ id: 'x', action: 'deny', servers: ['a'] }], rooms: [{ id: 'x', rooms: ['*'] }] }, 'rule id "x" is used twice'],
    ['the reserved rule ID', { version: 1, rooms: [{ id: 'default', rooms: ['*'] }] }, 'is used twice (or is reserved)'],
    ['a rule ID that cannot be a metric label', { version: 1, rooms: [{ id: 'Spaces Not Allowed', rooms: ['*'] }] }, 'rooms.0.id must match pattern'],
    ['a negative size', { version: 1, rooms: [{ id: 'r', rooms: ['*'], attachments: { maxBytes: -1 } }] }, 'rooms.0.attachments.maxBytes must be >= 0'],
    ['an empty glob list', { version: 1, servers: [{ id: 'x', action: 'deny', servers: [] }] }, 'servers.0.servers must NOT have fewer than 1 items'],
  ])('refuses %s with a clear problem', (_what, document, problem) => {
    expect(problemsOf(document).join('\n')).toContain(problem);
  });

  it('versions a policy by its version field and its content hash', () => {
    const a = compilePolicy({ version: 3, servers: [{ id: 'x', action: 'deny', servers: ['a.example'] }] });
    const b = compilePolicy({ version: 3, servers: [{ id: 'x', action: 'deny', servers: ['b.example'] }] });
    const aAgain = compilePolicy({ servers: [{ servers: ['a.example'], action: 'deny', id: 'x' }], version: 3 });
    expect(a.policyVersion).toMatch(/^3:[0-9a-f]{16}$/);
    expect(a.policyVersion).not.toBe(b.policyVersion);
    expect(aAgain.policyVersion).toBe(a.policyVersion);
  });

  it('lists every rule ID a decision may name', () => {
    expect(compiled.ruleIds).toEqual(
      expect.arrayContaining(['default', 'deny-spam', 'partners', 'shared', 'shared/servers', 'shared/join', 'shared/eventTypes', 'shared/attachments', 'shared/links', 'shared/keywords', 'shared/rate', 'announcements/eventTypes']),
    );
  });
});
