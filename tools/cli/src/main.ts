// `npx fedgate <command>`: operator commands.
import { Command, CommanderError } from 'commander';
import { topologyFor } from '@fedgate/platform';
import { DEAD_LETTERS_HELP, listDeadLetters, removeDeadLetters, replayDeadLetters, stdio, withOperatorBus } from './dead-letters';
import { repairRooms, ROOMS_REPAIR_HELP } from './rooms-repair';
import { STATE_REPLAY_HELP, stateReplay } from './state-replay';
import { AUDIT_HELP, exportAudit, POLICY_TEST_HELP, policyTest, withAuditStore, type AuditOptions, type PolicyTestOptions } from './policy';

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
  const policy = program.command('policy').description('the federation policy this server enforces as a policy server').exitOverride();
  policy
    .command('test')
    .description('print the rule of the policy that would decide an event, and the decision')
    .argument('<event>', 'JSON file holding one event')
    .option('--policy <file>', 'policy file (else policyServer.policyFile of the config)')
    .option('--config <file>', 'fedgate config file (else fedgate.yaml / FEDGATE_CONFIG)')
    .option('--origin <server>', 'the server asking for the signature')
    .option('--json', 'print JSON')
    .addHelpText('after', POLICY_TEST_HELP)
    .exitOverride()
    .action(async (event: string, opts: PolicyTestOptions) => setExit(await policyTest(event, opts)));
  program
    .command('audit')
    .description('export audit records (policy decisions, federation requests) as JSON lines')
    .option('--config <file>', 'fedgate config file (else fedgate.yaml / FEDGATE_CONFIG)')
    .option('--room <id>', 'policy decisions about events of this room')
    .option('--server <name>', "policy decisions about events of this server's users")
    .option('--origin <name>', 'records of requests made by this server')
    .option('--rule <id>', 'policy decisions made by this rule')
    .option('--decision <decision>', 'signed, refused, soft_failed or policy_reload')
    .option('--policy', 'only policy records')
    .option('--since <time>', 'ISO 8601, milliseconds, or a duration ago (15m, 2h, 7d)')
    .option('--until <time>', 'ISO 8601, milliseconds, or a duration ago')
    .option('--limit <n>', 'at most this many records (default 1000)')
    .addHelpText('after', AUDIT_HELP)
    .exitOverride()
    .action(async (opts: AuditOptions) => setExit(await withAuditStore(opts, (store) => exportAudit(store, opts))));
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
