// `/sendToDevice/{type}/{txnId}` for AS users: messages for this server's users go through the inbound
// EDU subject (as a remote server's would) to chat-sync's EDU fan-out, which hands them to the owning
// application service in its transactions; messages for other servers' users leave as one
// `m.direct_to_device` EDU per server, queued per destination by egress. Idempotent per (sender, type,
// txnId), and durable: a request is kept until it is published (store.toDevice).
import { createHash } from 'node:crypto';
import { Body, Controller, Inject, Param, Put, UseGuards } from '@nestjs/common';
import { BUS, BUS_TOPOLOGY, SERVER_IDENTITY, STORE, type Bus, type BusTopology, type ServerIdentity, type Store } from '@fedgate/platform';
import type { OutgoingToDevice } from '@fedgate/store';
import type { JsonObject } from '@fedgate/bus';
import { parseUserId } from '@fedgate/protocol';
import { MatrixError } from '@fedgate/service-kit';
import { isObject } from '@fedgate/room-state';
import { AppServiceAuthGuard, CurrentRequester, type Requester } from '../client-server/requester';
import { CLIENT_PATHS } from '../client-server/paths';

/** Devices addressed in one request, all users together. */
export const MAX_TO_DEVICE_RECIPIENTS = 10_000;

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

/**
 * Publishes a kept `/sendToDevice` request: local recipients through the inbound EDU subject, each other
 * server's as one `m.direct_to_device` EDU. Message IDs come from the request's key, so publishing it again
 * (a retry, the repair after a crash) is deduplicated by the bus.
 */
export async function publishToDevice(bus: Bus, topology: BusTopology, serverName: string, outgoing: OutgoingToDevice): Promise<void> {
  const { key, sender, type, createdTs } = outgoing;
  for (const [server, messages] of parseToDeviceMessages({ messages: outgoing.messages })) {
    const messageId = `${key}:${server}`;
    const content: JsonObject = { sender, type, message_id: messageId, messages };
    if (server === serverName) {
      await bus.publish(
        topology.inboundEdu.subjectFor('m.direct_to_device'),
        { origin: server, txnId: `local-to-device-${key}`, eduType: 'm.direct_to_device', receivedAt: createdTs, content },
        { messageId: `${server}:local-to-device-${key}:0` },
      );
    } else {
      const eduId = `to-device:${messageId}`;
      await bus.publish(topology.outboundEdu.subject, { eduId, eduType: 'm.direct_to_device', content, destinations: [server], createdAt: createdTs }, { messageId: eduId });
    }
  }
}

/** Publishes what was kept but not published (a process died between the two); on start. */
export async function republishToDevice(store: Store, bus: Bus, topology: BusTopology, serverName: string): Promise<number> {
  let done = 0;
  for (const outgoing of await store.toDevice.unpublished(1000)) {
    await publishToDevice(bus, topology, serverName, outgoing);
    await store.toDevice.markPublished(outgoing.key);
    done++;
  }
  return done;
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

  /**
   * The request is kept with its messages before anything is published and marked published after, so a
   * retry (at any time) or the repair on start finishes one cut short, and a finished one is not sent again.
   */
  @Put('sendToDevice/:eventType/:txnId')
  async send(@CurrentRequester() requester: Requester, @Param('eventType') type: string, @Param('txnId') txnId: string, @Body() body: unknown) {
    parseToDeviceMessages(body);
    const sender = requester.userId;
    const key = createHash('sha256').update(JSON.stringify([sender, type, txnId])).digest('base64url').slice(0, 32);
    const kept = await this.store.toDevice.reserve({ key, sender, type, messages: (body as { messages: Record<string, unknown> }).messages, createdTs: Date.now() });
    if (kept.published) return {};
    await publishToDevice(this.bus, this.topology, this.identity.serverName, kept);
    await this.store.toDevice.markPublished(key);
    return {};
  }
}
