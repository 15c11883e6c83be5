// Issue 14, room upgrades: POST /rooms/{roomId}/upgrade against a real in-process state-resolver: the new
// room (predecessor, copied state, v12 creator rules), the old room (tombstone, restricted power levels),
// aliases and directory moved, local members invited; an upgrade cut short is finished by calling again.
import type { CreateEventCommand } from '@fedgate/bus';
import { TestNetwork, type TestServer } from '@fedgate/state-resolver';
import { MatrixError } from '@fedgate/service-kit';
import { stateTupleKey } from '@fedgate/store';
import pino from 'pino';
import type { Requester } from '../client-server/requester';
import type { RoomCommands } from './room-commands';
import { RoomUpgrades } from './room-upgrade';
import { RoomView } from './room-view';

const ALICE = '@alice:fg.test';
const BOB = '@bob:fg.test';
const REMOTE = '@carol:remote.test';
const requester = (userId: string): Requester => ({ service: { id: 'test-chat' } as never, userId });

describe('room upgrades', () => {
  let network: TestNetwork;
  let fg: TestServer;
  let upgrades: RoomUpgrades;
  let view: RoomView;
  /** Makes the command for the step whose txnId ends so fail once, as a timeout or crash there would. */
  let failAt: string | undefined;

  beforeEach(async () => {
    network = new TestNetwork();
    fg = await network.add('fg.test');
    view = new RoomView(fg.store);
    failAt = undefined;
    const commands = {
      createEvent: async (command: CreateEventCommand) => {
        if (failAt && command.txnId?.endsWith(failAt)) {
          failAt = undefined;
          throw new MatrixError(504, 'M_UNKNOWN', 'The room service did not answer: timeout');
        }
        const reply = await fg.resolver.localEvents.onCommand(command);
        if (!reply.ok) throw new MatrixError(reply.status ?? 403, reply.errcode, reply.error);
        return { eventId: reply.eventId, roomId: reply.roomId ?? command.roomId };
      },
    } as unknown as RoomCommands;
    upgrades = new RoomUpgrades(fg.store, { serverName: 'fg.test' } as never, commands, view, pino({ level: 'silent' }));
  });
  afterEach(() => network.close());

  async function oldRoom(version: string, joinRule = 'invite') {
    const roomId = await fg.createRoom(ALICE, version, [
      { type: 'm.room.name', stateKey: '', content: { name: 'Old room' } },
      { type: 'm.room.topic', stateKey: '', content: { topic: 'About things' } },
      { type: 'm.space.child', stateKey: '!child:fg.test', content: { via: ['fg.test'] } },
      { type: 'm.room.canonical_alias', stateKey: '', content: { alias: '#old:fg.test' } },
      { type: 'org.example.custom', stateKey: '', content: { not: 'copied' } },
    ]);
    const send = async (sender: string, type: string, stateKey: string, content: Record<string, unknown>) => {
      const reply = await fg.send(roomId, sender, type, content, { stateKey });
      if (!reply.ok) throw new Error(`${type}: ${reply.error}`);
    };
    await send(ALICE, 'm.room.join_rules', '', { join_rule: joinRule });
    await send(ALICE, 'm.room.member', BOB, { membership: 'invite' });
    await send(BOB, 'm.room.member', BOB, { membership: 'join' });
    await send(ALICE, 'm.room.member', REMOTE, { membership: 'ban' });
    await fg.store.aliases.create({ alias: '#old:fg.test', roomId, servers: ['fg.test'], creator: ALICE, createdTs: 1 });
    await fg.store.roomDirectory.set({ roomId, visibility: 'public', appServiceId: 'test-chat', updatedTs: 1 });
    return roomId;
  }

  const content = async (roomId: string, type: string, stateKey = '') => (await view.stateEvent(roomId, type, stateKey))?.pdu.content as Record<string, any> | undefined;

  it('replaces a v10 room with a v11 room: predecessor, copied state, bans, tombstone, restricted old power levels, aliases, directory, invites', async () => {
    const oldId = await oldRoom('10');
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '11' });
    expect(newId).not.toBe(oldId);

    const create = (await view.stateEvent(newId, 'm.room.create', ''))!;
    expect(create.pdu.content).toEqual({ room_version: '11', predecessor: { room_id: oldId, event_id: expect.stringMatching(/^\$/) } });
    expect(create.pdu.sender).toBe(ALICE);
    expect(await content(newId, 'm.room.name')).toEqual({ name: 'Old room' });
    expect(await content(newId, 'm.room.topic')).toEqual({ topic: 'About things' });
    expect(await content(newId, 'm.room.join_rules')).toEqual({ join_rule: 'invite' });
    expect(await content(newId, 'm.space.child', '!child:fg.test')).toEqual({ via: ['fg.test'] });
    expect(await content(newId, 'm.room.canonical_alias')).toEqual({ alias: '#old:fg.test' });
    expect(await content(newId, 'org.example.custom')).toBeUndefined();
    expect(await content(newId, 'm.room.member', REMOTE)).toEqual({ membership: 'ban' });
    expect((await content(newId, 'm.room.power_levels'))!.users).toEqual({ [ALICE]: 100 });
    expect(await view.membership(newId, ALICE)).toBe('join');
    // Bob was in the invite-only old room: invited to the new one.
    expect(await view.membership(newId, BOB)).toBe('invite');
    expect(await fg.store.memberships.roomsOf(BOB, 'invite')).toContain(newId);

    expect(await content(oldId, 'm.room.tombstone')).toEqual({ body: 'This room has been replaced', replacement_room: newId });
    expect(await content(oldId, 'm.room.power_levels')).toMatchObject({ events_default: 50, invite: 50 });
    expect(await content(oldId, 'm.room.canonical_alias')).toEqual({});
    expect((await fg.store.aliases.get('#old:fg.test'))?.roomId).toBe(newId);
    expect((await fg.store.roomDirectory.get(newId))?.visibility).toBe('public');
    expect((await fg.store.roomDirectory.get(oldId))?.visibility).toBe('private');
    // Ordinary members can no longer speak in the old room.
    expect(await fg.send(oldId, BOB, 'm.room.message', { body: 'still here?' })).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
  });

  it('upgrades to room version 12 with its creator rules: creators in the create event, none in the power levels', async () => {
    const oldId = await oldRoom('10', 'public');
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '12', additional_creators: [BOB] });
    const create = (await view.stateEvent(newId, 'm.room.create', ''))!;
    expect(create.pdu.content).toEqual({ room_version: '12', predecessor: { room_id: oldId, event_id: expect.any(String) }, additional_creators: [BOB] });
    expect(create.pdu.room_id).toBeUndefined();
    const pl = (await content(newId, 'm.room.power_levels'))!;
    expect(pl.users).toEqual({});
    // Public old room: nobody is invited; Bob joins by himself and, as a creator, may do what creators may.
    expect(await view.membership(newId, BOB)).toBeUndefined();
    expect(await fg.send(newId, BOB, 'm.room.member', { membership: 'join' }, { stateKey: BOB })).toMatchObject({ ok: true });
    expect(await fg.send(newId, BOB, 'm.room.power_levels', { ...pl, events_default: 10 }, { stateKey: '' })).toMatchObject({ ok: true });
  });

  it('upgrades a v12 room again: the old creators lose nothing they need, the new creator is not listed', async () => {
    const oldId = await fg.createRoom(ALICE, '12');
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '12' });
    expect((await content(newId, 'm.room.power_levels'))!.users).toEqual({});
    expect((await content(oldId, 'm.room.tombstone'))!.replacement_room).toBe(newId);
    // And back to a version without creator rules: the creator gets an explicit 100.
    const { replacement_room: v11 } = await upgrades.upgrade(requester(ALICE), newId, { new_version: '11' });
    expect((await content(v11, 'm.room.power_levels'))!.users).toEqual({ [ALICE]: 100 });
  });

  it('refuses a user who may not send the tombstone, an unknown version, and creates no room for them', async () => {
    const oldId = await oldRoom('10');
    const roomsBefore = (await fg.store.memberships.roomsOf(BOB, 'join')).length;
    await expect(upgrades.upgrade(requester(BOB), oldId, { new_version: '11' })).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    expect((await fg.store.memberships.roomsOf(BOB, 'join')).length).toBe(roomsBefore);
    await expect(upgrades.upgrade(requester(ALICE), oldId, { new_version: '99' })).rejects.toMatchObject({ status: 400, errcode: 'M_UNSUPPORTED_ROOM_VERSION' });
    await expect(upgrades.upgrade(requester(ALICE), oldId, {})).rejects.toMatchObject({ status: 400, errcode: 'M_BAD_JSON' });
    await expect(upgrades.upgrade(requester(ALICE), oldId, { new_version: '11', additional_creators: [BOB] })).rejects.toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM' });
    await expect(upgrades.upgrade(requester('@nobody:fg.test'), oldId, { new_version: '11' })).rejects.toMatchObject({ status: 403 });
    await expect(upgrades.upgrade(requester(ALICE), '!unknown:fg.test', { new_version: '11' })).rejects.toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
  });

  it('reads power levels by the room version\'s rules: a v9 level given as a string counts (the tombstone check once ignored it)', async () => {
    const oldId = await oldRoom('9');
    const reply = await fg.send(oldId, ALICE, 'm.room.power_levels', { users: { [ALICE]: 100, [BOB]: '100' }, state_default: 50, events: { 'm.room.tombstone': '100' } }, { stateKey: '' });
    expect(reply.ok).toBe(true);
    const { replacement_room: newId } = await upgrades.upgrade(requester(BOB), oldId, { new_version: '9' });
    expect((await content(oldId, 'm.room.tombstone'))?.replacement_room).toBe(newId);
  });

  it('copies levels a v9 room gives as strings as integers into a v10 room (the copy once kept the strings and v10 refused its power levels)', async () => {
    const oldId = await oldRoom('9');
    const reply = await fg.send(oldId, ALICE, 'm.room.power_levels', { users: { [ALICE]: 100, [BOB]: '75' }, state_default: '50', events: { 'm.room.tombstone': '100', 'm.room.name': ' 60' } }, { stateKey: '' });
    expect(reply.ok).toBe(true);
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '10' });
    expect(await content(newId, 'm.room.power_levels')).toMatchObject({ users: { [ALICE]: 100, [BOB]: 75 }, state_default: 50, events: { 'm.room.tombstone': 100, 'm.room.name': 60 } });
    expect((await content(oldId, 'm.room.tombstone'))?.replacement_room).toBe(newId);
  });

  it('tightens a v9 old room whose levels are strings by their values (the step once read them as 0 and lowered events_default and invite to 50)', async () => {
    const oldId = await oldRoom('9');
    const levels = { users: { [ALICE]: '100' }, users_default: '60', events_default: '70', invite: ' 80', state_default: '50', events: { 'm.room.tombstone': '100' } };
    expect((await fg.send(oldId, ALICE, 'm.room.power_levels', levels, { stateKey: '' })).ok).toBe(true);
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '9' });
    expect((await content(oldId, 'm.room.tombstone'))?.replacement_room).toBe(newId);
    // users_default 60 makes the threshold 61; the levels already above it are left as they were, not lowered.
    expect(await content(oldId, 'm.room.power_levels')).toMatchObject({ users_default: '60', events_default: '70', invite: ' 80' });
    // A default member (level 60) may no longer speak in the old room.
    expect(await fg.send(oldId, BOB, 'm.room.message', { body: 'still here?' })).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
  });

  it('raises a v9 old room with a string users_default above it (the step once read it as 0 and left members at the threshold able to speak)', async () => {
    const oldId = await oldRoom('9');
    const levels = { users: { [ALICE]: 100 }, users_default: '55', events_default: 0, invite: 0, state_default: 50 };
    expect((await fg.send(oldId, ALICE, 'm.room.power_levels', levels, { stateKey: '' })).ok).toBe(true);
    await upgrades.upgrade(requester(ALICE), oldId, { new_version: '10' });
    expect(await content(oldId, 'm.room.power_levels')).toMatchObject({ events_default: 56, invite: 56 });
    expect(await fg.send(oldId, BOB, 'm.room.message', { body: 'still here?' })).toMatchObject({ ok: false, errcode: 'M_FORBIDDEN' });
  });

  it.each(['/state/m.room.topic/', '/tombstone', '/old/power_levels'])('an upgrade cut short at %s is finished by the same call again, in the same new room', async (step) => {
    const oldId = await oldRoom('10');
    failAt = step;
    await expect(upgrades.upgrade(requester(ALICE), oldId, { new_version: '11' })).rejects.toMatchObject({ status: 504 });
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '11' });
    expect(await content(oldId, 'm.room.tombstone')).toEqual({ body: 'This room has been replaced', replacement_room: newId });
    expect(await content(newId, 'm.room.topic')).toEqual({ topic: 'About things' });
    expect(await content(oldId, 'm.room.power_levels')).toMatchObject({ events_default: 50 });
    expect((await fg.store.aliases.get('#old:fg.test'))?.roomId).toBe(newId);
    // Only one replacement room was made: Alice is joined to the old room and one new one.
    expect((await fg.store.memberships.roomsOf(ALICE, 'join')).filter((id) => id !== oldId)).toEqual([newId]);
    // Calling once more changes nothing.
    expect(await upgrades.upgrade(requester(ALICE), oldId, { new_version: '11' })).toEqual({ replacement_room: newId });
  });

  it('an alias lost between its removal and its re-creation (a crash there) is put on the new room by the retry', async () => {
    const oldId = await oldRoom('10');
    const create = fg.store.aliases.create.bind(fg.store.aliases);
    let crashOnce = true;
    fg.store.aliases.create = async (record) => {
      if (crashOnce) {
        crashOnce = false;
        throw new Error('store went away');
      }
      return create(record);
    };
    await expect(upgrades.upgrade(requester(ALICE), oldId, { new_version: '11' })).rejects.toThrow('store went away');
    expect(await fg.store.aliases.get('#old:fg.test')).toBeUndefined();
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '11' });
    expect((await fg.store.aliases.get('#old:fg.test'))?.roomId).toBe(newId);
  });

  it('refuses another user upgrading a room already replaced', async () => {
    const oldId = await oldRoom('10');
    await fg.send(oldId, ALICE, 'm.room.power_levels', { users: { [ALICE]: 100, [BOB]: 100 }, state_default: 50, events_default: 0, invite: 0 }, { stateKey: '' });
    const { replacement_room: newId } = await upgrades.upgrade(requester(ALICE), oldId, { new_version: '11' });
    await expect(upgrades.upgrade(requester(BOB), oldId, { new_version: '11' })).rejects.toMatchObject({ status: 403, message: expect.stringContaining(newId) });
    expect(await fg.store.state.load((await fg.store.rooms.get(oldId))!.currentStateId!).then((s) => s?.get(stateTupleKey('m.room.tombstone', '')))).toBeDefined();
  });
});
