// `npx fedgate <command>`: operator commands.
import { Command, CommanderError } from 'commander';
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
