// `npx fedgate <command>`: operator commands.
export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`fedgate: unknown command ${JSON.stringify(argv.join(' '))}\n`);
  return 2;
}
