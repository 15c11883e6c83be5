// Whatever a malicious peer sends (random mixes of the attacks: prev and auth events from another room, rejected
// events to build on, gaps answered with lying /state_ids), a fedgate's room keeps only its own events in its state,
// and its users can still send.
import fc from 'fast-check';
import { stateMapKey } from '@fedgate/room-state';
import type { SignedEvent } from '@fedgate/testing';
import { aliceCanSend, arena, ALICE, currentState, roomsInState } from './setup';

type Source = 'a-head' | 'b-head' | 'a-state' | 'b-state' | 'earlier-attack';
const attack = fc.record({
  type: fc.constantFrom('m.room.message', 'm.room.topic', 'm.room.power_levels', 'm.room.join_rules'),
  prev: fc.array(fc.constantFrom<Source>('a-head', 'b-head', 'earlier-attack'), { minLength: 1, maxLength: 2 }),
  authFrom: fc.constantFrom<'a' | 'b' | 'mixed'>('a', 'b', 'mixed'),
  /** Sent through a gap: the event before it is withheld and /state_ids is answered with this mix. */
  gapStateFrom: fc.option(fc.constantFrom<Source>('a-state', 'b-state'), { nil: undefined }),
});

describe('adversarial property: random attacks never put another room event into a room state', () => {
  it('holds for any sequence of attacks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(attack, { minLength: 1, maxLength: 4 }), async (attacks) => {
        const t = await arena();
        try {
          const roomA = await t.fedgate.createRoom(ALICE, '10');
          const roomB = await t.fedgate.createRoom(ALICE, '10');
          const mallory = t.evil.user('mallory');
          await t.evil.joinRoom(t.fedgate, roomA);
          await t.evil.joinRoom(t.fedgate, roomB);
          await t.fedgate.send(roomB, ALICE, 'm.room.power_levels', { users: { [ALICE]: 100, [mallory]: 100 } }, { stateKey: '' });
          const sent: SignedEvent[] = [];
          for (const a of attacks) {
            const stateA = await currentState(t.fedgate, roomA);
            const stateB = await currentState(t.fedgate, roomB);
            const head = async (roomId: string) => (await t.fedgate.store.rooms.getForwardExtremities(roomId))[0];
            const prevs = await Promise.all(a.prev.map(async (p) => (p === 'a-head' ? head(roomA) : p === 'b-head' ? head(roomB) : (sent.at(-1)?.eventId ?? (await head(roomA))))));
            const fromA = [stateA.get(stateMapKey('m.room.create', ''))!, stateA.get(stateMapKey('m.room.power_levels', ''))!, stateA.get(stateMapKey('m.room.member', mallory))!];
            const fromB = [stateB.get(stateMapKey('m.room.create', ''))!, stateB.get(stateMapKey('m.room.power_levels', ''))!, stateB.get(stateMapKey('m.room.member', mallory))!];
            const auth = a.authFrom === 'a' ? fromA : a.authFrom === 'b' ? fromB : [fromA[0], fromB[1], fromA[2]];
            const content = a.type === 'm.room.power_levels' ? { users: { [mallory]: 100 } } : a.type === 'm.room.join_rules' ? { join_rule: 'invite' } : { topic: 'owned', body: 'owned' };
            const fields = { type: a.type, sender: mallory, content, auth_events: auth, ...(a.type === 'm.room.message' ? {} : { state_key: '' }) };
            let event: SignedEvent;
            if (a.gapStateFrom) {
              const withheld = await t.evil.eventIn(t.fedgate, roomA, { ...fields, prev_events: prevs });
              event = await t.evil.eventIn(t.fedgate, roomA, { type: 'm.room.message', sender: mallory, content: { body: 'after the gap' }, auth_events: fromA, prev_events: [withheld.eventId], depth: (withheld.pdu.depth as number) + 1 });
              const lyingState = [...(a.gapStateFrom === 'a-state' ? stateA : stateB).values(), fromB[1]];
              t.evil.lie('state_ids', () => ({ status: 200, body: { pdu_ids: lyingState, auth_chain_ids: [] } }));
            } else {
              event = await t.evil.eventIn(t.fedgate, roomA, { ...fields, prev_events: prevs });
            }
            await t.evil.deliver(t.fedgate, [event]);
            t.evil.tellTheTruth();
            sent.push(event);
          }
          expect(await roomsInState(t.fedgate, roomA)).toEqual(new Set([roomA]));
          expect((await currentState(t.fedgate, roomA)).get(stateMapKey('m.room.member', ALICE))).toBeDefined();
          expect(await aliceCanSend(t.fedgate, roomA)).toBe(true);
        } finally {
          await t.network.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});
