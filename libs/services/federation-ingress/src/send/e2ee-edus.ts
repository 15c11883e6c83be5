// Encryption EDUs from a remote server speak only for the origin's own users: a device list or
// cross-signing update about a user of another server, or a to-device message whose sender is not the
// origin's, is left out with its reason (the transaction's audit record lists it), as room EDUs are.
import { isObject, isUserOf, type Edu } from '@fedgate/protocol';
import type { DroppedRoomEdu } from './room-edus';

export const E2EE_EDU_TYPES: readonly string[] = ['m.device_list_update', 'm.signing_key_update', 'm.direct_to_device'];

/** Why the encryption EDU may not pass, or undefined when it may. */
export function e2eeEduRefusal(edu: Edu, origin: string): DroppedRoomEdu | undefined {
  const c = edu.content as Record<string, unknown>;
  if (edu.edu_type === 'm.direct_to_device') {
    if (typeof c.sender !== 'string' || typeof c.type !== 'string' || typeof c.message_id !== 'string' || !isObject(c.messages)) return { reason: 'malformed' };
    return isUserOf(c.sender, origin) ? undefined : { reason: 'not_origin_user' };
  }
  if (typeof c.user_id !== 'string') return { reason: 'malformed' };
  if (edu.edu_type === 'm.device_list_update' && (typeof c.device_id !== 'string' || !Number.isSafeInteger(c.stream_id))) return { reason: 'malformed' };
  return isUserOf(c.user_id, origin) ? undefined : { reason: 'not_origin_user' };
}
