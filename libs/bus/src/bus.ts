// The port services depend on. Adapters: JetStreamBus (distributed) and EmbeddedBus (one process, SQLite).
import type { DeadLetter } from './messages';
import type { CommandSpec, CommandSubject, ConsumerSpec, StreamSpec, Subject } from './subjects';

export type HandlerOutcome = { kind: 'ack' } | { kind: 'nak'; delayMs: number } | { kind: 'notOwned'; delayMs: number } | { kind: 'term'; reason: string };

export const ack = (): HandlerOutcome => ({ kind: 'ack' });
/** Try again later; counts as a delivery. */
export const nak = (delayMs = 0): HandlerOutcome => ({ kind: 'nak', delayMs });
/**
 * Not this handler's work right now (its partition's lease lost or stale): asked again later, without using a
 * delivery, so lease trouble however long never dead-letters the message. The embedded bus does not count it; on
 * JetStream (which counts every delivery) the message stays in hand, kept alive, and is offered again after
 * `delayMs` while the subscription runs; a subscription stopped meanwhile gives it back (one delivery per handover).
 */
export const notOwned = (delayMs = 1_000): HandlerOutcome => ({ kind: 'notOwned', delayMs });
/** Give up on this message: it goes to dead letters with the reason. */
export const term = (reason: string): HandlerOutcome => ({ kind: 'term', reason });

export type Headers = Record<string, string>;

export interface ReceivedMessage<T> {
  stream: string;
  consumer: string;
  subject: string;
  messageId: string;
  /** Stream sequence: unique within the stream. */
  sequence: number;
  /** 1 on first delivery. */
  deliveryCount: number;
  headers: Headers;
  data: T;
  /** For long work: tells the bus the handler is still busy, so the message is not redelivered. */
  working(): void;
  /**
   * True when the consumer holds more messages for this handler and hands over the next right after this one is
   * handled (the embedded bus's claimed runs): work of this message may wait to go out with theirs (issue 19).
   * False or absent: no such promise (the last of a run, a concurrent consumer, or an adapter that does not say).
   */
  moreInHand?: boolean;
}

/** Returning nothing acks; throwing naks with backoff (and dead-letters at max deliveries). */
/** How a subscription runs its handler. */
export interface ConsumeOptions {
  /**
   * Awaited once a run of messages handed over with `moreInHand` is handled and before any of it is settled (the
   * run's end, or a nak, a lost lease or a stop cut it short): work those handlers left waiting goes out here, so no
   * message is acked before its work is done. If it throws, the run's acks become naks (redelivered). The
   * embedded bus only: an adapter that never sets `moreInHand` does not call it.
   */
  beforeSettle?: () => Promise<void>;
}

export type MessageHandler<T> = (message: ReceivedMessage<T>) => Promise<HandlerOutcome | void> | HandlerOutcome | void;

export interface RequestContext {
  subject: string;
  headers: Headers;
}
export type RequestHandler<Req, Res> = (request: Req, context: RequestContext) => Promise<Res> | Res;

export interface ServeOptions {
  /**
   * Owner routing, for commands of a partition held under a lease: served outside the command's queue group, so
   * every current subscriber of the subject gets each request, and only one for which `ownedNow()` holds runs the
   * handler; the others send nothing (not even an error), so the requester gets the owner's answer whatever stale
   * subscribers remain (a frozen process, one cut off from the store, one handing the partition over). With no
   * owner the request fails: `timeout` once its wait is over when some subscriber stayed silent (the embedded bus,
   * which sees every subscriber, fails it at once as `no-responder`), `no-responder` when nobody is subscribed;
   * the caller retries with the same key once an owner serves. A `false`, a throw or a rejection all stay silent.
   * Absent: one member of the queue group takes each request, whatever it owns.
   */
  ownedNow?: () => boolean | Promise<boolean>;
}

export interface PublishOptions {
  /** Dedupe key: a second publish with the same ID within the window is dropped. */
  messageId: string;
  headers?: Headers;
}

/** One message of a batch publish. */
export interface PublishItem<T = unknown> {
  subject: Subject<T>;
  data: T;
  options: PublishOptions;
}

export interface PublishResult {
  stream: string;
  sequence: number;
  duplicate: boolean;
}

export interface ConsumerStats {
  /** Messages not yet delivered (lag). */
  pending: number;
  /** Delivered and not yet settled. */
  ackPending: number;
  /** Age of the oldest message not yet settled (0 when none): how far behind the consumer is in time. */
  oldestUnsettledAgeMs: number;
}

