// The bus in one process, durable in a SQLite file (node:sqlite): work queued before a crash is
// still there after reopening. Same contract as JetStreamBus; tables are prefixed `bus_` so the
// embedded store can share the file. Several processes may open the file; claims are atomic.
// Consumer loops sleep until there is work for them: a publish in this process wakes only the loops
// whose filter matches its subject, an ack wakes the loops of that durable, a timer wakes a loop when
// its earliest delayed or leased message becomes visible, and one cheap `PRAGMA data_version` check
// per poll interval (not one transaction per loop) notices commits by other processes.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  BusRequestError,
  noopObserver,
  type Bus,
  type BusObserver,
  type BusOptions,
  type BusSubscription,
  type ConsumeOptions,
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
import { whileWorking } from './heartbeat';
import { decodeJson, encodeJson } from './codec';
import { requestTimeoutMs } from './command-timeouts';
import { subjectMatches } from './partition';
import { defaultRetryDelayMs, exhaustedBeforeHandling, settle, type Settlement } from './settlement';
import type { CommandSpec, CommandSubject, ConsumerSpec, StreamSpec, Subject } from './subjects';
import { withConsumerSpan, withProducerSpan } from './tracing';
import type { DeadLetter } from './messages';

export interface EmbeddedBusOptions extends BusOptions {
  /** SQLite file; `:memory:` works but is not durable. */
  path: string;
  /** How often the bus checks whether another process committed to the file (then its consumers look for work). */
  pollIntervalMs?: number;
  /**
   * The connection to `path` of the embedded store in this process, to share (the bus does not close it). With a
   * connection each, every commit of one emptied the other's page cache, so each read after it went back to the file.
   */
  connection?: DatabaseSync;
}

interface PendingRow {
  seq: number;
  deliveries: number;
  visible_at: number;
}
interface Claim {
  row: MessageRow;
  deliveries: number;
}
interface MessageRow {
  seq: number;
  stream: string;
  subject: string;
  msg_id: string;
  data: Uint8Array;
  headers: string;
}

/** Settled messages removed per commit by the prune pass, with a turn of the event loop between commits. */
export const PRUNE_CHUNK = 500;

/**
 * Messages a one-at-a-time loop claims in one commit when a backlog is there, handles in order and settles in one
 * commit (with the claim of the next run): one claim and one settle per run instead of per message (issue 19). A
 * crash redelivers what of the run was not settled, as it would the one message in hand.
 */
export const CLAIM_RUN = 32;

/** The messages a one-at-a-time loop claims at once: a run, or one for a consumer that settles each. */
function runLength(consumer: ConsumerSpec): number {
  return consumer.settleEach ? 1 : CLAIM_RUN;
}

/** Subjects whose consumers the bus remembers (a subject is a partition, an application service, an EDU type…). */
const MAX_REMEMBERED_SUBJECTS = 10_000;

/** setTimeout's ceiling; a loop sleeping that long re-checks and sleeps again. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS bus_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  stream TEXT NOT NULL, subject TEXT NOT NULL, msg_id TEXT NOT NULL,
  data BLOB NOT NULL, headers TEXT NOT NULL, published_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bus_messages_by_msg_id ON bus_messages (stream, msg_id);
CREATE TABLE IF NOT EXISTS bus_consumers (
  durable TEXT PRIMARY KEY, stream TEXT NOT NULL, filter_subject TEXT NOT NULL,
  max_deliver INTEGER NOT NULL, ack_wait_ms INTEGER NOT NULL, max_ack_pending INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bus_pending (
  durable TEXT NOT NULL, seq INTEGER NOT NULL, deliveries INTEGER NOT NULL DEFAULT 0,
  visible_at INTEGER NOT NULL, PRIMARY KEY (durable, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bus_pending_by_seq ON bus_pending (seq);
`;

/**
 * Prepared statements by SQL text, compiled once: the bus runs the same few statements for every message, and
 * preparing them again each time was a large share of its CPU under load (issue 19). Its own cache, not a patched
 * `prepare`: the connection may be the store's.
 */
class Statements {
  private readonly statements = new Map<string, StatementSync>();
  constructor(private readonly connection: DatabaseSync) {}

  prepare(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.connection.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  exec(sql: string): void {
    this.connection.exec(sql);
  }
}

export class EmbeddedBus implements Bus, DeadLetterAdmin {
  private readonly connection: DatabaseSync;
  private readonly db: Statements;
  private readonly observer: BusObserver;
  private readonly retryDelayMs: (n: number) => number;
  private readonly pollIntervalMs: number;
  private readonly responders = new Map<string, Responders>();
  private readonly loops = new Set<ConsumerLoop>();
  /** The loops whose filter matches a subject published here, and its stream; forgotten when the loops change. */
  private readonly loopsBySubject = new Map<string, ConsumerLoop[]>();
  private readonly streamBySubject = new Map<string, StreamSpec>();
  private pruneTimer: NodeJS.Timeout | undefined;
  private foreignCommitTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<void> | undefined;
  private dataVersion = 0;
  /**
   * The highest message sequence this process knows was used (its own publishes, and the sequence read by the watch
   * for other processes' commits); `sequenceSkipped`: one of its publishes found sequences used by others since.
   */
  private knownSequence = 0;
  private sequenceSkipped = false;
  /** `consumersOf`: the consumers table as last read, and the durables of each subject published since. */
  private consumersVersion = '';
  private readonly durablesBySubject = new Map<string, string[]>();
  private inTransaction = false;
  private closed = false;

  constructor(private readonly options: EmbeddedBusOptions) {
    this.connection = options.connection ?? new DatabaseSync(options.path);
    this.db = new Statements(this.connection);
    if (!options.connection) this.db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;');
    this.db.exec(SCHEMA);
    this.observer = options.observer ?? noopObserver;
    this.retryDelayMs = options.retryDelayMs ?? defaultRetryDelayMs;
    this.pollIntervalMs = options.pollIntervalMs ?? 100;
  }

