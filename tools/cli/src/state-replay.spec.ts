// Spawns the real `fedgate` bin (built dist, pinned Node) and checks what it prints.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const node = path.join(root, 'node_modules', '.bin', 'node');
const bin = path.join(root, 'tools', 'cli', 'bin', 'fedgate.js');
const fixture = path.join(__dirname, '__fixtures__', 'ban-vs-pl.room-v2.json');

function fedgate(...args: string[]) {
  const r = spawnSync(node, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  execFileSync(node, [path.join(root, 'tools', 'build.mjs')], { cwd: root, stdio: 'ignore' });
}, 120_000);

describe('fedgate state replay', () => {
  it('prints the resolved state of the ban-vs-power-levels scenario, sorted by (type, state_key)', () => {
    const r = fedgate('state', 'replay', fixture);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { type: 'm.room.create', state_key: '', event_id: '$CREATE:example.com' },
      { type: 'm.room.join_rules', state_key: '', event_id: '$IJR:example.com' },
      { type: 'm.room.member', state_key: '@alice:example.com', event_id: '$MA:example.com' },
      { type: 'm.room.member', state_key: '@bob:example.com', event_id: '$MB:example.com' },
      { type: 'm.room.member', state_key: '@charlie:example.com', event_id: '$IMC:example.com' },
      { type: 'm.room.member', state_key: '@zara:example.com', event_id: '$IMZ:example.com' },
      { type: 'm.room.power_levels', state_key: '', event_id: '$PA:example.com' },
    ]);
  });

  it('--rejected lists rejected events with a code and the rule number', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-replay-'));
    const file = path.join(dir, 'room.json');
    const room = '!r:a.example';
    writeFileSync(file, JSON.stringify([
      { event_id: '$c:a.example', room_id: room, sender: '@a:a.example', type: 'm.room.create', state_key: '', content: { creator: '@a:a.example' }, prev_events: [], auth_events: [], origin_server_ts: 1 },
      { event_id: '$j:a.example', room_id: room, sender: '@a:a.example', type: 'm.room.member', state_key: '@a:a.example', content: { membership: 'join' }, prev_events: [['$c:a.example', { sha256: 'x' }]], auth_events: [['$c:a.example', { sha256: 'x' }]], origin_server_ts: 2 },
      { event_id: '$m:b.example', room_id: room, sender: '@m:b.example', type: 'm.room.member', state_key: '@m:b.example', content: { membership: 'join' }, prev_events: ['$j:a.example'], auth_events: ['$c:a.example'], origin_server_ts: 3 },
    ]));
    const r = fedgate('state', 'replay', '--rejected', file);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.room_version).toBe('1');
    expect(out.forward_extremities).toEqual(['$j:a.example']);
    expect(out.state).toEqual([
      { type: 'm.room.create', state_key: '', event_id: '$c:a.example' },
      { type: 'm.room.member', state_key: '@a:a.example', event_id: '$j:a.example' },
    ]);
    expect(out.rejected).toEqual([{ event_id: '$m:b.example', reason: { code: 'join_not_allowed', rule: '5.2.6', message: expect.stringContaining('join rule null') } }]);
  });

  it('fails with a message on stderr for a missing file, a non-array and a room without a create event', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-replay-'));
    const notArray = path.join(dir, 'object.json');
    writeFileSync(notArray, '{}');
    const noCreate = path.join(dir, 'no-create.json');
    writeFileSync(noCreate, JSON.stringify([{ event_id: '$x', sender: '@a:b', type: 'm.room.message', content: {}, prev_events: [], auth_events: [] }]));
    for (const [file, message] of [[path.join(dir, 'missing.json'), 'cannot read'], [notArray, 'expected a JSON array'], [noCreate, 'no m.room.create']]) {
      const r = fedgate('state', 'replay', file);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(message);
    }
  });

  it('documents the output shape in --help and rejects unknown commands', () => {
    const help = fedgate('state', 'replay', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--rejected');
    expect(help.stdout).toContain('"rejected": [{"event_id", "reason": {"code", "rule", "message"}}');
    expect(fedgate('nonsense').code).toBe(2);
  });
});
