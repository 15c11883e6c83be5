// Simulated homeservers of a fan-out in worker threads (real peers are other machines): the servers of one shard listen
// and answer in their own thread, so their TLS handshakes and request parsing do not queue behind one another on the
// generator's main thread. The main thread sees each as a FanOutPeer: arrivals (event IDs computed in the worker),
// counts, and the few commands a fan-out run gives.
import path from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { computeEventId } from '@fedgate/protocol';
import type { EventFields, ServerCertificate, SignedEvent, TestCertificateAuthority } from '@fedgate/testing';
import type { Arrival } from './simulated-homeserver';

/** What a fan-out run needs of one receiving server, wherever it runs. */
export interface FanOutPeer {
  readonly name: string;
  readonly arrivals: Arrival[];
  /** `/send` transactions received, kept or not. */
  readonly received: number;
  keepTransactions: boolean;
  openConnections(): Promise<number>;
  forgetTlsSessions(): void;
  closeIdleConnections(): void;
  user(localpart: string): string;
  /** An event signed by this server's key (its relayed join). */
  sign(fields: EventFields, roomVersion: string): SignedEvent | Promise<SignedEvent>;
  stop(): Promise<void>;
}

export interface ShardData {
  ca: TestCertificateAuthority;
  certificate: ServerCertificate;
  servers: number;
}

export type ShardCommand =
  | { op: 'keep'; value: boolean }
  | { op: 'forget' }
  | { op: 'close-idle' }
  | { op: 'open'; id: number }
  | { op: 'sign'; id: number; index: number; fields: EventFields; roomVersion: string }
  | { op: 'stop'; id: number };

export type ShardMessage =
  | { type: 'ready'; names: string[] }
  | { type: 'received'; index: number; arrival?: Arrival }
  | { type: 'answer'; id: number; value: unknown };

/** The rooms the load run creates are version 10: event IDs are reference hashes. */
export function arrivalEventIds(pdus: readonly Record<string, unknown>[]): string[] {
  return pdus.map((raw) => {
    const { unsigned: _unsigned, ...pdu } = raw;
    return computeEventId(pdu, '10');
  });
}

/** One worker thread holding `servers` simulated homeservers. */
export class PeerShard {
  readonly peers: FanOutPeer[] = [];
  private readonly pending = new Map<number, (value: unknown) => void>();
  private nextId = 0;

  private constructor(private readonly worker: Worker) {}

  static async start(data: ShardData): Promise<PeerShard> {
    const entry = path.join(__dirname, 'peer-shard-worker.ts');
    const register = path.resolve(__dirname, '..', '..', 'support', 'src', 'swc-register.cjs');
    const worker = new Worker(`require(${JSON.stringify(register)}); require(${JSON.stringify(entry)});`, { eval: true, workerData: data });
    const shard = new PeerShard(worker);
    const names = await new Promise<string[]>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (message: ShardMessage) => {
        if (message.type === 'ready') resolve(message.names);
        else shard.onMessage(message);
      });
    });
    worker.on('error', (error) => console.error('peer shard: worker failed:', error));
    names.forEach((name, index) => shard.peers.push(new ShardPeer(shard, index, name)));
    return shard;
  }

  /** The worker thread's event-loop utilisation (as `performance.eventLoopUtilization`). */
  eventLoopUtilization(since?: EventLoopUtilization): EventLoopUtilization {
    return since ? this.worker.performance.eventLoopUtilization(since) : this.worker.performance.eventLoopUtilization();
  }

  send(command: ShardCommand): void {
    this.worker.postMessage(command);
  }

  ask<T>(command: (id: number) => ShardCommand): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      this.pending.set(id, resolve as (value: unknown) => void);
      this.send(command(id));
    });
  }

  async stop(): Promise<void> {
    await this.ask((id) => ({ op: 'stop', id }));
    await this.worker.terminate();
  }

  private onMessage(message: ShardMessage): void {
    if (message.type === 'answer') {
      this.pending.get(message.id)?.(message.value);
      this.pending.delete(message.id);
    } else if (message.type === 'received') {
      const peer = this.peers[message.index] as ShardPeer;
      peer.received++;
      if (message.arrival) peer.arrivals.push(message.arrival);
    }
  }
}

class ShardPeer implements FanOutPeer {
  readonly arrivals: Arrival[] = [];
  received = 0;
  private keep = false;

  constructor(
    private readonly shard: PeerShard,
    private readonly index: number,
    readonly name: string,
  ) {}

  get keepTransactions(): boolean {
    return this.keep;
  }

  set keepTransactions(value: boolean) {
    this.keep = value;
    // Every server of the shard at once: a run turns keeping on for all of them.
    if (this.index === 0) this.shard.send({ op: 'keep', value });
  }

  openConnections(): Promise<number> {
    // The shard's total, counted once (on its first server).
    return this.index === 0 ? this.shard.ask<number>((id) => ({ op: 'open', id })) : Promise.resolve(0);
  }

  forgetTlsSessions(): void {
    if (this.index === 0) this.shard.send({ op: 'forget' });
  }

  closeIdleConnections(): void {
    if (this.index === 0) this.shard.send({ op: 'close-idle' });
  }

  user(localpart: string): string {
    return `@${localpart}:${this.name}`;
  }

  sign(fields: EventFields, roomVersion: string): Promise<SignedEvent> {
    return this.shard.ask<SignedEvent>((id) => ({ op: 'sign', id, index: this.index, fields, roomVersion }));
  }

  stop(): Promise<void> {
    return this.index === 0 ? this.shard.stop() : Promise.resolve();
  }
}
