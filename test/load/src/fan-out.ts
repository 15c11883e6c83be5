// Outbound fan-out: N simulated homeservers (each its own key and TLS listener) join one room on the target,
// then one local message is sent; how long until the first and the last of them received it, and the target's
// RSS with them all joined.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { computeEventId } from '@fedgate/protocol';
import { issueServerCertificate, type TestCertificateAuthority } from '@fedgate/testing';
import { meterGenerator, type GeneratorUse } from './generator-meter';
import { PeerShard, type FanOutPeer } from './peer-shard';
import { sampleProcesses } from './process-meter';
import { ResponsivenessProbe } from './responsiveness-probe';
import { SimulatedHomeserver } from './simulated-homeserver';
import type { Target } from './targets';

export interface FanOutResult {
  servers: number;
  /** Worker threads the simulated servers answered from (0: all on the generator's main thread). */
  generatorThreads: number;
  build: RoomBuild;
  joinConcurrency: number;
  /** Joins tried again after failing on the way (each at most twice). */
  joinRetries: number;
  /** Starting the simulated servers (one shared TLS certificate). */
  startSeconds: number;
  /** How long serving the joins took (up to `joinConcurrency` in flight, partial state), and the last one, served alone into the full room (whole state). */
  joinSeconds: number;
  lastJoinMs: number;
  lastMakeJoinMs: number;
  lastSendJoinMs: number;
  /** The generator's own CPU while the room was built (its share of the two cores is not the target's). */
  generatorCpuSeconds: number;
  sendMs: number;
  /** The first message, after every simulated server closed its idle connections (the target connects to each again, resuming its TLS session). */
  firstDeliveryMs?: number;
  allDeliveredMs?: number;
  received: number;
  firstBuiltMs?: number;
  lastBuiltMs?: number;
  /** The generator's CPU and main-thread busyness during that message. */
  generator?: GeneratorUse;
  /** A second message right after the first, every connection open. */
  warm: Deliveries;
  /** Before those two: a message after every connection closed and every server forgot its TLS sessions (a full handshake each). */
  firstContact: Deliveries;
  /** Idle with every server joined (connections to them open), before the messages; and after them. */
  rssJoinedBytes: number;
  rssBytes: number;
  /** After the target closed its idle connections to the simulated servers (its `egress.idleConnectionTimeoutMs`), and how long that took from the last message. */
  rssConnectionsClosedBytes?: number;
  connectionsClosedAfterMs?: number;
  cpuSeconds: number;
  /** The target's federation /version answer time (a server outside the room asking every 250 ms) while the room was built, and during the three messages. */
  versionDuringJoinsMs: { p50?: number; p99?: number };
  versionDuringMessagesMs: { p50?: number; p99?: number };
  /** The gateway's own event-loop delay over the same two spans (where the target reports it): the probe's answer time also holds the generator's own turns. */
  eventLoopDuringJoinsMs?: { p99Ms?: number; maxMs?: number };
  eventLoopDuringMessagesMs?: { p99Ms?: number; maxMs?: number };
}

/** The rooms the load run creates are version 10: event IDs are reference hashes. */
function computeId(raw: Record<string, unknown>): string {
  const { unsigned: _unsigned, ...pdu } = raw;
  return computeEventId(pdu, '10');
}

/** A server the generator's main thread runs (the ones that join or relay joins). */
function onMainThread(sim: FanOutPeer): SimulatedHomeserver {
  if (!(sim instanceof SimulatedHomeserver)) throw new Error(`${sim.name} runs in a worker thread`);
  return sim;
}

/** Runs `work` on each of `items`, at most `limit` at once. */
async function inBatches<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(work));
}

/** Waits until no simulated server has received a transaction for `quietMs` (the target's egress is idle). */
async function untilNoneReceives(sims: readonly FanOutPeer[], quietMs = 2_000): Promise<void> {
  const received = () => sims.reduce((sum, sim) => sum + sim.received, 0);
  let seen = -1;
  while (received() !== seen) {
    seen = received();
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  }
}

