import type { Command } from 'commander';
import { CliError } from '../errors';

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('(pending) simulate')
    .action(() => {
      throw new CliError('fedkseed simulate is not available in this build yet');
    });
}
