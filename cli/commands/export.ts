import type { Command } from 'commander';
import { CliError } from '../errors';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('(pending) export')
    .action(() => {
      throw new CliError('fedkseed export is not available in this build yet');
    });
}
