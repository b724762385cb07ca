import type { Command } from 'commander';
import { CliError } from '../errors';

export function registerClient(program: Command): void {
  program
    .command('client')
    .description('(pending) client')
    .action(() => {
      throw new CliError('fedkseed client is not available in this build yet');
    });
}
