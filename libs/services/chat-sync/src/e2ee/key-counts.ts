// MSC3202's key counts for an application-service transaction: for the service's own users who appear in
// it (senders of its events, recipients of its to-device messages), each device's unclaimed one-time keys
// per algorithm and the algorithms whose fallback key is unused, so the bridge knows when to upload more.
import type { Store } from '@fedgate/store';
import type { ApplicationService } from '../registration';
import type { KeyCounts, PendingTransaction } from '../push';

export async function keyCountsFor(store: Store, service: ApplicationService, transaction: PendingTransaction): Promise<KeyCounts> {
  const users = new Set<string>();
  for (const event of transaction.events) if (typeof event.sender === 'string') users.add(event.sender);
  for (const message of transaction.toDevice ?? []) if (typeof message.to_user_id === 'string') users.add(message.to_user_id);
  const counts: KeyCounts = { oneTimeKeys: {}, unusedFallbackKeyTypes: {} };
  for (const userId of users) {
    if (!service.claimsUserExclusively(userId) && !service.isInterestedInUser(userId)) continue;
    for (const device of await store.deviceKeys.listDevices(userId)) {
      (counts.oneTimeKeys[userId] ??= {})[device.deviceId] = { signed_curve25519: 0, ...(await store.deviceKeys.countOneTimeKeys(userId, device.deviceId)) };
      (counts.unusedFallbackKeyTypes[userId] ??= {})[device.deviceId] = await store.deviceKeys.unusedFallbackKeyAlgorithms(userId, device.deviceId);
    }
  }
  return counts;
}
