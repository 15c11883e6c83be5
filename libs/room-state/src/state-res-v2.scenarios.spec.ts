// Every scenario of ../shared/vectors/synapse-state-v2-scenarios.json, built by the file's harness recipe.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildScenario, type ScenarioFile } from './__fixtures__/synapse-scenarios';
import { replayRoom } from './replay';
import { splitStateMapKey } from './event';

const vectors = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'vectors');
const file: ScenarioFile = JSON.parse(readFileSync(path.join(vectors, 'synapse-state-v2-scenarios.json'), 'utf8'));

describe('state resolution v2: synapse scenarios', () => {
  it('has the seven scenarios', () => expect(file.cases).toHaveLength(7));

  describe.each(file.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    it('resolves to the expected state', () => {
      const built = buildScenario(file, c);
      expect(Object.fromEntries(built.actual)).toEqual(Object.fromEntries(built.expected));
    });

    it('replays through replayRoom (as a v2 room) to the same state, rejecting nothing', () => {
      const built = buildScenario(file, c);
      const events = built.events.map((e) => (e.type === 'm.room.create' ? { ...e, content: { ...e.content, room_version: '2' } } : e));
      const result = replayRoom(events);
      const end = built.stateAfter.get('$END:example.com')!;
      const got = new Map(result.state.map((s) => [`${s.type}\u0000${s.state_key}`, s.event_id]));
      expect(result.rejected).toEqual([]);
      expect(result.forwardExtremities).toEqual(['$END:example.com']);
      for (const [key, id] of built.expected) expect([splitStateMapKey(key), got.get(key)]).toEqual([splitStateMapKey(key), id]);
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(end));
    });
  });
});
