import { subjectMatches } from './partition';

describe('subjectMatches (answers remembered since issue 19)', () => {
  it('answers each pair on its own, asked again and in any order', () => {
    const cases: Array<[string, string, boolean]> = [
      ['fedgate.room.log.*', 'fedgate.room.log.3', true],
      ['fedgate.room.log.*', 'fedgate.room.log.3.x', false],
      ['fedgate.room.log.3', 'fedgate.room.log.3', true],
      ['fedgate.room.log.3', 'fedgate.room.log.4', false],
      ['fedgate.>', 'fedgate.room.log.3', true],
      ['fedgate.>', 'fedgate', false],
      ['fedgate.appservice.*', 'fedgate.appservice.chat', true],
      ['fedgate.appservice.*', 'fedgate.appservice', false],
    ];
    for (let round = 0; round < 3; round++) {
      for (const [pattern, subject, expected] of round === 1 ? [...cases].reverse() : cases) expect(subjectMatches(pattern, subject)).toBe(expected);
    }
  });
});
