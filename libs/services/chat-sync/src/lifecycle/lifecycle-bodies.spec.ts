import { MatrixError } from '@fedgate/service-kit';
import { parseErase } from './account-deactivation.controller';
import { DEFAULT_DELETION_REASON, parseRoomDeletionBody } from './room-deletion';

const failure = (fn: () => unknown): [number, string] | null => {
  try {
    fn();
  } catch (err) {
    return [(err as MatrixError).status, (err as MatrixError).errcode];
  }
  return null;
};

describe('deactivation body', () => {
  it.each([
    [undefined, false],
    [{}, false],
    [{ erase: true }, true],
    [{ erase: false, auth: { type: 'm.login.dummy' }, id_server: 'id.test' }, false],
  ])('%j → erase %s', (body, erase) => {
    expect(parseErase(body)).toBe(erase);
  });

  it.each([[{ erase: 'true' }], [[]], ['erase']])('refuses %j', (body) => {
    expect(failure(() => parseErase(body))).toEqual([400, 'M_BAD_JSON']);
  });
});

describe('room deletion body', () => {
  it('defaults as the admin API does: purge, no block, a reason for the leaves', () => {
    expect(parseRoomDeletionBody(undefined)).toEqual({ block: false, purge: true, message: DEFAULT_DELETION_REASON });
    expect(parseRoomDeletionBody({ block: true, purge: false, message: 'bye', force_purge: true })).toEqual({ block: true, purge: false, message: 'bye' });
    expect(parseRoomDeletionBody({ message: '' }).message).toBe(DEFAULT_DELETION_REASON);
  });

  it.each([
    [{ block: 'yes' }, [400, 'M_BAD_JSON']],
    [{ purge: 1 }, [400, 'M_BAD_JSON']],
    [{ force_purge: 'no' }, [400, 'M_BAD_JSON']],
    [{ message: 5 }, [400, 'M_BAD_JSON']],
    [[], [400, 'M_BAD_JSON']],
    [{ new_room_user_id: '@admin:gw.test' }, [400, 'M_INVALID_PARAM']],
  ])('refuses %j', (body, expected) => {
    expect(failure(() => parseRoomDeletionBody(body))).toEqual(expected);
  });
});
