import type { Command } from 'commander';
import { CliError } from '../errors';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('(pending) eval')
    .action(() => {
      throw new CliError('fedkseed eval is not available in this build yet');
    });
}