/** Waits until no simulated server has a connection open (the target closed its idle ones); false after `timeoutMs`. */
async function untilNoConnections(sims: readonly FanOutPeer[], timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    let open = 0;
    for (const sim of sims) open += await sim.openConnections();
    if (open === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

/** SIGUSR2 to processes started with --heapsnapshot-signal=SIGUSR2; waits until each one's snapshot is written out. */
async function writeHeapSnapshots(pids: readonly number[], dir: string): Promise<void> {
  const sizes = () => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')).map((f) => statSync(path.join(dir, f)).size);
  const before = sizes().length;
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  let seen = '';
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const now = sizes();
    if (now.length >= before + pids.length && now.join() === seen) return;
    seen = now.join();
  }
}

interface Deliveries {
  firstDeliveryMs?: number;
  allDeliveredMs?: number;
  received: number;
  /** When the target built the first and the last of these transactions (their origin_server_ts), from `sentAt`. */
  firstBuiltMs?: number;
  lastBuiltMs?: number;
  /** The generator's CPU and main-thread busyness from the message's send until the last delivery. */
  generator?: GeneratorUse;
}

/** When each simulated server received the event, counted from `sentAt`. */
async function deliveries(sims: readonly FanOutPeer[], eventId: string, sentAt: number, timeoutMs: number): Promise<Deliveries> {
  const receivedAt = new Map<FanOutPeer, number>();
  const builtAt: number[] = [];
  const scanned = new Map<FanOutPeer, number>();
  while (receivedAt.size < sims.length && Date.now() - sentAt < timeoutMs) {
    for (const sim of sims) {
      if (receivedAt.has(sim)) continue;
      const log = sim.arrivals;
      for (let i = scanned.get(sim) ?? 0; i < log.length; i++) {
        if ((log[i]!.eventIds ?? log[i]!.pdus.map(computeId)).includes(eventId)) {
          receivedAt.set(sim, log[i]!.at);
          if (log[i]!.originTs !== undefined) builtAt.push(log[i]!.originTs!);
        }
      }
      scanned.set(sim, log.length);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const times = [...receivedAt.values()].map((t) => t - sentAt);
  return {
    firstDeliveryMs: times.length ? Math.min(...times) : undefined,
    allDeliveredMs: times.length === sims.length ? Math.max(...times) : undefined,
    received: receivedAt.size,
    firstBuiltMs: builtAt.length ? Math.min(...builtAt) - sentAt : undefined,
    lastBuiltMs: builtAt.length ? Math.max(...builtAt) - sentAt : undefined,
  };
}

/**
 * How the room gets its servers before the measured join. `joins`: each through make_join/send_join on the target, up
 * to `joinConcurrency` at once (partial state); the target sends each join on to every server already in, ~N²/2
 * deliveries, so a room of a thousand takes most of an hour on two cores. `relay`: the first server joins so, the
 * others' joins (each made and signed by its own server) reach the target in the first one's transactions, as when
 * servers join a big room through other residents; the target sends them to nobody, and the room is built in seconds.
 */
export type RoomBuild = 'joins' | 'relay';

/** Joins through make_join/send_join with `concurrency` in flight; a join failing on the way is tried again (twice at most). */
async function joinInParallel(target: Target, roomId: string, sims: readonly FanOutPeer[], concurrency: number, log: (line: string) => void): Promise<number> {
  const started = Date.now();
  let next = 0;
  let retries = 0;
  let joined = 0;
  const joinOne = async (): Promise<void> => {
    while (next < sims.length) {
      const sim = onMainThread(sims[next++]!); // the joins build runs every server on the main thread
      for (let attempt = 1; ; attempt++) {
        try {
          await sim.joinOnly(target.serverName, roomId, { omitMembers: true });
          joined++;
          if (joined % 100 === 0) log(`fan-out: ${joined} joined after ${((Date.now() - started) / 1000).toFixed(1)} s`);
          break;
        } catch (error) {
          if (attempt === 3) throw error;
          retries++;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, joinOne));
  return retries;
}

/** The first server joins through make_join/send_join; the others' joins follow in its transactions, 50 at a time. */
async function relayJoins(target: Target, roomId: string, sims: readonly FanOutPeer[], log: (line: string) => void): Promise<number> {
  const started = Date.now();
  const relay = await onMainThread(sims[0]!).join(target.serverName, roomId);
  const joins = [];
  for (const sim of sims.slice(1)) joins.push(await relay.relayedJoin(sim));
  for (let i = 0; i < joins.length; i += 50) {
    const answer = await onMainThread(sims[0]!).send(target.serverName, joins.slice(i, i + 50));
    if (answer.status !== 200 || answer.errors.length > 0) throw new Error(`relayed joins refused: ${answer.status} ${answer.errors.slice(0, 3).join('; ')}`);
  }
  // The target answers /send before every PDU is in the room: wait until its client sees them all joined.
  const expected = sims.length + 1;
  for (let seen = 0; seen < expected; ) {
    seen = await target.joinedMemberCount(roomId);
    if (seen < expected) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  log(`fan-out: ${sims.length} servers in the room (relayed joins) after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

/**
 * `generatorThreads` > 0 (relay build only): every server but the relaying first one and the last joiner answers from
 * one of that many worker threads, so the target's connections are not served one after the other by one thread.
 */
export async function fanOut(target: Target, ca: TestCertificateAuthority, servers: number, joinConcurrency = 8, heapSnapshotDir?: string, log: (line: string) => void = () => undefined, build: RoomBuild = 'relay', timeoutMs = 60_000, idleCloseWaitMs = 0, generatorThreads = 0): Promise<FanOutResult> {
  const sims: FanOutPeer[] = [];
  const shards: PeerShard[] = [];
  let prober: SimulatedHomeserver | undefined;
  const threads = build === 'relay' && servers > 2 ? generatorThreads : 0;
  try {
    const started = Date.now();
    const certificate = issueServerCertificate(ca);
    prober = await SimulatedHomeserver.start(ca, { certificate, keepTransactions: false });
    const startLocal = async () => {
      const sim = await SimulatedHomeserver.start(ca, { certificate, keepTransactions: false });
      // Idle connections kept a minute (as homeservers do; Node's 5 s default closed them while a slow fan-out still
      // ran, so "connections open" paid a TLS handshake per destination). The first message closes them on purpose.
      sim.wire.keepAliveTimeoutMs = 60_000;
      return sim;
    };
    if (threads > 0) {
      const first = await startLocal();
      const inShards = servers - 2;
      for (let t = 0; t < threads; t++) {
        const count = Math.floor(inShards / threads) + (t < inShards % threads ? 1 : 0);
        if (count > 0) shards.push(await PeerShard.start({ ca, certificate, servers: count }));
      }
      sims.push(first, ...shards.flatMap((shard) => shard.peers), await startLocal());
    } else {
      for (let i = 0; i < servers; i++) sims.push(await startLocal());
    }
    const startSeconds = (Date.now() - started) / 1000;
    log(`fan-out: ${servers} simulated servers started in ${startSeconds.toFixed(1)} s`);
    const roomId = await target.createRoom();
    const generatorCpu = process.cpuUsage();
    const joinsStarted = Date.now();
    await target.eventLoopDelay?.().catch(() => undefined);
    const joinsProbe = new ResponsivenessProbe(prober, target);
    let joinRetries = 0;
    if (build === 'relay') joinRetries = await relayJoins(target, roomId, sims.slice(0, -1), log);
    else joinRetries = await joinInParallel(target, roomId, sims.slice(0, -1), joinConcurrency, log);
    // Each join through the target is sent on to every server already in: wait until that backlog is gone. The last
    // join alone, with the whole state: serving one join into a room of `servers` members, not the queue before it.
    await untilNoneReceives(sims);
    const lastStarted = Date.now();
    const last = await onMainThread(sims.at(-1)!).joinOnly(target.serverName, roomId);
    const lastJoinMs = Date.now() - lastStarted;
    const joinSeconds = (Date.now() - joinsStarted) / 1000;
    const versionDuringJoinsMs = await joinsProbe.stop();
    const eventLoopDuringJoinsMs = await target.eventLoopDelay?.().catch(() => undefined);
    const used = process.cpuUsage(generatorCpu);
    const generatorCpuSeconds = (used.user + used.system) / 1e6;
    await untilNoneReceives(sims);
    if (heapSnapshotDir) await writeHeapSnapshots(target.pids(), heapSnapshotDir);
    for (const sim of sims) sim.keepTransactions = true;
    const rssJoinedBytes = sampleProcesses(target.pids()).rssBytes;
    // First contact: connections closed and no TLS session the servers would resume (their ticket keys replaced), so a
    // full handshake each, as for servers the target never reached before. A moment after closing: the target handles
    // a thousand closed sockets before the message, not during it.
    for (const sim of sims) {
      sim.forgetTlsSessions();
      sim.closeIdleConnections();
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await target.eventLoopDelay?.().catch(() => undefined);
    const messagesProbe = new ResponsivenessProbe(prober, target);
    const firstContactStarted = Date.now();
    log(`fan-out: the first contact message sent at ${new Date(firstContactStarted).toISOString()}`);
    let meter = meterGenerator(shards);
    const firstContact = await deliveries(sims, await target.sendMessage(roomId, 'to everyone, first contact'), firstContactStarted, timeoutMs);
    firstContact.generator = meter.stop();
    // Then connections closed again but sessions known (a destination whose connection idled out): resumed handshakes.
    await untilNoneReceives(sims);
    for (const sim of sims) sim.closeIdleConnections();
    log(`fan-out: connections closed at ${new Date().toISOString()}`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const cpuBefore = sampleProcesses(target.pids()).cpuSeconds;
    const sendStarted = Date.now();
    log(`fan-out: the resumed message sent at ${new Date(sendStarted).toISOString()}`);
    meter = meterGenerator(shards);
    const eventId = await target.sendMessage(roomId, 'to everyone');
    const sendMs = Date.now() - sendStarted;
    const cold = await deliveries(sims, eventId, sendStarted, timeoutMs);
    cold.generator = meter.stop();
    // Again at once, every connection now open: what the first message paid for connecting shows as the difference.
    const warmStarted = Date.now();
    log(`fan-out: the warm message sent at ${new Date(warmStarted).toISOString()}`);
    meter = meterGenerator(shards);
    const warm = await deliveries(sims, await target.sendMessage(roomId, 'to everyone, again'), warmStarted, timeoutMs);
    warm.generator = meter.stop();
    const versionDuringMessagesMs = await messagesProbe.stop();
    const eventLoopDuringMessagesMs = await target.eventLoopDelay?.().catch(() => undefined);
    const sample = sampleProcesses(target.pids());
    // Memory the connections held, once the target let them go (the simulated servers keep idle ones 60 s, so the
    // target closes them first).
    const closedWait = Date.now();
    const closed = idleCloseWaitMs > 0 && (await untilNoConnections(sims, idleCloseWaitMs));
    const connectionsClosedAfterMs = closed ? Date.now() - closedWait : undefined;
    const rssConnectionsClosedBytes = closed ? sampleProcesses(target.pids()).rssBytes : undefined;
    return {
      servers,
      generatorThreads: threads,
      build,
      joinConcurrency,
      joinRetries,
      startSeconds,
      joinSeconds,
      lastJoinMs,
      lastMakeJoinMs: last.makeJoinMs,
      lastSendJoinMs: last.sendJoinMs,
      generatorCpuSeconds,
      sendMs,
      ...cold,
      warm,
      firstContact,
      rssJoinedBytes,
      rssBytes: sample.rssBytes,
      rssConnectionsClosedBytes,
      connectionsClosedAfterMs,
      cpuSeconds: sample.cpuSeconds - cpuBefore,
      versionDuringJoinsMs,
      versionDuringMessagesMs,
      ...(eventLoopDuringJoinsMs ? { eventLoopDuringJoinsMs } : {}),
      ...(eventLoopDuringMessagesMs ? { eventLoopDuringMessagesMs } : {}),
    };
  } finally {
    await inBatches([...sims, ...(prober ? [prober] : [])], 100, (sim) => sim.stop());
  }
}
