import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { busOptionsFor, busTopology, EmbeddedBus, type CreateEventReply, type InboundPdu } from '@fedgate/bus';
import { BUS, BUS_TOPOLOGY, FEDERATION_CLIENT, KEY_RING, SERVER_IDENTITY, STORE } from '@fedgate/platform';
import { generateSigningKey } from '@fedgate/protocol';
import { openSqliteStore } from '@fedgate/store';
import { RoomReader, StateResolverModule } from './index';
import { TestNetwork } from './testing/test-server';

describe('StateResolverModule', () => {
  it('serves create-event over the bus and consumes inbound PDUs from their room partition', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'state-resolver-module-'));
    const network = new TestNetwork();
    const remote = await network.add('b.test');
    const key = generateSigningKey();
    const store = openSqliteStore(path.join(dir, 'store.sqlite'));
    const topology = busTopology({ roomPartitions: 4 });
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), retryDelayMs: () => 5, pollIntervalMs: 10 });
    await bus.start();
    network.servers.set('a.test', { key } as never);
    const federation = {
      getJson: (to: string, p: string, o = {}) => network.route('a.test', to, 'GET', p, undefined, o),
      putJson: (to: string, p: string, body: unknown, o = {}) => network.route('a.test', to, 'PUT', p, body, o),
      postJson: (to: string, p: string, body: unknown, o = {}) => network.route('a.test', to, 'POST', p, body, o),
    };

    @Module({
      providers: [
        { provide: STORE, useValue: store },
        { provide: BUS, useValue: bus },
        { provide: BUS_TOPOLOGY, useValue: topology },
        { provide: SERVER_IDENTITY, useValue: { serverName: 'a.test', signingKey: key, allKeys: [key] } },
        { provide: FEDERATION_CLIENT, useValue: federation },
        { provide: KEY_RING, useValue: network.keyRing() },
      ],
      exports: [STORE, BUS, BUS_TOPOLOGY, SERVER_IDENTITY, FEDERATION_CLIENT, KEY_RING],
    })
    class PlatformStub {}
    @Module({ imports: [PlatformStub, { module: StateResolverModule, imports: [PlatformStub] }] })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const create = await bus.request(topology.createEvent.subjectFor(''), { roomId: '', sender: '@alice:a.test', type: 'm.room.create', stateKey: '', content: { room_version: '12' } });
      expect(create).toMatchObject({ ok: true });
      const roomId = (create as Extract<CreateEventReply, { ok: true }>).roomId!;
      for (const [type, stateKey, content] of [
        ['m.room.member', '@alice:a.test', { membership: 'join' }],
        ['m.room.join_rules', '', { join_rule: 'public' }],
      ] as const) {
        expect(await bus.request(topology.createEvent.subjectFor(roomId), { roomId, sender: '@alice:a.test', type, stateKey, content })).toMatchObject({ ok: true });
      }

      // A remote user joins (through the bus-served handshake), then talks; the PDU comes in through the inbound stream.
      network.servers.set('a.test', { resolver: { handshakes: { makeMembership: (c: never) => bus.request(topology.makeMembership.subjectFor(roomId), c), sendMembership: (c: never) => bus.request(topology.sendMembership.subjectFor(roomId), c) } }, key } as never);
      expect(await remote.resolver.remoteMembership.onCommand({ roomId, userId: '@bob:b.test', membership: 'join', via: ['a.test'] })).toMatchObject({ ok: true });
      const msg = await remote.send(roomId, '@bob:b.test', 'm.room.message', { body: 'over the bus' });
      const eventId = msg.ok ? msg.eventId : '';
      const record = (await remote.store.events.get(eventId))!;
      const inbound: InboundPdu = { eventId, roomId, roomVersion: '12', origin: 'b.test', txnId: 't', receivedAt: Date.now(), redacted: false, pdu: record.pdu as never };
      await bus.publish(topology.inboundPdu.subjectFor(roomId), inbound, { messageId: eventId });
      await waitFor(async () => (await store.events.get(eventId))?.status === 'accepted');
      const reader = app.get(RoomReader);
      expect((await reader.event(eventId))?.roomId).toBe(roomId);
      expect(await store.rooms.getJoinedServers(roomId)).toEqual(['a.test', 'b.test']);
    } finally {
      await app.close();
      network.servers.delete('a.test');
      await network.close();
      await bus.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
