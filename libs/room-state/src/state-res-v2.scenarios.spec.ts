// Every scenario of ../shared/vectors/synapse-state-v2-scenarios.json, built by the file's harness recipe.
import { readFileSync, writeFileSync } from 'node:fs';
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

// tools/cli runs the replay command on this scenario; the fixture must stay what the recipe builds.
describe('CLI fixture', () => {
  const fixturePath = path.resolve(__dirname, '..', '..', '..', 'tools', 'cli', 'src', '__fixtures__', 'ban-vs-pl.room-v2.json');
  const ban = file.cases.find((c) => c.name === 'test_ban_vs_pl')!;
  const built = buildScenario(file, ban);
  // Room version 2 uses v1-format references: [event_id, {sha256}] pairs.
  const asV1Refs = (ids: readonly string[]) => ids.map((id) => [id, { sha256: 'not-checked-by-replay' }]);
  const exported = built.events.map((e) => ({
    ...e,
    content: e.type === 'm.room.create' ? { ...e.content, room_version: '2' } : e.content,
    prev_events: asV1Refs(e.prev_events),
    auth_events: asV1Refs(e.auth_events),
  }));

  it('is test_ban_vs_pl exported as a v2 room', () => {
    if (process.env.WRITE_FIXTURES === '1') writeFileSync(fixturePath, JSON.stringify(exported, null, 2) + '\n');
    expect(JSON.parse(readFileSync(fixturePath, 'utf8'))).toEqual(exported);
  });
});
