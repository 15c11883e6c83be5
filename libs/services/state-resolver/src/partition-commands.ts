// The room commands of one partition, served by the replica that holds the partition's lease (elastic ownership).
// Owner-routed on the bus (`ServeOptions.ownedNow`): every replica subscribed to `cmd.<name>.<p>` gets each
// request and only the lease holder answers, so a replica that stopped answering (SIGSTOP, a GC pause, stuck on
// its store, cut off) but is still connected takes none of the requests; in a queue group it took its share.
import type { Bus, BusSubscription, CommandSpec, CommandSubject } from '@fedgate/bus';
import { CommitFencedError } from '@fedgate/store';
import { CommandRefusal } from './errors';

export interface CommandEntry {
  command: CommandSpec<never, unknown>;
  handler: (request: never) => Promise<unknown>;
}

/** Whether this replica holds a partition now (`PartitionOwnership`). */
export interface PartitionHolder {
  /** Fresh by this replica's clock. */
  owns(partition: number): boolean;
  /** Still held once a lease gone stale for a moment (a slow renewal) is renewed; false once lost. */
  ownsAfterRenewal(partition: number): Promise<boolean>;
}

/** A command served for one partition only: its subject's trailing `*` replaced by the partition. */
export function forPartition<Req, Res>(command: CommandSpec<Req, Res>, p: number): CommandSpec<Req, Res> {
  return { ...command, pattern: command.pattern.replace(/\*$/, String(p)) as CommandSubject<Req, Res> };
}

export class PartitionCommands {
  constructor(
    private readonly bus: Bus,
    private readonly commands: readonly CommandEntry[],
    private readonly holder: PartitionHolder,
    /** A request left to the partition's owner (this replica does not hold the lease): for logs and metrics. */
    private readonly onDeclined: (partition: number, subject: string) => void = () => undefined,
  ) {}

  /** Serves every command of partition `p`; stopping the subscriptions (on release) ends it. */
  async serve(p: number): Promise<BusSubscription[]> {
    const subscriptions: BusSubscription[] = [];
    try {
      for (const { command, handler } of this.commands) {
        const spec = forPartition(command, p);
        const ownedNow = () => this.ownedNow(p, spec);
        subscriptions.push(await this.bus.serve(spec, (request: never) => this.run(handler, request), { ownedNow }));
      }
    } catch (err) {
      await Promise.all(subscriptions.map((s) => s.stop()));
      throw err;
    }
    return subscriptions;
  }

  /**
   * Checked before any work. A stale lease is waited out (renewed, or found lost) for at most the command's
   * timeout, after which the requester has given up anyway; the caller's retry carries the same key.
   */
  private async ownedNow(p: number, spec: CommandSpec<never, unknown>): Promise<boolean> {
    if (this.holder.owns(p)) return true;
    let timer: NodeJS.Timeout | undefined;
    const givenUp = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), spec.timeoutMs).unref()));
    const owned = await Promise.race([this.holder.ownsAfterRenewal(p).catch(() => false), givenUp]);
    clearTimeout(timer);
    if (!owned) this.onDeclined(p, spec.pattern);
    return owned;
  }

  private async run(handler: CommandEntry['handler'], request: never): Promise<unknown> {
    try {
      return await handler(request);
    } catch (err) {
      // Refused at commit (this replica stalled past its lease): nothing was kept; the new owner serves the retry.
      if (err instanceof CommitFencedError) return new CommandRefusal('M_UNKNOWN', `${err.message}; retry`, 503, { retry_after_ms: 1_000 }).toReply();
      throw err;
    }
  }
}
