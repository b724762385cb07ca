import type { Command } from 'commander';
import { CliError } from '../errors';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('(pending) train')
    .action(() => {
      throw new CliError('fedkseed train is not available in this build yet');
    });
}
