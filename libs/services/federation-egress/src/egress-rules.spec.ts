import type { RoomLogEntry } from '@fedgate/bus';
import { FederationClientError, FederationHttpError } from '@fedgate/federation-client';
import { retryDelayMs } from './backoff';
import { destinationsForEvent } from './destinations';
import { classifySendFailure } from './send-failure';

const entry = (over: Partial<RoomLogEntry>): RoomLogEntry => ({
  eventId: '$e',
  roomId: '!r:own.test',
  outcome: 'accepted',
  local: true,
  event: { type: 'm.room.message' },
  stateDelta: {},
  joinedServers: ['own.test', 'b.test', 'a.test'],
  ...over,
});

describe('destinationsForEvent', () => {
  it('sends accepted local events to the joined servers except ourselves', () => {
    expect(destinationsForEvent(entry({}), 'own.test')).toEqual(['a.test', 'b.test']);
    expect(destinationsForEvent(entry({ local: false }), 'own.test')).toEqual([]);
    expect(destinationsForEvent(entry({ outcome: 'soft-failed' }), 'own.test')).toEqual([]);
    expect(destinationsForEvent(entry({ outcome: 'rejected' }), 'own.test')).toEqual([]);
  });

  it.each(['leave', 'ban'])('adds the target server of a %s', (membership) => {
    const event = { type: 'm.room.member', sender: '@admin:own.test', state_key: '@carol:c.test', content: { membership } };
    expect(destinationsForEvent(entry({ event, joinedServers: ['own.test'] }), 'own.test')).toEqual(['c.test']);
  });

  it('does not /send an invite to the invitee server when it is not in the room: the invite API carried it (issue 10, defect 10a)', () => {
    const event = { type: 'm.room.member', sender: '@alice:own.test', state_key: '@carol:c.test', content: { membership: 'invite' } };
    expect(destinationsForEvent(entry({ event, joinedServers: ['own.test', 'b.test'] }), 'own.test')).toEqual(['b.test']);
    expect(destinationsForEvent(entry({ event, joinedServers: ['own.test', 'b.test', 'c.test'] }), 'own.test')).toEqual(['b.test', 'c.test']);
  });

  it('does not echo a join received through send_join back to the joining server (issue 10, defect 10b)', () => {
    const event = { type: 'm.room.member', sender: '@dan:d.test', state_key: '@dan:d.test', content: { membership: 'join' } };
    expect(destinationsForEvent(entry({ event, joinedServers: ['own.test', 'b.test', 'd.test'] }), 'own.test')).toEqual(['b.test']);
    const leave = { type: 'm.room.member', sender: '@dan:d.test', state_key: '@dan:d.test', content: { membership: 'leave' } };
    expect(destinationsForEvent(entry({ event: leave, joinedServers: ['own.test', 'b.test'] }), 'own.test')).toEqual(['b.test']);
  });

  it('does not send our join back to the resident that accepted it in send_join: it holds it already (and sends it on itself)', () => {
    const event = { type: 'm.room.member', sender: '@bob:own.test', state_key: '@bob:own.test', content: { membership: 'join' } };
    expect(destinationsForEvent(entry({ event, joinedServers: ['own.test', 'b.test', 'resident.test'], heldBy: ['resident.test'] }), 'own.test')).toEqual(['b.test']);
  });

  it('does not add the target server of a join beyond the joined servers', () => {
    const event = { type: 'm.room.member', state_key: '@carol:c.test', content: { membership: 'join' } };
    expect(destinationsForEvent(entry({ event, joinedServers: ['own.test'] }), 'own.test')).toEqual([]);
  });
});

describe('retryDelayMs', () => {
  const backoff = { initialMs: 1_000, multiplier: 2, maxMs: 10_000, jitter: 0.2 };
  it('grows exponentially up to the cap, jittered within the configured band', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, backoff, () => 0.5))).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    expect(retryDelayMs(1, backoff, () => 0)).toBe(800);
    expect(retryDelayMs(1, backoff, () => 1)).toBe(1_200);
  });
});

describe('classifySendFailure', () => {
  it('retries when the remote is down or busy', () => {
    for (const code of ['UNREACHABLE', 'TIMEOUT', 'TLS_FAILURE', 'DNS_FAILURE'] as const) {
      expect(classifySendFailure(new FederationClientError(code, 'x'))).toMatchObject({ retry: true, reason: code, status: 0 });
    }
    expect(classifySendFailure(new FederationHttpError(503, {}, 'b.test'))).toMatchObject({ retry: true, status: 503, reason: 'http_503' });
    expect(classifySendFailure(new FederationHttpError(429, { errcode: 'M_LIMIT_EXCEEDED' }, 'b.test'))).toMatchObject({ retry: true, reason: 'M_LIMIT_EXCEEDED' });
  });

  it('gives up on a refused address, or a 4xx that the same transaction would get again, keeping the reason', () => {
    expect(classifySendFailure(new FederationClientError('ADDRESS_REFUSED', 'x'))).toMatchObject({ retry: false, reason: 'ADDRESS_REFUSED' });
    expect(classifySendFailure(new FederationHttpError(400, { errcode: 'M_BAD_JSON' }, 'b.test'))).toMatchObject({ retry: false, status: 400, reason: 'M_BAD_JSON' });
    expect(classifySendFailure(new FederationHttpError(404, { errcode: 'M_UNRECOGNIZED' }, 'b.test'))).toMatchObject({ retry: false, status: 404, reason: 'M_UNRECOGNIZED' });
    expect(classifySendFailure(new FederationHttpError(413, { errcode: 'M_TOO_LARGE' }, 'b.test'))).toMatchObject({ retry: false, status: 413 });
  });

  // Issue 18 defect 10: any 4xx used to drop the whole transaction.
  it('retries a 401/403 on auth: the remote may not have fetched our key yet', () => {
    expect(classifySendFailure(new FederationHttpError(401, { errcode: 'M_UNAUTHORIZED' }, 'b.test'))).toMatchObject({ retry: true, status: 401, reason: 'M_UNAUTHORIZED' });
    expect(classifySendFailure(new FederationHttpError(403, { errcode: 'M_FORBIDDEN' }, 'b.test'))).toMatchObject({ retry: true, status: 403, reason: 'M_FORBIDDEN' });
  });

  it('takes retry_after_ms from a 429 (and only a sane one)', () => {
    expect(classifySendFailure(new FederationHttpError(429, { errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: 1500 }, 'b.test'))).toMatchObject({ retry: true, retryAfterMs: 1500 });
    expect(classifySendFailure(new FederationHttpError(429, { errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: 'soon' }, 'b.test')).retryAfterMs).toBeUndefined();
    expect(classifySendFailure(new FederationHttpError(429, { errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: -5 }, 'b.test')).retryAfterMs).toBeUndefined();
  });
});