  async start(): Promise<void> {
    await this.prune();
    this.pruneTimer = setInterval(() => void this.prune(), 30_000);
    this.pruneTimer.unref();
  }

  private streamFor(subject: string): StreamSpec {
    let stream = this.streamBySubject.get(subject);
    if (stream) return stream;
    stream = this.options.streams.find((s) => s.subjects.some((p) => subjectMatches(p, subject)));
    if (!stream) throw new Error(`no stream holds subject ${subject}`);
    if (this.streamBySubject.size >= MAX_REMEMBERED_SUBJECTS) this.streamBySubject.clear();
    this.streamBySubject.set(subject, stream);
    return stream;
  }

  /** Runs `work` in one write transaction; nested calls join the enclosing one. */
  private transaction<R>(work: () => R): R {
    if (this.inTransaction) return work();
    this.db.exec('BEGIN IMMEDIATE');
    this.inTransaction = true;
    try {
      const result = work();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      // Sequences this transaction took are free again and may go to another process's messages.
      this.sequenceSkipped = true;
      throw error;
    } finally {
      this.inTransaction = false;
    }
  }

  /** Appends a message and queues it for every matching consumer; inside a transaction. */
  /** `consumersChecked`: the batch's transaction looked whether the consumers changed already (once, not per message). */
  private append(subject: string, bytes: Uint8Array, messageId: string, headers: Headers, consumersChecked = false): PublishResult {
    const stream = this.streamFor(subject);
    const now = Date.now();
    const seen = this.db
      .prepare('SELECT seq FROM bus_messages WHERE stream = ? AND msg_id = ? AND published_at > ?')
      .get(stream.name, messageId, now - stream.duplicateWindowMs) as { seq: number } | undefined;
    if (seen) return { stream: stream.name, sequence: Number(seen.seq), duplicate: true };
    const inserted = this.db
      .prepare('INSERT INTO bus_messages (stream, subject, msg_id, data, headers, published_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(stream.name, subject, messageId, bytes, JSON.stringify(headers), now);
    const seq = Number(inserted.lastInsertRowid);
    if (seq > this.knownSequence + 1) this.sequenceSkipped = true;
    this.knownSequence = Math.max(this.knownSequence, seq);
    const queue = this.db.prepare('INSERT INTO bus_pending (durable, seq, deliveries, visible_at) VALUES (?, ?, 0, ?)');
    for (const durable of this.consumersOf(stream.name, subject, consumersChecked)) queue.run(durable, seq, now);
    return { stream: stream.name, sequence: seq, duplicate: false };
  }

  /**
   * The durables a message on `subject` is queued for. Read from the table only when its consumers changed (in
   * this process or another: consumers are only ever added, so their count and highest rowid tell); reading and
   * matching all of them for every message was a few percent of the gateway's CPU (issue 19). Inside a transaction.
   */
  private consumersOf(stream: string, subject: string, checked = false): string[] {
    if (!checked) this.checkConsumers();
    let durables = this.durablesBySubject.get(subject);
    if (!durables) {
      if (this.durablesBySubject.size >= MAX_REMEMBERED_SUBJECTS) this.durablesBySubject.clear();
      const consumers = this.db.prepare('SELECT durable, filter_subject FROM bus_consumers WHERE stream = ?').all(stream) as { durable: string; filter_subject: string }[];
      durables = consumers.filter((c) => subjectMatches(c.filter_subject, subject)).map((c) => c.durable);
      this.durablesBySubject.set(subject, durables);
    }
    return durables;
  }

  /** Forgets the consumers read per subject if they changed (here or in another process). Inside a transaction. */
  private checkConsumers(): void {
    const version = this.db.prepare('SELECT COUNT(*) AS n, MAX(rowid) AS m FROM bus_consumers').get() as { n: number; m: number | null };
    const key = `${version.n}:${version.m}`;
    if (key === this.consumersVersion) return;
    this.consumersVersion = key;
    this.durablesBySubject.clear();
  }

  async publish<T>(subject: Subject<T>, data: T, options: PublishOptions): Promise<PublishResult> {
    this.assertOpen();
    const headers: Headers = { ...options.headers };
    const result = await withProducerSpan(subject, options.messageId, headers, async () =>
      this.transaction(() => this.append(subject, encodeJson(data), options.messageId, headers)),
    );
    this.observer.published(subject, result.duplicate);
    if (!result.duplicate) this.wakeConsumersOf(subject);
    return result;
  }

  /** One commit for the whole batch (issue 19: ingress hands on a transaction's PDUs at once), all or none. */
  async publishBatch(items: readonly PublishItem[]): Promise<PublishResult[]> {
    this.assertOpen();
    if (items.length === 0) return [];
    const encoded = items.map((item) => ({ subject: item.subject as string, bytes: encodeJson(item.data), messageId: item.options.messageId, headers: { ...item.options.headers } }));
    // One producer span for the batch; its context goes into every message's headers.
    const trace: Headers = {};
    const results = await withProducerSpan(encoded[0]!.subject, encoded[0]!.messageId, trace, async () =>
      this.transaction(() => {
        this.checkConsumers();
        return encoded.map((m) => this.append(m.subject, m.bytes, m.messageId, { ...m.headers, ...trace }, true));
      }),
    );
    const woken = new Set<string>();
    results.forEach((result, i) => {
      const { subject } = encoded[i]!;
      this.observer.published(subject, result.duplicate);
      if (!result.duplicate && !woken.has(subject)) {
        woken.add(subject);
        this.wakeConsumersOf(subject);
      }
    });
    return results;
  }

  async consume<T>(consumer: ConsumerSpec<T>, handler: MessageHandler<T>, options: ConsumeOptions = {}): Promise<BusSubscription> {
    this.assertOpen();
    this.ensureConsumer(consumer);
    const loop = new ConsumerLoop(this, consumer, handler as MessageHandler<unknown>, options);
    this.loops.add(loop);
    this.loopsBySubject.clear();
    this.watchForeignCommits();
    loop.run();
    return {
      name: consumer.durable,
      stop: async () => {
        await loop.stop();
        this.loops.delete(loop);
        this.loopsBySubject.clear();
        if (this.loops.size === 0) this.stopWatchingForeignCommits();
      },
    };
  }

  /** Creates the consumer (queueing what its stream already holds) or updates its limits. */
  private ensureConsumer(consumer: ConsumerSpec): void {
    this.transaction(() => {
      const existing = this.db.prepare('SELECT filter_subject FROM bus_consumers WHERE durable = ?').get(consumer.durable) as
        | { filter_subject: string }
        | undefined;
      if (existing) {
        if (existing.filter_subject !== consumer.filterSubject)
          throw new Error(`consumer ${consumer.durable} exists with filter ${existing.filter_subject}, not ${consumer.filterSubject}`);
        this.db
          .prepare('UPDATE bus_consumers SET max_deliver = ?, ack_wait_ms = ?, max_ack_pending = ? WHERE durable = ?')
          .run(consumer.maxDeliver, consumer.ackWaitMs, consumer.maxAckPending, consumer.durable);
        return;
      }
      this.db
        .prepare('INSERT INTO bus_consumers (durable, stream, filter_subject, max_deliver, ack_wait_ms, max_ack_pending) VALUES (?, ?, ?, ?, ?, ?)')
        .run(consumer.durable, consumer.stream, consumer.filterSubject, consumer.maxDeliver, consumer.ackWaitMs, consumer.maxAckPending);
      const backlog = this.db.prepare('SELECT seq, subject FROM bus_messages WHERE stream = ? ORDER BY seq').all(consumer.stream) as {
        seq: number;
        subject: string;
      }[];
      const queue = this.db.prepare('INSERT INTO bus_pending (durable, seq, deliveries, visible_at) VALUES (?, ?, 0, 0)');
      for (const m of backlog) if (subjectMatches(consumer.filterSubject, m.subject)) queue.run(consumer.durable, m.seq);
    });
  }

  /** Claims the next deliverable message for a consumer: the head window of maxAckPending keeps order. */
  claimNext(consumer: ConsumerSpec, skip: Set<number>): Claim | undefined {
    // Nothing to claim is the common answer of a woken loop: found by a read, without a write transaction (issue 19).
    if (!this.inTransaction && !this.nextVisible(consumer, skip, Date.now())) return undefined;
    return this.transaction(() => {
      const now = Date.now();
      const next = this.nextVisible(consumer, skip, now);
      if (!next) return undefined;
      const deliveries = Number(next.deliveries) + 1;
      this.db
        .prepare('UPDATE bus_pending SET deliveries = ?, visible_at = ? WHERE durable = ? AND seq = ?')
        .run(deliveries, now + consumer.ackWaitMs, consumer.durable, next.seq);
      const row = this.db.prepare('SELECT seq, stream, subject, msg_id, data, headers FROM bus_messages WHERE seq = ?').get(next.seq) as unknown as
        | MessageRow
        | undefined;
      if (!row) {
        this.db.prepare('DELETE FROM bus_pending WHERE durable = ? AND seq = ?').run(consumer.durable, next.seq);
        return undefined;
      }
      return { row, deliveries };
    });
  }

  /**
   * Claims up to `max` messages for a loop handling one at a time, in one transaction: for an ordered consumer
   * (`maxAckPending` 1) the run from the head up to the first message not visible, else the visible ones of the
   * head window. Empty when nothing is visible.
   */
  claimRun(consumer: ConsumerSpec, skip: Set<number>, max: number): Claim[] {
    if (!this.inTransaction && !this.nextVisible(consumer, skip, Date.now())) return [];
    return this.claimRunIn(consumer, skip, max).claims;
  }

  /** `claimRun` without the look first: for a loop woken by a publish in this process, which finds work nearly always. */
  claimPublishedRun(consumer: ConsumerSpec, skip: Set<number>, max: number): Claim[] {
    return this.claimRunIn(consumer, skip, max).claims;
  }

  /** `claimRun` in a transaction; `nothingPending`: the consumer had no message pending at all (none leased or delayed either). */
  private claimRunIn(consumer: ConsumerSpec, skip: Set<number>, max: number): { claims: Claim[]; nothingPending: boolean } {
    return this.transaction(() => {
      const now = Date.now();
      const ordered = consumer.maxAckPending === 1;
      const window = this.db
        .prepare('SELECT seq, deliveries, visible_at FROM bus_pending WHERE durable = ? ORDER BY seq LIMIT ?')
        .all(consumer.durable, ordered ? max : consumer.maxAckPending) as unknown as PendingRow[];
      if (window.length === 0) return { claims: [], nothingPending: true };
      const run: PendingRow[] = [];
      for (const r of window) {
        const available = r.visible_at <= now && !skip.has(Number(r.seq));
        if (available) run.push(r);
        else if (ordered) break;
        if (run.length >= max) break;
      }
      const claims: Claim[] = [];
      for (const next of run) {
        const deliveries = Number(next.deliveries) + 1;
        this.db.prepare('UPDATE bus_pending SET deliveries = ?, visible_at = ? WHERE durable = ? AND seq = ?').run(deliveries, now + consumer.ackWaitMs, consumer.durable, next.seq);
        const row = this.db.prepare('SELECT seq, stream, subject, msg_id, data, headers FROM bus_messages WHERE seq = ?').get(next.seq) as unknown as MessageRow | undefined;
        if (row) claims.push({ row, deliveries });
        else this.db.prepare('DELETE FROM bus_pending WHERE durable = ? AND seq = ?').run(consumer.durable, next.seq);
      }
      return { claims, nothingPending: false };
    });
  }

  /**
   * Settles the handled messages of a run, gives back the ones not handled (their delivery not counted), and,
   * unless `claimMore` is false, claims the next run: one commit. `nothingPending`: that claim found the consumer
   * with no message pending at all, so the loop may sleep without looking again (until woken).
   */
  settleRun(
    consumer: ConsumerSpec,
    handled: ReadonlyArray<{ claim: Claim; settlement: Settlement }>,
    unhandled: readonly Claim[],
    skip: Set<number>,
    settler: ConsumerLoop,
    claimMore: boolean,
  ): { claims: Claim[]; nothingPending: boolean } {
    return this.transaction(() => {
      for (const { claim, settlement } of handled) this.apply(consumer, claim.row, claim.deliveries, settlement, settler);
      for (const claim of unhandled) this.release(consumer, claim);
      return claimMore ? this.claimRunIn(consumer, skip, runLength(consumer)) : { claims: [], nothingPending: false };
    });
  }

  /** Renews the leases of messages in hand (a run being worked through), in one commit. */
  extendLeases(consumer: ConsumerSpec, seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.transaction(() => {
      for (const seq of seqs) this.extendLease(consumer, seq);
    });
  }

  private nextVisible(consumer: ConsumerSpec, skip: Set<number>, now: number): PendingRow | undefined {
    const window = this.db
      .prepare('SELECT seq, deliveries, visible_at FROM bus_pending WHERE durable = ? ORDER BY seq LIMIT ?')
      .all(consumer.durable, consumer.maxAckPending) as unknown as PendingRow[];
    return window.find((r) => r.visible_at <= now && !skip.has(Number(r.seq)));
  }

  /** Settles a delivered message and claims the consumer's next one in the same transaction: one commit per message, not two. */
  settleAndClaimNext(consumer: ConsumerSpec, row: MessageRow, deliveries: number, settlement: Settlement, skip: Set<number>, settler: ConsumerLoop): Claim | undefined {
    return this.transaction(() => {
      this.apply(consumer, row, deliveries, settlement, settler);
      return this.claimNext(consumer, skip);
    });
  }

  /** Gives back a claim not handed to the handler (the loop stopped): visible again, its delivery not counted. */
  release(consumer: ConsumerSpec, claim: Claim): void {
    this.db.prepare('UPDATE bus_pending SET deliveries = ?, visible_at = 0 WHERE durable = ? AND seq = ?').run(claim.deliveries - 1, consumer.durable, claim.row.seq);
  }

  /**
   * Milliseconds until something in the head window becomes visible (a delayed nak, an expired lease), or
   * undefined when the window is empty: then only a publish, an ack or another process's commit wakes the loop.
   */
  waitHint(consumer: ConsumerSpec): number | undefined {
    const head = this.db
      .prepare('SELECT MIN(visible_at) AS at FROM (SELECT visible_at FROM bus_pending WHERE durable = ? ORDER BY seq LIMIT ?)')
      .get(consumer.durable, consumer.maxAckPending) as { at: number | null };
    if (head.at === null) return undefined;
    return Math.min(MAX_TIMER_MS, Math.max(1, Number(head.at) - Date.now()));
  }

  /** Wakes the loops whose filter matches; which ones is worked out once per subject, not for every loop at every publish. */
  private wakeConsumersOf(subject: string): void {
    let matching = this.loopsBySubject.get(subject);
    if (!matching) {
      matching = [...this.loops].filter((loop) => subjectMatches(loop.consumer.filterSubject, subject));
      if (this.loopsBySubject.size >= MAX_REMEMBERED_SUBJECTS) this.loopsBySubject.clear();
      this.loopsBySubject.set(subject, matching);
    }
    for (const loop of matching) loop.wake(true);
  }

  private wakeConsumersNamed(durable: string, except?: ConsumerLoop): void {
    for (const loop of this.loops) if (loop.consumer.durable === durable && loop !== except) loop.wake();
  }

  /**
   * While consumers run, one timer per bus notices commits by other connections to the file and wakes the loops
   * whose durable has visible work. Most such commits are the embedded store's (it shares the file): the pending
   * messages are read only when another process published (a message sequence this process did not use), or when a
   * loop sleeps until a lease or delay runs out (another process's settle or release may have freed its window
   * sooner). A loop sleeping without a timer had an empty window at its last look, so only a publish brings it work;
   * after another process's publish the loops with anything pending look (what that process holds, they wait for).
   */
  private watchForeignCommits(): void {
    if (this.foreignCommitTimer) return;
    this.dataVersion = this.readDataVersion();
    this.knownSequence = Math.max(this.knownSequence, this.readSequence());
    this.foreignCommitTimer = setInterval(() => {
      if (this.closed) return;
      const version = this.readDataVersion();
      if (version === this.dataVersion) return;
      this.dataVersion = version;
      const sequence = this.readSequence();
      const published = sequence > this.knownSequence || this.sequenceSkipped;
      this.knownSequence = Math.max(this.knownSequence, sequence);
      this.sequenceSkipped = false;
      let pending: { durable: string }[];
      // Another process's messages may be held by it already: the loops look anyway, so they wait for what is held.
      if (published) pending = this.db.prepare('SELECT DISTINCT durable FROM bus_pending').all() as { durable: string }[];
      else if ([...this.loops].some((loop) => loop.sleepsUntilVisible)) pending = this.db.prepare('SELECT DISTINCT durable FROM bus_pending WHERE visible_at <= ?').all(Date.now()) as { durable: string }[];
      else return;
      const durables = new Set(pending.map((r) => r.durable));
      for (const loop of this.loops) if (durables.has(loop.consumer.durable)) loop.wake();
    }, this.pollIntervalMs);
  }

  /** The last message sequence used in the file (by any process; it never goes down, also when messages are pruned). */
  private readSequence(): number {
    const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'bus_messages'").get() as { seq: number } | undefined;
    return Number(row?.seq ?? 0);
  }

  private stopWatchingForeignCommits(): void {
    clearInterval(this.foreignCommitTimer);
    this.foreignCommitTimer = undefined;
  }

  private readDataVersion(): number {
    return Number((this.db.prepare('PRAGMA data_version').get() as { data_version: number }).data_version);
  }

  extendLease(consumer: ConsumerSpec, seq: number): void {
    this.db.prepare('UPDATE bus_pending SET visible_at = ? WHERE durable = ? AND seq = ?').run(Date.now() + consumer.ackWaitMs, consumer.durable, seq);
  }

  /** `settler`: the loop that settles and looks for its next message itself, so it is not woken by its own settle. */
  apply(consumer: ConsumerSpec, row: MessageRow, deliveries: number, settlement: Settlement, settler?: ConsumerLoop): void {
    this.transaction(() => {
      if (settlement.kind === 'nak') {
        this.db.prepare('UPDATE bus_pending SET visible_at = ? WHERE durable = ? AND seq = ?').run(Date.now() + settlement.delayMs, consumer.durable, row.seq);
        return;
      }
      if (settlement.kind === 'notOwned') {
        // Not counted: the delivery this claim took is given back.
        this.db
          .prepare('UPDATE bus_pending SET deliveries = ?, visible_at = ? WHERE durable = ? AND seq = ?')
          .run(Math.max(0, deliveries - 1), Date.now() + settlement.delayMs, consumer.durable, row.seq);
        return;
      }
      if (settlement.kind === 'dead') {
        const letter: DeadLetter = {
          stream: row.stream,
          subject: row.subject,
          consumer: consumer.durable,
          messageId: row.msg_id,
          reason: settlement.reason,
          deliveryCount: deliveries,
          dataBase64: Buffer.from(row.data).toString('base64'),
          headers: JSON.parse(row.headers) as Headers,
          deadAt: Date.now(),
        };
        this.append(this.options.deadLetterSubject(consumer.durable), encodeJson(letter), `${consumer.durable}:${row.seq}`, {});
      }
      this.db.prepare('DELETE FROM bus_pending WHERE durable = ? AND seq = ?').run(consumer.durable, row.seq);
    });
    if (settlement.kind === 'dead') {
      this.observer.deadLettered(consumer.durable, settlement.reason);
      this.wakeConsumersOf(this.options.deadLetterSubject(consumer.durable));
    }
    // A settled message frees a slot in the durable's window (or, nak'd, changes when it is visible again).
    this.wakeConsumersNamed(consumer.durable, settler);
    this.observer.handled(consumer.durable, settlement.kind === 'notOwned' ? 'nak' : settlement.kind);
  }

  get busObserver(): BusObserver {
    return this.observer;
  }
  get retryDelay(): (n: number) => number {
    return this.retryDelayMs;
  }

  async request<Req, Res>(subject: CommandSubject<Req, Res>, request: Req, options: { timeoutMs?: number; headers?: Headers } = {}): Promise<Res> {
    this.assertOpen();
    const entries = [...this.responders.values()].filter((r) => subjectMatches(r.pattern, subject) && r.servers.length > 0);
    if (entries.length === 0) throw new BusRequestError(`no responder for ${subject}`, subject, 'no-responder');
    const headers: Headers = { ...options.headers };
    const commands = [...(this.options.commands ?? []), ...entries.flatMap((e) => e.commands)];
    const timeoutMs = requestTimeoutMs({ ...this.options, commands }, subject, options.timeoutMs);
    const answer = async (): Promise<Res> => {
      const chosen = await chooseServer(entries);
      if (!chosen) throw new BusRequestError(`no responder for ${subject}: no subscriber owns it now`, subject, 'no-responder');
      // Round-trip through JSON so callers get the same copy semantics as over the network.
      return withConsumerSpan(subject, '', chosen.pattern, headers, async () => decodeJson<Res>(encodeJson(await chosen.handler(decodeJson<Req>(encodeJson(request)), { subject, headers }))));
    };
    return withProducerSpan(subject, '', headers, async () =>
      answerWithin(answer(), timeoutMs, () => new BusRequestError(`no answer from ${subject} within ${timeoutMs} ms`, subject, 'timeout', timeoutMs)),
    );
  }

  async serve<Req, Res>(command: CommandSpec<Req, Res>, handler: RequestHandler<Req, Res>, options: ServeOptions = {}): Promise<BusSubscription> {
    const ownerRouted = options.ownedNow !== undefined;
    const key = `${command.pattern}\u0000${command.queueGroup}\u0000${ownerRouted ? 'owner' : 'queue'}`;
    const entry: Responders = this.responders.get(key) ?? { pattern: command.pattern, servers: [], next: 0, commands: [], ownerRouted };
    const server: Server = { handler: handler as RequestHandler<unknown, unknown>, ownedNow: options.ownedNow };
    entry.servers.push(server);
    entry.commands.push(command as CommandSpec<unknown, unknown>);
    this.responders.set(key, entry);
    return {
      name: command.queueGroup,
      stop: async () => {
        entry.servers = entry.servers.filter((s) => s !== server);
      },
    };
  }

  async consumerStats(consumer: ConsumerSpec): Promise<ConsumerStats> {
    const now = Date.now();
    const row = this.db
      .prepare('SELECT SUM(CASE WHEN deliveries > 0 AND visible_at > ? THEN 1 ELSE 0 END) AS inflight, COUNT(*) AS total, MIN(seq) AS oldest FROM bus_pending WHERE durable = ?')
      .get(now, consumer.durable) as { inflight: number | null; total: number; oldest: number | null };
    const ackPending = Number(row.inflight ?? 0);
    const oldest = row.oldest === null ? undefined : (this.db.prepare('SELECT published_at FROM bus_messages WHERE seq = ?').get(row.oldest) as { published_at: number } | undefined);
    return { pending: Number(row.total) - ackPending, ackPending, oldestUnsettledAgeMs: oldest ? Math.max(0, now - Number(oldest.published_at)) : 0 };
  }

  /** Reads a stream's messages (dead letters, tests). */
  readStream<T>(streamName: string, filter = '>'): { subject: string; messageId: string; data: T }[] {
    const rows = this.db.prepare('SELECT subject, msg_id, data FROM bus_messages WHERE stream = ? ORDER BY seq').all(streamName) as unknown as MessageRow[];
    return rows.filter((r) => subjectMatches(filter, r.subject)).map((r) => ({ subject: r.subject, messageId: r.msg_id, data: decodeJson<T>(r.data) }));
  }

  private deadLetterStream(): string {
    return this.streamFor(this.options.deadLetterSubject('any')).name;
  }

  async listDeadLetters(): Promise<StoredDeadLetter[]> {
    const rows = this.db.prepare('SELECT seq, data FROM bus_messages WHERE stream = ? ORDER BY seq').all(this.deadLetterStream()) as unknown as MessageRow[];
    return rows.map((r) => ({ sequence: Number(r.seq), letter: decodeJson<DeadLetter>(r.data) }));
  }

  async removeDeadLetter(sequence: number): Promise<boolean> {
    const removed = this.db.prepare('DELETE FROM bus_messages WHERE stream = ? AND seq = ?').run(this.deadLetterStream(), sequence);
    return Number(removed.changes) > 0;
  }

  /** One pass at a time; a pass still running when the timer fires again is not doubled. */
  private prune(): Promise<void> {
    this.pruning ??= this.pruneInChunks().finally(() => (this.pruning = undefined));
    return this.pruning;
  }

  /**
   * Only what every consumer settled: an unread message of a stopped consumer, a message on a subject no consumer
   * reads yet, or a dead letter stays however old. In chunks with a turn of the event loop between them: the
   * listeners share this thread, and one pass over a large settled backlog (a 5,000-PDU burst leaves ~15,000 rows
   * across the streams) held them all for its whole length (issue 19).
   */
  private async pruneInChunks(): Promise<void> {
    for (const stream of this.options.streams) {
      if (!stream.pruneWhenConsumed) continue;
      let after = 0;
      for (;;) {
        if (this.closed) return;
        const filters = (this.db.prepare('SELECT filter_subject FROM bus_consumers WHERE stream = ?').all(stream.name) as { filter_subject: string }[]).map((c) => c.filter_subject);
        const settled = this.db
          .prepare(
            'SELECT seq, subject FROM bus_messages WHERE stream = ? AND seq > ? AND published_at < ? AND NOT EXISTS (SELECT 1 FROM bus_pending p WHERE p.seq = bus_messages.seq) ORDER BY seq LIMIT ?',
          )
          .all(stream.name, after, Date.now() - stream.duplicateWindowMs, PRUNE_CHUNK) as { seq: number; subject: string }[];
        if (settled.length === 0) break;
        const remove = this.db.prepare('DELETE FROM bus_messages WHERE seq = ?');
        this.transaction(() => {
          for (const m of settled) if (filters.some((f) => subjectMatches(f, m.subject))) remove.run(m.seq);
        });
        after = Number(settled.at(-1)!.seq);
        if (settled.length < PRUNE_CHUNK) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('bus is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.loops].map((l) => l.stop()));
    this.closed = true;
    await this.pruning;
    clearInterval(this.pruneTimer);
    this.stopWatchingForeignCommits();
    if (!this.options.connection) this.connection.close();
  }
}

/**
 * Turns of the event loop while loops work. The store and this bus are synchronous SQLite, so a handler seldom
 * waits on real I/O: without turns a loop with a backlog went from message to message on promise continuations
 * alone, and the listeners (a `/send`, `/version`) and timers waited until the whole backlog was done — the ~0.5 s
 * stalls of the steady-load run (issue 19). A loop lets the event loop turn once `SLICE_MS` went by since it last
 * did; a loop woken by a publish waits for the next turn before claiming, so it finds the run published meanwhile
 * instead of one message (fewer claims and settles, and bigger application-service transactions).
 */
export const SLICE_MS = 5;
/**
 * How long the loops may hold one turn together. With an immediate each, every busy loop took its slice in the same
 * turn, so a listener waited behind all of them: up to 16 busy partitions × 3 stages × 5 ms with 20 rooms interleaved
 * (issue 19, `/version` p99 91 ms there). Loops that yield now wait in one queue and go one at a time, each for a
 * whole slice (the runs they hand on stay as big), while the turn lasts; those not reached go first at the next turn
 * (none starves), and loops that start waiting during a turn wait for the next one. Four slices: as long as a turn
 * lasted with one room busy (its stages' loops); two made the loops hand on smaller runs (back to back, ~30% more CPU
 * per PDU in a medium load run).
 */
export const TURN_MS = 4 * SLICE_MS;
let turnedAt = performance.now();
let turnStartedAt = turnedAt;
let waitingForTurn: Array<() => void> = [];
let thisTurn: Array<() => void> = [];
let turnScheduled = false;
const nextTurn = () =>
  new Promise<void>((resolve) => {
    waitingForTurn.push(resolve);
    if (!turnScheduled) {
      turnScheduled = true;
      setImmediate(startTurn);
    }
  });
function startTurn(): void {
  turnStartedAt = performance.now();
  thisTurn = thisTurn.concat(waitingForTurn);
  waitingForTurn = [];
  letNextGo();
}
function letNextGo(): void {
  const next = thisTurn.shift();
  if (!next) return endTurn();
  // A tick queued from a promise job runs once the microtask queue is empty: once this loop has stopped.
  void Promise.resolve().then(() => {
    turnedAt = performance.now();
    next();
    process.nextTick(afterOne);
  });
}
function afterOne(): void {
  if (thisTurn.length > 0 && performance.now() - turnStartedAt < TURN_MS) letNextGo();
  else endTurn();
}
function endTurn(): void {
  if (thisTurn.length > 0 || waitingForTurn.length > 0) setImmediate(startTurn);
  else turnScheduled = false;
}
const sliceOver = () => (performance.now() - turnedAt >= SLICE_MS ? nextTurn() : undefined);

class ConsumerLoop {
  private running = true;
  private done: Promise<void> = Promise.resolve();
  private wakeSleeper: (() => void) | undefined;
  /** Set when woken while busy, so work announced during a delivery is looked for before sleeping. */
  private woken = false;
  /**
   * Set when the last settle's claim found nothing pending for the consumer, cleared by a wake: the loop then sleeps
   * without reading the pending window twice more (a look and a wait hint), per run when PDUs come a few at a time.
   */
  private nothingPending = false;
  /** Set when woken by a publish in this process since the last claim: the next claim skips its read-only look. */
  private published = false;
  private readonly inFlight = new Set<number>();
  /** Asleep until a lease or a delay in its window runs out (unless woken sooner). */
  sleepsUntilVisible = false;

  constructor(
    private readonly bus: EmbeddedBus,
    readonly consumer: ConsumerSpec,
    private readonly handler: MessageHandler<unknown>,
    private readonly options: ConsumeOptions,
  ) {}

  run(): void {
    const limit = Math.max(1, Math.min(this.consumer.concurrency ?? 1, this.consumer.maxAckPending));
    const running = new Set<Promise<void>>();
    this.done = (async () => {
      let claimed: Claim | undefined;
      let run: Claim[] = [];
      try {
        while (this.running) {
          this.woken = false;
          if (limit === 1) {
            const idle = run.length === 0 && this.nothingPending;
            this.nothingPending = false;
            if (run.length === 0 && !idle) {
              run = this.published
                ? this.bus.claimPublishedRun(this.consumer, this.inFlight, runLength(this.consumer))
                : this.bus.claimRun(this.consumer, this.inFlight, runLength(this.consumer));
              this.published = false;
            }
            if (run.length === 0) {
              if (!this.woken) {
                await this.sleep(idle ? undefined : this.bus.waitHint(this.consumer));
                // Woken (by a publish, mostly): what the publisher hands on until its slice is over comes in one run.
                await nextTurn();
              }
              continue;
            }
            const rest = run;
            run = [];
            run = await this.deliverRun(rest);
            continue;
          }
          if (running.size >= limit) {
            // Every handler slot is taken: a finishing delivery wakes the loop.
            if (!this.woken) await this.sleep(this.bus.waitHint(this.consumer));
            continue;
          }
          claimed ??= this.bus.claimNext(this.consumer, this.inFlight);
          if (!claimed) {
            if (!this.woken) await this.sleep(this.bus.waitHint(this.consumer));
            continue;
          }
          // Concurrent handlers: a delivery that fails to settle stays claimed and comes back after ackWait.
          const { row, deliveries } = claimed;
          claimed = undefined;
          const delivery: Promise<void> = this.deliver(row, deliveries, false)
            .then(
              () => undefined,
              () => undefined,
            )
            .finally(() => {
              running.delete(delivery);
              this.wake();
            });
          running.add(delivery);
          await sliceOver();
        }
      } finally {
        await Promise.allSettled(running);
        if (claimed) this.bus.release(this.consumer, claimed);
        for (const claim of run) this.bus.release(this.consumer, claim);
      }
    })();
  }

  /** `published`: by a publish in this process (work to claim, nearly always). */
  wake(published = false): void {
    this.woken = true;
    this.nothingPending = false;
    if (published) this.published = true;
    this.wakeSleeper?.();
  }

  /** Sleeps until woken, or `ms` later when something becomes visible by then. */
  private sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.wakeSleeper = undefined;
        this.sleepsUntilVisible = false;
        resolve();
      };
      this.sleepsUntilVisible = ms !== undefined;
      if (ms !== undefined) timer = setTimeout(done, ms);
      this.wakeSleeper = done;
    });
  }

