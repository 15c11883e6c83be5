// The bus over NATS JetStream: msgID dedupe, durable pull consumers with explicit ack, bounded
// redelivery ending in dead letters, core request/reply for commands.
import { connect } from '@nats-io/transport-node';
import { headers as natsHeaders, nanos, RequestError, TimeoutError, type ConnectionOptions, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  BusRequestError,
  noopObserver,
  type Bus,
  type BusObserver,
  type BusOptions,
  type BusSubscription,
  type ConsumerStats,
  type DeadLetterAdmin,
  type Headers,
  type MessageHandler,
  type PublishItem,
  type PublishOptions,
  type PublishResult,
  type RequestHandler,
  type ServeOptions,
  type StoredDeadLetter,
} from './bus';
import { decodeJson, encodeJson } from './codec';
import { requestTimeoutMs } from './command-timeouts';
import { whileWorking } from './heartbeat';
import { filtersOverlap, subjectMatches } from './partition';
import { defaultRetryDelayMs, exhaustedBeforeHandling, settle, type Settlement } from './settlement';
import type { CommandSpec, CommandSubject, ConsumerSpec, Subject } from './subjects';
import { withConsumerSpan, withProducerSpan } from './tracing';
import type { DeadLetter } from './messages';

export interface JetStreamBusOptions extends BusOptions {
  /** How long publish keeps retrying (e.g. across a server restart) before failing. */
  publishRetryMs?: number;
  /** How often consumed messages are purged (streams have no age limit); 0 turns it off. Default 60 s. */
  pruneIntervalMs?: number;
  /**
   * How long each step of closing (a consumer, a command subscription, the connection's drain) may wait on the
   * server before it is cut short (default 2 s): with NATS gone or frozen a drain never completes, and a
   * process told to stop must still stop, handing its partitions back (unsettled messages are redelivered).
   */
  closeStepTimeoutMs?: number;
  /** Copies of each stream (and so of its consumers) on a cluster: 3 keeps everything through one node's loss. Default 1. */
  streamReplicas?: number;
}

