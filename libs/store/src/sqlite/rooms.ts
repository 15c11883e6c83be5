import { fencedWrite } from './pending-commits';
import type { RoomWriteFence } from '../ports/pending-commits';
import type { RoomRecord, RoomRepository } from '../ports/rooms';
import type { SqliteDatabase } from './database';

interface RoomRow {
  room_id: string;
  room_version: string;
  creator: string;
  created_ts: number;
  current_state_id: string | null;
}

export class SqliteRoomRepository implements RoomRepository {
  constructor(private readonly db: SqliteDatabase) {}

  async ensure(room: { roomId: string; roomVersion: string; creator: string; createdTs: number }): Promise<RoomRecord> {
    this.ensureNow(room);
    return (await this.get(room.roomId)) as RoomRecord;
  }

  ensureNow(room: { roomId: string; roomVersion: string; creator: string; createdTs: number }): void {
    this.db.run(
      'INSERT INTO store_rooms (room_id, room_version, creator, created_ts) VALUES (?, ?, ?, ?) ON CONFLICT (room_id) DO NOTHING',
      room.roomId,
      room.roomVersion,
      room.creator,
      room.createdTs,
    );
  }

  async get(roomId: string): Promise<RoomRecord | undefined> {
    const r = this.db.get<RoomRow>('SELECT * FROM store_rooms WHERE room_id = ?', roomId);
    return r && { roomId: r.room_id, roomVersion: r.room_version, creator: r.creator, createdTs: r.created_ts, currentStateId: r.current_state_id };
  }

  async setCurrentState(roomId: string, snapshotId: string, fence?: RoomWriteFence): Promise<void> {
    fencedWrite(this.db, fence, 'current state', () => this.setCurrentStateNow(roomId, snapshotId));
  }

  setCurrentStateNow(roomId: string, snapshotId: string): void {
    this.db.run('UPDATE store_rooms SET current_state_id = ? WHERE room_id = ?', snapshotId, roomId);
  }

  async getForwardExtremities(roomId: string): Promise<string[]> {
    return this.db.all<{ event_id: string }>('SELECT event_id FROM store_forward_extremities WHERE room_id = ? ORDER BY event_id', roomId).map((r) => r.event_id);
  }

  async updateForwardExtremities(roomId: string, change: { add: string[]; remove: string[] }, fence?: RoomWriteFence): Promise<void> {
    fencedWrite(this.db, fence, 'forward extremities', () => this.updateForwardExtremitiesNow(roomId, change));
  }

  updateForwardExtremitiesNow(roomId: string, change: { add: string[]; remove: string[] }): void {
    const keep = new Set(change.add);
    this.db.transaction(() => {
      for (const id of change.add) this.db.run('INSERT INTO store_forward_extremities (room_id, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING', roomId, id);
      for (const id of change.remove) if (!keep.has(id)) this.db.run('DELETE FROM store_forward_extremities WHERE room_id = ? AND event_id = ?', roomId, id);
    });
  }

  async getJoinedServers(roomId: string): Promise<string[]> {
    return this.db.all<{ server: string }>('SELECT server FROM store_joined_servers WHERE room_id = ? ORDER BY server', roomId).map((r) => r.server);
  }

  async setJoinedServers(roomId: string, servers: string[], fence?: RoomWriteFence): Promise<void> {
    fencedWrite(this.db, fence, 'joined servers', () => {
      const current = this.db.all<{ server: string }>('SELECT server FROM store_joined_servers WHERE room_id = ?', roomId).map((r) => r.server);
      const wanted = new Set(servers);
      this.updateJoinedServersNow(roomId, { add: servers, remove: current.filter((s) => !wanted.has(s)) });
    });
  }

  async updateJoinedServers(roomId: string, change: { add: string[]; remove: string[] }): Promise<void> {
    this.updateJoinedServersNow(roomId, change);
  }

  private updateJoinedServersNow(roomId: string, change: { add: string[]; remove: string[] }): void {
    const keep = new Set(change.add);
    this.db.transaction(() => {
      for (const s of change.add) this.db.run('INSERT INTO store_joined_servers (room_id, server) VALUES (?, ?) ON CONFLICT DO NOTHING', roomId, s);
      for (const s of change.remove) if (!keep.has(s)) this.db.run('DELETE FROM store_joined_servers WHERE room_id = ? AND server = ?', roomId, s);
    });
  }

  async roomsOfServer(server: string): Promise<string[]> {
    return this.db.all<{ room_id: string }>('SELECT room_id FROM store_joined_servers WHERE server = ? ORDER BY room_id', server).map((r) => r.room_id);
  }
}
