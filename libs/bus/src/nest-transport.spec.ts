import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { nak, type HandlerOutcome } from './bus';
import { waitFor } from './contract/wait-for';
import { EmbeddedBus } from './embedded-bus';
import type { CreateEventCommand, CreateEventReply, InboundPdu } from './messages';
import { BusClientProxy, BusContext, BusEventPattern, BusRecord, BusTransport } from './nest-transport';
import { busOptionsFor } from './options';
import { busTopology } from './subjects';

const topology = busTopology({ prefix: 'nesttest', roomPartitions: 2 });
const seen: { eventId: string; delivery: number }[] = [];

@Controller()
class ResolverController {
  @BusEventPattern(topology.inboundPdu.all)
  onPdu(@Payload() pdu: InboundPdu, @Ctx() context: BusContext): HandlerOutcome | void {
    seen.push({ eventId: pdu.eventId, delivery: context.message.deliveryCount });
    if (context.message.deliveryCount === 1 && pdu.eventId === '$retry') return nak(1);
  }

  @MessagePattern(topology.createEvent.command.pattern)
  async createEvent(@Payload() command: CreateEventCommand): Promise<CreateEventReply> {
    return { ok: true, eventId: `$new-${command.type}` };
  }
}

@Module({ controllers: [ResolverController] })
class ResolverModule {}

describe('BusTransport (NestJS)', () => {
  it('routes durable consumers to @EventPattern and commands to @MessagePattern', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fedgate-nest-'));
    const bus = new EmbeddedBus({ ...busOptionsFor(topology), path: path.join(dir, 'bus.sqlite'), pollIntervalMs: 10 });
    const consumers = [0, 1].map((p) => topology.consumers.stateResolverInbound(p));
    const app = await NestFactory.createMicroservice(ResolverModule, {
      strategy: new BusTransport({ bus, consumers, commands: [topology.createEvent.command] }),
      logger: false,
    });
    await app.listen();
    const client = new BusClientProxy(bus);
    try {
      const pdu = (eventId: string, roomId: string) => ({ eventId, roomId, roomVersion: '10', origin: 'o', txnId: 't', receivedAt: 0, redacted: false, pdu: {} });
      await lastValueFrom(client.emit(topology.inboundPdu.subjectFor('!a:x'), new BusRecord(pdu('$one', '!a:x'), '$one')));
      await lastValueFrom(client.emit(topology.inboundPdu.subjectFor('!b:x'), new BusRecord(pdu('$retry', '!b:x'), '$retry')));
      await waitFor(() => seen.length === 3, 'handlers');
      expect(seen).toEqual(expect.arrayContaining([{ eventId: '$one', delivery: 1 }, { eventId: '$retry', delivery: 1 }, { eventId: '$retry', delivery: 2 }]));
      const reply = await lastValueFrom(client.send(topology.createEvent.subjectFor('!a:x'), { roomId: '!a:x', sender: '@u:x', type: 'm.room.message', content: {} }));
      expect(reply).toEqual({ ok: true, eventId: '$new-m.room.message' });
    } finally {
      await app.close();
      await bus.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
