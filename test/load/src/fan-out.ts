// Outbound fan-out: N simulated homeservers (each its own key and TLS listener) join one room on the target,
// then one local message is sent; how long until the first and the last of them received it, and the target's
// RSS with them all joined.
import { computeEventId } from '@fedgate/protocol';
import type { TestCertificateAuthority } from '@fedgate/testing';
import { sampleProcesses } from './process-meter';
import { SimulatedHomeserver } from './simulated-homeserver';
import type { Target } from './targets';

export interface FanOutResult {
  servers: number;
  /** How long serving the joins took, the last one alone (it is the slowest: the room is biggest). */
  joinSeconds: number;
  lastJoinMs: number;
  sendMs: number;
  firstDeliveryMs?: number;
  allDeliveredMs?: number;
  received: number;
  rssBytes: number;
  cpuSeconds: number;
}

/** The rooms the load run creates are version 10: event IDs are reference hashes. */
function computeId(raw: Record<string, unknown>): string {
  const { unsigned: _unsigned, ...pdu } = raw;
  return computeEventId(pdu, '10');
}

export async function fanOut(target: Target, ca: TestCertificateAuthority, servers: number, timeoutMs = 60_000): Promise<FanOutResult> {
  const sims: SimulatedHomeserver[] = [];
  try {
    for (let i = 0; i < servers; i++) sims.push(await SimulatedHomeserver.start(ca));
    const roomId = await target.createRoom();
    const joinsStarted = Date.now();
    let lastJoinMs = 0;
    for (const sim of sims) {
      const started = Date.now();
      await sim.join(target.serverName, roomId);
      lastJoinMs = Date.now() - started;
    }
    const joinSeconds = (Date.now() - joinsStarted) / 1000;
    const cpuBefore = sampleProcesses(target.pids()).cpuSeconds;
    const sendStarted = Date.now();
    const eventId = await target.sendMessage(roomId, 'to everyone');
    const sendMs = Date.now() - sendStarted;
    const receivedAt = new Map<SimulatedHomeserver, number>();
    const scanned = new Map<SimulatedHomeserver, number>();
    while (receivedAt.size < sims.length && Date.now() - sendStarted < timeoutMs) {
      for (const sim of sims) {
        if (receivedAt.has(sim)) continue;
        const log = sim.wire.transactions;
        for (let i = scanned.get(sim) ?? 0; i < log.length; i++) {
          if (log[i]!.pdus.some((p) => computeId(p) === eventId)) receivedAt.set(sim, Date.now());
        }
        scanned.set(sim, log.length);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const times = [...receivedAt.values()].map((t) => t - sendStarted);
    const sample = sampleProcesses(target.pids());
    return {
      servers,
      joinSeconds,
      lastJoinMs,
      sendMs,
      firstDeliveryMs: times.length ? Math.min(...times) : undefined,
      allDeliveredMs: times.length === sims.length ? Math.max(...times) : undefined,
      received: receivedAt.size,
      rssBytes: sample.rssBytes,
      cpuSeconds: sample.cpuSeconds - cpuBefore,
    };
  } finally {
    await Promise.all(sims.map((sim) => sim.stop()));
  }
}
