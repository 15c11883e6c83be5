// `fedgate state replay FILE`: reads a room's events, replays them, prints the resolved state.
import { readFile } from 'node:fs/promises';
import { replayRoom, ReplayError } from '@fedgate/room-state';

export const STATE_REPLAY_HELP = `
Input: a JSON array of the room's events, in any order. Each needs event_id, room_id (not on a v12 create event),
sender, type, state_key (state events), content, prev_events, auth_events, origin_server_ts; depth, hashes and
signatures are optional. References may be event IDs or v1-style [event_id, {"sha256": ...}] pairs. The room
version is the create event's content.room_version (default "1").

Each event is replayed in DAG order: the state before it is the resolution of its prev events' states; it is
authorized against its auth events and against that state. Rejected events change no state and are not forward
extremities.

Output (stdout, JSON):
  default      [{"type", "state_key", "event_id"}, ...]  the resolved state of the forward extremities,
               sorted by (type, state_key)
  --rejected   {"room_version": "...",
                "forward_extremities": ["$event", ...],
                "state": [{"type", "state_key", "event_id"}, ...],
                "rejected": [{"event_id", "reason": {"code", "rule", "message"}}, ...]}
               where reason.code is a stable identifier (e.g. "join_not_allowed") and reason.rule the auth
               rule's number in that room version's spec.

Exit status: 0 on success; 1 when the file cannot be read or is not a valid room (not an array, no create
event, unsupported room version); 2 on a usage error.
`;

export async function stateReplay(file: string, opts: { rejected?: boolean }): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    process.stderr.write(`fedgate state replay: cannot read ${file}: ${(err as Error).message}\n`);
    return 1;
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    process.stderr.write(`fedgate state replay: ${file} is not JSON: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const result = replayRoom(input);
    const out = opts.rejected
      ? { room_version: result.roomVersion, forward_extremities: result.forwardExtremities, state: result.state, rejected: result.rejected }
      : result.state;
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  } catch (err) {
    if (err instanceof ReplayError) {
      process.stderr.write(`fedgate state replay: ${file}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
