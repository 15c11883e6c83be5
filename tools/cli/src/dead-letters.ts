// `fedgate dead-letters list|remove`: what the bus consumers gave up on, kept until an operator removes it.
import { busOptionsFor, EmbeddedBus, JetStreamBus, type Bus, type DeadLetterAdmin, type StoredDeadLetter } from '@fedgate/bus';
import { loadConfig, type FedgateConfig } from '@fedgate/config';
import { topologyFor } from '@fedgate/platform';

export const DEAD_LETTERS_HELP = `
Dead letters are messages a bus consumer gave up on (a handler refused it, it failed on every delivery, or
a parked inbound PDU ran out of its time budget), each with the reason. They are kept, however old, until
removed here. The bus is the one in the config (--config FILE or FEDGATE_* variables): the SQLite file in
embedded mode, NATS JetStream in distributed mode.

  fedgate dead-letters list [--consumer NAME] [--json]
      One line per dead letter: sequence, when, consumer, message ID, deliveries, reason.
      --json prints [{"sequence", "dead_at", "consumer", "subject", "message_id", "delivery_count",
      "reason", "data"}] with the original message decoded.
  fedgate dead-letters remove SEQUENCE... | --all [--consumer NAME]
      Removes dead letters by sequence (from list), or all of them (of one consumer).
  fedgate dead-letters replay SEQUENCE...
      Publishes each original message again on its subject (message ID "<original>:replay:<sequence>"),
      then removes the dead letter. For a parked inbound PDU that ran out of its budget, this gives it a
      new one (once the budget's length has passed since the give-up: before that, PDUs parked before the
      give-up are given up again at once); handlers skip what was already handled.

Exit status: 0 on success; 1 when a sequence is not a dead letter or the bus cannot be opened; 2 on a usage error.
`;

export type AdminBus = DeadLetterAdmin & Pick<Bus, 'publish' | 'request' | 'close'>;

export interface DeadLetterIo {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: DeadLetterIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** The deployment's bus, opened for operator work only: dead letters and commands (no consumers, no stream changes). */
export async function openOperatorBus(config: FedgateConfig): Promise<AdminBus> {
  const options = busOptionsFor(topologyFor(config));
  if (config.mode === 'embedded') return new EmbeddedBus({ ...options, path: config.sqlite.path });
  return JetStreamBus.connect({ servers: config.nats.url, name: 'fedgate-cli', maxReconnectAttempts: 0 }, { ...options, pruneIntervalMs: 0 });
}

function decoded(letter: StoredDeadLetter['letter']): unknown {
  const text = Buffer.from(letter.dataBase64, 'base64').toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export async function listDeadLetters(bus: DeadLetterAdmin, opts: { consumer?: string; json?: boolean }, io: DeadLetterIo = stdio): Promise<number> {
  const letters = (await bus.listDeadLetters()).filter((d) => opts.consumer === undefined || d.letter.consumer === opts.consumer);
  if (opts.json) {
    const rows = letters.map(({ sequence, letter }) => ({
      sequence,
      dead_at: new Date(letter.deadAt).toISOString(),
      consumer: letter.consumer,
      subject: letter.subject,
      message_id: letter.messageId,
      delivery_count: letter.deliveryCount,
      reason: letter.reason,
      data: decoded(letter),
    }));
    io.out(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  for (const { sequence, letter } of letters) {
    io.out([sequence, new Date(letter.deadAt).toISOString(), letter.consumer, letter.messageId, `${letter.deliveryCount}x`, letter.reason].join('\t') + '\n');
  }
  if (letters.length === 0) io.err('no dead letters\n');
  return 0;
}

export async function removeDeadLetters(
  bus: DeadLetterAdmin,
  sequences: string[],
  opts: { all?: boolean; consumer?: string },
  io: DeadLetterIo = stdio,
): Promise<number> {
  if (opts.all === (sequences.length > 0)) {
    io.err('fedgate dead-letters remove: give sequences or --all, not both\n');
    return 2;
  }
  let targets: number[];
  if (opts.all) {
    targets = (await bus.listDeadLetters()).filter((d) => opts.consumer === undefined || d.letter.consumer === opts.consumer).map((d) => d.sequence);
  } else {
    targets = sequences.map(Number);
    const bad = sequences.filter((s, i) => !Number.isSafeInteger(targets[i]) || targets[i] < 1);
    if (bad.length > 0) {
      io.err(`fedgate dead-letters remove: not a sequence: ${bad.join(', ')}\n`);
      return 2;
    }
  }
  let missing = 0;
  for (const sequence of targets) {
    if (await bus.removeDeadLetter(sequence)) io.out(`removed ${sequence}\n`);
    else {
      io.err(`no dead letter ${sequence}\n`);
      missing++;
    }
  }
  return missing > 0 ? 1 : 0;
}

export async function replayDeadLetters(bus: AdminBus, sequences: string[], io: DeadLetterIo = stdio): Promise<number> {
  const wanted = sequences.map(Number);
  if (wanted.length === 0 || wanted.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    io.err('fedgate dead-letters replay: give the sequences to replay (from list)\n');
    return 2;
  }
  const letters = new Map((await bus.listDeadLetters()).map((d) => [d.sequence, d.letter]));
  let missing = 0;
  for (const sequence of wanted) {
    const letter = letters.get(sequence);
    if (!letter) {
      io.err(`no dead letter ${sequence}\n`);
      missing++;
      continue;
    }
    // Published before the letter is removed: a failure in between leaves the letter, and a second replay
    // within the dedupe window is dropped as a duplicate.
    await bus.publish(letter.subject, decoded(letter), { messageId: `${letter.messageId}:replay:${sequence}` });
    await bus.removeDeadLetter(sequence);
    io.out(`replayed ${sequence} on ${letter.subject}\n`);
  }
  return missing > 0 ? 1 : 0;
}

/** Opens the configured bus, runs `work` on it, closes it. */
export async function withOperatorBus(argv: readonly string[], work: (bus: AdminBus, config: FedgateConfig) => Promise<number>): Promise<number> {
  let bus: AdminBus;
  let config: FedgateConfig;
  try {
    config = loadConfig({ argv });
    bus = await openOperatorBus(config);
  } catch (err) {
    process.stderr.write(`fedgate: cannot open the bus: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    return await work(bus, config);
  } finally {
    await bus.close();
  }
}
