/** The `sculpt` command line. Subcommands are added as the engine grows; unknown ones exit 2. */
import { SCULPT_VERSION } from '../protocol/version';

const USAGE = `sculpt ${SCULPT_VERSION}: continual fine-tuning experiments

usage: sculpt <command> [options]

commands:
  --version        print the version
  help             this text
`;

export function main(argv: string[]): number {
  const [cmd] = argv;
  if (cmd === '--version' || cmd === '-v') {
    console.log(SCULPT_VERSION);
    return 0;
  }
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return 0;
  }
  console.error(`sculpt: unknown command '${cmd}'\n\n${USAGE}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
