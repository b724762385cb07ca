import type { Command } from 'commander';
import { CliError } from '../errors';

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('(pending) server')
    .action(() => {
      throw new CliError('fedkseed server is not available in this build yet');
    });
}
