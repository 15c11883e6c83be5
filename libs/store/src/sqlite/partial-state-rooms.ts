import { fencedWrite } from './pending-commits';
import type { RoomWriteFence } from '../ports/pending-commits';
import type { PartialStateRoom, PartialStateRoomRepository } from '../ports/partial-state-rooms';
import type { SqliteDatabase } from './database';

interface Row {
  room_id: string;
  join_event_id: string;
  servers: string;
  resident: string;
  started_ts: number;
}

const toRoom = (r: Row): PartialStateRoom => ({ roomId: r.room_id, joinEventId: r.join_event_id, serversInRoom: JSON.parse(r.servers) as string[], resident: r.resident, startedTs: r.started_ts });

export class SqlitePartialStateRoomRepository implements PartialStateRoomRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async begin(room: PartialStateRoom): Promise<void> {
    this.db.run(
      'INSERT INTO store_partial_state_rooms (room_id, join_event_id, servers, resident, started_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id) DO UPDATE SET join_event_id = excluded.join_event_id, servers = excluded.servers, resident = excluded.resident, started_ts = excluded.started_ts',
      room.roomId,
      room.joinEventId,
      JSON.stringify(room.serversInRoom),
      room.resident,
      room.startedTs,
    );
  }

  async get(roomId: string): Promise<PartialStateRoom | undefined> {
    const r = this.db.get<Row>('SELECT room_id, join_event_id, servers, resident, started_ts FROM store_partial_state_rooms WHERE room_id = ?', roomId);
    return r && toRoom(r);
  }

  async list(): Promise<PartialStateRoom[]> {
    return this.db.all<Row>('SELECT room_id, join_event_id, servers, resident, started_ts FROM store_partial_state_rooms ORDER BY started_ts, room_id').map(toRoom);
  }

  async finish(roomId: string, fence?: RoomWriteFence): Promise<void> {
    fencedWrite(this.db, fence, 'end of partial state', () => this.db.run('DELETE FROM store_partial_state_rooms WHERE room_id = ?', roomId));
  }
}
