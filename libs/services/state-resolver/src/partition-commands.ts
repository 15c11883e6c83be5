// The room commands of one partition, served by the replica that holds the partition's lease (elastic ownership).
import type { Bus, BusSubscription, CommandSpec, CommandSubject } from '@fedgate/bus';
import { CommitFencedError } from '@fedgate/store';
import { CommandRefusal } from './errors';

export interface CommandEntry {
  command: CommandSpec<never, unknown>;
  handler: (request: never) => Promise<unknown>;
}

/** Whether this replica holds a partition now (`PartitionOwnership`). */
export interface PartitionHolder {
  owns(partition: number): boolean;
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
  ) {}

  /** Serves every command of partition `p`; stopping the subscriptions (on release) ends it. */
  async serve(p: number): Promise<BusSubscription[]> {
    const subscriptions: BusSubscription[] = [];
    try {
      for (const { command, handler } of this.commands) {
        subscriptions.push(
          await this.bus.serve(forPartition(command, p), async (request: never) => {
            if (!this.holder.owns(p)) throw new Error(`room partition ${p} is moving to another replica; retry`);
            return this.run(handler, request);
          }),
        );
      }
    } catch (err) {
      await Promise.all(subscriptions.map((s) => s.stop()));
      throw err;
    }
    return subscriptions;
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