export interface BusSubscription {
  readonly name: string;
  stop(): Promise<void>;
}

/** Why a request got no answer: `timeout` means the responder may still be working (retry with the same key). */
export type BusRequestFailure = 'timeout' | 'no-responder' | 'failed';

export class BusRequestError extends Error {
  constructor(
    message: string,
    readonly subject: string,
    readonly failure: BusRequestFailure = 'failed',
    /** The timeout that fired, for `timeout`. */
    readonly timeoutMs?: number,
  ) {
    super(message);
    this.name = 'BusRequestError';
  }
}

/**
 * The HTTP status for a command that got no answer: 504 when it timed out (the command may still
 * complete: retry with the same transaction ID), 503 when no responder is there, 502 otherwise.
 */
export function unansweredStatus(error: BusRequestError): 502 | 503 | 504 {
  if (error.failure === 'timeout') return 504;
  if (error.failure === 'no-responder') return 503;
  return 502;
}

export interface Bus {
  /** Creates or updates the streams idempotently; call once at start-up. */
  start(): Promise<void>;
  publish<T>(subject: Subject<T>, data: T, options: PublishOptions): Promise<PublishResult>;
  /**
   * Publishes several messages, each deduplicated by its message ID as `publish` does; results in the same order.
   * Embedded: one commit, all or none. JetStream: pipelined on the connection (sent in order, acks awaited
   * together); a failure throws after the others settled, and what landed is deduplicated when the caller retries.
   */
  publishBatch(items: readonly PublishItem[]): Promise<PublishResult[]>;
  /** Creates or updates the durable consumer idempotently, then delivers to the handler until stopped. */
  consume<T>(consumer: ConsumerSpec<T>, handler: MessageHandler<T>, options?: ConsumeOptions): Promise<BusSubscription>;
  /**
   * Synchronous command: one of the servers in the command's queue group answers (with owner routing, the first
   * subscriber that owns the subject: `ServeOptions.ownedNow`). Waits at most
   * `timeoutMs`, else the declared timeout of the command whose pattern covers the subject
   * (`BusOptions.commands`), else `BusOptions.defaultRequestTimeoutMs`; then throws a `timeout` BusRequestError.
   */
  request<Req, Res>(subject: CommandSubject<Req, Res>, request: Req, options?: { timeoutMs?: number; headers?: Headers }): Promise<Res>;
  /** Serves the command's pattern; once this resolves, a request sent by any process reaches the new subscriber. */
  serve<Req, Res>(command: CommandSpec<Req, Res>, handler: RequestHandler<Req, Res>, options?: ServeOptions): Promise<BusSubscription>;
  consumerStats(consumer: ConsumerSpec): Promise<ConsumerStats>;
  close(): Promise<void>;
}

/** A dead letter as the bus holds it: `sequence` identifies it for removal. */
export interface StoredDeadLetter {
  sequence: number;
  letter: DeadLetter;
}

/** The operator's view of dead letters: kept until removed here (`fedgate dead-letters`). */
export interface DeadLetterAdmin {
  listDeadLetters(): Promise<StoredDeadLetter[]>;
  /** False when no dead letter has that sequence. */
  removeDeadLetter(sequence: number): Promise<boolean>;
}

/** Hooks for metrics; telemetry provides a Prometheus implementation. */
export interface BusObserver {
  published(subject: string, duplicate: boolean): void;
  handled(consumer: string, outcome: 'ack' | 'nak' | 'dead'): void;
  redelivered(consumer: string): void;
  deadLettered(consumer: string, reason: string): void;
}

export const noopObserver: BusObserver = {
  published: () => undefined,
  handled: () => undefined,
  redelivered: () => undefined,
  deadLettered: () => undefined,
};

export interface BusOptions {
  streams: StreamSpec[];
  /** Where dead letters of a consumer are published. */
  deadLetterSubject: (consumer: string) => string;
  observer?: BusObserver;
  /** Backoff after a handler throws, by delivery count. */
  retryDelayMs?: (deliveryCount: number) => number;
  /** Declared commands: a request to a subject one of them covers waits that command's `timeoutMs`. */
  commands?: readonly CommandSpec<unknown, unknown>[];
  /** For a request to a subject no declared command covers (default 10 s). */
  defaultRequestTimeoutMs?: number;
}
