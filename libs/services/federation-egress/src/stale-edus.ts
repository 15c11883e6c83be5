import type { EgressEntry } from '@fedgate/bus';
import type { EgressQueueItem } from '@fedgate/store';

type EduEntry = Extract<EgressEntry, { kind: 'edu' }>;

export interface StaleEdu {
  position: number;
  eduId: string;
  eduType: string;
  why: 'expired' | 'superseded';
}

const asEdu = (item: EgressQueueItem): EduEntry | undefined => {
  const entry = item.item as unknown as EgressEntry;
  return entry.kind === 'edu' ? entry : undefined;
};

const presenceUsers = (edu: EduEntry): string[] => {
  const push = (edu.content as { push?: unknown }).push;
  return Array.isArray(push) ? push.map((p) => String((p as { user_id?: unknown })?.user_id)) : [];
};

/**
 * EDUs in `items` (queue order) whose meaning has passed: typing older than `typingTtlMs` or followed by a
 * newer typing update for the same user and room; presence whose every user has a newer presence update later.
 */
export function findStaleEdus(items: EgressQueueItem[], nowTs: number, typingTtlMs: number): StaleEdu[] {
  const stale: StaleEdu[] = [];
  const laterTyping = new Set<string>();
  const laterPresence = new Set<string>();
  for (let i = items.length - 1; i >= 0; i--) {
    const edu = asEdu(items[i]);
    if (!edu) continue;
    const mark = (why: StaleEdu['why']) => stale.push({ position: items[i].position, eduId: edu.eduId, eduType: edu.eduType, why });
    if (edu.eduType === 'm.typing') {
      const c = edu.content as { room_id?: unknown; user_id?: unknown };
      const key = JSON.stringify([c.room_id, c.user_id]);
      if (laterTyping.has(key)) mark('superseded');
      else if (nowTs - edu.enqueuedAt > typingTtlMs) mark('expired');
      laterTyping.add(key);
    } else if (edu.eduType === 'm.presence') {
      const users = presenceUsers(edu);
      if (users.length > 0 && users.every((u) => laterPresence.has(u))) mark('superseded');
      for (const u of users) laterPresence.add(u);
    }
  }
  return stale.reverse();
}
