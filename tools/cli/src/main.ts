// `npx fedgate <command>`: operator commands.
import { Command, CommanderError } from 'commander';
import { topologyFor } from '@fedgate/platform';
import { DEAD_LETTERS_HELP, listDeadLetters, removeDeadLetters, replayDeadLetters, stdio, withOperatorBus } from './dead-letters';
import { repairRooms, ROOMS_REPAIR_HELP } from './rooms-repair';
import { STATE_REPLAY_HELP, stateReplay } from './state-replay';

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('fedgate').description('fedgate operator commands').exitOverride();
  const state = program.command('state').description('room state tools').exitOverride();
  state
    .command('replay')
    .description('replay a room from a JSON array of its events and print the resolved state')
    .argument('<file>', 'JSON file holding an array of the room\'s events')
    .option('--rejected', 'print {state, rejected} with the rejected events and their reasons')
    .addHelpText('after', STATE_REPLAY_HELP)
    .exitOverride()
    .action(async (file: string, opts: { rejected?: boolean }) => setExit(await stateReplay(file, opts)));

  const configArgv = (opts: { config?: string }) => (opts.config ? ['--config', opts.config] : []);
  const deadLetters = program.command('dead-letters').description('what bus consumers gave up on, kept until removed').exitOverride();
  deadLetters
    .command('list')
    .description('list dead letters with their reasons')
    .option('--config <file>', 'fedgate config file (else fedgate.yaml / FEDGATE_CONFIG)')
    .option('--consumer <name>', 'only those of one consumer')
    .option('--json', 'print JSON with the original messages')
    .addHelpText('after', DEAD_LETTERS_HELP)
    .exitOverride()
    .action(async (opts: { config?: string; consumer?: string; json?: boolean }) =>
      setExit(await withOperatorBus(configArgv(opts), (bus) => listDeadLetters(bus, opts))),
    );
  deadLetters
    .command('remove')
    .description('remove dead letters by sequence, or all of them')
    .argument('[sequence...]', 'sequences from `fedgate dead-letters list`')
    .option('--config <file>', 'fedgate config file (else fedgate.yaml / FEDGATE_CONFIG)')
    .option('--all', 'remove every dead letter (of --consumer, if given)')
    .option('--consumer <name>', 'with --all: only those of one consumer')
    .addHelpText('after', DEAD_LETTERS_HELP)
    .exitOverride()
    .action(async (sequences: string[], opts: { config?: string; all?: boolean; consumer?: string }) =>
      setExit(await withOperatorBus(configArgv(opts), (bus) => removeDeadLetters(bus, sequences, opts))),
    );
  deadLetters
    .command('replay')
    .description('publish dead letters again on their original subjects, then remove them')
    .argument('<sequence...>', 'sequences from `fedgate dead-letters list`')
    .option('--config <file>', 'fedgate config file (else fedgate.yaml / FEDGATE_CONFIG)')
    .addHelpText('after', DEAD_LETTERS_HELP)
    .exitOverride()
    .action(async (sequences: string[], opts: { config?: string }) => setExit(await withOperatorBus(configArgv(opts), (bus) => replayDeadLetters(bus, sequences))));
  const rooms = program.command('rooms').description('room tools on the running deployment').exitOverride();
  rooms
    .command('repair')
    .description('finish local commits cut short (a crash or an outage between the writes of one event)')
    .option('--config <file>', 'fedgate config file (else fedgate.yaml / FEDGATE_CONFIG)')
    .option('--room <id>', 'only this room')
    .option('--json', 'print JSON')
    .addHelpText('after', ROOMS_REPAIR_HELP)
    .exitOverride()
    .action(async (opts: { config?: string; room?: string; json?: boolean }) =>
      setExit(await withOperatorBus(configArgv(opts), (bus, config) => repairRooms(bus, topologyFor(config), opts, stdio))),
    );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successful exits; everything else is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return code;
}
