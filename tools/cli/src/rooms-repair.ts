// `fedgate rooms repair [--room ID]`: asks the running state-resolver to finish local commits cut short.
import { BusRequestError, type Bus, type BusTopology, type RepairReply } from '@fedgate/bus';
import type { DeadLetterIo } from './dead-letters';

export const ROOMS_REPAIR_HELP = `
A local event is committed in several writes (event, state, forward extremities, room log); a crash or a
store or bus outage between them leaves the commit under way. The state-resolver finishes such commits on
start, before the room's next work, and every 15 s for those it saw fail; this asks it to do so now.

  fedgate rooms repair [--room ROOM_ID] [--json]
      Sends cmd.repair to every room partition (or to the room's), answered by the state-resolver replica
      that owns it. Prints one line per room with a commit under way: the events finished (published on
      the room log once) and those abandoned (their client transaction belongs to another event).

The bus is the one in the config (--config FILE or FEDGATE_* variables). In embedded mode, commands are
served inside the gateway process only: restart the gateway instead (it repairs every room on start).

Exit status: 0 when every partition answered; 1 when one did not or a repair failed; 2 on a usage error.
`;

type RepairRooms = Extract<RepairReply, { ok: true }>['rooms'];

export async function repairRooms(
  bus: Pick<Bus, 'request'>,
  topology: BusTopology,
  opts: { room?: string; json?: boolean },
  io: DeadLetterIo,
): Promise<number> {
  if (opts.room !== undefined && !/^!\S+$/.test(opts.room)) {
    io.err(`fedgate rooms repair: not a room ID: ${opts.room}\n`);
    return 2;
  }
  const partitions = opts.room !== undefined ? [topology.roomLog.partitionOf(opts.room)] : [...Array(topology.roomPartitions).keys()];
  const rooms: RepairRooms = [];
  let failed = 0;
  for (const partition of partitions) {
    try {
      const reply = await bus.request(topology.repair.partition(partition), { partition, ...(opts.room !== undefined ? { roomId: opts.room } : {}) });
      if (reply.ok) rooms.push(...reply.rooms);
      else {
        io.err(`partition ${partition}: ${reply.errcode}: ${reply.error}\n`);
        failed++;
      }
    } catch (err) {
      const why = err instanceof BusRequestError && err.failure === 'no-responder' ? 'no state-resolver serves it (is the gateway running? embedded mode: restart it)' : (err as Error).message;
      io.err(`partition ${partition}: ${why}\n`);
      failed++;
    }
  }
  if (opts.json) io.out(JSON.stringify(rooms, null, 2) + '\n');
  else {
    for (const r of rooms) io.out(`${r.roomId}\tfinished ${r.finished.length}: ${r.finished.join(' ')}\tabandoned ${r.abandoned.length}: ${r.abandoned.join(' ')}\n`);
    if (rooms.length === 0 && failed === 0) io.err('nothing to repair\n');
  }
  return failed > 0 ? 1 : 0;
}
