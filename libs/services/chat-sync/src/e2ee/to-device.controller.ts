// `/sendToDevice/{type}/{txnId}` for AS users: messages for this server's users go through the inbound
// EDU subject (as a remote server's would) to chat-sync's EDU fan-out, which hands them to the owning
// application service in its transactions; messages for other servers' users leave as one
// `m.direct_to_device` EDU per server, queued per destination by egress. Idempotent per (sender, txnId).
import { createHash } from 'node:crypto';
import { Body, Controller, Inject, Param, Put, UseGuards } from '@nestjs/common';
import { BUS, BUS_TOPOLOGY, SERVER_IDENTITY, STORE, type Bus, type BusTopology, type ServerIdentity, type Store } from '@fedgate/platform';
import type { JsonObject } from '@fedgate/bus';
import { parseUserId } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';

/** Devices addressed in one request, all users together. */
export const MAX_TO_DEVICE_RECIPIENTS = 10_000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `messages` grouped by the recipients' servers; throws a Matrix error for a malformed body. */
export function parseToDeviceMessages(body: unknown): Map<string, Record<string, Record<string, JsonObject>>> {
  if (!isObject(body) || !isObject(body.messages)) throw MatrixError.badJson('messages must be an object of user ID to device ID to content');
  const byServer = new Map<string, Record<string, Record<string, JsonObject>>>();
  let recipients = 0;
  for (const [userId, byDevice] of Object.entries(body.messages)) {
    let server: string;
    try {
      server = parseUserId(userId, { allowHistorical: true }).serverName;
    } catch {
      throw MatrixError.invalidParam(`${JSON.stringify(userId.slice(0, 64))} is not a user ID`);
    }
    if (!isObject(byDevice) || !Object.values(byDevice).every(isObject)) throw MatrixError.badJson(`messages[${JSON.stringify(userId)}] must map device IDs (or *) to content objects`);
    recipients += Object.keys(byDevice).length;
    let group = byServer.get(server);
    if (!group) byServer.set(server, (group = {}));
    group[userId] = byDevice as Record<string, JsonObject>;
  }
  if (recipients > MAX_TO_DEVICE_RECIPIENTS) throw MatrixError.tooLarge(`At most ${MAX_TO_DEVICE_RECIPIENTS} devices per request`);
  return byServer;
}

@Controller(CLIENT_PATHS)
@UseGuards(AppServiceAuthGuard)
export class ToDeviceController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(BUS_TOPOLOGY) private readonly topology: BusTopology,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
  ) {}

  @Put('sendToDevice/:eventType/:txnId')
  async send(@CurrentRequester() requester: Requester, @Param('eventType') type: string, @Param('txnId') txnId: string, @Body() body: unknown) {
    const byServer = parseToDeviceMessages(body);
    const sender = requester.userId;
    const key = createHash('sha256').update(JSON.stringify([sender, type, txnId])).digest('base64url').slice(0, 32);
    const now = Date.now();
    const first = await this.store.clientTransactions.record({ sender, txnId: `to-device:${type}:${txnId}`, eventId: key, roomId: '', createdTs: now });
    // A retry after the bus's dedupe window has passed must not send again; within it (a crash between
    // the record and the publishes) the same message IDs are deduplicated by the bus.
    if (first.createdTs !== now && now - first.createdTs > this.topology.streams.inbound.duplicateWindowMs / 2) return {};
    for (const [server, messages] of byServer) {
      const messageId = `${key}:${server}`;
      const content: JsonObject = { sender, type, message_id: messageId, messages };
      if (server === this.identity.serverName) {
        await this.bus.publish(
          this.topology.inboundEdu.subjectFor('m.direct_to_device'),
          { origin: server, txnId: `local-to-device-${key}`, eduType: 'm.direct_to_device', receivedAt: now, content },
          { messageId: `${server}:local-to-device-${key}:0` },
        );
      } else {
        const eduId = `to-device:${messageId}`;
        await this.bus.publish(this.topology.outboundEdu.subject, { eduId, eduType: 'm.direct_to_device', content, destinations: [server], createdAt: now }, { messageId: eduId });
      }
    }
    return {};
  }
}