  /**
   * A claimed run, one message at a time in order, then one commit settling what was handled and claiming the next
   * run. A message not acked (a nak: redelivered later) ends the run: the rest is given back, so order holds.
   */
  private async deliverRun(run: Claim[]): Promise<Claim[]> {
    const handled: Array<{ claim: Claim; settlement: Settlement }> = [];
    const inHand = new Set(run.map((c) => Number(c.row.seq)));
    for (const seq of inHand) this.inFlight.add(seq);
    // The run's leases were written at its claim; renewed for the rest of the run once a quarter of the ack wait is gone.
    const lease = { at: Date.now() };
    let next = 0;
    // One heartbeat for the run (a timer per message was a share of the per-PDU cost): it renews what is still in hand.
    const renew = () => {
      lease.at = Date.now();
      this.bus.extendLeases(this.consumer, [...inHand]);
    };
    try {
      await whileWorking(this.consumer.ackWaitMs, renew, async () => {
        while (next < run.length && this.running) {
          const claim = run[next++]!;
          if (Date.now() - lease.at >= this.consumer.ackWaitMs / 4) renew();
          const settlement = await this.handle(claim.row, claim.deliveries, [...inHand], lease, false);
          inHand.delete(Number(claim.row.seq));
          handled.push({ claim, settlement });
          if (settlement.kind === 'nak' || settlement.kind === 'notOwned') break;
          if (next < run.length) await sliceOver();
        }
      });
    } finally {
      for (const claim of run) this.inFlight.delete(Number(claim.row.seq));
    }
    if (run.length > 1) await this.beforeSettle(handled);
    // The settle's claim sees everything published until now.
    this.published = false;
    const more = this.bus.settleRun(this.consumer, handled, run.slice(next), this.inFlight, this, this.running);
    this.nothingPending = more.nothingPending;
    await sliceOver();
    return more.claims;
  }

