// Typing, receipts and presence from the AS's users: an OutboundEdu for the remote servers (egress
// picks the destinations from the room), and the same EDU on the inbound EDU subject with this
// server as origin so chat-sync's EDU consumer pushes it to other application services in the room.
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { BUS, BUS_TOPOLOGY, SERVER_IDENTITY, type Bus, type BusTopology, type ServerIdentity } from '@fedgate/platform';
import type { JsonObject } from '@fedgate/bus';

@Injectable()
export class EphemeralSender {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  async send(eduType: string, content: JsonObject, target: { roomId?: string; destinations?: string[] }): Promise<void> {
    const eduId = randomUUID();
    const now = Date.now();
    await this.bus.publish(this.topology.outboundEdu.subject, { eduId, eduType, content, ...target, createdAt: now }, { messageId: eduId });
    await this.bus.publish(
      this.topology.inboundEdu.subjectFor(eduType),
      { origin: this.identity.serverName, txnId: `local-${eduId}`, eduType, receivedAt: now, content },
      { messageId: `${this.identity.serverName}:local-${eduId}:0` },
    );
  }
}