const toNatsHeaders = (h: Headers): MsgHdrs => {
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
};
const fromNatsHeaders = (h: MsgHdrs | undefined): Headers => {
  const out: Headers = {};
  if (!h) return out;
  for (const k of h.keys()) out[k.toLowerCase()] = h.get(k);
  return out;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PULL_EXPIRES_MS = 5_000;

/** True when `work` settled within `ms`; false when it was left behind (it may still settle later). */
/** Waits `ms`, or less when the signal aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(
      () => true,
      () => true,
    ), expired]);
  } finally {
    clearTimeout(timer);
  }
}

export class JetStreamBus implements Bus, DeadLetterAdmin {
  private readonly js: JetStreamClient;
  private readonly observer: BusObserver;
  private readonly retryDelayMs: (n: number) => number;
  private readonly subscriptions = new Set<BusSubscription>();
  private jsmPromise: Promise<JetStreamManager> | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly connection: NatsConnection,
    private readonly options: JetStreamBusOptions,
    private readonly ownsConnection = false,
  ) {
    this.js = jetstream(connection);
    this.observer = options.observer ?? noopObserver;
    this.retryDelayMs = options.retryDelayMs ?? defaultRetryDelayMs;
  }

  /** Connects to the servers and returns a bus that closes the connection on close(). */
  static async connect(connection: ConnectionOptions, options: JetStreamBusOptions): Promise<JetStreamBus> {
    const nc = await connect({ maxReconnectAttempts: -1, reconnectTimeWait: 250, ...connection });
    return new JetStreamBus(nc, options, true);
  }

  private jsm(): Promise<JetStreamManager> {
    this.jsmPromise ??= jetstreamManager(this.connection);
    return this.jsmPromise;
  }

  async start(): Promise<void> {
    const jsm = await this.jsm();
    for (const stream of this.options.streams) {
      const config = {
        name: stream.name,
        subjects: stream.subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        // No age limit: unconsumed messages and dead letters are never dropped for being old (see pruneConsumed).
        max_age: 0,
        duplicate_window: nanos(stream.duplicateWindowMs),
        num_replicas: this.options.streamReplicas ?? 1,
      };
      try {
        await jsm.streams.info(stream.name);
        await jsm.streams.update(stream.name, config);
      } catch (error) {
        if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
        await jsm.streams.add(config);
      }
    }
    const interval = this.options.pruneIntervalMs ?? 60_000;
    if (interval > 0 && !this.pruneTimer) {
      // Best effort: a failed pass (server away) only delays the purge to the next one.
      this.pruneTimer = setInterval(() => void this.pruneConsumed().catch(() => undefined), interval);
      this.pruneTimer.unref();
    }
  }

  /**
   * Purges, from each stream that prunes consumed messages, everything below the lowest ack floor of its
   * consumers: what every consumer settled. Nothing goes by age, so a stopped consumer's unread messages
   * stay, and dead letters (a stream that does not prune) stay until an operator removes them.
   */
  async pruneConsumed(): Promise<number> {
    const jsm = await this.jsm();
    let purged = 0;
    for (const stream of this.options.streams.filter((s) => s.pruneWhenConsumed)) {
      const info = await jsm.streams.info(stream.name);
      if (info.state.messages === 0) continue;
      // Consumers are read after the stream: one with nothing pending has settled everything up to last_seq.
      const floors: { filter: string; settledBelow: number }[] = [];
      for await (const consumer of jsm.consumers.list(stream.name)) {
        const settledBelow = consumer.num_pending === 0 && consumer.num_ack_pending === 0 ? info.state.last_seq + 1 : consumer.ack_floor.stream_seq + 1;
        floors.push({ filter: consumer.config.filter_subject ?? '>', settledBelow });
      }
      // Per filter, below what every consumer sharing its subjects settled; a subject no consumer reads is kept.
      for (const filter of new Set(floors.map((f) => f.filter))) {
        const floor = Math.min(...floors.filter((f) => filtersOverlap(f.filter, filter)).map((f) => f.settledBelow));
        if (floor > info.state.first_seq) purged += (await jsm.streams.purge(stream.name, { filter, seq: floor })).purged;
      }
    }
    return purged;
  }

  async publish<T>(subject: Subject<T>, data: T, options: PublishOptions): Promise<PublishResult> {
    const headers: Headers = { ...options.headers };
    const bytes = encodeJson(data);
    const ack = await withProducerSpan(subject, options.messageId, headers, () => this.publishWithRetry(subject, bytes, options.messageId, headers));
    this.observer.published(subject, ack.duplicate);
    return { stream: ack.stream, sequence: ack.seq, duplicate: ack.duplicate };
  }

  /**
   * Pipelined: every publish is sent before any ack is awaited (the client writes them to the connection in call
   * order, so order per subject holds unless one has to be retried). Throws the first failure once all settled.
   */
  async publishBatch(items: readonly PublishItem[]): Promise<PublishResult[]> {
    if (items.length === 0) return [];
    const trace: Headers = {};
    const acks = await withProducerSpan(items[0]!.subject, items[0]!.options.messageId, trace, async () => {
      const settled = await Promise.allSettled(
        items.map((item) => this.publishWithRetry(item.subject, encodeJson(item.data), item.options.messageId, { ...item.options.headers, ...trace })),
      );
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      return settled.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<JetStreamBus['publishWithRetry']>>>).value);
    });
    return acks.map((ack, i) => {
      this.observer.published(items[i]!.subject, ack.duplicate);
      return { stream: ack.stream, sequence: ack.seq, duplicate: ack.duplicate };
    });
  }

  private async publishWithRetry(subject: string, bytes: Uint8Array, messageId: string, headers: Headers) {
    const deadline = Date.now() + (this.options.publishRetryMs ?? 15_000);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.js.publish(subject, bytes, { msgID: messageId, headers: toNatsHeaders(headers) });
      } catch (error) {
        // The same msgID makes a retry safe: if the first attempt landed, the server reports a duplicate.
        if (Date.now() > deadline || this.connection.isClosed()) throw error;
        await sleep(Math.min(1000, 50 * attempt));
      }
    }
  }

  private async ensureConsumer(consumer: ConsumerSpec): Promise<void> {
    const jsm = await this.jsm();
    const config: Partial<ConsumerConfig> = {
      durable_name: consumer.durable,
      filter_subject: consumer.filterSubject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // One delivery beyond the handler's attempts, so a message whose handler never settled still
      // reaches dead letters instead of being dropped by the server.
      max_deliver: consumer.maxDeliver + 1,
      ack_wait: nanos(consumer.ackWaitMs),
      max_ack_pending: consumer.maxAckPending,
    };
    try {
      const info = await jsm.consumers.info(consumer.stream, consumer.durable);
      if (info.config.filter_subject !== consumer.filterSubject)
        throw new Error(`consumer ${consumer.durable} exists with filter ${info.config.filter_subject}, not ${consumer.filterSubject}`);
      await jsm.consumers.update(consumer.stream, consumer.durable, {
        max_deliver: config.max_deliver,
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending,
      });
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
      await jsm.consumers.add(consumer.stream, config);
    }
  }

  async consume<T>(consumer: ConsumerSpec<T>, handler: MessageHandler<T>): Promise<BusSubscription> {
    await this.ensureConsumer(consumer);
    const jsConsumer = await this.js.consumers.get(consumer.stream, consumer.durable);
    // Pull requests expire (and are renewed) every few seconds, with idle heartbeats at half that: a pull lost
    // with a cluster node that died (or a server restart) is noticed and made again within seconds, not 30 s.
    const messages: ConsumerMessages = await jsConsumer.consume({ max_messages: Math.min(256, Math.max(1, consumer.maxAckPending)), expires: PULL_EXPIRES_MS });
    const limit = Math.max(1, Math.min(consumer.concurrency ?? 1, consumer.maxAckPending));
    const stopping = new AbortController();
    const loop = (async () => {
      const running = new Set<Promise<void>>();
      try {
        for await (const msg of messages) {
          if (limit === 1) {
            await this.deliver(consumer, handler as MessageHandler<unknown>, msg, stopping.signal);
            continue;
          }
          // Concurrent handlers: a delivery that fails to settle is redelivered by the server after ack_wait.
          const delivery: Promise<void> = this.deliver(consumer, handler as MessageHandler<unknown>, msg, stopping.signal)
            .catch(() => undefined)
            .finally(() => running.delete(delivery));
          running.add(delivery);
          if (running.size >= limit) await Promise.race(running);
        }
      } finally {
        await Promise.allSettled(running);
      }
    })();
    const subscription: BusSubscription = {
      name: consumer.durable,
      stop: async () => {
        this.subscriptions.delete(subscription);
        // Pulling stops first (close unsubscribes at once): a message held "not owned" given back next must not
        // come back into this subscription's pull, where it would wait out the ack wait.
        const closing = messages.close().catch(() => undefined);
        stopping.abort();
        // Each step bounded: a message whose handler is cut short here is redelivered to the next consumer.
        await settledWithin(closing, this.closeStepTimeoutMs);
        await settledWithin(loop, this.closeStepTimeoutMs);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  /**
   * The server counts every delivery, so a message answered `notOwned` is not given back: it stays in hand (kept
   * alive) and is offered to the handler again after the delay, until handled or the subscription stops (then it
   * goes back at once, to the partition's next owner: one delivery per handover, not one per second of lease trouble).
   */
  private async deliver(consumer: ConsumerSpec, handler: MessageHandler<unknown>, msg: JsMsg, stopping: AbortSignal): Promise<void> {
    const deliveries = msg.info.deliveryCount;
    if (deliveries > 1) this.observer.redelivered(consumer.durable);
    const headers = fromNatsHeaders(msg.headers);
    const messageId = headers['nats-msg-id'] ?? '';
    const exhausted = exhaustedBeforeHandling(deliveries, consumer.maxDeliver);
    if (exhausted) return this.apply(consumer, msg, headers, messageId, exhausted);
    let settlement = await this.handleOnce(consumer, handler, msg, headers, messageId);
    while (settlement.kind === 'notOwned' && !stopping.aborted) {
      await whileWorking(consumer.ackWaitMs, () => msg.working(), () => abortableDelay(settlement.kind === 'notOwned' ? settlement.delayMs : 0, stopping));
      if (stopping.aborted) break;
      settlement = await this.handleOnce(consumer, handler, msg, headers, messageId);
    }
    await this.apply(consumer, msg, headers, messageId, settlement);
  }

  private async handleOnce(consumer: ConsumerSpec, handler: MessageHandler<unknown>, msg: JsMsg, headers: Headers, messageId: string): Promise<Settlement> {
    const deliveries = msg.info.deliveryCount;
    return withConsumerSpan(msg.subject, messageId, consumer.durable, headers, async () => {
      try {
        const outcome = await whileWorking(
          consumer.ackWaitMs,
          () => msg.working(),
          async () =>
            handler({
              stream: consumer.stream,
              consumer: consumer.durable,
              subject: msg.subject,
              messageId,
              sequence: msg.seq,
              deliveryCount: deliveries,
              headers,
              data: decodeJson(msg.data),
              working: () => msg.working(),
            }),
        );
        return settle({ outcome }, deliveries, consumer.maxDeliver, this.retryDelayMs);
      } catch (error) {
        return settle({ error }, deliveries, consumer.maxDeliver, this.retryDelayMs);
      }
    });
  }

  private async apply(consumer: ConsumerSpec, msg: JsMsg, headers: Headers, messageId: string, settlement: Settlement): Promise<void> {
    if (settlement.kind === 'ack') msg.ack();
    else if (settlement.kind === 'nak') msg.nak(settlement.delayMs);
    // Held while not owned and the subscription stopped: given back for the partition's next owner. The server may
    // still hand it to this subscription's pull request (not expired yet): then it waits out the ack wait.
    else if (settlement.kind === 'notOwned') msg.nak(0);
    else {
      const letter: DeadLetter = {
        stream: consumer.stream,
        subject: msg.subject,
        consumer: consumer.durable,
        messageId,
        reason: settlement.reason,
        deliveryCount: msg.info.deliveryCount,
        dataBase64: Buffer.from(msg.data).toString('base64'),
        headers,
        deadAt: Date.now(),
      };
      // Recorded before the term: a crash in between redelivers, and the msgID dedupes the letter.
      await this.publishWithRetry(this.options.deadLetterSubject(consumer.durable), encodeJson(letter), `${consumer.durable}:${msg.seq}`, {});
      // Reason-less term: servers before 2.10.4 ignore "+TERM <reason>"; the reason is in the dead letter.
      msg.term();
      this.observer.deadLettered(consumer.durable, settlement.reason);
    }
    this.observer.handled(consumer.durable, settlement.kind === 'notOwned' ? 'nak' : settlement.kind);
  }

  async request<Req, Res>(subject: CommandSubject<Req, Res>, request: Req, options: { timeoutMs?: number; headers?: Headers } = {}): Promise<Res> {
    const headers: Headers = { ...options.headers };
    const timeout = requestTimeoutMs(this.options, subject, options.timeoutMs);
    return withProducerSpan(subject, '', headers, async () => {
      try {
        const reply = await this.connection.request(subject, encodeJson(request), { timeout, headers: toNatsHeaders(headers) });
        return decodeJson<Res>(reply.data);
      } catch (error) {
        if (isTimeout(error)) throw new BusRequestError(`no answer from ${subject} within ${timeout} ms`, subject, 'timeout', timeout);
        if (error instanceof RequestError && error.isNoResponders()) throw new BusRequestError(`no responder for ${subject}`, subject, 'no-responder');
        throw new BusRequestError(`request to ${subject} failed: ${(error as Error).message}`, subject);
      }
    });
  }

  async serve<Req, Res>(command: CommandSpec<Req, Res>, handler: RequestHandler<Req, Res>, options: ServeOptions = {}): Promise<BusSubscription> {
    const { ownedNow } = options;
    // Owner routing: no queue group, so a subscriber that stopped answering (a frozen process still connected)
    // cannot take its share of the requests; each one reaches the owner too.
    const sub: Subscription = this.connection.subscribe(command.pattern, {
      ...(ownedNow ? {} : { queue: command.queueGroup }),
      callback: (error, msg) => {
        if (error) return;
        void (async () => {
          if (ownedNow && !(await Promise.resolve().then(ownedNow).catch(() => false))) return;
          const headers = fromNatsHeaders(msg.headers);
          await withConsumerSpan(msg.subject, '', command.queueGroup, headers, async () => {
            const response = await handler(decodeJson<Req>(msg.data), { subject: msg.subject, headers });
            msg.respond(encodeJson(response));
          }).catch((e: Error) => msg.respond(encodeJson({ ok: false, errcode: 'M_UNKNOWN', error: e.message })));
        })().catch(() => undefined); // the reply could not be sent (connection closing): the requester times out
      },
    });
    const subscription: BusSubscription = {
      name: command.queueGroup,
      stop: async () => {
        this.subscriptions.delete(subscription);
        if (!(await settledWithin(sub.drain(), this.closeStepTimeoutMs)) && !sub.isClosed()) sub.unsubscribe();
      },
    };
    this.subscriptions.add(subscription);
    // The server has the subscription before this returns (a new owner is reachable at once); not waited past a
    // close step while the server is away: the client subscribes again when it reconnects.
    await settledWithin(this.connection.flush(), this.closeStepTimeoutMs);
    return subscription;
  }

  async consumerStats(consumer: ConsumerSpec): Promise<ConsumerStats> {
    const jsm = await this.jsm();
    const info = await jsm.consumers.info(consumer.stream, consumer.durable);
    let oldestUnsettledAgeMs = 0;
    if (info.num_pending + info.num_ack_pending > 0) {
      // The first message of the filter after the ack floor: the oldest one not settled yet.
      const oldest = await jsm.streams
        .getMessage(consumer.stream, { seq: info.ack_floor.stream_seq + 1, next_by_subj: consumer.filterSubject } as never)
        .catch(() => null);
      if (oldest) oldestUnsettledAgeMs = Math.max(0, Date.now() - oldest.time.getTime());
    }
    return { pending: info.num_pending, ackPending: info.num_ack_pending, oldestUnsettledAgeMs };
  }

  /** Reads a stream's messages from the start (dead letters, tests). */
  async readStream<T>(streamName: string, filter = '>'): Promise<{ subject: string; messageId: string; data: T }[]> {
    const jsm = await this.jsm();
    const info = await jsm.streams.info(streamName);
    const out: { subject: string; messageId: string; data: T }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      try {
        const m = await jsm.streams.getMessage(streamName, { seq });
        if (!m) continue;
        if (!subjectMatches(filter, m.subject)) continue;
        out.push({ subject: m.subject, messageId: m.header?.get('Nats-Msg-Id') ?? '', data: decodeJson<T>(m.data) });
      } catch {
        // deleted
      }
    }
    return out;
  }

  private deadLetterStream(): string {
    const subject = this.options.deadLetterSubject('any');
    const stream = this.options.streams.find((s) => s.subjects.some((p) => subjectMatches(p, subject)));
    if (!stream) throw new Error(`no stream holds dead letters (${subject})`);
    return stream.name;
  }

  async listDeadLetters(): Promise<StoredDeadLetter[]> {
    const jsm = await this.jsm();
    const name = this.deadLetterStream();
    const info = await jsm.streams.info(name);
    const out: StoredDeadLetter[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(name, { seq }).catch(() => null);
      if (m) out.push({ sequence: seq, letter: decodeJson<DeadLetter>(m.data) });
    }
    return out;
  }

  async removeDeadLetter(sequence: number): Promise<boolean> {
    const jsm = await this.jsm();
    const name = this.deadLetterStream();
    const held = await jsm.streams.getMessage(name, { seq: sequence }).catch(() => null);
    if (!held) return false;
    return jsm.streams.deleteMessage(name, sequence, true);
  }

  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (!this.ownsConnection || this.connection.isClosed()) return;
    // A drain flushes to the server, which may be gone; then the connection is closed without it.
    if (!(await settledWithin(this.connection.drain(), this.closeStepTimeoutMs))) await settledWithin(this.connection.close(), this.closeStepTimeoutMs);
  }

  private get closeStepTimeoutMs(): number {
    return this.options.closeStepTimeoutMs ?? 2_000;
  }
}

/** nats.js reports a request timeout as TimeoutError, or as a RequestError caused by one. */
function isTimeout(error: unknown): boolean {
  return error instanceof TimeoutError || (error instanceof Error && error.cause instanceof TimeoutError);
}

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}