  /** Handles one message and settles it (the concurrent path); one handler at a time goes through `deliverRun`. */
  private async deliver(row: MessageRow, deliveries: number, claimNext: boolean): Promise<Claim | undefined> {
    const seq = Number(row.seq);
    this.inFlight.add(seq);
    try {
      const settlement = await this.handle(row, deliveries, [seq], { at: Date.now() });
      this.inFlight.delete(seq);
      return this.settle(row, deliveries, settlement, claimNext);
    } finally {
      this.inFlight.delete(seq);
    }
  }

  /** The subscription's `beforeSettle` (a handler of the run was told more was in hand); if it fails, the acks become naks. */
  private async beforeSettle(handled: Array<{ claim: Claim; settlement: Settlement }>): Promise<void> {
    if (!this.options.beforeSettle || handled.length === 0) return;
    try {
      await this.options.beforeSettle();
    } catch {
      for (const h of handled) if (h.settlement.kind === 'ack') h.settlement = settle({ error: new Error('work of the run not done before settling') }, h.claim.deliveries, this.consumer.maxDeliver, this.bus.retryDelay);
    }
  }

  /**
   * Runs the handler on one message; `inHand`: the messages whose leases it renews (itself first), last renewed
   * `lease.at`. `beat`: a heartbeat of its own renews them while it works (not in a run: the run has one).
   */
  private async handle(row: MessageRow, deliveries: number, inHand: readonly number[], lease: { at: number }, beat = true): Promise<Settlement> {
    const { consumer, bus } = this;
    const seq = Number(row.seq);
    if (deliveries > 1) bus.busObserver.redelivered(consumer.durable);
    const exhausted = exhaustedBeforeHandling(deliveries, consumer.maxDeliver);
    if (exhausted) return exhausted;
    const headers = JSON.parse(row.headers) as Headers;
    return withConsumerSpan(row.subject, row.msg_id, consumer.durable, headers, async () => {
      try {
        const run = async () =>
            this.handler({
              stream: row.stream,
              consumer: consumer.durable,
              subject: row.subject,
              messageId: row.msg_id,
              sequence: seq,
              deliveryCount: deliveries,
              headers,
              data: decodeJson(row.data),
              // The rest of the run is in hand and comes next, unless this one is nak'd or the loop stops.
              moreInHand: inHand.length > 1,
              working: () => {
                // A lease with more than three quarters of its time left is not written again (one write per PDU before).
                if (Date.now() - lease.at < consumer.ackWaitMs / 4) return;
                lease.at = Date.now();
                bus.extendLeases(consumer, inHand);
              },
            });
        const outcome = beat
          ? await whileWorking(
              consumer.ackWaitMs,
              () => {
                lease.at = Date.now();
                bus.extendLeases(consumer, inHand);
              },
              run,
            )
          : await run();
        return settle({ outcome }, deliveries, consumer.maxDeliver, bus.retryDelay);
      } catch (error) {
        return settle({ error }, deliveries, consumer.maxDeliver, bus.retryDelay);
      }
    });
  }

  private settle(row: MessageRow, deliveries: number, settlement: Settlement, claimNext: boolean): Claim | undefined {
    // A stopping loop claims nothing more: a claim would hold the message until its lease ran out.
    if (!this.running || !claimNext) {
      this.bus.apply(this.consumer, row, deliveries, settlement);
      return undefined;
    }
    return this.bus.settleAndClaimNext(this.consumer, row, deliveries, settlement, this.inFlight, this);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.done;
  }
}

interface Server {
  handler: RequestHandler<unknown, unknown>;
  ownedNow?: ServeOptions['ownedNow'];
}

/** The servers of one pattern: a queue group's (taken in turn), or owner-routed ones (`ServeOptions.ownedNow`). */
interface Responders {
  pattern: string;
  servers: Server[];
  next: number;
  commands: CommandSpec<unknown, unknown>[];
  ownerRouted: boolean;
}

/** The owner among owner-routed servers (the first whose `ownedNow()` holds), else the queue group's next. */
async function chooseServer(entries: Responders[]): Promise<{ pattern: string; handler: RequestHandler<unknown, unknown> } | undefined> {
  for (const entry of entries.filter((e) => e.ownerRouted)) {
    for (const server of [...entry.servers]) {
      if (await Promise.resolve().then(server.ownedNow).catch(() => false)) return { pattern: entry.pattern, handler: server.handler };
    }
  }
  const queued = entries.find((e) => !e.ownerRouted && e.servers.length > 0);
  if (!queued) return undefined;
  return { pattern: queued.pattern, handler: queued.servers[queued.next++ % queued.servers.length]!.handler };
}

/** The answer, or the timeout's error once `timeoutMs` passed; a late answer (or failure) is dropped. */
function answerWithin<T>(answer: Promise<T>, timeoutMs: number, timedOut: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timedOut()), timeoutMs);
    answer.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
